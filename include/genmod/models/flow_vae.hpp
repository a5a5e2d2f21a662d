#pragma once
/// \file flow_vae.hpp
/// FlowVAE<Encoder, Decoder, Likelihood, Flow>: a VAE whose approximate posterior is a normalizing
/// flow (Rezende & Mohamed 2015; Kingma et al. 2016), so that q(z | x) is not restricted to a
/// diagonal Gaussian.
///
/// The encoder maps x to [N, 2Z + H]: the mean and log-variance of q_0(z | x) = N(mu, sigma^2)
/// (Z columns each), then a context h (H columns; H = flow.context_dim(), 0 for global flows).
///   z_0 = mu + sigma eps,  eps ~ N(0, I)
///   z_K = f_K(... f_1(z_0; h) ...; h)                 the posterior flow (flows::PosteriorFlowType)
///   log q_K(z_K | x) = log q_0(z_0 | x) - sum_k log |det dz_k / dz_(k-1)|
///   -ELBO(x) = -log p(x | z_K) + [log q_K(z_K | x) - log p(z_K)],  p(z) = N(0, I)
/// The bracket is the one-sample Monte Carlo estimate of KL(q_K || p) (no closed form once q is a
/// flow); its expectation is the KL, so the bound and its gradients are unbiased. The terms go
/// through the ELBO core (models/elbo.hpp) that VAE and ConditionalVAE use; beta weighs the KL as
/// in VAE. With an empty flow it is a VAE whose KL is estimated instead of computed in closed form.

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/dist/concepts.hpp"
#include "genmod/dist/likelihood.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/posterior_flow.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/models/elbo.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::models {

/// One reparameterized draw from a flow posterior, with what the ELBO needs of it.
template <class T = float>
struct FlowPosteriorSample {
  Var<T> z0;      ///< the base sample, [N, Z]
  Var<T> z;       ///< z_K, the flow's output, [N, Z]
  Var<T> log_q;   ///< log q_K(z_K | x) = log q_0(z_0 | x) - logdet, [N]
  Var<T> log_pz;  ///< log p(z_K) under N(0, I), [N]

  /// The one-sample estimate of KL(q_K || p): log q_K(z_K | x) - log p(z_K), [N] (the ELBO core's hook).
  Var<T> kl_per_sample() const { return sub(log_q, log_pz); }
};

namespace detail {

/// Each row of t [N, D] repeated m times in place: [N m, D], by broadcasting [N, 1, D] to [N, m, D].
template <class T>
Var<T> repeat_rows(const Var<T>& t, std::int64_t m) {
  const std::int64_t n = t.dim(0), d = t.dim(1);
  return reshape(broadcast_to(reshape(t, Shape{n, 1, d}), Shape{n, m, d}), Shape{n * m, d});
}

}  // namespace detail

/// The flow posterior q_K(z | x) of a batch: the base Normal, the context and the flow (a view of
/// the model's; valid while the model is).
template <class T, class Flow>
class FlowPosterior {
 public:
  /// q_0 = base, the flow's context h (undefined when the flow reads none), the flow.
  FlowPosterior(dist::Normal<T> base, Var<T> context, Flow& flow)
      : base_(std::move(base)), context_(std::move(context)), flow_(&flow) {}

  /// q_0(z | x).
  const dist::Normal<T>& base() const noexcept { return base_; }
  /// The context h [N, H] (undefined when H = 0).
  const Var<T>& context() const noexcept { return context_; }

  /// One reparameterized draw z_K per row, with log q_K(z_K | x) and log p(z_K), noise from g.
  FlowPosteriorSample<T> rsample(Generator& g) const {
    const Var<T> z0 = base_.rsample(g);
    const Var<T> log_q0 = losses::sum_per_sample(base_.log_prob(z0));
    flows::FlowResult<T> r = flow_->forward(z0, context_);
    return {z0, r.y, sub(log_q0, r.logdet), flows::StandardNormal<T>{}.log_prob(r.y)};
  }

