#pragma once
/// \file density.hpp
/// Exact log-likelihoods of a data set for models with log_prob (flows, autoregressive models),
/// batch by batch without a tape:
///   log_probs(model, x)              log p(x_i) per row [N], nats (anomaly scores: -log p)
///   mean_negative_log_prob(model, x) (1/N) sum_i -log p(x_i), nats per sample
///   bits_per_dim(model, x)           mean_negative_log_prob / (D ln 2), D = elements per sample

#include <algorithm>
#include <cstdint>
#include <numbers>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/models/concepts.hpp"

namespace genmod::eval {

/// log p(x_i) for every row of x [N, ...], in nats, computed `batch_size` rows at a time.
template <models::DensityModel Model, class T>
Tensor<T> log_probs(Model& model, const Tensor<T>& x, std::int64_t batch_size = 500) {
  check_min_rank("eval::log_probs", "x", x.shape(), 1, "[N, ...]");
  check_dim_at_least("eval::log_probs", "x", x.shape(), 0, 1, "samples");
  check_positive("eval::log_probs", "batch_size", batch_size);
  NoGradGuard no_grad;
  const std::int64_t n = x.dim(0);
  Tensor<T> out(Shape{n});
  for (std::int64_t s = 0; s < n; s += batch_size) {
    const std::int64_t b = std::min(batch_size, n - s);
    const Tensor<T> lp = model.log_prob(Var<T>(x.rows(s, b))).value();
    std::copy(lp.begin(), lp.end(), out.data() + s);
  }
  return out;
}

/// The mean of -log p(x_i) over the rows of x, in nats per sample.
template <models::DensityModel Model, class T>
double mean_negative_log_prob(Model& model, const Tensor<T>& x, std::int64_t batch_size = 500) {
  const Tensor<T> lp = log_probs(model, x, batch_size);
  double total = 0;
  for (const T v : lp) total -= static_cast<double>(v);
  return total / static_cast<double>(lp.numel());
}

/// The mean of -log2 p(x_i) / D over the rows of x (D the elements of one row): bits per dimension.
template <models::DensityModel Model, class T>
double bits_per_dim(Model& model, const Tensor<T>& x, std::int64_t batch_size = 500) {
  const double nats = mean_negative_log_prob(model, x, batch_size);  // checks x first
  return nats / (static_cast<double>(x.numel() / x.dim(0)) * std::numbers::ln2);
}

}  // namespace genmod::eval
