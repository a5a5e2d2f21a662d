#pragma once
/// \file elbo.hpp
/// Likelihood bounds for VAEs, in nats per sample, for unconditional and conditional models.
///
/// negative_elbo: -ELBO = -log p(x|z) + KL(q(z|x) || p(z)) with one z sample per image.
/// iwae_nll: -log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z|x): a bound on -log p(x) that
///   tightens as k grows (Burda et al.); k = 1 is the negative ELBO in expectation. Computed in
///   chunks of samples with a running log-sum-exp, so k = 5000 needs no more memory than a chunk.
/// The conditional overloads take the condition c [N, C] beside x and bound -log p(x | c), with
/// the model's own prior p(z | c) when it has one (`prior(c)` returning a diagonal Normal), N(0, I)
/// otherwise.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/models/concepts.hpp"

namespace genmod::eval {

/// Batch sizes of the evaluations.
struct EvalOptions {
  std::int64_t batch_size = 500;  ///< images per forward pass (ELBO); images per group (IWAE)
  std::int64_t chunk = 1000;      ///< importance samples per forward pass (IWAE)
};

namespace detail {

template <class T>
void check_batch(const char* op, const Tensor<T>& x) {
  check_min_rank(op, "x", x.shape(), 1, "[N, ...]");
  check_dim_at_least(op, "x", x.shape(), 0, 1, "samples");
}

template <class T>
void check_condition(const char* op, const Tensor<T>& x, const Tensor<T>& c) {
  check_rank(op, "condition", c.shape(), 2, "[N, C]");
  check_dim(op, "condition", c.shape(), 0, x.dim(0), "one row per sample");
}

/// Mean over rows of x of per_sample(s, b) ([b] values for rows s..s+b), batch by batch.
template <class T, class PerSample>
double mean_over_batches(const Tensor<T>& x, std::int64_t batch_size, PerSample per_sample) {
  check_positive("negative_elbo", "batch_size", batch_size);
  NoGradGuard no_grad;
  double total = 0;
  const std::int64_t n = x.dim(0);
  for (std::int64_t s = 0; s < n; s += batch_size) {
    const std::int64_t b = std::min(batch_size, n - s);
    const Tensor<T> per = per_sample(s, b);
    for (std::int64_t i = 0; i < b; ++i) total += static_cast<double>(per[i]);
  }
  return total / static_cast<double>(n);
}

/// log p(z_r) of each row r of z [rows, Z] under the diagonal Normal p (parameters [rows, Z]),
/// summed over the latent dimensions: [rows].
template <class T>
Tensor<T> log_density_rows(const dist::Normal<T>& p, const Tensor<T>& z) {
  return losses::sum_per_sample(p.log_prob(Var<T>(z))).value();
}

/// The importance-weighted bound for x [N, ...], given encode(i0, gi) -> (mu, logvar) of rows
/// i0..i0+gi, log_lik(z, xr, cr) -> log p(xr | z, cr) per row ([rows]) and log_prior(z, cr) ->
/// log p(z | cr) per row ([rows]). Row r of a pass holds image r / m's sample r % m:
/// xr (and cr, the rows of the per-image `condition` when it is defined) repeat each image's row
/// m times.
template <class T, class Encode, class LogLik, class LogPrior>
double iwae_core(const Tensor<T>& x, const Tensor<T>& condition, std::int64_t k, Generator& g, EvalOptions o,
                 Encode encode, LogLik log_lik, LogPrior log_prior) {
  check_positive("iwae_nll", "k (importance samples)", k);
  check_positive("iwae_nll", "chunk", o.chunk);
  NoGradGuard no_grad;
  const std::int64_t n = x.dim(0), d = x.numel() / std::max<std::int64_t>(n, 1);
  const std::int64_t dc = condition.defined() ? condition.dim(1) : 0;
  const double log2pi = std::log(2.0 * std::numbers::pi);
  const std::int64_t per_pass = std::max<std::int64_t>(1, std::min(k, o.chunk));  // samples per image per pass
  const std::int64_t group = std::max<std::int64_t>(1, o.chunk / per_pass);       // images per pass
  double total = 0;
  for (std::int64_t i0 = 0; i0 < n; i0 += group) {
    const std::int64_t gi = std::min(group, n - i0);
    const Tensor<T> xg = x.rows(i0, gi);
    auto [mu_v, lv_v] = encode(i0, gi);
    const Tensor<T> mu = mu_v.value(), lv = lv_v.value();
    const std::int64_t zdim = mu.dim(1);
    std::vector<double> run_max(static_cast<std::size_t>(gi), -std::numeric_limits<double>::infinity());
    std::vector<double> run_sum(static_cast<std::size_t>(gi), 0.0);
    for (std::int64_t s = 0; s < k; s += per_pass) {
      const std::int64_t m = std::min(per_pass, k - s), rows = gi * m;
      Tensor<T> eps = randn<T>(Shape{rows, zdim}, g);
      Tensor<T> z(Shape{rows, zdim});
      Tensor<T> xr(xg.shape().with_dim(0, rows));
      Tensor<T> cr = condition.defined() ? Tensor<T>(Shape{rows, dc}) : Tensor<T>();
      std::vector<double> log_w(static_cast<std::size_t>(rows), 0.0);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t img = r / m;
        double lq = 0;
        for (std::int64_t j = 0; j < zdim; ++j) {
          const double mean_j = static_cast<double>(mu(img, j)), logvar_j = static_cast<double>(lv(img, j));
          const double e = static_cast<double>(eps(r, j));
          z(r, j) = static_cast<T>(mean_j + std::exp(0.5 * logvar_j) * e);
          lq += -0.5 * (e * e + log2pi) - 0.5 * logvar_j;  // log N(z; mu, sigma^2) with z = mu + sigma e
        }
        log_w[static_cast<std::size_t>(r)] = -lq;
        std::copy(xg.data() + img * d, xg.data() + (img + 1) * d, xr.data() + r * d);
        if (dc > 0)
          std::copy(condition.data() + (i0 + img) * dc, condition.data() + (i0 + img + 1) * dc, cr.data() + r * dc);
      }
      const Tensor<T> lpx = log_lik(z, xr, cr);
      const Tensor<T> lp_z = log_prior(z, cr);
      for (std::int64_t r = 0; r < rows; ++r) {
        const auto img = static_cast<std::size_t>(r / m);
        const double lw =
            log_w[static_cast<std::size_t>(r)] + static_cast<double>(lp_z[r]) + static_cast<double>(lpx[r]);
        if (lw > run_max[img]) {
          run_sum[img] = run_sum[img] * std::exp(run_max[img] - lw) + 1.0;
          run_max[img] = lw;
        } else {
          run_sum[img] += std::exp(lw - run_max[img]);
        }
      }
    }
    for (std::int64_t i = 0; i < gi; ++i)
      total += -(run_max[static_cast<std::size_t>(i)] + std::log(run_sum[static_cast<std::size_t>(i)]) -
                 std::log(static_cast<double>(k)));
  }
  return total / static_cast<double>(n);
}

}  // namespace detail

