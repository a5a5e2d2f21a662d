#pragma once
/// \file elbo.hpp
/// Likelihood bounds for VAEs, in nats per sample.
///
/// negative_elbo: -ELBO = -log p(x|z) + KL(q(z|x) || p(z)) with one z sample per image.
/// iwae_nll: -log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z|x): a bound on -log p(x) that
///   tightens as k grows (Burda et al.); k = 1 is the negative ELBO in expectation. Computed in
///   chunks of samples with a running log-sum-exp, so k = 5000 needs no more memory than a chunk.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/random.hpp"

namespace genmod::eval {

struct EvalOptions {
  std::int64_t batch_size = 500;  ///< images per forward pass (ELBO); images per group (IWAE)
  std::int64_t chunk = 1000;      ///< importance samples per forward pass (IWAE)
};

/// Mean negative ELBO over the rows of x (any model with negative_elbo(x, g) -> [N]).
template <class Model, class T>
double negative_elbo(Model& model, const Tensor<T>& x, Generator& g, EvalOptions o = {}) {
  NoGradGuard no_grad;
  double total = 0;
  const std::int64_t n = x.dim(0);
  for (std::int64_t s = 0; s < n; s += o.batch_size) {
    const std::int64_t b = std::min(o.batch_size, n - s);
    const Tensor<T> per = model.negative_elbo(Var<T>(x.rows(s, b)), g).value();
    for (std::int64_t i = 0; i < b; ++i) total += static_cast<double>(per[i]);
  }
  return total / static_cast<double>(n);
}

/// Mean importance-weighted bound on -log p(x) with k samples per image, for a VAE (encode,
/// decode, likelihood, latent_dim). Returns nats per image. Each forward pass decodes about
/// `chunk` codes: several images' samples together when k is small, part of one image's when large.
template <class Model, class T>
double iwae_nll(Model& model, const Tensor<T>& x, std::int64_t k, Generator& g, EvalOptions o = {}) {
  if (k < 1) throw ValueError("iwae_nll: expected k >= 1 samples, got " + std::to_string(k));
  NoGradGuard no_grad;
  const std::int64_t n = x.dim(0), d = x.numel() / std::max<std::int64_t>(n, 1);
  const double log2pi = std::log(2.0 * std::numbers::pi);
  const std::int64_t per_pass = std::max<std::int64_t>(1, std::min(k, o.chunk));        // samples per image per pass
  const std::int64_t group = std::max<std::int64_t>(1, o.chunk / per_pass);              // images per pass
  double total = 0;
  for (std::int64_t i0 = 0; i0 < n; i0 += group) {
    const std::int64_t gi = std::min(group, n - i0);
    const Tensor<T> xg = x.rows(i0, gi);
    auto [mu_v, lv_v] = model.encode(Var<T>(xg));
    const Tensor<T> mu = mu_v.value(), lv = lv_v.value();
    const std::int64_t zdim = mu.dim(1);
    std::vector<double> run_max(static_cast<std::size_t>(gi), -std::numeric_limits<double>::infinity());
    std::vector<double> run_sum(static_cast<std::size_t>(gi), 0.0);
    for (std::int64_t s = 0; s < k; s += per_pass) {
      const std::int64_t m = std::min(per_pass, k - s), rows = gi * m;
      Tensor<T> eps = randn<T>(Shape{rows, zdim}, g);
      Tensor<T> z(Shape{rows, zdim});
      Tensor<T> xr(xg.shape().with_dim(0, rows));
      std::vector<double> log_w(static_cast<std::size_t>(rows), 0.0);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t img = r / m;
        double lp_z = 0, lq = 0;
        for (std::int64_t j = 0; j < zdim; ++j) {
          const double mean_j = static_cast<double>(mu(img, j)), logvar_j = static_cast<double>(lv(img, j));
          const double e = static_cast<double>(eps(r, j));
          const double zz = mean_j + std::exp(0.5 * logvar_j) * e;
          z(r, j) = static_cast<T>(zz);
          lp_z += -0.5 * (zz * zz + log2pi);
          lq += -0.5 * (e * e + log2pi) - 0.5 * logvar_j;  // log N(z; mu, sigma^2) with z = mu + sigma e
        }
        log_w[static_cast<std::size_t>(r)] = lp_z - lq;
        std::copy(xg.data() + img * d, xg.data() + (img + 1) * d, xr.data() + r * d);
      }
      const Tensor<T> lpx = model.likelihood.log_prob(model.decode(Var<T>(z)), Var<T>(xr)).value();
      for (std::int64_t r = 0; r < rows; ++r) {
        const auto img = static_cast<std::size_t>(r / m);
        const double lw = log_w[static_cast<std::size_t>(r)] + static_cast<double>(lpx[r]);
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

}  // namespace genmod::eval
