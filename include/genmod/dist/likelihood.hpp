#pragma once
/// \file likelihood.hpp
/// Observation models p(x | decoder output) for VAEs: Bernoulli (the decoder outputs logits) and
/// Gaussian with a fixed variance (the decoder outputs the mean) or a learned one (the decoder
/// outputs [mean, log-variance] along dimension 1).
///
/// Each gives log_prob(params, x) summed per sample ([N], in nats), mean(params) (the expected
/// image) and sample(params, g).

#include <cmath>
#include <numbers>
#include <string>

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/random.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/losses/reconstruction.hpp"

namespace genmod::dist {

/// Independent Bernoulli pixels with logits l: log p(x) = sum x l - softplus(l) (x may be
/// continuous in [0, 1], as for grey-level images).
struct Bernoulli {
  /// Decoder outputs per data dimension.
  static constexpr int params_per_dim = 1;

  template <class T>
  Var<T> log_prob(const Var<T>& logits, const Var<T>& x) const {
    return neg(losses::sum_per_sample(losses::bce_with_logits(logits, x)));
  }
  template <class T>
  Var<T> mean(const Var<T>& logits) const {
    return sigmoid(logits);
  }
  template <class T>
  Tensor<T> sample(const Var<T>& logits, Generator& g) const {
    Tensor<T> p = sigmoid(logits).value().clone();
    Tensor<T> u = rand<T>(p.shape(), g);
    for (std::int64_t i = 0; i < p.numel(); ++i) p[i] = u[i] < p[i] ? T(1) : T(0);
    return p;
  }
};

/// Gaussian pixels. Fixed variance: the decoder outputs the mean. Learned: the decoder outputs
/// [N, 2D] (mean first, log-variance second).
struct Gaussian {
  double variance = 1.0;  ///< fixed variance (ignored when learned)
  bool learned = false;

  int params_per_dim_runtime() const { return learned ? 2 : 1; }

  template <class T>
  Normal<T> distribution(const Var<T>& out) const {
    if (!learned) return Normal<T>(out, Var<T>(full<T>(out.shape(), static_cast<T>(std::log(variance)))));
    if (out.rank() != 2 || out.dim(1) % 2 != 0)
      throw ShapeError("Gaussian (learned variance): expected decoder output [N, 2D], got " + out.shape().to_string());
    const std::int64_t d = out.dim(1) / 2;
    return Normal<T>(slice(out, 1, 0, d), slice(out, 1, d, d));
  }
  template <class T>
  Var<T> log_prob(const Var<T>& out, const Var<T>& x) const {
    return losses::sum_per_sample(distribution(out).log_prob(x));
  }
  template <class T>
  Var<T> mean(const Var<T>& out) const {
    return distribution(out).mean();
  }
  template <class T>
  Tensor<T> sample(const Var<T>& out, Generator& g) const {
    return distribution(out).rsample(g).value();
  }
};

}  // namespace genmod::dist
