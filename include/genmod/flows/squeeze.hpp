#pragma once
/// \file squeeze.hpp
/// Squeeze: RealNVP's space-to-depth step between the scales of a multiscale flow.
///
///   [N, C, H, W] -> [N, 4C, H/2, W/2],  each 2 x 2 block of a channel becomes 4 channels
/// A permutation of the dimensions: log |det| = 0. It trades space for channels, so that the
/// channel-wise masks of the following couplings mix neighbouring pixels.

#include <cstdint>
#include <string>
#include <string_view>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"

namespace genmod::flows {

/// Throws ValueError unless height and width are positive multiples of 2^scales, so that a
/// multiscale flow can squeeze `scales` times.
inline void check_squeezable(std::string_view op, std::int64_t height, std::int64_t width, int scales) {
  const std::int64_t f = std::int64_t{1} << scales;
  if (height > 0 && width > 0 && height % f == 0 && width % f == 0) return;
  check_arg(false, op, "height and width", "positive multiples of 2^scales = " + std::to_string(f),
            std::to_string(height) + " x " + std::to_string(width));
}

/// Space-to-depth by 2 (see the file comment). No parameters.
template <class T = float>
class Squeeze : public BijectorModule<T> {
 public:
  /// {space_to_depth(x, 2), zeros [N]}; ShapeError unless x is [N, C, H, W] with H and W even.
  FlowResult<T> forward(const Var<T>& x) override {
    check_rank("flows::Squeeze", "x", x.shape(), 4, "[N, C, H, W]");
    if (x.dim(2) % 2 != 0 || x.dim(3) % 2 != 0)
      check_shape_arg(false, "flows::Squeeze", "x", "an even height and width", x.shape().to_string());
    return {space_to_depth(x, 2), Var<T>(zeros<T>(Shape{x.dim(0)}))};
  }

  /// depth_to_space(y, 2).
  Var<T> inverse(const Var<T>& y) override {
    check_rank("flows::Squeeze::inverse", "y", y.shape(), 4, "[N, C, H, W]");
    return depth_to_space(y, 2);
  }

  /// No parameters.
  void visit(nn::ModuleVisitor<T>&) override {}
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::Squeeze, float)
#endif
