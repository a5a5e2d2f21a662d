#pragma once
/// \file vae.hpp
/// VAE<Encoder, Decoder, Likelihood>: the variational autoencoder (Kingma & Welling).
///
/// The encoder maps x to [N, 2Z]: the posterior's mean (first Z columns) and log-variance (last Z).
/// The decoder maps z [N, Z] to the likelihood's parameters (Bernoulli logits, Gaussian mean, ...).
///
///   loss(x) = reconstruction + beta * kl, each a mean over the batch, in nats per sample:
///     reconstruction = -log p(x | z),  z = mu + sigma * eps  (one sample)       >= 0 for Bernoulli
///     kl             = KL(q(z | x) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - e^logvar)   >= 0
///   With beta = 1 this is the negative ELBO, an upper bound on -log p(x).

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/dist/concepts.hpp"
#include "genmod/dist/likelihood.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/models/elbo.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::models {

/// Options of VAE and ConditionalVAE.
struct VAEOptions {
  double beta = 1.0;             ///< weight of the KL term (beta-VAE when != 1)
  std::int64_t latent_dim = 0;   ///< 0: taken from the encoder's output (or the decoder's first Linear)
  std::uint64_t seed = 0;        ///< of the model's own generator (reparameterization noise, samples)
};

/// How interpolate moves between two codes.
enum class Interpolation {
  linear,     ///< (1 - t) a + t b
  spherical,  ///< slerp: sin((1-t) theta)/sin theta a + sin(t theta)/sin theta b, theta the angle between a and b
};

namespace detail {

/// z_t for t in [0, 1] between codes a and b (rows of length d).
template <class T>
void interpolate_codes(const T* a, const T* b, T* out, std::int64_t d, double t, Interpolation mode) {
  if (mode == Interpolation::spherical) {
    double dot = 0, na = 0, nb = 0;
    for (std::int64_t i = 0; i < d; ++i) {
      dot += static_cast<double>(a[i]) * b[i];
      na += static_cast<double>(a[i]) * a[i];
      nb += static_cast<double>(b[i]) * b[i];
    }
    const double c = dot / std::max(std::sqrt(na * nb), 1e-30);
    const double theta = std::acos(std::clamp(c, -1.0, 1.0));
    if (theta > 1e-6) {
      const double s = std::sin(theta), wa = std::sin((1 - t) * theta) / s, wb = std::sin(t * theta) / s;
      for (std::int64_t i = 0; i < d; ++i) out[i] = static_cast<T>(wa * a[i] + wb * b[i]);
      return;
    }
  }
  for (std::int64_t i = 0; i < d; ++i) out[i] = static_cast<T>((1 - t) * a[i] + t * b[i]);
}

/// n codes of size z drawn from N(0, temperature^2 I): [n, z].
template <class T>
Tensor<T> prior_codes(std::int64_t n, std::int64_t z, double temperature, Generator& g) {
  Tensor<T> codes = randn<T>(Shape{n, z}, g);
  for (auto& v : codes) v *= static_cast<T>(temperature);
  return codes;
}

/// `steps` codes from za to zb (single codes [1, Z]): rows [steps, Z], t = 0 ... 1.
template <class T>
Tensor<T> interpolation_codes(const char* op, const Tensor<T>& za, const Tensor<T>& zb, std::int64_t steps,
                              Interpolation mode) {
  if (za.dim(0) != 1 || zb.dim(0) != 1) throw ShapeError(std::string(op) + ": expected one sample each");
  const std::int64_t d = za.dim(1);
  Tensor<T> z(Shape{steps, d});
  for (std::int64_t s = 0; s < steps; ++s)
    interpolate_codes(za.data(), zb.data(), z.data() + s * d, d,
                      static_cast<double>(s) / static_cast<double>(steps - 1), mode);
  return z;
}

template <class D>
std::int64_t decoder_input_features(D& decoder) {
  if constexpr (requires { decoder.template get<0>().in_features(); })
    return decoder.template get<0>().in_features();
  else
    return 0;
}

}  // namespace detail

/// The variational autoencoder (see the file comment): an encoder and a decoder (layers), a
/// likelihood (dist::Likelihood), a diagonal Normal posterior and a N(0, I) prior.
template <class Encoder, class Decoder, class Likelihood = dist::Bernoulli>
class VAE : public nn::Module<typename Encoder::value_type> {
 public:
  /// The scalar type.
  using T = typename Encoder::value_type;
  static_assert(nn::LayerType<Encoder> && nn::LayerType<Decoder>,
                "VAE: the encoder and the decoder must be nn::Layer types (Var<T> forward(const Var<T>&))");
  static_assert(std::is_same_v<T, typename Decoder::value_type>, "VAE: encoder and decoder must share a value type");
  static_assert(dist::Likelihood<Likelihood, T>,
                "VAE: the likelihood must satisfy dist::Likelihood<L, T>: log_prob(params, x) -> Var<T> [N], "
                "mean(params) -> Var<T>, sample(params, g) -> Tensor<T>");

