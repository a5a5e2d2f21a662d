#pragma once
/// \file actnorm.hpp
/// ActNorm: Glow's per-channel affine normalisation with data-dependent initialisation.
///
///   y = (x + b) e^s   per channel (dimension 1 of [N, C, ...]),  x = y e^-s - b
///   log |det dy/dx| = (D / C) sum_c s_c   (each channel's scale applies to D / C dimensions)
/// On the first forward pass in training mode, b and s are set from that batch so that every
/// channel of y has mean 0 and standard deviation 1: b = -mean, s = -log(std + eps). Afterwards
/// they are ordinary parameters. Whether that happened is the buffer "initialized" (0 or 1),
/// saved in checkpoints so that a resumed or loaded model does not initialise again.

#include <cmath>
#include <cstdint>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"

namespace genmod::flows {

/// Per-channel affine normalisation with data-dependent initialisation (see the file comment).
template <class T = float>
class ActNorm : public BijectorModule<T> {
 public:
  /// For samples of shape `event` ([C] or [C, H, W]); starts as the identity, uninitialised.
  explicit ActNorm(const Shape& event) : event_(event), initialized_(zeros<T>(Shape{1})) {
    check_rank("flows::ActNorm", "the event shape", event, {1, 3}, "[C] or [C, H, W]");
    const Shape ps = event.rank() == 1 ? Shape{event[0]} : Shape{event[0], 1, 1};
    bias = Parameter<T>(zeros<T>(ps));
    log_scale = Parameter<T>(zeros<T>(ps));
  }

  /// {(x + b) e^s, (D / C) sum(s) per sample}; initialises b and s from x first if needed.
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::ActNorm", "x", x.shape(), event_);
    if (initialized_[0] == T(0) && this->is_training()) initialize(x.value());
    const Var<T> s = log_scale.var();
    const T per_channel = static_cast<T>(event_.numel() / event_[0]);
    return {mul(add(x, bias.var()), exp(s)), broadcast_to(scale(sum(s), per_channel), Shape{x.dim(0)})};
  }

  /// y e^-s - b.
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::ActNorm::inverse", "y", y.shape(), event_);
    return sub(mul(y, exp(neg(log_scale.var()))), bias.var());
  }

  /// Whether the data-dependent initialisation has happened.
  bool initialized() const noexcept { return initialized_[0] != T(0); }

  /// Lists "bias", "log_scale" and the buffer "initialized".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("bias", bias);
    v.param("log_scale", log_scale);
    v.buffer("initialized", initialized_);
  }

  Parameter<T> bias;       ///< b, [C] or [C, 1, 1]
  Parameter<T> log_scale;  ///< s, [C] or [C, 1, 1]

 private:
  // b = -mean, s = -log(std + eps) per channel over the batch (and the spatial positions).
  void initialize(const Tensor<T>& x) {
    const std::int64_t n = x.dim(0), c = event_[0], inner = event_.numel() / c;
    std::vector<double> sum(static_cast<std::size_t>(c), 0.0), sq(static_cast<std::size_t>(c), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < c; ++k)
        for (std::int64_t j = 0; j < inner; ++j) {
          const double v = static_cast<double>(x[(i * c + k) * inner + j]);
          sum[static_cast<std::size_t>(k)] += v;
          sq[static_cast<std::size_t>(k)] += v * v;
        }
    const double count = static_cast<double>(n * inner);
    for (std::int64_t k = 0; k < c; ++k) {
      const double mean = sum[static_cast<std::size_t>(k)] / count;
      const double var = std::max(sq[static_cast<std::size_t>(k)] / count - mean * mean, 0.0);
      bias.value()[k] = static_cast<T>(-mean);
      log_scale.value()[k] = static_cast<T>(-std::log(std::sqrt(var) + 1e-6));
    }
    initialized_[0] = T(1);
  }

  Shape event_;
  Tensor<T> initialized_;  // [1]: 0 until the first training forward pass, then 1
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::ActNorm, float)
#endif
