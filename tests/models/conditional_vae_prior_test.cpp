// ConditionalVAE's learned prior p(z | c) = N(A c + a, diag exp(B c + b)): it starts as N(0, I),
// enters the bound as KL(q(z | x, c) || p(z | c)) (against a computation by hand), its gradients
// match finite differences, eval::iwae_nll uses it, and sampling draws from it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "genmod/eval/elbo.hpp"
#include "genmod/models/conditional_vae.hpp"
#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"
#include "support/iwae_by_hand.hpp"

namespace models_conditional_vae_prior_test {

using namespace genmod;

namespace {

using Mlp = nn::Sequential<nn::Linear<double>, nn::Tanh<double>, nn::Linear<double>>;
using Cvae = models::ConditionalVAE<Mlp, Mlp, dist::Bernoulli>;

constexpr std::int64_t kN = 5, kD = 6, kC = 3, kZ = 2;

Mlp mlp(std::int64_t in, std::int64_t hidden, std::int64_t out) {
  return Mlp{nn::Linear<double>(in, hidden), nn::Tanh<double>(), nn::Linear<double>(hidden, out)};
}

// Encoder and decoder weights from manual_seed(seed), so two models built with the same seed share them.
Cvae make_cvae(std::uint64_t seed, std::int64_t condition_dim) {
  manual_seed(seed);
  return Cvae{mlp(kD + kC, 7, 2 * kZ),
              mlp(kZ + kC, 7, kD),
              dist::Bernoulli{},
              {.latent_dim = kZ},
              {.condition_dim = condition_dim}};
}

// The prior's weights and biases set to random values (they start at zero).
void randomize_prior(Cvae& cvae, std::uint64_t seed) {
  for (auto& np : cvae.named_parameters())
    if (np.name.rfind("prior.", 0) == 0) np.parameter.value() = test::rnd(np.parameter.shape(), seed++, 0.5);
}

Tensor<double> conditions() {
  return one_hot<double>(from_data<std::int64_t>({kN}, {0, 1, 2, 1, 0}), kC);
}

// A model with a random learned prior, conditions and data in [0, 1], all from `seed`.
struct Setup {
  Cvae cvae;
  Tensor<double> c, x;
};
Setup learned_setup(std::uint64_t seed) {
  Setup s{make_cvae(seed, kC), conditions(), test::uni({kN, kD}, seed + 100, 0.0, 1.0)};
  randomize_prior(s.cvae, seed * 10);
  return s;
}

}  // namespace

TEST_CASE("ConditionalVAE learned prior: starts as N(0, I), has its own parameters", "[models][cvae]") {
  Cvae learned = make_cvae(3, kC), standard = make_cvae(3, 0);
  CHECK(learned.learned_prior());
  CHECK_FALSE(standard.learned_prior());
  std::vector<std::string> names;
  for (const auto& np : learned.named_parameters()) names.push_back(np.name);
  CHECK(std::count(names.begin(), names.end(), "prior.weight") == 1);
  CHECK(std::count(names.begin(), names.end(), "prior.bias") == 1);
  CHECK(learned.num_parameters() == standard.num_parameters() + kC * 2 * kZ + 2 * kZ);

  const Tensor<double> c = conditions();
  const dist::Normal<double> p = learned.prior(Var<double>(c));
  CHECK(p.mean().shape() == (Shape{kN, kZ}));
  for (std::int64_t i = 0; i < p.mean().numel(); ++i) {
    CHECK(p.mean().value()[i] == 0.0);
    CHECK(p.logvar().value()[i] == 0.0);
  }
  // Zero-initialised, it is the standard prior: the same bound for the same weights and noise.
  Generator g1(4), g2(4);
  const Tensor<double> x = test::uni({kN, kD}, 8, 0.0, 1.0);
  const Tensor<double> a = learned.negative_elbo(Var<double>(x), Var<double>(c), g1).value();
  const Tensor<double> b = standard.negative_elbo(Var<double>(x), Var<double>(c), g2).value();
  for (std::int64_t i = 0; i < kN; ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-14));

  CHECK_THROWS_AS(Cvae(mlp(kD + kC, 7, 2 * kZ), mlp(kZ + kC, 7, kD), dist::Bernoulli{}, {}, {.condition_dim = kC}),
                  ValueError);  // a learned prior needs latent_dim
  CHECK_THROWS_AS(
      Cvae(mlp(kD + kC, 7, 2 * kZ), mlp(kZ + kC, 7, kD), dist::Bernoulli{}, {.latent_dim = kZ}, {.condition_dim = -1}),
      ValueError);
  CHECK_THROWS_AS(learned.prior(Var<double>(zeros<double>({kN, kC + 1}))), ShapeError);
}