  /// z_K of the base mean (the posterior's "mean code" pushed through the flow).
  Var<T> mean_code() const { return flow_->forward(base_.mean(), context_).y; }

  /// m draws per row without a tape, image-major, with log q_K (importance sampling: eval::iwae_nll).
  PosteriorRows<T> sample_rows(std::int64_t m, Generator& g) const {
    check_positive("FlowPosterior::sample_rows", "m", m);
    NoGradGuard no_grad;
    const dist::Normal<T> q0{detail::repeat_rows(base_.mean(), m), detail::repeat_rows(base_.logvar(), m)};
    const Var<T> z0 = q0.rsample(g);
    const Var<T> h = context_.defined() ? detail::repeat_rows(context_, m) : Var<T>();
    flows::FlowResult<T> r = flow_->forward(z0, h);
    return {r.y.value(), sub(losses::sum_per_sample(q0.log_prob(z0)), r.logdet).value()};
  }

 private:
  dist::Normal<T> base_;
  Var<T> context_;
  Flow* flow_;
};

/// A VAE with a flow posterior (see the file comment): encoder, decoder (layers), likelihood
/// (dist::Likelihood) and posterior flow (flows::PosteriorFlowType, by default a flows::PosteriorFlow
/// chain of any steps).
template <class Encoder, class Decoder, class Likelihood = dist::Bernoulli,
          class Flow = flows::PosteriorFlow<typename Encoder::value_type>>
class FlowVAE : public nn::Module<typename Encoder::value_type> {
 public:
  /// The scalar type.
  using T = typename Encoder::value_type;
  static_assert(nn::LayerType<Encoder> && nn::LayerType<Decoder>,
                "FlowVAE: the encoder and the decoder must be nn::Layer types (Var<T> forward(const Var<T>&))");
  static_assert(std::is_same_v<T, typename Decoder::value_type>,
                "FlowVAE: encoder and decoder must share a value type");
  static_assert(dist::Likelihood<Likelihood, T>,
                "FlowVAE: the likelihood must satisfy dist::Likelihood<L, T>: log_prob(params, x) -> Var<T> [N], "
                "mean(params) -> Var<T>, sample(params, g) -> Tensor<T>");
  static_assert(flows::PosteriorFlowType<Flow>,
                "FlowVAE: the posterior flow must satisfy flows::PosteriorFlowType (forward(z, h) -> FlowResult<T>, "
                "dim(), context_dim())");

  /// From its parts; the latent size is the flow's dim(). ValueError for a negative beta, or when
  /// options.latent_dim is set and differs from the flow's.
  FlowVAE(Encoder enc, Decoder dec, Flow posterior_flow, Likelihood lik = {}, VAEOptions options = {})
      : encoder(std::move(enc)),
        decoder(std::move(dec)),
        flow(std::move(posterior_flow)),
        likelihood(lik),
        rng(options.seed, 0x666c6f77ULL),
        options_(options) {
    check_non_negative("FlowVAE", "beta", options.beta);
    latent_ = flow.dim();
    if (options.latent_dim > 0)
      check_arg(options.latent_dim == latent_, "FlowVAE", "VAEOptions::latent_dim",
                std::to_string(latent_) + " (the posterior flow's code size)", std::to_string(options.latent_dim));
  }

  /// q_K(z | x): the base Normal and the context from the encoder, and the flow.
  FlowPosterior<T, Flow> posterior(const Var<T>& x) {
    const Var<T> e = encoder(x);
    const std::int64_t z = latent_, h = flow.context_dim();
    if (e.rank() != 2 || e.dim(1) != 2 * z + h)
      throw ShapeError("FlowVAE: expected the encoder's output [N, " + std::to_string(2 * z + h) + "] (mean and " +
                       "log-variance of " + std::to_string(z) + " latent dimensions, then a context of " +
                       std::to_string(h) + "), got " + e.shape().to_string());
    return {dist::Normal<T>(slice(e, 1, 0, z), slice(e, 1, z, z)), h > 0 ? slice(e, 1, 2 * z, h) : Var<T>(), flow};
  }