  /// A VAE from its networks and likelihood; throws ValueError for a negative beta.
  VAE(Encoder enc, Decoder dec, Likelihood lik = {}, VAEOptions options = {})
      : encoder(std::move(enc)), decoder(std::move(dec)), likelihood(lik), rng(options.seed, 0x766165ULL),
        options_(options) {
    check_non_negative("VAE", "beta", options.beta);
    latent_ = options.latent_dim > 0 ? options.latent_dim : detail::decoder_input_features(decoder);
  }

  /// The posterior q(z | x) = N(mu, e^logvar).
  dist::Normal<T> posterior(const Var<T>& x) {
    Var<T> h = encoder(x);
    if (h.rank() != 2 || h.dim(1) % 2 != 0)
      throw ShapeError("VAE: the encoder must output [N, 2 * latent_dim], got " + h.shape().to_string());
    const std::int64_t z = h.dim(1) / 2;
    if (latent_ == 0) latent_ = z;
    if (z != latent_)
      throw ShapeError("VAE: the encoder outputs " + std::to_string(z) + " latent dimensions, expected " +
                       std::to_string(latent_));
    return dist::Normal<T>(slice(h, 1, 0, z), slice(h, 1, z, z));
  }

  /// (mu, logvar) of q(z | x).
  std::pair<Var<T>, Var<T>> encode(const Var<T>& x) {
    auto q = posterior(x);
    return {q.mean(), q.logvar()};
  }

  /// The likelihood's parameters for codes z [N, Z].
  Var<T> decode(const Var<T>& z) { return decoder(z); }

  /// The ELBO's per-sample terms for one reparameterized z per image, with noise from `g`.
  ElboTerms<T> elbo(const Var<T>& x, Generator& g) {
    auto q = posterior(x);
    return elbo_terms(q, likelihood, decode(q.rsample(g)), x, options_.beta);
  }

  /// Negative ELBO of the batch and its terms, with noise from `g`.
  VAELoss<T> loss(const Var<T>& x, Generator& g) { return elbo(x, g).loss(); }
  /// As loss(x, g), with the model's own generator.
  VAELoss<T> loss(const Var<T>& x) { return loss(x, rng); }

  /// Per-sample negative ELBO (reconstruction + KL, one z sample), [N], in nats.
  Var<T> negative_elbo(const Var<T>& x, Generator& g) { return elbo(x, g).negative_elbo(); }

  /// The expected x given the posterior mean code.
  Var<T> reconstruct(const Var<T>& x) { return likelihood.mean(decode(posterior(x).mean())); }

  /// n new samples: z ~ N(0, temperature^2 I), decoded to the likelihood's mean.
  Tensor<T> sample(std::int64_t n, double temperature = 1.0) { return sample(n, temperature, rng); }
  /// n new samples at temperature 1 with noise from `g`.
  Tensor<T> sample(std::int64_t n, Generator& g) { return sample(n, 1.0, g); }
  /// As sample(n, temperature), with noise from `g`.
  Tensor<T> sample(std::int64_t n, double temperature, Generator& g) {
    if (latent_ == 0)
      throw ValueError("VAE::sample: the latent size is unknown: set VAEOptions::latent_dim or encode data first");
    NoGradGuard no_grad;
    return likelihood.mean(decode(Var<T>(detail::prior_codes<T>(n, latent_, temperature, g)))).value();
  }

  /// `steps` decoded points from x_a's code to x_b's (posterior means), x_a and x_b single samples
  /// ([1, ...]): rows of the result go from x_a (t = 0) to x_b (t = 1).
  Tensor<T> interpolate(const Tensor<T>& x_a, const Tensor<T>& x_b, std::int64_t steps,
                        Interpolation mode = Interpolation::linear) {
    check_at_least("VAE::interpolate", "steps", steps, 2);
    NoGradGuard no_grad;
    const Tensor<T> za = encode(Var<T>(x_a)).first.value(), zb = encode(Var<T>(x_b)).first.value();
    const Tensor<T> z = detail::interpolation_codes("VAE::interpolate", za, zb, steps, mode);
    return likelihood.mean(decode(Var<T>(z))).value();
  }

  /// Visits the encoder and the decoder ("encoder.*", "decoder.*").
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("encoder", encoder);
    v.child("decoder", decoder);
  }

  /// The latent size Z (0 until known).
  std::int64_t latent_dim() const noexcept { return latent_; }
  /// The KL weight.
  double beta() const noexcept { return options_.beta; }

  Encoder encoder;        ///< x -> [N, 2Z] (mean, log-variance)
  Decoder decoder;        ///< z [N, Z] -> the likelihood's parameters
  Likelihood likelihood;  ///< p(x | decoder output)
  Generator rng;  ///< noise of loss() and sample(); save its state to resume exactly

 private:
  VAEOptions options_;
  std::int64_t latent_ = 0;
};

/// Deduction guides: VAE{encoder, decoder[, likelihood[, options]]}.
template <class E, class D, class L>
VAE(E, D, L) -> VAE<E, D, L>;
/// Deduction guide: VAE{encoder, decoder, likelihood, options}.
template <class E, class D, class L>
VAE(E, D, L, VAEOptions) -> VAE<E, D, L>;
/// Deduction guide: VAE{encoder, decoder} with a Bernoulli likelihood.
template <class E, class D>
VAE(E, D) -> VAE<E, D, dist::Bernoulli>;

}  // namespace genmod::models
