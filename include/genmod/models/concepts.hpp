#pragma once
/// \file concepts.hpp
/// The contracts of the model families, as C++20 concepts. `eval::` and `train::` functions take
/// these, so a type that does not fit is reported at the call, naming the missing member.
///
/// Every model is an nn::Module (parameters, buffers, train/eval) and adds what it means:
///   GenerativeModel        loss(x) -> a Var<T> scalar to minimise (or a struct that converts to
///                          one); sample(n, g) -> Tensor<T> of n new samples, noise from g.
///   ConditionalGenerativeModel
///                          loss(x, c) and sample(condition, g): the same, given a condition per row.
///   LatentVariableModel    a GenerativeModel with a diagonal Normal posterior(x) and a prior
///                          N(0, I): encode(x) -> (mu, logvar), decode(z) -> likelihood parameters,
///                          a `likelihood` member (dist::Likelihood) and latent_dim(); what
///                          eval::iwae_nll needs.
///   BoundedDensityModel    negative_elbo(x, g) -> Var<T> [N]: an upper bound on -log p(x_i) in
///                          nats (VAEs); eval::negative_elbo averages it.
///   DensityModel           log_prob(x) -> Var<T> [N]: the exact log-likelihood in nats (flows,
///                          autoregressive models).
///   CompletionModel        complete(images, known_mask, g) -> Tensor<T>: every pixel the mask marks
///                          unknown (0) drawn from p(unknown | known), known pixels kept.
///   AdversarialModel       no loss of its own to minimise: discriminator_step(real, d_opt) and
///                          generator_step(n, g_opt) play the two halves of a game, and
///                          sample(n, g) generates (GANs).

#include <concepts>
#include <cstdint>
#include <utility>

#include "genmod/autodiff/var.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/dist/concepts.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::models {

/// A model trained by minimising loss(x) that generates with sample(n, g).
template <class M>
concept GenerativeModel = nn::ModuleType<M> &&
    requires(M& m, const Var<typename M::value_type>& x, std::int64_t n, Generator& g) {
  { m.loss(x) } -> std::convertible_to<Var<typename M::value_type>>;
  { m.sample(n, g) } -> std::same_as<Tensor<typename M::value_type>>;
};

/// A model trained by minimising loss(x, c) that generates one sample per row of a condition.
template <class M>
concept ConditionalGenerativeModel = nn::ModuleType<M> &&
    requires(M& m, const Var<typename M::value_type>& x, const Var<typename M::value_type>& c,
             const Tensor<typename M::value_type>& condition, Generator& g) {
  { m.loss(x, c) } -> std::convertible_to<Var<typename M::value_type>>;
  { m.sample(condition, g) } -> std::same_as<Tensor<typename M::value_type>>;
};

/// A model whose -log p(x) has an upper bound per sample (the negative ELBO), in nats.
template <class M>
concept BoundedDensityModel = nn::ModuleType<M> && requires(M& m, const Var<typename M::value_type>& x, Generator& g) {
  { m.negative_elbo(x, g) } -> std::same_as<Var<typename M::value_type>>;
};

/// A conditional model whose -log p(x | c) has an upper bound per sample.
template <class M>
concept ConditionalBoundedDensityModel = nn::ModuleType<M> &&
    requires(M& m, const Var<typename M::value_type>& x, const Var<typename M::value_type>& c, Generator& g) {
  { m.negative_elbo(x, c, g) } -> std::same_as<Var<typename M::value_type>>;
};

/// A model with an exact log-likelihood per sample, in nats.
template <class M>
concept DensityModel = nn::ModuleType<M> && requires(M& m, const Var<typename M::value_type>& x) {
  { m.log_prob(x) } -> std::same_as<Var<typename M::value_type>>;
};

/// A latent-variable model with a diagonal Normal posterior and a N(0, I) prior (see the file
/// comment): what an importance-weighted bound needs.
template <class M>
concept LatentVariableModel = GenerativeModel<M> && BoundedDensityModel<M> &&
    requires(M& m, const Var<typename M::value_type>& x) {
  { m.encode(x) } -> std::same_as<std::pair<Var<typename M::value_type>, Var<typename M::value_type>>>;
  { m.decode(x) } -> std::same_as<Var<typename M::value_type>>;
  { m.latent_dim() } -> std::convertible_to<std::int64_t>;
  requires dist::Likelihood<decltype(m.likelihood), typename M::value_type>;
};

/// The conditional counterpart of LatentVariableModel: encode(x, c), decode(z, c).
template <class M>
concept ConditionalLatentVariableModel = ConditionalGenerativeModel<M> && ConditionalBoundedDensityModel<M> &&
    requires(M& m, const Var<typename M::value_type>& x, const Var<typename M::value_type>& c) {
  { m.encode(x, c) } -> std::same_as<std::pair<Var<typename M::value_type>, Var<typename M::value_type>>>;
  { m.decode(x, c) } -> std::same_as<Var<typename M::value_type>>;
  { m.latent_dim() } -> std::convertible_to<std::int64_t>;
  requires dist::Likelihood<decltype(m.likelihood), typename M::value_type>;
};

/// A model that fills in the unknown pixels of images (known_mask: 1 known, 0 to sample).
template <class M>
concept CompletionModel = nn::ModuleType<M> && requires(M& m, const Tensor<typename M::value_type>& images,
                                                        const Tensor<typename M::value_type>& mask, Generator& g) {
  { m.complete(images, mask, g) } -> std::same_as<Tensor<typename M::value_type>>;
};

/// A model trained as a two-player game: a critic step on real samples, a generator step on n
/// generated ones (each with its own optimizer), and sample(n, g).
template <class M>
concept AdversarialModel = nn::ModuleType<M> && requires(M& m, const Tensor<typename M::value_type>& real,
                                                         optim::Optimizer<typename M::value_type>& opt,
                                                         std::int64_t n, Generator& g) {
  m.discriminator_step(real, opt);
  m.generator_step(n, opt);
  { m.sample(n, g) } -> std::same_as<Tensor<typename M::value_type>>;
};

}  // namespace genmod::models
