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

  /// log p(x | logits) summed per sample, [N], in nats.
  template <class T>
  Var<T> log_prob(const Var<T>& logits, const Var<T>& x) const {
    return neg(losses::sum_per_sample(losses::bce_with_logits(logits, x)));
  }
  /// The expected x: sigmoid(logits).
  template <class T>
  Var<T> mean(const Var<T>& logits) const {
    return sigmoid(logits);
  }
  /// One 0/1 draw per pixel.
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
  bool learned = false;   ///< true: the decoder outputs [mean, log-variance]

  /// Decoder outputs per data dimension: 2 when the variance is learned, else 1.
  int params_per_dim_runtime() const { return learned ? 2 : 1; }

  /// The Normal that the decoder output describes.
  template <class T>
  Normal<T> distribution(const Var<T>& out) const {
    if (!learned) return Normal<T>(out, Var<T>(full<T>(out.shape(), static_cast<T>(std::log(variance)))));
    if (out.rank() != 2 || out.dim(1) % 2 != 0)
      throw ShapeError("Gaussian (learned variance): expected decoder output [N, 2D], got " + out.shape().to_string());
    const std::int64_t d = out.dim(1) / 2;
    return Normal<T>(slice(out, 1, 0, d), slice(out, 1, d, d));
  }
  /// log p(x | decoder output) summed per sample, [N], in nats.
  template <class T>
  Var<T> log_prob(const Var<T>& out, const Var<T>& x) const {
    return losses::sum_per_sample(distribution(out).log_prob(x));
  }
  /// The expected x: the Normal's mean.
  template <class T>
  Var<T> mean(const Var<T>& out) const {
    return distribution(out).mean();
  }
  /// One draw of x.
  template <class T>
  Tensor<T> sample(const Var<T>& out, Generator& g) const {
    return distribution(out).rsample(g).value();
  }
};

}  // namespace genmod::dist