TEST_CASE("ConditionalVAE learned prior: the bound uses KL(q || p(z | c)), gradients match finite differences",
          "[models][cvae][gradcheck]") {
  auto [cvae, c, x] = learned_setup(5);

  // By hand: z = mu + sigma eps with eps the model's first randn draw of shape [N, Z],
  // -ELBO_i = -log p(x_i | z_i, c_i) + sum_j KL(N(mu, s^2) || N(m, v)) with
  // KL = 1/2 (log v - log s^2 + (s^2 + (mu - m)^2) / v - 1).
  Generator g(11), g_copy(11);
  const Tensor<double> got = cvae.negative_elbo(Var<double>(x), Var<double>(c), g).value();
  NoGradGuard no_grad;
  const Tensor<double> eps = randn<double>({kN, kZ}, g_copy);
  auto [mu, lv] = cvae.encode(Var<double>(x), Var<double>(c));
  const dist::Normal<double> p = cvae.prior(Var<double>(c));
  for (std::int64_t i = 0; i < kN; ++i) {
    Tensor<double> zi({1, kZ});
    double kl = 0;
    for (std::int64_t j = 0; j < kZ; ++j) {
      const double m = mu.value()(i, j), s2 = std::exp(lv.value()(i, j));
      const double pm = p.mean().value()(i, j), plv = p.logvar().value()(i, j);
      zi(0, j) = m + std::sqrt(s2) * eps(i, j);
      kl += 0.5 * (plv - std::log(s2) + (s2 + (m - pm) * (m - pm)) / std::exp(plv) - 1.0);
    }
    const double rec =
        -dist::Bernoulli{}
             .log_prob(cvae.decode(Var<double>(zi), Var<double>(c.rows(i, 1))), Var<double>(x.rows(i, 1)))
             .item();
    CHECK(got[i] == Approx(rec + kl).epsilon(1e-12));
  }
}

TEST_CASE("ConditionalVAE learned prior: parameter gradients of the bound against finite differences",
          "[models][cvae][gradcheck]") {
  auto [cvae, c, x] = learned_setup(6);
  // The same noise for every evaluation: a fresh generator each time.
  test::expect_module_gradients(cvae, [&] {
    Generator g(12);
    return cvae.negative_elbo(Var<double>(x), Var<double>(c), g);
  });
}

TEST_CASE("ConditionalVAE learned prior: eval::iwae_nll weighs samples with p(z | c)", "[models][cvae][eval]") {
  auto [cvae, c, x] = learned_setup(7);
  const std::int64_t k = 3;
  Generator g(14), g_copy(14);
  const double got = eval::iwae_nll(cvae, x, c, k, g, {.chunk = 100});

  // log w = log p(x | z, c) + log N(z; m(c), v(c)) - log N(z; mu, s^2), bound = -log mean_k exp(log w).
  const Tensor<double> eps = randn<double>({kN * k, kZ}, g_copy);
  const double expected = test::iwae_by_hand(cvae, x, c, k, eps);
  CHECK(got == Approx(expected).epsilon(1e-10));
}

TEST_CASE("ConditionalVAE learned prior: prior_codes and sample draw from p(z | c)", "[models][cvae]") {
  Cvae cvae = make_cvae(8, kC);
  randomize_prior(cvae, 90);
  const Tensor<double> c = conditions();
  const Tensor<double> noise = test::rnd({kN, kZ}, 15);
  const Tensor<double> codes = cvae.prior_codes(noise, c);
  const dist::Normal<double> p = cvae.prior(Var<double>(c));
  for (std::int64_t i = 0; i < kN; ++i)
    for (std::int64_t j = 0; j < kZ; ++j)
      CHECK(codes(i, j) ==
            Approx(p.mean().value()(i, j) + std::exp(0.5 * p.logvar().value()(i, j)) * noise(i, j)).epsilon(1e-14));
  // Temperature 0 decodes the prior's mean of each condition.
  const Tensor<double> at_mean = cvae.sample(c, 0.0);
  const Tensor<double> decoded_mean = cvae.generate(p.mean().value(), c);
  for (std::int64_t i = 0; i < at_mean.numel(); ++i) CHECK(at_mean[i] == Approx(decoded_mean[i]).epsilon(1e-14));
  // The standard prior leaves the noise as it is.
  Cvae standard = make_cvae(8, 0);
  const Tensor<double> same = standard.prior_codes(noise, c);
  for (std::int64_t i = 0; i < noise.numel(); ++i) CHECK(same[i] == noise[i]);
  CHECK_THROWS_AS(cvae.prior_codes(test::rnd({kN, kZ + 1}, 1), c), ShapeError);
  CHECK_THROWS_AS(cvae.prior_codes(noise, c.rows(0, 2)), ShapeError);
}

}  // namespace models_conditional_vae_prior_test
