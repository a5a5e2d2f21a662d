#pragma once
/// \file normal.hpp
/// Normal: a diagonal Gaussian given by its mean and log-variance (Vars, so that gradients reach
/// the network that produced them).

#include <cmath>
#include <numbers>

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/losses/kl.hpp"

namespace genmod::dist {

/// A diagonal Normal N(mean, e^logvar), elementwise: the VAE posterior.
template <class T = float>
class Normal {
 public:
  /// From the mean and the log-variance (same shape; ShapeError otherwise).
  Normal(Var<T> mean, Var<T> logvar) : mean_(std::move(mean)), logvar_(std::move(logvar)) {
    check_same_shape("Normal", "mean", mean_.shape(), "log-variance", logvar_.shape());
  }
  /// N(0, 1) of a shape.
  static Normal standard(const Shape& s) { return Normal(Var<T>(zeros<T>(s)), Var<T>(zeros<T>(s))); }

  /// The mean.
  const Var<T>& mean() const noexcept { return mean_; }
  /// The log-variance.
  const Var<T>& logvar() const noexcept { return logvar_; }
  /// sigma = e^(logvar / 2).
  Var<T> stddev() const { return exp(scale(logvar_, T(0.5))); }

  /// A reparameterized sample mean + sigma * eps, eps ~ N(0, I) a constant: gradients flow into
  /// the mean and the log-variance only.
  Var<T> rsample(Generator& g, T temperature = T(1)) const {
    Tensor<T> eps = randn<T>(mean_.shape(), g);
    if (temperature != T(1))
      for (auto& e : eps) e *= temperature;
    return add(mean_, mul(stddev(), Var<T>(std::move(eps))));
  }

  /// log density at x, elementwise: -1/2 (log 2 pi + logvar + (x - mean)^2 e^-logvar).
  Var<T> log_prob(const Var<T>& x) const {
    const T log2pi = static_cast<T>(std::log(2.0 * std::numbers::pi));
    Var<T> z2 = mul(square(sub(x, mean_)), exp(neg(logvar_)));
    return scale(add_scalar(add(z2, logvar_), log2pi), T(-0.5));
  }

  /// KL(this || N(0, 1)), elementwise.
  Var<T> kl_standard() const { return losses::gaussian_kl_standard(mean_, logvar_); }

  /// KL(q || p), elementwise.
  friend Var<T> kl(const Normal& q, const Normal& p) {
    return losses::gaussian_kl(q.mean_, q.logvar_, p.mean_, p.logvar_);
  }

 private:
  Var<T> mean_, logvar_;
};

}  // namespace genmod::dist
