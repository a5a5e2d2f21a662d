// The posterior flows of a VAE (flows/posterior_flow.hpp): planar, radial and the context affine
// coupling, global and amortized. Each: its log-determinant against log |det| of the tape's
// Jacobian of z -> f(z; h) in double at random parameters; what each promises of its own (planar's
// invertibility constraint, radial's bounds, the coupling's kept dimensions); parameter gradients
// against central differences; the chain's bookkeeping and its errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "genmod/flows/context_coupling.hpp"
#include "genmod/flows/planar.hpp"
#include "genmod/flows/posterior_flow.hpp"
#include "genmod/flows/radial.hpp"
#include "support/flow_checks.hpp"

namespace flows_posterior_flow_test {

using namespace genmod;
using V = Var<double>;
using test::check_posterior_step;

TEST_CASE("PlanarFlow: log-det against the Jacobian, global and amortized", "[flows][posterior][jacobian]") {
  manual_seed(1);
  for (std::int64_t d : {1, 3, 8}) {
    INFO("Z = " << d);
    const Tensor<double> z = test::rnd({4, d}, 10, 1.5), h = test::rnd({4, 5}, 11);
    flows::PlanarFlow<double> global(d);
    test::randomize_parameters(global, 20, 1.5);
    check_posterior_step(global, z, Tensor<double>(), 1e-3);
    flows::PlanarFlow<double> amortized(d, {.context_dim = 5});
    test::randomize_parameters(amortized, 30, 0.8);
    check_posterior_step(amortized, z, h, 1e-3);
  }
}

TEST_CASE("PlanarFlow: w . u^ = m(w . u) >= -1 at random parameters; the log-det stays finite", "[flows][posterior]") {
  Generator g(7);
  for (int trial = 0; trial < 200; ++trial) {
    const double spread = trial < 100 ? 1.0 : 10.0;  // also large, anti-aligned w and u
    Tensor<double> w = randn<double>(Shape{1, 6}, g), u = randn<double>(Shape{1, 6}, g);
    for (auto& v : w) v *= spread;
    for (std::int64_t i = 0; i < 6; ++i) u[i] = -spread * w[i] + u[i];
    double wu = 0;
    for (std::int64_t i = 0; i < 6; ++i) wu += w[i] * u[i];
    NoGradGuard no_grad;
    const Tensor<double> u_hat = flows::PlanarFlow<double>::constrained_u(V(w), V(u)).value();
    double w_uhat = 0;
    for (std::int64_t i = 0; i < 6; ++i) w_uhat += w[i] * u_hat[i];
    const double m = -1 + std::log1p(std::exp(wu));  // m(a) = -1 + softplus(a)
    INFO("trial " << trial << ", w . u = " << wu);
    // In exact arithmetic w . u^ = m > -1; computed, it carries the rounding of w . u (|w . u| eps).
    const double rounding = 1e-14 * std::max(1.0, std::abs(wu));
    CHECK(w_uhat == Approx(m).margin(rounding));
    CHECK(w_uhat >= -1 - rounding);
  }
  // The worst case for the log-det, tanh' at its largest (w . z + b = 0) and w . u very negative:
  // the determinant 1 + m(w . u) = softplus(w . u) is small but positive, and the log-det its log
  // (1 + m would lose every digit: m = -1 + 9.4e-14).
  flows::PlanarFlow<double> step(2);
  step.named_parameters()[0].parameter.value().copy_from(from_data<double>({1, 5}, {1, 0, -30, 0, 0}));
  NoGradGuard no_grad;
  const auto r = step.forward(V(zeros<double>({1, 2})), V());
  CHECK(std::isfinite(r.logdet.value()[0]));
  CHECK(r.logdet.value()[0] == Approx(std::log(std::log1p(std::exp(-30.0)))).epsilon(1e-12));
}

TEST_CASE("RadialFlow: log-det against the Jacobian, global and amortized", "[flows][posterior][jacobian]") {
  manual_seed(2);
  for (std::int64_t d : {1, 4, 9}) {
    INFO("Z = " << d);
    const Tensor<double> z = test::rnd({4, d}, 12, 1.5), h = test::rnd({4, 3}, 13);
    flows::RadialFlow<double> global(d);
    test::randomize_parameters(global, 40, 1.5);
    check_posterior_step(global, z, Tensor<double>(), 1e-3);
    flows::RadialFlow<double> amortized(d, {.context_dim = 3});
    test::randomize_parameters(amortized, 50, 0.8);
    check_posterior_step(amortized, z, h, 1e-3);
  }
}

TEST_CASE("RadialFlow: beta >= -alpha keeps both log arguments positive", "[flows][posterior]") {
  // c very negative: beta -> -alpha, the strongest contraction; z near the centre: h -> 1 / alpha.
  flows::RadialFlow<double> step(3);
  step.named_parameters()[0].parameter.value().copy_from(from_data<double>({1, 5}, {0.5, -0.5, 0.25, 2.0, -40}));
  NoGradGuard no_grad;
  const Tensor<double> z = from_data<double>({2, 3}, {0.5 + 1e-6, -0.5, 0.25, 3, 3, 3});
  const auto r = step.forward(V(z), V());
  for (std::int64_t i = 0; i < 2; ++i) CHECK(std::isfinite(r.logdet.value()[i]));
  CHECK(r.logdet.value()[0] < -1);  // a strong contraction near the centre
}

TEST_CASE("ContextAffineCoupling: log-det against the Jacobian, kept dimensions unchanged",
          "[flows][posterior][jacobian]") {
  const std::int64_t d = 6;
  const Tensor<double> z = test::rnd({3, d}, 14), h = test::rnd({3, 4}, 15);
  for (auto bound : {flows::ScaleBound::tanh, flows::ScaleBound::sigmoid, flows::ScaleBound::exp}) {
    for (auto parity : {flows::MaskParity::first, flows::MaskParity::second}) {
      INFO("bound " << static_cast<int>(bound) << ", parity " << static_cast<int>(parity));
      const Tensor<double> mask = flows::alternating_mask<double>(d, parity);
      flows::ContextAffineCoupling<double> step(mask, {.hidden = 8, .context_dim = 4, .bound = bound});
      test::randomize_parameters(step, 60 + static_cast<std::uint64_t>(bound), 0.5);
      check_posterior_step(step, z, h, 1e-3);
      NoGradGuard no_grad;
      const Tensor<double> y = step.forward(V(z), V(h)).y.value();
      for (std::int64_t n = 0; n < 3; ++n)
        for (std::int64_t i = 0; i < d; ++i)
          if (mask[i] == 1) CHECK(y(n, i) == z(n, i));
    }
  }
  // Without a context the conditioner reads the kept dimensions only.
  flows::ContextAffineCoupling<double> plain(flows::halves_mask<double>(d), {.hidden = 8});
  test::randomize_parameters(plain, 70, 0.5);
  check_posterior_step(plain, z, Tensor<double>(), 1e-3);
}

TEST_CASE("Posterior flows: parameter gradients against central differences", "[flows][posterior][gradcheck]") {
  manual_seed(3);
  const Tensor<double> z = test::rnd({3, 4}, 16), h = test::rnd({3, 2}, 17);
  flows::PosteriorFlow<double> chain(4);
  chain.push_back(flows::PlanarFlow<double>(4, {.context_dim = 2}));
  chain.push_back(flows::RadialFlow<double>(4));
  chain.push_back(
      flows::ContextAffineCoupling<double>(flows::alternating_mask<double>(4), {.hidden = 6, .context_dim = 2}));
  chain.push_back(flows::PlanarFlow<double>(4));
  test::randomize_parameters(chain, 80, 0.5);
  test::expect_module_gradients(chain, [&] {
    auto r = chain.forward(V(z), V(h));
    return add(sum(r.y, 1), r.logdet);
  });
  // And through z and h themselves, at first and second order.
  test::expect_gradients(
      [&](std::span<const V> in) {
        auto r = chain.forward(in[0], in[1]);
        return add(sum(square(r.y)), sum(r.logdet));
      },
      z, h);
}

TEST_CASE("PosteriorFlow: sums the steps' log-dets, names the steps, refuses mismatches", "[flows][posterior]") {
  manual_seed(4);
  const Tensor<double> z = test::rnd({5, 3}, 18), h = test::rnd({5, 2}, 19);
  flows::PosteriorFlow<double> empty(3);
  {
    NoGradGuard no_grad;
    const auto r = empty.forward(V(z), V());
    CHECK(r.logdet.value()[0] == 0);
    CHECK(r.y.value()(2, 1) == z(2, 1));
  }
  flows::PosteriorFlow<double> chain(3);
  chain.push_back(flows::PlanarFlow<double>(3));
  chain.push_back(flows::RadialFlow<double>(3, {.context_dim = 2}));
  test::randomize_parameters(chain, 90, 0.7);
  CHECK(chain.context_dim() == 2);
  CHECK(chain.size() == 2);
  check_posterior_step(chain, z, h, 1e-3);
  const auto names = chain.named_parameters();
  REQUIRE(names.size() == 3);
  CHECK(names[0].name == "steps.0.theta");
  CHECK(names[1].name == "steps.1.weight");

  CHECK_THROWS_WITH(chain.push_back(flows::PlanarFlow<double>(4)),
                    Catch::Contains("code size") && Catch::Contains("3 (the chain's)") && Catch::Contains("got 4"));
  CHECK_THROWS_WITH(chain.push_back(flows::PlanarFlow<double>(3, {.context_dim = 5})),
                    Catch::Contains("context size") && Catch::Contains("got 5"));
  CHECK_THROWS_WITH(chain.forward(V(zeros<double>({5, 4})), V(h)),
                    Catch::Contains("code size Z") && Catch::Contains("[5, 4]"));
  CHECK_THROWS_WITH(chain.forward(V(z), V()), Catch::Contains("a context [N, 2]") && Catch::Contains("none"));
  CHECK_THROWS_WITH(chain.forward(V(z), V(zeros<double>({4, 2}))), Catch::Contains("one context row per code"));
  CHECK_THROWS_WITH(flows::PlanarFlow<double>(0), Catch::Contains("dim") && Catch::Contains("got 0"));
  CHECK_THROWS_WITH(flows::RadialFlow<double>(2, {.context_dim = -1}), Catch::Contains("context_dim"));
  CHECK_THROWS_WITH(flows::PosteriorFlow<double>(0), Catch::Contains("dim"));
}

}  // namespace flows_posterior_flow_test
