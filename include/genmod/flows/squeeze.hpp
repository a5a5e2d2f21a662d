#pragma once
/// \file squeeze.hpp
/// Squeeze: RealNVP's space-to-depth step between the scales of a multiscale flow.
///
///   [N, C, H, W] -> [N, 4C, H/2, W/2],  each 2 x 2 block of a channel becomes 4 channels
/// A permutation of the dimensions: log |det| = 0. It trades space for channels, so that the
/// channel-wise masks of the following couplings mix neighbouring pixels.

#include <cstdint>
#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/flows/bijector.hpp"

namespace genmod::flows {

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
