#pragma once
/// \file norm.hpp
/// batch_norm (training mode fused into one op, kernels/batch_norm.hpp) and layer_norm, composed
/// from differentiable ops. Statistics use the biased variance, as PyTorch does for normalization.

#include <cmath>
#include <string>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/batch_norm.hpp"

namespace genmod {

/// Batch statistics and normalization of x [N, C] or [N, C, H, W] over every axis but 1.
struct BatchNormOptions {
  /// Batch statistics (and a running-average update) when true; the running ones when false.
  bool training = true;
  double momentum = 0.1;  ///< running = (1 - momentum) running + momentum batch
  /// Added to the variance before the square root: y = (x - mean) / sqrt(var + eps).
  double eps = 1e-5;
};

namespace detail {

/// Training-mode batch norm as one op (kernels/batch_norm.hpp): batch statistics, running
/// statistics updated, y = x * (gamma invstd) + (beta - mean gamma invstd). Backward, with
/// xhat = (x - mean) invstd and M values per channel:
///   dbeta = sum g,  dgamma = sum g xhat,  dx = gamma invstd (g - dbeta / M - xhat dgamma / M),
/// one pass for the sums and one for dx. When the backward is itself recorded (create_graph) it
/// is written with differentiable ops instead, so second derivatives stay exact.
template <class T>
Var<T> batch_norm_training(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                           Tensor<T>& running_var, const BatchNormOptions& o, const Shape& stat) {
  const std::int64_t n = x.dim(0), c = x.dim(1);
  const kernels::ChannelLayout l{n, c, x.numel() / (n * c)};
  const std::int64_t count = l.count();
  Tensor<T> mean(Shape{c}), var(Shape{c}), invstd(Shape{c}), gain(Shape{c}), shift(Shape{c});
  kernels::batch_norm_statistics(l, x.value().data(), static_cast<T>(o.eps), mean.data(), var.data(), invstd.data());
  const T m = static_cast<T>(o.momentum);
  const T unbias = static_cast<T>(count) / static_cast<T>(count - 1);
  for (std::int64_t i = 0; i < c; ++i) {
    running_mean[i] = (T(1) - m) * running_mean[i] + m * mean[i];
    running_var[i] = (T(1) - m) * running_var[i] + m * var[i] * unbias;
    gain[i] = invstd[i] * (gamma.defined() ? gamma.value()[i] : T(1));
    shift[i] = (beta.defined() ? beta.value()[i] : T(0)) - mean[i] * gain[i];
  }
  Tensor<T> y(x.shape());
  kernels::channel_affine(l, x.value().data(), gain.data(), shift.data(), y.data());
  const T eps = static_cast<T>(o.eps);
  auto backward = [x, gamma, mean, invstd, gain, l, eps, stat](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
    const std::int64_t c = l.c;
    const T inv_count = T(1) / static_cast<T>(l.count());
    if (grad_enabled()) {  // recorded backward: the same formulas from differentiable ops
      Var<T> centered = sub(x, scale(sum_to(x, stat), inv_count));
      Var<T> stddev = sqrt(scale(sum_to(square(centered), stat), inv_count) + eps);
      Var<T> xhat = div(centered, stddev);
      Var<T> dbeta = sum_to(g, stat), dgamma = sum_to(mul(g, xhat), stat);
      Var<T> k = div(gamma.defined() ? reshape(gamma, stat) : Var<T>(ones<T>(stat)), stddev);
      Var<T> inner = sub(sub(g, scale(dbeta, inv_count)), mul(xhat, scale(dgamma, inv_count)));
      if (sink.needs(0)) sink.add(0, mul(k, inner));
      if (sink.needs(1)) sink.add(1, reshape(dgamma, Shape{c}));
      if (sink.needs(2)) sink.add(2, reshape(dbeta, Shape{c}));
      return;
    }
    Tensor<T> sum_g(Shape{c}), sum_gc(Shape{c});
    kernels::batch_norm_grad_sums(l, g.value().data(), x.value().data(), mean.data(), sum_g.data(), sum_gc.data());
    if (sink.needs(0)) {
      // dx = k g + wx x + b per channel, k = gamma invstd (= gain), wx = -k invstd dgamma / M,
      // b = k (mean invstd dgamma - dbeta) / M.
      Tensor<T> wx(Shape{c}), b(Shape{c});
      for (std::int64_t i = 0; i < c; ++i) {
        const T dgamma = sum_gc[i] * invstd[i];
        wx[i] = -gain[i] * invstd[i] * dgamma * inv_count;
        b[i] = gain[i] * (mean[i] * invstd[i] * dgamma - sum_g[i]) * inv_count;
      }
      Tensor<T> dx(x.shape());
      kernels::channel_affine(l, g.value().data(), gain.data(), b.data(), dx.data(), x.value().data(), wx.data());
      sink.add(0, Var<T>(std::move(dx)));
    }
    if (sink.needs(1)) {
      for (std::int64_t i = 0; i < c; ++i) sum_gc[i] *= invstd[i];
      sink.add(1, Var<T>(std::move(sum_gc)));
    }
    if (sink.needs(2)) sink.add(2, Var<T>(std::move(sum_g)));
  };
  const Var<T> g_in = gamma.defined() ? gamma : Var<T>(ones<T>(Shape{c}));
  const Var<T> b_in = beta.defined() ? beta : Var<T>(zeros<T>(Shape{c}));
  return record_op("batch_norm", std::move(y), backward, x, g_in, b_in);
}

}  // namespace detail

/// y = (x - mean) / sqrt(var + eps) * gamma + beta per channel. In training the batch's statistics
/// are used and the running ones updated (with the unbiased variance, as PyTorch); in evaluation
/// the running ones are used. gamma and beta may be undefined (no affine transform).
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                  Tensor<T>& running_var, const BatchNormOptions& o = {}) {
  check_rank("batch_norm", "input", x.shape(), {2, 4}, "[N, C] or [N, C, H, W]");
  const std::int64_t c = x.dim(1);
  if (c == 0) throw ShapeError("batch_norm: expected at least one channel, got input " + x.shape().to_string());
  const Shape stat = x.rank() == 2 ? Shape{1, c} : Shape{1, c, 1, 1};
  check_shape("batch_norm", "running_mean ([C])", running_mean.shape(), Shape{c});
  check_shape("batch_norm", "running_var ([C])", running_var.shape(), Shape{c});
  const std::int64_t count = x.numel() / c;
  if (o.training) {
    if (count < 2)
      throw ValueError("batch_norm: training needs more than one value per channel, got input " +
                       x.shape().to_string());
    return detail::batch_norm_training(x, gamma, beta, running_mean, running_var, o, stat);
  }
  Tensor<T> shift(stat), mul_by(stat);
  for (std::int64_t i = 0; i < c; ++i) {
    shift[i] = running_mean[i];
    mul_by[i] = T(1) / std::sqrt(running_var[i] + static_cast<T>(o.eps));
  }
  Var<T> normalized = mul(sub(x, Var<T>(shift)), Var<T>(mul_by));
  if (gamma.defined()) normalized = mul(normalized, reshape(gamma, stat));
  if (beta.defined()) normalized = add(normalized, reshape(beta, stat));
  return normalized;
}

/// Normalizes over the trailing `normalized_dims` dimensions: y = (x - mean) / sqrt(var + eps)
/// * gamma + beta, gamma and beta shaped like those dimensions (or undefined).
template <class T>
Var<T> layer_norm(const Var<T>& x, int normalized_dims, const Var<T>& gamma, const Var<T>& beta, double eps = 1e-5) {
  if (normalized_dims < 1 || normalized_dims > x.rank())
    throw ShapeError("layer_norm: cannot normalize the last " + std::to_string(normalized_dims) + " dimensions of " +
                     x.shape().to_string());
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

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::batch_norm, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::layer_norm, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::batch_norm, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::layer_norm, double)
#endif
