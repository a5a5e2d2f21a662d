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
#include "genmod/models/elbo.hpp"

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

/// m draws per row of the diagonal Normal q = N(mu, e^lv) (mu, lv [G, Z]) with their log-densities,
/// image-major: the importance samples of a VAE's posterior.
template <class T>
models::PosteriorRows<T> normal_rows(const Tensor<T>& mu, const Tensor<T>& lv, std::int64_t m, Generator& g) {
  const std::int64_t gi = mu.dim(0), zdim = mu.dim(1), rows = gi * m;
  const double log2pi = std::log(2.0 * std::numbers::pi);
  Tensor<T> eps = randn<T>(Shape{rows, zdim}, g);
  models::PosteriorRows<T> out{Tensor<T>(Shape{rows, zdim}), Tensor<T>(Shape{rows})};
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t img = r / m;
    double lq = 0;
    for (std::int64_t j = 0; j < zdim; ++j) {
      const double mean_j = static_cast<double>(mu(img, j)), logvar_j = static_cast<double>(lv(img, j));
      const double e = static_cast<double>(eps(r, j));
      out.z(r, j) = static_cast<T>(mean_j + std::exp(0.5 * logvar_j) * e);
      lq += -0.5 * (e * e + log2pi) - 0.5 * logvar_j;  // log N(z; mu, sigma^2) with z = mu + sigma e
    }
    out.log_q[r] = static_cast<T>(lq);
  }
  return out;
}

