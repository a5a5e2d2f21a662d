#pragma once
/// \file scaling.hpp
/// Scaling: the learned diagonal scaling that ends NICE's chain of volume-preserving couplings.
///
///   y = x e^s,  log |det dy/dx| = sum_i s_i (the same for every sample),  x = y e^-s
/// with s learned per dimension of a sample, starting at 0 (the identity). NICE writes the
/// scaling as S = e^s; it lets the flow give more weight to some dimensions than to others.
///
/// With `data_init`, the first forward pass in training mode sets s = -log(std + eps) per
/// dimension over that batch (every dimension of y then has standard deviation 1), as ActNorm
/// does; the buffer "initialized" records it. After additive (volume-preserving) couplings this
/// step carries the whole contraction of the density, and Adam moves each s by about the
/// learning rate per step: starting from 0, dequantized background pixels (std 1 / 887) need
/// s near 6.8, thousands of steps away.

#include <algorithm>
#include <cmath>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"

namespace genmod::flows {

/// Options of Scaling.
struct ScalingOptions {
  bool data_init = false;  ///< set s from the first training batch (see the file comment)
};

/// y = x e^s with a learned log-scale s of the shape of one sample (see the file comment).
template <class T = float>
class Scaling : public BijectorModule<T> {
 public:
  /// The identity on samples of shape `event` ([D], or [C, H, W]).
  explicit Scaling(const Shape& event, ScalingOptions options = {})
      : log_scale(zeros<T>(event)), options_(options), initialized_(zeros<T>(Shape{1})) {
    check_arg(event.rank() >= 1 && event.numel() >= 1, "flows::Scaling", "the event shape", "at least one dimension",
              event.to_string());
  }

  /// {x e^s, sum(s) per sample [N]}.
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::Scaling", "x", x.shape(), log_scale.shape());
    if (options_.data_init && initialized_[0] == T(0) && this->is_training()) initialize(x.value());
    const Var<T> s = log_scale.var();
    return {mul(x, exp(s)), broadcast_to(sum(s), Shape{x.dim(0)})};
  }

  /// y e^-s.
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::Scaling::inverse", "y", y.shape(), log_scale.shape());
    return mul(y, exp(neg(log_scale.var())));
  }

  /// Whether the data-dependent initialisation has happened (always false without data_init).
  bool initialized() const noexcept { return initialized_[0] != T(0); }

  /// Lists "log_scale", and with data_init the buffer "initialized".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("log_scale", log_scale);
    if (options_.data_init) v.buffer("initialized", initialized_);
  }

  Parameter<T> log_scale;  ///< s, the shape of one sample

 private:
  // s = -log(std + eps) per dimension over the batch.
  void initialize(const Tensor<T>& x) {
    const std::int64_t n = x.dim(0), d = log_scale.value().numel();
    for (std::int64_t i = 0; i < d; ++i) {
      double sum = 0, sq = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        const double v = static_cast<double>(x[k * d + i]);
        sum += v;
        sq += v * v;
      }
      const double mean = sum / static_cast<double>(n);
      const double var = std::max(sq / static_cast<double>(n) - mean * mean, 0.0);
      log_scale.value()[i] = static_cast<T>(-std::log(std::sqrt(var) + 1e-6));
    }
    initialized_[0] = T(1);
  }

  ScalingOptions options_;
  Tensor<T> initialized_;  // [1]: 0 until the first training forward pass (with data_init), then 1
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::Scaling, float)
#endif