/// Mean negative ELBO over the rows of x, one z sample per image, in nats.
template <models::BoundedDensityModel Model, class T>
double negative_elbo(Model& model, const Tensor<T>& x, Generator& g, EvalOptions o = {}) {
  detail::check_batch("negative_elbo", x);
  return detail::mean_over_batches(x, o.batch_size, [&](std::int64_t s, std::int64_t b) {
    return model.negative_elbo(Var<T>(x.rows(s, b)), g).value();
  });
}

/// Mean negative ELBO of a conditional model over the rows of x given their conditions c [N, C].
template <models::ConditionalBoundedDensityModel Model, class T>
double negative_elbo(Model& model, const Tensor<T>& x, const Tensor<T>& c, Generator& g, EvalOptions o = {}) {
  detail::check_batch("negative_elbo", x);
  detail::check_condition("negative_elbo", x, c);
  return detail::mean_over_batches(x, o.batch_size, [&](std::int64_t s, std::int64_t b) {
    return model.negative_elbo(Var<T>(x.rows(s, b)), Var<T>(c.rows(s, b)), g).value();
  });
}

/// Mean importance-weighted bound on -log p(x) with k samples per image, in nats per image.
/// Each forward pass decodes about `chunk` codes: several images' samples together when k is
/// small, part of one image's when large.
template <models::LatentVariableModel Model, class T>
double iwae_nll(Model& model, const Tensor<T>& x, std::int64_t k, Generator& g, EvalOptions o = {}) {
  detail::check_batch("iwae_nll", x);
  return detail::iwae_core(
      x, Tensor<T>(), k, g, o, [&](std::int64_t i0, std::int64_t gi) { return model.encode(Var<T>(x.rows(i0, gi))); },
      [&](const Tensor<T>& z, const Tensor<T>& xr, const Tensor<T>&) {
        return model.likelihood.log_prob(model.decode(Var<T>(z)), Var<T>(xr)).value();
      },
      [](const Tensor<T>& z, const Tensor<T>&) {
        return detail::log_density_rows(dist::Normal<T>::standard(z.shape()), z);
      });
}

/// The importance-weighted bound on -log p(x | c) of a conditional model, conditions c [N, C].
template <models::ConditionalLatentVariableModel Model, class T>
double iwae_nll(Model& model, const Tensor<T>& x, const Tensor<T>& c, std::int64_t k, Generator& g,
                EvalOptions o = {}) {
  detail::check_batch("iwae_nll", x);
  detail::check_condition("iwae_nll", x, c);
  return detail::iwae_core(
      x, c, k, g, o,
      [&](std::int64_t i0, std::int64_t gi) { return model.encode(Var<T>(x.rows(i0, gi)), Var<T>(c.rows(i0, gi))); },
      [&](const Tensor<T>& z, const Tensor<T>& xr, const Tensor<T>& cr) {
        return model.likelihood.log_prob(reshape(model.decode(Var<T>(z), Var<T>(cr)), xr.shape()), Var<T>(xr)).value();
      },
      [&](const Tensor<T>& z, const Tensor<T>& cr) {
        // A model with a prior p(z | c) of its own (ConditionalVAE's learned one) gives it; N(0, I) otherwise.
        if constexpr (requires { model.prior(Var<T>(cr)); })
          return detail::log_density_rows(model.prior(Var<T>(cr)), z);
        else
          return detail::log_density_rows(dist::Normal<T>::standard(z.shape()), z);
      });
}

}  // namespace genmod::eval