/// The importance-weighted bound for x [N, ...], given prepare(i0, gi) -> Q (the posterior of rows
/// i0..i0+gi, computed once per group of images), draw(Q, m) -> models::PosteriorRows (m samples per
/// image of the group, image-major, with log q), log_lik(z, xr, cr) -> log p(xr | z, cr) per row
/// ([rows]) and log_prior(z, cr) -> log p(z | cr) per row ([rows]). Row r of a pass holds image
/// r / m's sample r % m: xr (and cr, the rows of the per-image `condition` when it is defined)
/// repeat each image's row m times.
template <class T, class Prepare, class Draw, class LogLik, class LogPrior>
double iwae_core(const Tensor<T>& x, const Tensor<T>& condition, std::int64_t k, EvalOptions o, Prepare prepare,
                 Draw draw, LogLik log_lik, LogPrior log_prior) {
  check_positive("iwae_nll", "k (importance samples)", k);
  check_positive("iwae_nll", "chunk", o.chunk);
  NoGradGuard no_grad;
  const std::int64_t n = x.dim(0), d = x.numel() / std::max<std::int64_t>(n, 1);
  const std::int64_t dc = condition.defined() ? condition.dim(1) : 0;
  const std::int64_t per_pass = std::max<std::int64_t>(1, std::min(k, o.chunk));  // samples per image per pass
  const std::int64_t group = std::max<std::int64_t>(1, o.chunk / per_pass);       // images per pass
  double total = 0;
  for (std::int64_t i0 = 0; i0 < n; i0 += group) {
    const std::int64_t gi = std::min(group, n - i0);
    const Tensor<T> xg = x.rows(i0, gi);
    const auto q = prepare(i0, gi);
    std::vector<double> run_max(static_cast<std::size_t>(gi), -std::numeric_limits<double>::infinity());
    std::vector<double> run_sum(static_cast<std::size_t>(gi), 0.0);
    for (std::int64_t s = 0; s < k; s += per_pass) {
      const std::int64_t m = std::min(per_pass, k - s), rows = gi * m;
      const models::PosteriorRows<T> drawn = draw(q, m);
      check_shape("iwae_nll", "the posterior's log-densities", drawn.log_q.shape(), Shape{rows});
      check_dim("iwae_nll", "the posterior's samples", drawn.z.shape(), 0, rows, "one row per sample");
      Tensor<T> xr(xg.shape().with_dim(0, rows));
      Tensor<T> cr = condition.defined() ? Tensor<T>(Shape{rows, dc}) : Tensor<T>();
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t img = r / m;
        std::copy(xg.data() + img * d, xg.data() + (img + 1) * d, xr.data() + r * d);
        if (dc > 0)
          std::copy(condition.data() + (i0 + img) * dc, condition.data() + (i0 + img + 1) * dc, cr.data() + r * dc);
      }
      const Tensor<T> lpx = log_lik(drawn.z, xr, cr);
      const Tensor<T> lp_z = log_prior(drawn.z, cr);
      for (std::int64_t r = 0; r < rows; ++r) {
        const auto img = static_cast<std::size_t>(r / m);
        const double lw =
            -static_cast<double>(drawn.log_q[r]) + static_cast<double>(lp_z[r]) + static_cast<double>(lpx[r]);
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

/// The means over a data set of the negative ELBO and its two terms, in nats per image.
struct ElboMeans {
  double negative_elbo = 0;   ///< mean -ELBO (reconstruction + KL, beta not applied)
  double reconstruction = 0;  ///< mean -log p(x | z)
  double kl = 0;              ///< mean KL(q(z|x) || p(z)) (a one-sample estimate for a flow posterior)
};

/// The mean negative ELBO over the rows of x and its terms, one z sample per image, for a model
/// with elbo(x, g) -> models::ElboTerms (VAE, FlowVAE). Draws the noise negative_elbo draws, so its
/// negative_elbo is negative_elbo(model, x, g)'s.
template <class Model, class T>
requires requires(Model& m, const Var<T>& x, Generator& g) {
  m.elbo(x, g);
}
ElboMeans elbo_means(Model& model, const Tensor<T>& x, Generator& g, EvalOptions o = {}) {
  detail::check_batch("elbo_means", x);
  check_positive("elbo_means", "batch_size", o.batch_size);
  NoGradGuard no_grad;
  ElboMeans m;
  const std::int64_t n = x.dim(0);
  for (std::int64_t s = 0; s < n; s += o.batch_size) {
    const std::int64_t b = std::min(o.batch_size, n - s);
    const auto terms = model.elbo(Var<T>(x.rows(s, b)), g);
    const Tensor<T> nelbo = terms.negative_elbo().value(), rec = terms.reconstruction.value(), kl = terms.kl.value();
    for (std::int64_t i = 0; i < b; ++i) {
      m.negative_elbo += static_cast<double>(nelbo[i]);
      m.reconstruction += static_cast<double>(rec[i]);
      m.kl += static_cast<double>(kl[i]);
    }
  }
  m.negative_elbo /= static_cast<double>(n);
  m.reconstruction /= static_cast<double>(n);
  m.kl /= static_cast<double>(n);
  return m;
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
/// A model whose posterior is not a diagonal Normal (FlowVAE) provides posterior_rows(x, m, g)
/// (models::PosteriorRows: m samples per image with their log q); the others are sampled from the
/// Normal of their encode(x).
template <models::LatentVariableModel Model, class T>
double iwae_nll(Model& model, const Tensor<T>& x, std::int64_t k, Generator& g, EvalOptions o = {}) {
  detail::check_batch("iwae_nll", x);
  auto log_lik = [&](const Tensor<T>& z, const Tensor<T>& xr, const Tensor<T>&) {
    return model.likelihood.log_prob(model.decode(Var<T>(z)), Var<T>(xr)).value();
  };
  auto log_prior = [](const Tensor<T>& z, const Tensor<T>&) {
    return detail::log_density_rows(dist::Normal<T>::standard(z.shape()), z);
  };
  if constexpr (requires { model.posterior_rows(Var<T>(x), std::int64_t{1}, g); }) {
    return detail::iwae_core(
        x, Tensor<T>(), k, o,
        [&](std::int64_t i0, std::int64_t gi) {
          return std::pair{i0, gi};
        },
        [&](std::pair<std::int64_t, std::int64_t> rows, std::int64_t m) {
          return model.posterior_rows(Var<T>(x.rows(rows.first, rows.second)), m, g);
        },
        log_lik, log_prior);
  } else {
    return detail::iwae_core(
        x, Tensor<T>(), k, o,
        [&](std::int64_t i0, std::int64_t gi) {
          auto [mu, lv] = model.encode(Var<T>(x.rows(i0, gi)));
          return std::pair{mu.value(), lv.value()};
        },
        [&](const std::pair<Tensor<T>, Tensor<T>>& q, std::int64_t m) {
          return detail::normal_rows(q.first, q.second, m, g);
        },
        log_lik, log_prior);
  }
}

/// The importance-weighted bound on -log p(x | c) of a conditional model, conditions c [N, C].
template <models::ConditionalLatentVariableModel Model, class T>
double iwae_nll(Model& model, const Tensor<T>& x, const Tensor<T>& c, std::int64_t k, Generator& g,
                EvalOptions o = {}) {
  detail::check_batch("iwae_nll", x);
  detail::check_condition("iwae_nll", x, c);
  return detail::iwae_core(
      x, c, k, o,
      [&](std::int64_t i0, std::int64_t gi) {
        auto [mu, lv] = model.encode(Var<T>(x.rows(i0, gi)), Var<T>(c.rows(i0, gi)));
        return std::pair{mu.value(), lv.value()};
      },
      [&](const std::pair<Tensor<T>, Tensor<T>>& q, std::int64_t m) {
        return detail::normal_rows(q.first, q.second, m, g);
      },
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
