#pragma once
/// \file kl.hpp
/// KL divergences of diagonal Gaussians parameterized by mean and log-variance, elementwise
/// (sum over latent dimensions with sum_per_sample). Both are >= 0: they are the KL term added to
/// the reconstruction loss in a VAE's negative ELBO.

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::losses {

/// KL(N(mu, e^logvar) || N(0, 1)) = -1/2 (1 + logvar - mu^2 - e^logvar), elementwise.
template <class T>
Var<T> gaussian_kl_standard(const Var<T>& mu, const Var<T>& logvar) {
  return scale(sub(add(square(mu), exp(logvar)), logvar + T(1)), T(0.5));
}

/// KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p)) = 1/2 (lv_p - lv_q + (e^lv_q + (mu_q - mu_p)^2) / e^lv_p - 1).
template <class T>
Var<T> gaussian_kl(const Var<T>& mu_q, const Var<T>& logvar_q, const Var<T>& mu_p, const Var<T>& logvar_p) {
  Var<T> ratio = div(add(exp(logvar_q), square(sub(mu_q, mu_p))), exp(logvar_p));
  return scale(sub(add(sub(logvar_p, logvar_q), ratio), Var<T>(ones<T>(ratio.shape()))), T(0.5));
}

}  // namespace genmod::losses

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::gaussian_kl_standard, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::gaussian_kl_standard, double)
#endif
