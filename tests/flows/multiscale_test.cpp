// The multiscale and Glow steps: Squeeze, FactorOut, ActNorm, Invertible1x1Conv. Each:
// inverse(forward(x)) = x in double and the log-determinant against the tape's Jacobian, at
// random parameters; plus what each step promises of its own (ActNorm's initialisation, the LU
// factorisation's rotation at the start, the factored channels passing unchanged).
#include <catch2/catch.hpp>

#include <cmath>

#include "genmod/flows/flows.hpp"
#include "genmod/nn/nn.hpp"
#include "support/flow_checks.hpp"

namespace flows_multiscale_test {

using namespace genmod;
using V = Var<double>;
using Net = nn::DynamicSequential<double>;
using test::check_bijector;

namespace {

template <class M>
void randomize(M& m, std::uint64_t seed, double scale = 0.3) {
  test::randomize_parameters(m, seed, scale);
}

Net conv_net(std::int64_t c, std::int64_t out) {
  return Net{nn::Conv2d<double>(c, 4, 3, {.padding = 1}), nn::Tanh<double>(),
             nn::Conv2d<double>(4, out, 3, {.padding = 1})};
}

}  // namespace

TEST_CASE("Squeeze: a permutation (log-det 0), inverse, odd sizes refused", "[flows][jacobian]") {
  flows::Squeeze<double> step;
  const Tensor<double> x = test::rnd({2, 2, 4, 2}, 1);
  check_bijector(step, x);
  NoGradGuard no_grad;
  CHECK(step.forward(V(x)).y.shape() == (Shape{2, 8, 2, 1}));
  CHECK_THROWS_WITH(step.forward(V(zeros<double>({1, 1, 3, 4}))), Catch::Contains("even height and width"));
}

TEST_CASE("ActNorm: data-dependent initialisation, then a plain affine step", "[flows][jacobian]") {
  flows::ActNorm<double> step(Shape{3, 2, 2});
  Tensor<double> x = test::rnd({5, 3, 2, 2}, 2, 2.0);
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] += static_cast<double>((i / 4) % 3);  // channel offsets
  REQUIRE_FALSE(step.initialized());
  {
    NoGradGuard no_grad;
    const Tensor<double> y = step.forward(V(x)).y.value();
    REQUIRE(step.initialized());
    for (std::int64_t c = 0; c < 3; ++c) {
      double m = 0, v = 0;
      for (std::int64_t n = 0; n < 5; ++n)
        for (std::int64_t j = 0; j < 4; ++j) m += y((n * 3 + c) * 4 + j);
      m /= 20;
      for (std::int64_t n = 0; n < 5; ++n)
        for (std::int64_t j = 0; j < 4; ++j) v += std::pow(y((n * 3 + c) * 4 + j) - m, 2);
      CHECK(m == Approx(0).margin(1e-12));
      CHECK(v / 20 == Approx(1).epsilon(1e-5));
    }
  }
  const Tensor<double> b0 = step.bias.value().clone();
  check_bijector(step, test::rnd({2, 3, 2, 2}, 3), 0.1);  // a second batch does not initialise again
  CHECK(step.bias.value()[0] == b0[0]);
  auto buffers = step.named_buffers();
  REQUIRE(buffers.size() == 1);
  CHECK(buffers[0].name == "initialized");

  // In eval mode an uninitialised ActNorm stays the identity; on vectors the scale is per feature.
  flows::ActNorm<double> vec(Shape{4});
  vec.eval();
  {
    NoGradGuard no_grad;
    CHECK(vec.forward(V(x.reshape({5, 12}).rows(0, 5).clone().reshape({15, 4}))).logdet.value()[0] == 0);
  }
  CHECK_FALSE(vec.initialized());
  vec.train();
  randomize(vec, 4);
  check_bijector(vec, test::rnd({3, 4}, 5), 0.1);
  CHECK_THROWS_WITH(flows::ActNorm<double>(Shape{2, 3}), Catch::Contains("[C] or [C, H, W]"));
}

TEST_CASE("Invertible1x1Conv: starts as a rotation, LU log-det against the Jacobian", "[flows][jacobian]") {
  Generator g(6);
  flows::Invertible1x1Conv<double> step(Shape{3, 2, 2}, &g);
  double sum_log_s = 0;
  for (double v : step.log_s.value()) sum_log_s += v;
  CHECK(sum_log_s == Approx(0).margin(1e-12));  // |det| of a rotation is 1
  {
    NoGradGuard no_grad;
    const Tensor<double> w = step.weight().value();  // W W^T = I
    for (std::int64_t r = 0; r < 3; ++r)
      for (std::int64_t c = 0; c < 3; ++c) {
        double dot = 0;
        for (std::int64_t k = 0; k < 3; ++k) dot += w(r, k) * w(c, k);
        CHECK(dot == Approx(r == c ? 1.0 : 0.0).margin(1e-12));
      }
  }
  randomize(step, 7, 0.4);
  check_bijector(step, test::rnd({2, 3, 2, 2}, 8), 0.1);
  flows::Invertible1x1Conv<double> vec(Shape{5}, &g);
  randomize(vec, 9, 0.4);
  check_bijector(vec, test::rnd({3, 5}, 10), 0.1);
  test::expect_module_gradients(vec, [&] { return vec.forward(V(test::rnd({3, 5}, 11))).y; });
  CHECK_THROWS_WITH(flows::Invertible1x1Conv<double>(Shape{1, 4, 4}), Catch::Contains("dimension 0 >= 2"));
}

TEST_CASE("FactorOut: the kept channels pass, the inner flow runs on the rest at a coarser scale",
          "[flows][jacobian]") {
  // [2, 4, 4]: keep channel 0; the inner flow squeezes channel 1 to [4, 2, 2] and couples it.
  flows::FlowSequence<double> inner;
  inner.push_back(flows::Squeeze<double>());
  inner.push_back(flows::AffineCoupling<Net>(conv_net(4, 8), flows::channel_mask<double>(Shape{4, 2, 2})));
  flows::FactorOut<double> step(Shape{2, 4, 4}, 1, inner, Shape{4, 2, 2});
  randomize(step, 12);
  const Tensor<double> x = test::rnd({2, 2, 4, 4}, 13);
  check_bijector(step, x, 1e-3);
  NoGradGuard no_grad;
  const Tensor<double> y = step.forward(V(x)).y.value();
  for (std::int64_t n = 0; n < 2; ++n)
    for (std::int64_t j = 0; j < 16; ++j) CHECK(y(n, 0, j / 4, j % 4) == x(n, 0, j / 4, j % 4));
  CHECK(step.named_parameters()[0].name == "inner.steps.1.net.0.weight");
  CHECK_THROWS_WITH(flows::FactorOut<double>(Shape{2, 4, 4}, 1, inner, Shape{4, 2, 3}),
                    Catch::Contains("as many elements as the 1 remaining channels (16)"));
  CHECK_THROWS_WITH(flows::FactorOut<double>(Shape{2, 4, 4}, 2, inner, Shape{4, 2, 2}), Catch::Contains("kept"));
}

}  // namespace flows_multiscale_test
