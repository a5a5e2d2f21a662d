// The model-family contracts (concepts) hold for the models that claim them, the ELBO core is the
// one VAE and ConditionalVAE use, and eval:: bounds work for the conditional model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "genmod/eval/elbo.hpp"
#include "genmod/models/autoencoder.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/models/conditional_vae.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/nn.hpp"
#include "support/iwae_by_hand.hpp"

namespace models_contracts_test {

using namespace genmod;

namespace {

using Mlp = nn::Sequential<nn::Linear<double>, nn::Tanh<double>, nn::Linear<double>>;
Mlp mlp(std::int64_t in, std::int64_t hidden, std::int64_t out) {
  return Mlp{nn::Linear<double>(in, hidden), nn::Tanh<double>(), nn::Linear<double>(hidden, out)};
}
using Vae = models::VAE<Mlp, Mlp, dist::Bernoulli>;
using Cvae = models::ConditionalVAE<Mlp, Mlp, dist::Bernoulli>;
using Ae = models::Autoencoder<Mlp, Mlp>;

// A likelihood a user writes: unit-variance Gaussian with the mean as parameters.
struct UnitGaussian {
  template <class T>
  Var<T> log_prob(const Var<T>& mean, const Var<T>& x) const {
    const double half_log_2pi = 0.5 * std::log(2 * 3.14159265358979323846);
    Var<T> d = sub(x, mean);
    return neg(add_scalar(scale(sum(mul(d, d), 1), T(0.5)), static_cast<T>(half_log_2pi * x.dim(1))));
  }
  template <class T>
  Var<T> mean(const Var<T>& m) const {
    return m;
  }
  template <class T>
  Tensor<T> sample(const Var<T>& m, Generator&) const {
    return m.value().clone();
  }
};
struct NotALikelihood {
  int log_prob = 0;
};

}  // namespace

TEST_CASE("Model families satisfy their contracts", "[models][concepts]") {
  STATIC_REQUIRE(models::GenerativeModel<Vae>);
  STATIC_REQUIRE(models::BoundedDensityModel<Vae>);
  STATIC_REQUIRE(models::LatentVariableModel<Vae>);
  STATIC_REQUIRE_FALSE(models::ConditionalGenerativeModel<Vae>);
  STATIC_REQUIRE(models::ConditionalGenerativeModel<Cvae>);
  STATIC_REQUIRE(models::ConditionalLatentVariableModel<Cvae>);
  STATIC_REQUIRE_FALSE(models::GenerativeModel<Cvae>);  // loss(x) alone would be a lie
  STATIC_REQUIRE_FALSE(models::GenerativeModel<Ae>);    // an autoencoder does not sample
  STATIC_REQUIRE_FALSE(models::DensityModel<Vae>);      // a bound, not an exact log_prob
  STATIC_REQUIRE_FALSE(nn::LayerType<Vae>);             // models are modules, not layers
  STATIC_REQUIRE(dist::Likelihood<dist::Bernoulli, float>);
  STATIC_REQUIRE(dist::Likelihood<dist::Gaussian, double>);
  STATIC_REQUIRE(dist::Likelihood<UnitGaussian, double>);
  STATIC_REQUIRE_FALSE(dist::Likelihood<NotALikelihood, float>);
}

TEST_CASE("VAE's loss is the ELBO core's, for a user-written likelihood too", "[models][vae][elbo]") {
  manual_seed(11);
  models::VAE vae{mlp(6, 8, 2 * 3), mlp(3, 8, 6), UnitGaussian{}, {.beta = 0.5}};
  Generator gx(1);
  Tensor<double> x = randn<double>({5, 6}, gx);
  Generator g1(7), g2(7);
  auto out = vae.loss(Var<double>(x), g1);
  // The same terms by hand: one reparameterized z from the same noise.
  auto q = vae.posterior(Var<double>(x));
  Var<double> z = q.rsample(g2);
  Tensor<double> rec = neg(UnitGaussian{}.log_prob(vae.decode(z), Var<double>(x))).value();
  Tensor<double> kl = losses::sum_per_sample(q.kl_standard()).value();
  double rec_mean = 0, kl_mean = 0;
  for (int i = 0; i < 5; ++i) rec_mean += rec[i] / 5, kl_mean += kl[i] / 5;
  CHECK(out.reconstruction.item() == Approx(rec_mean).epsilon(1e-12));
  CHECK(out.kl.item() == Approx(kl_mean).epsilon(1e-12));
  CHECK(out.loss.item() == Approx(rec_mean + 0.5 * kl_mean).epsilon(1e-12));
  CHECK_THROWS_AS(models::elbo_terms(q, UnitGaussian{}, z, Var<double>(x), -1.0), ValueError);
}

namespace {

// A posterior that brings its own KL (as a flow posterior will): elbo_terms must use it.
struct FixedKlPosterior {
  Var<double> kl;
  Var<double> kl_per_sample() const { return kl; }
};

}  // namespace

TEST_CASE("elbo_terms takes the KL from a posterior that provides its own", "[models][elbo]") {
  Var<double> x(from_data<double>({2, 2}, {0.0, 1.0, 1.0, 0.0}));
  Var<double> logits(from_data<double>({2, 2}, {0.5, -0.5, 1.0, 2.0}));
  FixedKlPosterior q{Var<double>(from_data<double>({2}, {3.0, 4.0}))};
  auto terms = models::elbo_terms(q, dist::Bernoulli{}, logits, x, 2.0);
  const Tensor<double> rec = neg(dist::Bernoulli{}.log_prob(logits, x)).value();
  const Tensor<double> nelbo = terms.negative_elbo().value();
  CHECK(nelbo[0] == Approx(rec[0] + 3.0));
  CHECK(nelbo[1] == Approx(rec[1] + 4.0));
  auto loss = terms.loss();
  CHECK(loss.kl.item() == Approx(3.5));
  CHECK(loss.loss.item() == Approx((rec[0] + rec[1]) / 2 + 2.0 * 3.5));
}

TEST_CASE("elbo_terms against a Normal prior takes the closed-form KL(q || p)", "[models][elbo]") {
  Var<double> x(from_data<double>({2, 2}, {0.0, 1.0, 1.0, 0.0}));
  Var<double> logits(from_data<double>({2, 2}, {0.5, -0.5, 1.0, 2.0}));
  const dist::Normal<double> q(Var<double>(from_data<double>({2, 2}, {0.1, -0.2, 0.3, 0.4})),
                               Var<double>(from_data<double>({2, 2}, {-0.5, 0.2, 0.0, -1.0})));
  const dist::Normal<double> p(Var<double>(from_data<double>({2, 2}, {1.0, 0.0, -0.5, 0.2})),
                               Var<double>(from_data<double>({2, 2}, {0.3, -0.4, 0.5, 0.1})));
  auto terms = models::elbo_terms(q, p, dist::Bernoulli{}, logits, x);
  // KL = 1/2 sum_j (log v - log s^2 + (s^2 + (mu - m)^2) / v - 1), by hand.
  for (std::int64_t i = 0; i < 2; ++i) {
    double kl = 0;
    for (std::int64_t j = 0; j < 2; ++j) {
      const double mu = q.mean().value()(i, j), ls = q.logvar().value()(i, j);
      const double m = p.mean().value()(i, j), lv = p.logvar().value()(i, j);
      kl += 0.5 * (lv - ls + (std::exp(ls) + (mu - m) * (mu - m)) / std::exp(lv) - 1.0);
    }
    CHECK(terms.kl.value()[i] == Approx(kl).epsilon(1e-12));
  }
  const dist::Normal<double> wrong = dist::Normal<double>::standard(Shape{2, 3});
  CHECK_THROWS_AS(models::elbo_terms(q, wrong, dist::Bernoulli{}, logits, x), ShapeError);
}

TEST_CASE("eval::negative_elbo and eval::iwae_nll work for the conditional model", "[models][cvae][eval]") {
  const std::int64_t n = 7, d = 5, c = 3, z = 2;
  manual_seed(21);
  Cvae cvae{mlp(d + c, 8, 2 * z), mlp(z + c, 8, d), dist::Bernoulli{}, {.latent_dim = z}};
  Generator gd(2);
  Tensor<double> x = rand<double>({n, d}, gd);
  Tensor<double> cond = one_hot<double>(from_data<std::int64_t>({n}, {0, 1, 2, 0, 1, 2, 1}), c);

  // negative_elbo: the mean of the model's per-sample values, batch by batch.
  Generator g1(5), g2(5);
  const double batched = eval::negative_elbo(cvae, x, cond, g1, {.batch_size = 3});
  double by_hand = 0;
  {
    NoGradGuard no_grad;
    for (std::int64_t s = 0; s < n; s += 3) {
      const std::int64_t b = std::min<std::int64_t>(3, n - s);
      Tensor<double> per = cvae.negative_elbo(Var<double>(x.rows(s, b)), Var<double>(cond.rows(s, b)), g2).value();
      for (std::int64_t i = 0; i < b; ++i) by_hand += per[i] / n;
    }
  }
  CHECK(batched == Approx(by_hand).epsilon(1e-12));

  // iwae_nll: with chunk 100 and k = 4 all images go through one pass, noise eps = randn([n k, Z])
  // row r = (image r / k, sample r % k). The definition, one row at a time with its own image's
  // condition: log w_r = log p(x|z_r, c) + log N(z_r; 0, I) - log N(z_r; mu, sigma^2),
  // bound_i = -log (1/k) sum_r exp(log w_r).
  const std::int64_t k = 4;
  Generator g3(9), g3_copy(9);
  const double grouped = eval::iwae_nll(cvae, x, cond, k, g3, {.chunk = 100});
  const Tensor<double> eps = randn<double>({n * k, z}, g3_copy);
  const double expected = test::iwae_by_hand(cvae, x, cond, k, eps);  // the standard prior's N(0, I)
  CHECK(grouped == Approx(expected).epsilon(1e-10));
  // The condition matters.
  Tensor<double> other = one_hot<double>(from_data<std::int64_t>({n}, {2, 2, 2, 2, 2, 2, 2}), c);
  Generator g4(9);
  CHECK(std::abs(eval::iwae_nll(cvae, x, other, k, g4, {.chunk = 100}) - grouped) > 1e-6);

  Generator g6(1);
  CHECK_THROWS_AS(eval::iwae_nll(cvae, x, cond.rows(0, 3), 4, g6), ShapeError);
  CHECK_THROWS_AS(eval::negative_elbo(cvae, x, Tensor<double>{}, g6), ShapeError);
  CHECK_THROWS_AS(eval::iwae_nll(cvae, x, cond, 0, g6), ValueError);
}

}  // namespace models_contracts_test
