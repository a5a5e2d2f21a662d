#include "support/gradcheck.hpp"

namespace autodiff_ops_activation_test {

using namespace genmod;
using genmod::test::away_from_zero;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("relu, leaky_relu, elu", "[gradcheck][ops]") {
  auto x = away_from_zero({4, 5}, 1);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return relu(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return leaky_relu(v[0], 0.2); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return elu(v[0], 1.3); }, x);
}

TEST_CASE("sigmoid, tanh, softplus, log_sigmoid", "[gradcheck][ops]") {
  auto x = rnd({4, 5}, 2, 2.0);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return sigmoid(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return tanh(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return softplus(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return log_sigmoid(v[0]); }, x);
}

TEST_CASE("Stable activations stay finite and exact at +-80", "[ops][stability]") {
  for (float v : {-80.f, 80.f, -200.f, 200.f}) {
    Var<float> x(full<float>({17}, v));  // 17: one SIMD batch plus a scalar tail
    const float sp = softplus(x).value()[16], ls = log_sigmoid(x).value()[16], sg = sigmoid(x).value()[16];
    const float sp0 = softplus(x).value()[0];
    CHECK(std::isfinite(sp));
    CHECK(std::isfinite(ls));
    CHECK(std::isfinite(sg));
    CHECK(sp == sp0);
    if (v > 0) {
      CHECK(sp == Approx(v));
      CHECK(ls == Approx(0.0).margin(1e-30));
      CHECK(sg == 1.f);
    } else {
      // e^v is 1.8e-35 at v = -80 (a normal float) and underflows to 0 at v = -200.
      const double tiny = std::exp(static_cast<double>(v));
      CHECK(sp == Approx(tiny).epsilon(1e-5).margin(1e-40));
      CHECK(ls == Approx(v));
      CHECK(sg == Approx(tiny).epsilon(1e-5).margin(1e-40));
    }
  }
  // Gradients at the extremes are finite too.
  Tape<float> tape;
  auto x = tape.leaf(from_data<float>({4}, {-80.f, 80.f, -200.f, 200.f}));
  auto g = tape.grad(sum(softplus(x) + log_sigmoid(x) + sigmoid(x) + tanh(x)), {x})[0].value();
  for (float v : g) CHECK(std::isfinite(v));
  CHECK(g[0] == Approx(1.0f));   // softplus' -> 0, log_sigmoid' -> 1
  CHECK(g[1] == Approx(1.0f));   // softplus' -> 1, log_sigmoid' -> 0
}

TEST_CASE("Activation forward values", "[ops]") {
  V x(from_data<double>({4}, {-2.0, -0.5, 0.5, 2.0}));
  auto r = relu(x).value();
  CHECK(r[0] == 0.0);
  CHECK(r[3] == 2.0);
  CHECK(leaky_relu(x, 0.1).value()[0] == Approx(-0.2));
  CHECK(elu(x, 1.0).value()[0] == Approx(std::exp(-2.0) - 1.0));
  CHECK(sigmoid(x).value()[2] == Approx(1.0 / (1.0 + std::exp(-0.5))));
  CHECK(softplus(x).value()[1] == Approx(std::log1p(std::exp(-0.5))));
}

}  // namespace autodiff_ops_activation_test
