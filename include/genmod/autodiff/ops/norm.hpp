#pragma once
/// \file norm.hpp
/// batch_norm and layer_norm, composed from differentiable ops (so their second derivatives are
/// right too). Statistics use the biased variance, as PyTorch does for normalization.

#include <cmath>
#include <string>

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/autodiff/grad_mode.hpp"

namespace genmod {

/// Batch statistics and normalization of x [N, C] or [N, C, H, W] over every axis but 1.
struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;  ///< running = (1 - momentum) running + momentum batch
  double eps = 1e-5;
};

/// y = (x - mean) / sqrt(var + eps) * gamma + beta per channel. In training the batch's statistics
/// are used and the running ones updated (with the unbiased variance, as PyTorch); in evaluation
/// the running ones are used. gamma and beta may be undefined (no affine transform).
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                  Tensor<T>& running_var, const BatchNormOptions& o = {}) {
  if (x.rank() != 2 && x.rank() != 4)
    throw ShapeError("batch_norm: expected input [N, C] or [N, C, H, W], got " + x.shape().to_string());
  const std::int64_t c = x.dim(1);
  const Shape stat = x.rank() == 2 ? Shape{1, c} : Shape{1, c, 1, 1};
  if (!(running_mean.shape() == Shape{c}) || !(running_var.shape() == Shape{c}))
    throw ShapeError("batch_norm: running statistics " + running_mean.shape().to_string() + " and " +
                     running_var.shape().to_string() + " do not fit " + std::to_string(c) + " channels of input " +
                     x.shape().to_string());
  const std::int64_t count = x.numel() / c;
  Var<T> normalized;
  if (o.training) {
    if (count < 2)
      throw ValueError("batch_norm: training needs more than one value per channel, got input " + x.shape().to_string());
    const T inv = T(1) / static_cast<T>(count);
    Var<T> mean = scale(sum_to(x, stat), inv);
    Var<T> centered = sub(x, mean);
    Var<T> var = scale(sum_to(square(centered), stat), inv);
    normalized = div(centered, sqrt(var + static_cast<T>(o.eps)));
    // Running statistics: plain tensor updates, outside the recording.
    const T m = static_cast<T>(o.momentum);
    const T unbias = static_cast<T>(count) / static_cast<T>(count - 1);
    for (std::int64_t i = 0; i < c; ++i) {
      running_mean[i] = (T(1) - m) * running_mean[i] + m * mean.value()[i];
      running_var[i] = (T(1) - m) * running_var[i] + m * var.value()[i] * unbias;
    }
  } else {
    Tensor<T> shift(stat), mul_by(stat);
    for (std::int64_t i = 0; i < c; ++i) {
      shift[i] = running_mean[i];
      mul_by[i] = T(1) / std::sqrt(running_var[i] + static_cast<T>(o.eps));
    }
    normalized = mul(sub(x, Var<T>(shift)), Var<T>(mul_by));
  }
  if (gamma.defined()) normalized = mul(normalized, reshape(gamma, stat));
  if (beta.defined()) normalized = add(normalized, reshape(beta, stat));
  return normalized;
}

/// Normalizes over the trailing `normalized_dims` dimensions: y = (x - mean) / sqrt(var + eps)
/// * gamma + beta, gamma and beta shaped like those dimensions (or undefined).
template <class T>
Var<T> layer_norm(const Var<T>& x, int normalized_dims, const Var<T>& gamma, const Var<T>& beta, double eps = 1e-5) {
  if (normalized_dims < 1 || normalized_dims > x.rank())
    throw ShapeError("layer_norm: cannot normalize the last " + std::to_string(normalized_dims) +
                     " dimensions of " + x.shape().to_string());
  std::int64_t d = 1;
  for (int i = x.rank() - normalized_dims; i < x.rank(); ++i) d *= x.dim(i);
  const std::int64_t m = x.numel() / d;
  Var<T> flat = reshape(x, Shape{m, d});
  const T inv = T(1) / static_cast<T>(d);
  Var<T> centered = sub(flat, scale(sum(flat, 1, true), inv));
  Var<T> var = scale(sum(square(centered), 1, true), inv);
  Var<T> y = reshape(div(centered, sqrt(var + static_cast<T>(eps))), x.shape());
  if (gamma.defined()) y = mul(y, gamma);
  if (beta.defined()) y = add(y, beta);
  return y;
}

}  // namespace genmod
