#pragma once
/// \file concepts.hpp
/// dist::Likelihood: what a VAE needs of its observation model p(x | decoder output).
///
/// A likelihood L over scalars T promises, for decoder outputs `params` and data `x` of a batch:
///   - `lik.log_prob(params, x)` -> Var<T> [N]: log p(x | params) summed over each sample's
///     dimensions, in nats, differentiable in `params`;
///   - `lik.mean(params)` -> Var<T>: the expected x (what samples and reconstructions show);
///   - `lik.sample(params, g)` -> Tensor<T>: one draw of x, from the generator `g`.
/// Bernoulli and Gaussian (likelihood.hpp) satisfy it; a user's own type does if it has these three.

#include <concepts>

#include "genmod/autodiff/var.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::dist {

/// An observation model usable by VAE, ConditionalVAE and the ELBO core (see the file comment).
template <class L, class T = float>
concept Likelihood = requires(const L& lik, const Var<T>& params, const Var<T>& x, Generator& g) {
  { lik.log_prob(params, x) } -> std::same_as<Var<T>>;
  { lik.mean(params) } -> std::same_as<Var<T>>;
  { lik.sample(params, g) } -> std::same_as<Tensor<T>>;
};

}  // namespace genmod::dist
