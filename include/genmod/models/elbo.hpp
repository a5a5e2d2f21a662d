#pragma once
/// \file elbo.hpp
/// The ELBO core shared by every variational model (VAE, ConditionalVAE, and a VAE whose posterior
/// is a flow): one place that turns a posterior, a likelihood, the decoder's output for one
/// reparameterized z and the data into the two terms of the bound,
///
///   reconstruction_i = -log p(x_i | z_i)                         (nats, summed over x_i's dimensions)
///   kl_i             = KL(q(z | x_i) || p(z))                    (closed form, or a one-sample estimate)
///   -ELBO_i          = reconstruction_i + kl_i                   >= -log p(x_i)
///   loss             = mean_i reconstruction_i + beta * mean_i kl_i
///
/// The KL term comes from the posterior: a `dist::Normal` gives the closed form against N(0, I)
/// (-1/2 sum(1 + logvar - mu^2 - e^logvar)), or against a diagonal Normal prior given beside it
/// (a learned p(z) or p(z | c): 1/2 sum(log v - log s^2 + (s^2 + (mu - m)^2) / v - 1)); any other
/// posterior type provides
/// `kl_per_sample() -> Var<T> [N]` (a flow posterior returns its Monte Carlo estimate
/// log q0(z0|x) - sum log|det| - log p(zK) for the z it sampled).

#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/dist/concepts.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/losses/kl.hpp"
#include "genmod/losses/reconstruction.hpp"

namespace genmod::models {

/// The loss of a batch and its two terms, each a mean over the batch (see elbo.hpp).
template <class T = float>
struct VAELoss {
  Var<T> loss;            ///< reconstruction + beta * kl, mean over the batch
  Var<T> reconstruction;  ///< -log p(x | z), mean over the batch
  Var<T> kl;              ///< KL(q(z|x) || p(z)), mean over the batch
  /// The loss itself, so `Var loss = vae.loss(x)` reads as it should.
  operator Var<T>() const { return loss; }  // NOLINT: implicit on purpose
};

/// The per-sample terms of the bound; means and the weighted loss on request, so a training step
/// records only the ops it uses.
template <class T = float>
struct ElboTerms {
  Var<T> reconstruction;  ///< -log p(x_i | z_i), [N]
  Var<T> kl;              ///< KL(q(z|x_i) || p(z)), [N]
  double beta = 1.0;      ///< weight of the KL term in loss()

  /// -ELBO per sample, [N] (beta is not applied: this is the bound).
  Var<T> negative_elbo() const { return add(reconstruction, kl); }

  /// mean reconstruction + beta * mean kl, with both means.
  VAELoss<T> loss() const {
    Var<T> rec_mean = mean(reconstruction), kl_mean = mean(kl);
    Var<T> total = beta == 1.0 ? add(rec_mean, kl_mean) : add(rec_mean, scale(kl_mean, static_cast<T>(beta)));
    return {total, rec_mean, kl_mean};
  }
};

/// Importance samples of a posterior for m draws per image, rows image-major (row r belongs to
/// image r / m), with their log-densities: what eval::iwae_nll needs of a posterior that is not a
/// diagonal Normal (FlowVAE::posterior_rows).
template <class T = float>
struct PosteriorRows {
  Tensor<T> z;      ///< [N m, Z]
  Tensor<T> log_q;  ///< log q(z_r | x_(r / m)), [N m]
};

namespace detail {

/// KL(q || N(0, I)) per sample for a diagonal Normal posterior: the closed form.
template <class T>
Var<T> kl_per_sample(const dist::Normal<T>& q) {
  return losses::sum_per_sample(q.kl_standard());
}

/// KL(q || p) per sample between two diagonal Normals (p a prior other than N(0, I)): the closed form.
template <class T>
Var<T> kl_per_sample(const dist::Normal<T>& q, const dist::Normal<T>& p) {
  return losses::sum_per_sample(kl(q, p));
}

/// Any other posterior provides its own per-sample KL (or its one-sample estimate).
template <class Q>
requires requires(const Q& q) {
  q.kl_per_sample();
}
auto kl_per_sample(const Q& q) {
  return q.kl_per_sample();
}

}  // namespace detail

/// The ELBO's terms for data x [N, ...] and the likelihood parameters `decoded` that the decoder
/// produced from a reparameterized sample of `posterior` (see the file comment).
template <class T, class Posterior, class Lik>
ElboTerms<T> elbo_terms(const Posterior& posterior, const Lik& likelihood, const Var<T>& decoded, const Var<T>& x,
                        double beta = 1.0) {
  static_assert(dist::Likelihood<Lik, T>,
                "elbo_terms: the likelihood must satisfy dist::Likelihood<L, T> (log_prob(params, x) -> Var<T> "
                "[N], mean(params) -> Var<T>, sample(params, g) -> Tensor<T>)");
  check_non_negative("elbo_terms", "beta", beta);
  return {neg(likelihood.log_prob(decoded, x)), detail::kl_per_sample(posterior), beta};
}

/// As elbo_terms(posterior, likelihood, decoded, x, beta), with the KL taken against the diagonal
/// Normal `prior` (same shape as the posterior's parameters) instead of N(0, I).
template <class T, class Lik>
ElboTerms<T> elbo_terms(const dist::Normal<T>& posterior, const dist::Normal<T>& prior, const Lik& likelihood,
                        const Var<T>& decoded, const Var<T>& x, double beta = 1.0) {
  static_assert(dist::Likelihood<Lik, T>,
                "elbo_terms: the likelihood must satisfy dist::Likelihood<L, T> (log_prob(params, x) -> Var<T> "
                "[N], mean(params) -> Var<T>, sample(params, g) -> Tensor<T>)");
  check_non_negative("elbo_terms", "beta", beta);
  check_same_shape("elbo_terms", "posterior mean", posterior.mean().shape(), "prior mean", prior.mean().shape());
  return {neg(likelihood.log_prob(decoded, x)), detail::kl_per_sample(posterior, prior), beta};
}

}  // namespace genmod::models
