#pragma once
/// \file sparsity.hpp
/// Sparsity penalties on the hidden activations of sparse autoencoders, and plain statistics to
/// watch how sparse the code is. The penalties return the unweighted term: the caller multiplies
/// by its weight (lambda or beta) and adds it to the reconstruction loss. Both are compositions of
/// differentiable ops, so they support double backward.

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::losses {

namespace detail {

/// Margin keeping the batch mean activation inside (0, 1) in kl_sparsity_penalty: large enough
/// that 1 - eps is not 1 in T, small enough never to bite for a unit that is alive.
template <class T>
constexpr T sparsity_eps() {
  return std::is_same_v<T, float> ? T(1e-6) : T(1e-12);
}

}  // namespace detail

/// L1 penalty on activations a of shape [N, ...]: (1/N) sum_i sum_k |a[i, k]|, i.e. the sum of
/// |a| over every non-batch dimension, averaged over the batch (a scalar). Multiply by lambda.
/// d/da = sign(a) / N, with the subgradient 0 at a = 0 (as genmod::abs); the second derivative
/// is 0 almost everywhere.
template <class T>
Var<T> l1_activation_penalty(const Var<T>& a) {
  check_dim_at_least("l1_activation_penalty", "activations [N, ...]", a.shape(), 0, 1, "N");
  return scale(sum(abs(a)), T(1) / static_cast<T>(a.dim(0)));
}

/// KL sparsity penalty of Ng's sparse autoencoder for sigmoid activations a of shape [N, H]:
///   rho_hat_j = (1/N) sum_i a[i, j]                      (mean activation of unit j)
///   sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j))
///       = sum_j rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)),
/// a scalar >= 0 that is 0 exactly when every rho_hat_j = rho. Multiply by beta.
/// d/drho_hat_j = -rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j), and d/da[i, j] is that over N.
/// rho must lie in (0, 1) (ValueError otherwise). The values of a are not checked; instead
/// rho_hat is clamped to [eps, 1 - eps] (eps = 1e-6 in float, 1e-12 in double) so that the
/// penalty stays finite for a dead or saturated unit. Where the clamp bites (rho_hat_j <= eps or
/// >= 1 - eps) unit j gets a zero gradient.
template <class T>
Var<T> kl_sparsity_penalty(const Var<T>& a, double rho) {
  check_in_range("kl_sparsity_penalty", "the target activation rho", rho, 0.0, 1.0, Bounds::open);
  check_rank("kl_sparsity_penalty", "activations", a.shape(), 2, "[N, H]");
  check_dim_at_least("kl_sparsity_penalty", "activations", a.shape(), 0, 1, "N");
  constexpr T eps = detail::sparsity_eps<T>();
  const Var<T> rho_hat = clamp(mean(a, 0), eps, T(1) - eps);  // [H]
  // KL_j = c - rho log rho_hat_j - (1 - rho) log(1 - rho_hat_j),  c = rho log rho + (1 - rho) log(1 - rho).
  const double c = rho * std::log(rho) + (1.0 - rho) * std::log1p(-rho);
  const Var<T> kl = add_scalar(add(scale(log(rho_hat), T(-rho)), scale(log1p(neg(rho_hat)), T(-(1.0 - rho)))), T(c));
  return sum(kl);
}

/// Summary of how sparse a batch of activations is (see sparsity_stats).
struct SparsityStats {
  double mean_activation;     ///< mean of every entry of a
  double near_zero_fraction;  ///< fraction of entries with |a| < threshold
};

/// Mean activation and fraction of near-zero entries (|a| < threshold) over every entry of a
/// (any shape, at least one element), in double. A value only: no autodiff.
template <class T>
SparsityStats sparsity_stats(const Tensor<T>& a, double threshold = 1e-2) {
  check_non_negative("sparsity_stats", "threshold", threshold);
  if (a.numel() == 0)
    throw ShapeError("sparsity_stats: expected at least one activation, got shape " + a.shape().to_string());
  double total = 0;
  std::int64_t near_zero = 0;
  for (const T& v : a) {
    const double x = static_cast<double>(v);
    total += x;
    near_zero += std::abs(x) < threshold ? 1 : 0;
  }
  const auto n = static_cast<double>(a.numel());
  return {total / n, static_cast<double>(near_zero) / n};
}

}  // namespace genmod::losses
