// FlowVAE (models/flow_vae.hpp): the ELBO of a flow posterior against its definition computed by
// hand from the same noise; with an empty flow, the Monte Carlo KL averages to the closed form of
// the plain VAE; eval::iwae_nll against the definition; parameter gradients through encoder, flow
// and decoder; the errors a user meets.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "genmod/eval/elbo.hpp"
#include "genmod/flows/context_coupling.hpp"
#include "genmod/flows/planar.hpp"
#include "genmod/flows/radial.hpp"
#include "genmod/models/flow_vae.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/nn.hpp"
#include "support/flow_checks.hpp"

namespace models_flow_vae_test {

using namespace genmod;
using V = Var<double>;

namespace {

using Mlp = nn::Sequential<nn::Linear<double>, nn::Tanh<double>, nn::Linear<double>>;
Mlp mlp(std::int64_t in, std::int64_t hidden, std::int64_t out) {
  return Mlp{nn::Linear<double>(in, hidden), nn::Tanh<double>(), nn::Linear<double>(hidden, out)};
}
using FlowVae = models::FlowVAE<Mlp, Mlp, dist::Bernoulli>;

constexpr std::int64_t kD = 5, kZ = 3, kH = 2;

// Planar (amortized), radial (global) and a context coupling on Z = 3 with context H = 2,
// parameters away from the identity.
flows::PosteriorFlow<double> mixed_flow() {
  flows::PosteriorFlow<double> f(kZ);
  f.push_back(flows::PlanarFlow<double>(kZ, {.context_dim = kH}));
  f.push_back(flows::RadialFlow<double>(kZ));
  f.push_back(
      flows::ContextAffineCoupling<double>(flows::alternating_mask<double>(kZ), {.hidden = 4, .context_dim = kH}));
  test::randomize_parameters(f, 300, 0.5);
  return f;
}

FlowVae model() {
  return FlowVae(mlp(kD, 8, 2 * kZ + kH), mlp(kZ, 8, kD), mixed_flow());
}

double log_normal(double z, double mean, double logvar) {
  return -0.5 * (std::log(2 * std::numbers::pi) + logvar + (z - mean) * (z - mean) / std::exp(logvar));
}

}  // namespace

TEST_CASE("FlowVAE: the ELBO's terms are the definition for the noise drawn", "[models][flowvae]") {
  manual_seed(1);
  FlowVae vae = model();
  Generator gd(2);
  const Tensor<double> x = rand<double>({4, kD}, gd);
  Generator g1(9), g2(9);
  const models::ElboTerms<double> terms = vae.elbo(V(x), g1);

  // By hand: encoder -> (mu, logvar, h); z0 = mu + sigma eps with eps = randn from the same seed;
  // zK from the flow; -log p(x | zK) by the likelihood; KL estimate = log q0(z0) - logdet - log N(zK).
  NoGradGuard no_grad;
  const Tensor<double> e = vae.encoder(V(x)).value();
  const Tensor<double> eps = randn<double>(Shape{4, kZ}, g2);
  Tensor<double> z0(Shape{4, kZ}), h(Shape{4, kH});
  std::vector<double> log_q0(4, 0.0);
  for (std::int64_t i = 0; i < 4; ++i) {
    for (std::int64_t j = 0; j < kZ; ++j) {
      const double mu = e(i, j), lv = e(i, kZ + j);
      z0(i, j) = mu + std::exp(0.5 * lv) * eps(i, j);
      log_q0[static_cast<std::size_t>(i)] += log_normal(z0(i, j), mu, lv);
    }
    for (std::int64_t j = 0; j < kH; ++j) h(i, j) = e(i, 2 * kZ + j);
  }
  const auto r = vae.flow.forward(V(z0), V(h));
  const Tensor<double> rec = dist::Bernoulli{}.log_prob(vae.decoder(r.y), V(x)).value();
  for (std::int64_t i = 0; i < 4; ++i) {
    double log_pz = 0;
    for (std::int64_t j = 0; j < kZ; ++j) log_pz += log_normal(r.y.value()(i, j), 0, 0);
    const double kl = log_q0[static_cast<std::size_t>(i)] - r.logdet.value()[i] - log_pz;
    INFO("image " << i);
    CHECK(terms.reconstruction.value()[i] == Approx(-rec[i]).epsilon(1e-12));
    CHECK(terms.kl.value()[i] == Approx(kl).epsilon(1e-12).margin(1e-12));
  }
  // The flow moved the codes (the test is not the identity's).
  double moved = 0;
  for (std::int64_t k = 0; k < z0.numel(); ++k) moved = std::max(moved, std::abs(r.y.value()[k] - z0[k]));
  CHECK(moved > 1e-2);
}

TEST_CASE("FlowVAE with an empty flow: the KL estimate averages to the plain VAE's closed form", "[models][flowvae]") {
  manual_seed(3);
  Mlp enc = mlp(kD, 8, 2 * kZ), dec = mlp(kZ, 8, kD);
  models::VAE<Mlp, Mlp, dist::Bernoulli> plain(enc, dec);  // copies share the parameters
  models::FlowVAE<Mlp, Mlp, dist::Bernoulli> flow_vae(enc, dec, flows::PosteriorFlow<double>(kZ));
  Generator gd(4);
  const Tensor<double> x = rand<double>({2, kD}, gd);
  NoGradGuard no_grad;
  Generator g(11);
  const Tensor<double> closed = plain.elbo(V(x), g).kl.value();
  // The mean of n one-sample estimates against the closed form, within 5 standard errors.
  const int n = 20000;
  std::vector<double> mean(2, 0.0), sq(2, 0.0);
  for (int s = 0; s < n; ++s) {
    const Tensor<double> kl = flow_vae.elbo(V(x), g).kl.value();
    for (std::size_t i = 0; i < 2; ++i) {
      mean[i] += kl[static_cast<std::int64_t>(i)] / n;
      sq[i] += kl[static_cast<std::int64_t>(i)] * kl[static_cast<std::int64_t>(i)] / n;
    }
  }
  for (std::size_t i = 0; i < 2; ++i) {
    const double se = std::sqrt((sq[i] - mean[i] * mean[i]) / n);
    INFO("image " << i << ": estimate " << mean[i] << " +- " << se << ", closed form "
                  << closed[static_cast<std::int64_t>(i)]);
    CHECK(se > 0);
    CHECK(std::abs(mean[i] - closed[static_cast<std::int64_t>(i)]) < 5 * se);
  }
}

TEST_CASE("FlowVAE: eval::iwae_nll is the importance-weighted bound of the flow posterior", "[models][flowvae][eval]") {
  manual_seed(5);
  FlowVae vae = model();
  Generator gd(6);
  const Tensor<double> x = rand<double>({3, kD}, gd);
  const std::int64_t k = 5;
  Generator g1(13), g2(13);
  // chunk 100: all three images' k samples in one pass, eps = randn([3 k, Z]), row r = (r / k, r % k).
  const double bound = eval::iwae_nll(vae, x, k, g1, {.chunk = 100});
  NoGradGuard no_grad;
  const Tensor<double> e = vae.encoder(V(x)).value();
  const Tensor<double> eps = randn<double>(Shape{3 * k, kZ}, g2);
  double total = 0;
  for (std::int64_t i = 0; i < 3; ++i) {
    std::vector<double> log_w;
    for (std::int64_t s = 0; s < k; ++s) {
      Tensor<double> z0(Shape{1, kZ}), h(Shape{1, kH});
      double log_q0 = 0;
      for (std::int64_t j = 0; j < kZ; ++j) {
        const double mu = e(i, j), lv = e(i, kZ + j);
        z0(0, j) = mu + std::exp(0.5 * lv) * eps(i * k + s, j);
        log_q0 += log_normal(z0(0, j), mu, lv);
      }
      for (std::int64_t j = 0; j < kH; ++j) h(0, j) = e(i, 2 * kZ + j);
      const auto r = vae.flow.forward(V(z0), V(h));
      double log_pz = 0;
      for (std::int64_t j = 0; j < kZ; ++j) log_pz += log_normal(r.y.value()(0, j), 0, 0);
      const double lpx = dist::Bernoulli{}.log_prob(vae.decoder(r.y), V(x.rows(i, 1))).item();
      log_w.push_back(lpx + log_pz - (log_q0 - r.logdet.value()[0]));
    }
    const double m = *std::max_element(log_w.begin(), log_w.end());
    double acc = 0;
    for (double w : log_w) acc += std::exp(w - m);
    total += -(m + std::log(acc / k)) / 3;
  }
  CHECK(bound == Approx(total).epsilon(1e-10));
  // And the bound tightens in expectation: k = 200 is at most the one-sample bound (by a margin).
  Generator g3(17), g4(17);
  const double one = eval::iwae_nll(vae, x, 1, g3), many = eval::iwae_nll(vae, x, 200, g4);
  CHECK(many <= one);
}

TEST_CASE("FlowVAE: gradients of every parameter (encoder, flow, decoder) against central differences",
          "[models][flowvae][gradcheck]") {
  manual_seed(7);
  FlowVae vae = model();
  Generator gd(8);
  const Tensor<double> x = rand<double>({3, kD}, gd);
  test::expect_module_gradients(vae, [&] {
    Generator g(21);  // the same noise at every evaluation
    return vae.negative_elbo(V(x), g);
  });
}

TEST_CASE("FlowVAE: samples, reconstructions, interpolation and the contracts", "[models][flowvae]") {
  static_assert(models::LatentVariableModel<FlowVae>);
  static_assert(flows::PosteriorFlowType<flows::PosteriorFlow<double>>);
  static_assert(flows::PosteriorFlowType<flows::PlanarFlow<double>>);
  manual_seed(9);
  FlowVae vae = model();
  CHECK(vae.latent_dim() == kZ);
  const Tensor<double> s = vae.sample(6);
  CHECK(s.shape() == (Shape{6, kD}));
  for (double v : s) CHECK((v > 0 && v < 1));
  Generator gd(10);
  const Tensor<double> x = rand<double>({2, kD}, gd);
  CHECK(vae.reconstruct(V(x)).shape() == (Shape{2, kD}));
  CHECK(vae.interpolate(x.rows(0, 1), x.rows(1, 1), 4).shape() == (Shape{4, kD}));
  const auto names = vae.named_parameters();
  CHECK(names.front().name.rfind("encoder.", 0) == 0);
  CHECK(std::any_of(names.begin(), names.end(), [](const auto& p) { return p.name == "flow.steps.1.theta"; }));
  CHECK(names.back().name.rfind("decoder.", 0) == 0);
}

TEST_CASE("FlowVAE: errors say what was expected", "[models][flowvae][errors]") {
  manual_seed(11);
  // The encoder must give 2Z + H = 8 columns.
  FlowVae wrong(mlp(kD, 8, 2 * kZ), mlp(kZ, 8, kD), mixed_flow());
  CHECK_THROWS_WITH(wrong.loss(V(zeros<double>({2, kD}))), Catch::Contains("encoder's output [N, 8]") &&
                                                               Catch::Contains("context of 2") &&
                                                               Catch::Contains("got [2, 6]"));
  CHECK_THROWS_WITH(FlowVae(mlp(kD, 8, 8), mlp(kZ, 8, kD), mixed_flow(), {}, {.latent_dim = 4}),
                    Catch::Contains("latent_dim") && Catch::Contains("3 (the posterior flow's code size)"));
  CHECK_THROWS_WITH(FlowVae(mlp(kD, 8, 8), mlp(kZ, 8, kD), mixed_flow(), {}, {.beta = -1}), Catch::Contains("beta"));
  FlowVae vae = model();
  CHECK_THROWS_WITH(vae.sample(2, 0.0), Catch::Contains("temperature"));
}

}  // namespace models_flow_vae_test
