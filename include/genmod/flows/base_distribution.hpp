#pragma once
/// \file base_distribution.hpp
/// The base (prior) distributions of a density flow: where forward maps the data, and where
/// sampling starts. Both are standard, factorised over the dimensions of a sample:
///   StandardNormal    log p(z) = -1/2 sum_i (z_i^2 + log 2 pi)                 (RealNVP, Glow)
///   StandardLogistic  log p(z) = -sum_i (softplus(z_i) + softplus(-z_i))       (NICE)
/// The logistic's heavier tails give larger gradients far from the mode, which NICE found to
/// train better with additive couplings.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <limits>
#include <numbers>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"

namespace genmod::flows {

/// A factorised distribution over samples: log_prob(z) [N] of a batch z [N, ...], and sample(shape,
/// g, temperature) of a batch of that shape (temperature scales the draw, 1 = the distribution).
template <class B, class T>
concept BaseDistribution = requires(const B& b, const Var<T>& z, const Shape& s, Generator& g, T temperature) {
  { b.log_prob(z) } -> std::same_as<Var<T>>;
  { b.sample(s, g, temperature) } -> std::same_as<Tensor<T>>;
};

namespace detail {
template <class T>
void check_temperature(const char* op, T temperature) {
  check_positive(op, "the temperature", temperature);
  check_finite(op, "the temperature", temperature);
}
}  // namespace detail

/// N(0, I) over the dimensions of a sample.
template <class T = float>
struct StandardNormal {
  /// -1/2 sum_i (z_i^2 + log 2 pi) per sample, [N].
  Var<T> log_prob(const Var<T>& z) const {
    if (z.rank() < 2)
      throw ShapeError("flows::StandardNormal::log_prob: expected a batch [N, ...], got " + z.shape().to_string());
    const T d = static_cast<T>(z.numel() / z.dim(0));
    const T log2pi = static_cast<T>(std::log(2 * std::numbers::pi));
    return scale(add_scalar(sum_per_sample(square(z)), d * log2pi), T(-0.5));
  }
  /// A draw of shape `s`: temperature * N(0, I).
  Tensor<T> sample(const Shape& s, Generator& g, T temperature = T(1)) const {
    detail::check_temperature("flows::StandardNormal::sample", temperature);
    Tensor<T> z = randn<T>(s, g);
    if (temperature != T(1))
      for (auto& v : z) v *= temperature;
    return z;
  }
};

/// The standard logistic over the dimensions of a sample: density e^-z / (1 + e^-z)^2 per dimension.
template <class T = float>
struct StandardLogistic {
  /// -sum_i (softplus(z_i) + softplus(-z_i)) per sample, [N].
  Var<T> log_prob(const Var<T>& z) const {
    if (z.rank() < 2)
      throw ShapeError("flows::StandardLogistic::log_prob: expected a batch [N, ...], got " + z.shape().to_string());
    return neg(sum_per_sample(add(softplus(z), softplus(neg(z)))));
  }
  /// A draw of shape `s`: temperature * (log u - log(1 - u)), u uniform in (0, 1).
  Tensor<T> sample(const Shape& s, Generator& g, T temperature = T(1)) const {
    detail::check_temperature("flows::StandardLogistic::sample", temperature);
    Tensor<T> z(s);
    fill_uniform(z, g);
    const T tiny = std::numeric_limits<T>::min();
    for (auto& v : z) {
      const T u = std::clamp(v, tiny, T(1) - std::numeric_limits<T>::epsilon());
      v = temperature * (std::log(u) - std::log1p(-u));
    }
    return z;
  }
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
// (structs: GENMOD_DETAIL_INSTANTIATE_CLASS says `class`, which clang reports as a mismatched tag)
GENMOD_DETAIL_TEMPLATE struct genmod::flows::StandardNormal<float>;
GENMOD_DETAIL_TEMPLATE struct genmod::flows::StandardLogistic<float>;
#endif