  /// (mu, logvar) of the base posterior q_0(z | x).
  std::pair<Var<T>, Var<T>> encode(const Var<T>& x) {
    auto q = posterior(x);
    return {q.base().mean(), q.base().logvar()};
  }

  /// The likelihood's parameters for codes z [N, Z].
  Var<T> decode(const Var<T>& z) { return decoder(z); }

  /// The ELBO's per-sample terms for one draw z_K per image, noise from `g`.
  ElboTerms<T> elbo(const Var<T>& x, Generator& g) {
    const FlowPosteriorSample<T> s = posterior(x).rsample(g);
    return elbo_terms(s, likelihood, decode(s.z), x, options_.beta);
  }

  /// Negative ELBO of the batch and its terms, with noise from `g`.
  VAELoss<T> loss(const Var<T>& x, Generator& g) { return elbo(x, g).loss(); }
  /// As loss(x, g), with the model's own generator.
  VAELoss<T> loss(const Var<T>& x) { return loss(x, rng); }

  /// Per-sample negative ELBO (one z_K draw), [N], in nats.
  Var<T> negative_elbo(const Var<T>& x, Generator& g) { return elbo(x, g).negative_elbo(); }

  /// m importance samples per image of x with log q_K (eval::iwae_nll uses it).
  PosteriorRows<T> posterior_rows(const Var<T>& x, std::int64_t m, Generator& g) {
    return posterior(x).sample_rows(m, g);
  }

  /// The expected x given the flow's image of the base mean.
  Var<T> reconstruct(const Var<T>& x) { return likelihood.mean(decode(posterior(x).mean_code())); }

  /// n new samples: z ~ N(0, temperature^2 I) (the prior; the flow shapes only the posterior).
  Tensor<T> sample(std::int64_t n, double temperature = 1.0) { return sample(n, temperature, rng); }
  /// n new samples at temperature 1 with noise from `g`.
  Tensor<T> sample(std::int64_t n, Generator& g) { return sample(n, 1.0, g); }
  /// As sample(n, temperature), with noise from `g`.
  Tensor<T> sample(std::int64_t n, double temperature, Generator& g) {
    check_positive("FlowVAE::sample", "temperature", temperature);
    NoGradGuard no_grad;
    return likelihood.mean(decode(Var<T>(detail::prior_codes<T>(n, latent_, temperature, g)))).value();
  }

  /// `steps` decoded points between the mean codes of x_a and x_b (single samples [1, ...]).
  Tensor<T> interpolate(const Tensor<T>& x_a, const Tensor<T>& x_b, std::int64_t steps,
                        Interpolation mode = Interpolation::linear) {
    check_at_least("FlowVAE::interpolate", "steps", steps, 2);
    NoGradGuard no_grad;
    const Tensor<T> za = posterior(Var<T>(x_a)).mean_code().value(), zb = posterior(Var<T>(x_b)).mean_code().value();
    const Tensor<T> z = detail::interpolation_codes("FlowVAE::interpolate", za, zb, steps, mode);
    return likelihood.mean(decode(Var<T>(z))).value();
  }

  /// Visits the encoder, the flow and the decoder ("encoder.*", "flow.*", "decoder.*").
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("encoder", encoder);
    v.child("flow", flow);
    v.child("decoder", decoder);
  }

  /// The latent size Z.
  std::int64_t latent_dim() const noexcept { return latent_; }
  /// The KL weight.
  double beta() const noexcept { return options_.beta; }

  Encoder encoder;        ///< x -> [N, 2Z + H] (mean, log-variance, context)
  Decoder decoder;        ///< z [N, Z] -> the likelihood's parameters
  Flow flow;              ///< the posterior flow z_0 -> z_K given h
  Likelihood likelihood;  ///< p(x | decoder output)
  Generator rng;          ///< noise of loss() and sample(); save its state to resume exactly

 private:
  VAEOptions options_;
  std::int64_t latent_ = 0;
};

}  // namespace genmod::models
