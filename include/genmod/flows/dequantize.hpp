#pragma once
/// \file dequantize.hpp
/// Dequantize: uniform dequantization of 8-bit (or any L-level) data, the step that lets a
/// continuous density be compared with discrete pixels (Theis, van den Oord and Bethge 2016).
///
/// A pixel value k in {0, ..., L - 1} (stored as k / (L - 1) in [0, 1], as genmod's loaders give
/// images) becomes y = (k + u) / L with u ~ U[0, 1) drawn anew at each call. The step from the
/// continuous pixel k + u in [0, L) to y has log |dy/d(k + u)| = -log L per dimension, so a flow
/// that starts with Dequantize reports log-likelihoods of the pixel-space density, whose negative
/// bounds the discrete negative log-likelihood from above: bits/dim of the 8-bit data.
///   forward:  y = (k + u) / L,  logdet = -D log L per sample (D dimensions per sample)
///   inverse:  k = floor(y L) clamped to {0, ..., L - 1}, returned as k / (L - 1)
/// The noise is a constant for the gradient (it is not a function of any parameter).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"

namespace genmod::flows {

/// Options of Dequantize.
struct DequantizeOptions {
  std::int64_t levels = 256;  ///< L, the number of values a pixel takes
  std::uint64_t seed = 0;     ///< seed of the noise u
};

/// Uniform dequantization (see the file comment). No parameters; the noise generator is state.
template <class T = float>
class Dequantize : public BijectorModule<T> {
 public:
  /// L levels (at least 2), noise seeded by `options.seed`.
  explicit Dequantize(DequantizeOptions options = {}) : levels_(options.levels), noise_(options.seed) {
    check_at_least("flows::Dequantize", "levels", options.levels, 2);
  }

  /// {(k + u) / L, -D log L per sample}; ValueError if a value is not one of the L levels k / (L - 1).
  FlowResult<T> forward(const Var<T>& x) override {
    check_min_rank("flows::Dequantize", "x", x.shape(), 2, "[N, ...]");
    const Tensor<T>& v = x.value();
    Tensor<T> y(v.shape());
    fill_uniform(y, noise_);
    const double top = static_cast<double>(levels_ - 1);
    for (std::int64_t i = 0; i < v.numel(); ++i) {
      const double k = std::round(static_cast<double>(v[i]) * top);
      if (!(k >= 0 && k <= top && std::abs(static_cast<double>(v[i]) * top - k) <= 1e-3))
        check_arg(false, "flows::Dequantize", "x",
                  "pixel values k / " + std::to_string(levels_ - 1) + " in [0, 1] (data with " +
                      std::to_string(levels_) + " levels, not yet dequantized)",
                  genmod::detail::check_number(static_cast<double>(v[i])) + " at index " + std::to_string(i));
      y[i] = static_cast<T>((k + static_cast<double>(y[i])) / static_cast<double>(levels_));
    }
    const T d = static_cast<T>(v.numel() / v.dim(0));
    Tensor<T> logdet(Shape{v.dim(0)});
    logdet.fill(-d * std::log(static_cast<T>(levels_)));
    return {Var<T>(std::move(y)), Var<T>(std::move(logdet))};
  }

  /// The pixel values: floor(y L) clamped to {0, ..., L - 1}, divided by L - 1.
  Var<T> inverse(const Var<T>& y) override {
    Tensor<T> x(y.shape());
    const Tensor<T>& v = y.value();
    const double top = static_cast<double>(levels_ - 1);
    for (std::int64_t i = 0; i < v.numel(); ++i) {
      const double k = std::clamp(std::floor(static_cast<double>(v[i]) * static_cast<double>(levels_)), 0.0, top);
      x[i] = static_cast<T>(k / top);
    }
    return Var<T>(std::move(x));
  }

  /// L.
  std::int64_t levels() const noexcept { return levels_; }
  /// The noise generator (its state() and set_state() resume a run exactly).
  Generator& generator() noexcept { return noise_; }

  /// No parameters.
  void visit(nn::ModuleVisitor<T>&) override {}

 private:
  std::int64_t levels_;
  Generator noise_;
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::Dequantize, float)
#endif
