#pragma once
/// \file dropout.hpp
/// Dropout: in training, zeroes each element with probability p and scales the rest by 1/(1-p)
/// (inverted dropout, so evaluation is the identity).

#include <string>

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/layers/activation.hpp"

namespace genmod::nn {

/// Inverted dropout with probability p in training, the identity in evaluation (see the file comment).
template <class T = float>
class Dropout : public Stateless<T> {
 public:
  /// p in [0, 1); the mask's random numbers come from `seed` (a stream of its own).
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), gen_(seed, 0x64726f70ULL) {
    check_in_range("Dropout", "p", p, 0.0, 1.0, Bounds::closed_open);
  }

  /// Same shape as x. Training: x * mask / (1 - p) with a fresh Bernoulli(1 - p) mask; evaluation: x.
  Var<T> forward(const Var<T>& x) override {
    if (!this->is_training() || p_ == 0) return x;
    Tensor<T> mask(x.shape());
    fill_uniform(mask, gen_);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p_));
    const T p = static_cast<T>(p_);
    for (auto& m : mask) m = m >= p ? keep_scale : T(0);
    return mul(x, Var<T>(std::move(mask)));
  }

  /// The mask generator (its state belongs in a checkpoint for exact resumption).
  Generator& generator() noexcept { return gen_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace genmod::nn
