#pragma once
// The importance-weighted bound of a conditional VAE computed from its definition, one image and
// one sample at a time, for the tests of eval::iwae_nll.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/dist/likelihood.hpp"

namespace genmod::test {

/// mean_i -log (1/k) sum_s exp(log w_is) for images x [N, D] under conditions c [N, C], with
/// log w = log p(x_i | z, c_i) + log p(z | c_i) - log q(z | x_i, c_i), z = mu + sigma eps and eps
/// the row i k + s of `eps` [N k, Z] (the order eval::iwae_nll draws its noise in). p(z | c) is
/// the model's own prior(c): N(0, I) for the standard prior.
template <class Model>
double iwae_by_hand(Model& cvae, const Tensor<double>& x, const Tensor<double>& c, std::int64_t k,
                    const Tensor<double>& eps) {
  NoGradGuard no_grad;
  const double log2pi = std::log(2 * std::numbers::pi);
  const std::int64_t n = x.dim(0), z = eps.dim(1);
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    auto [mu, lv] = cvae.encode(Var<double>(x.rows(i, 1)), Var<double>(c.rows(i, 1)));
    const auto p = cvae.prior(Var<double>(c.rows(i, 1)));
    std::vector<double> log_w;
    for (std::int64_t s = 0; s < k; ++s) {
      Tensor<double> zr({1, z});
      double lpz = 0, lq = 0;
      for (std::int64_t j = 0; j < z; ++j) {
        const double sd = std::exp(0.5 * lv.value()(0, j)), e = eps(i * k + s, j);
        zr(0, j) = mu.value()(0, j) + sd * e;
        const double pm = p.mean().value()(0, j), plv = p.logvar().value()(0, j);
        lpz += -0.5 * ((zr(0, j) - pm) * (zr(0, j) - pm) / std::exp(plv) + plv + log2pi);
        lq += -0.5 * (e * e + log2pi) - std::log(sd);
      }
      const double lpx =
          cvae.likelihood.log_prob(cvae.decode(Var<double>(zr), Var<double>(c.rows(i, 1))), Var<double>(x.rows(i, 1)))
              .item();
      log_w.push_back(lpx + lpz - lq);
    }
    const double m = *std::max_element(log_w.begin(), log_w.end());
    double acc = 0;
    for (double w : log_w) acc += std::exp(w - m);
    total += -(m + std::log(acc / static_cast<double>(k)));
  }
  return total / static_cast<double>(n);
}

}  // namespace genmod::test
