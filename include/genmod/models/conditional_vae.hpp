#pragma once
/// \file conditional_vae.hpp
/// ConditionalVAE: a VAE whose encoder sees [x, c] and whose decoder sees [z, c], for a condition
/// c [N, C] (a one-hot class, an attribute vector). Sampling with a chosen c generates that class;
/// attribute arithmetic moves a code along the difference of two groups' mean codes.

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/models/vae.hpp"

namespace genmod::models {

template <class Encoder, class Decoder, class Likelihood = dist::Bernoulli>
class ConditionalVAE : public nn::Module<typename Encoder::value_type> {
 public:
  using T = typename Encoder::value_type;

  /// The encoder takes [N, D + C] (flattened x and c), the decoder [N, Z + C].
  ConditionalVAE(Encoder enc, Decoder dec, Likelihood lik = {}, VAEOptions options = {})
      : encoder(std::move(enc)), decoder(std::move(dec)), likelihood(lik), rng(options.seed, 0x63766165ULL),
        options_(options) {
    if (!(options.beta >= 0)) throw ValueError("ConditionalVAE: beta must be >= 0");
    latent_ = options.latent_dim;
  }

  /// q(z | x, c).
  dist::Normal<T> posterior(const Var<T>& x, const Var<T>& c) {
    check_condition(x.dim(0), c);
    Var<T> h = encoder(concat({flatten(x, 1), c}, 1));
    if (h.rank() != 2 || h.dim(1) % 2 != 0)
      throw ShapeError("ConditionalVAE: the encoder must output [N, 2 * latent_dim], got " + h.shape().to_string());
    const std::int64_t z = h.dim(1) / 2;
    if (latent_ == 0) latent_ = z;
    if (z != latent_) throw ShapeError("ConditionalVAE: the encoder's latent size changed");
    return dist::Normal<T>(slice(h, 1, 0, z), slice(h, 1, z, z));
  }
  std::pair<Var<T>, Var<T>> encode(const Var<T>& x, const Var<T>& c) {
    auto q = posterior(x, c);
    return {q.mean(), q.logvar()};
  }
  Var<T> decode(const Var<T>& z, const Var<T>& c) {
    check_condition(z.dim(0), c);
    return decoder(concat({z, c}, 1));
  }

  /// Negative ELBO of the batch given the conditions, and its terms (as VAE::loss).
  VAELoss<T> loss(const Var<T>& x, const Var<T>& c, Generator& g) {
    auto q = posterior(x, c);
    Var<T> rec = neg(likelihood.log_prob(reshape(decode(q.rsample(g), c), x.shape()), x));
    Var<T> kl = losses::sum_per_sample(q.kl_standard());
    Var<T> rec_mean = mean(rec), kl_mean = mean(kl);
    return {add(rec_mean, scale(kl_mean, static_cast<T>(options_.beta))), rec_mean, kl_mean};
  }
  VAELoss<T> loss(const Var<T>& x, const Var<T>& c) { return loss(x, c, rng); }

  /// Per-sample negative ELBO, [N].
  Var<T> negative_elbo(const Var<T>& x, const Var<T>& c, Generator& g) {
    auto q = posterior(x, c);
    Var<T> rec = neg(likelihood.log_prob(reshape(decode(q.rsample(g), c), x.shape()), x));
    return add(rec, losses::sum_per_sample(q.kl_standard()));
  }

  /// One sample per row of `condition` [n, C]: z ~ N(0, temperature^2 I) decoded given c.
  Tensor<T> sample(const Tensor<T>& condition, double temperature = 1.0) { return sample(condition, temperature, rng); }
  Tensor<T> sample(const Tensor<T>& condition, double temperature, Generator& g) {
    if (latent_ == 0) throw ValueError("ConditionalVAE::sample: set VAEOptions::latent_dim or encode data first");
    NoGradGuard no_grad;
    Tensor<T> z = randn<T>(Shape{condition.dim(0), latent_}, g);
    for (auto& v : z) v *= static_cast<T>(temperature);
    return likelihood.mean(decode(Var<T>(z), Var<T>(condition))).value();
  }

  /// Decodes codes z [N, Z] under conditions [N, C] to the expected x.
  Tensor<T> generate(const Tensor<T>& z, const Tensor<T>& condition) {
    NoGradGuard no_grad;
    return likelihood.mean(decode(Var<T>(z), Var<T>(condition))).value();
  }

  Var<T> forward(const Var<T>&) override {
    throw ValueError("ConditionalVAE: call loss(x, c), encode(x, c) or decode(z, c); forward needs a condition");
  }
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("encoder", encoder);
    v.child("decoder", decoder);
  }
  std::int64_t latent_dim() const noexcept { return latent_; }

  Encoder encoder;
  Decoder decoder;
  Likelihood likelihood;
  Generator rng;

 private:
  void check_condition(std::int64_t n, const Var<T>& c) const {
    if (c.rank() != 2 || c.dim(0) != n)
      throw ShapeError("ConditionalVAE: expected a condition [" + std::to_string(n) + ", C], got " + c.shape().to_string());
  }
  VAEOptions options_;
  std::int64_t latent_ = 0;
};

template <class E, class D, class L>
ConditionalVAE(E, D, L) -> ConditionalVAE<E, D, L>;
template <class E, class D, class L>
ConditionalVAE(E, D, L, VAEOptions) -> ConditionalVAE<E, D, L>;

/// The direction from the mean code of `without` to the mean code of `with` ([N, Z] each): adding
/// it to a code adds the attribute ("add a smile"; here: turn one class into another).
template <class T>
Tensor<T> attribute_vector(const Tensor<T>& codes_with, const Tensor<T>& codes_without) {
  if (codes_with.rank() != 2 || codes_without.rank() != 2 || codes_with.dim(1) != codes_without.dim(1) ||
      codes_with.dim(0) == 0 || codes_without.dim(0) == 0)
    throw ShapeError("attribute_vector: expected two non-empty [N, Z] code sets with the same Z, got " +
                     codes_with.shape().to_string() + " and " + codes_without.shape().to_string());
  const std::int64_t z = codes_with.dim(1);
  Tensor<T> v = zeros<T>(Shape{z});
  for (std::int64_t i = 0; i < codes_with.dim(0); ++i)
    for (std::int64_t j = 0; j < z; ++j) v[j] += codes_with(i, j) / static_cast<T>(codes_with.dim(0));
  for (std::int64_t i = 0; i < codes_without.dim(0); ++i)
    for (std::int64_t j = 0; j < z; ++j) v[j] -= codes_without(i, j) / static_cast<T>(codes_without.dim(0));
  return v;
}

/// codes + alpha * direction, for each row of codes [N, Z].
template <class T>
Tensor<T> apply_attribute(const Tensor<T>& codes, const Tensor<T>& direction, double alpha = 1.0) {
  if (codes.rank() != 2 || !(direction.shape() == Shape{codes.dim(1)}))
    throw ShapeError("apply_attribute: codes " + codes.shape().to_string() + " and direction " +
                     direction.shape().to_string() + " do not fit");
  Tensor<T> out = codes.clone();
  for (std::int64_t i = 0; i < codes.dim(0); ++i)
    for (std::int64_t j = 0; j < codes.dim(1); ++j) out(i, j) += static_cast<T>(alpha) * direction[j];
  return out;
}

}  // namespace genmod::models
