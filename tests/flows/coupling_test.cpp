// The flow steps: masks, affine and additive couplings, scaling, the logit transform and
// dequantization. Each differentiable step: inverse(forward(x)) = x in double, and its
// log-determinant against log |det| of the whole Jacobian built by the tape, at random parameters
// (not the identity a coupling starts as).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "genmod/flows/flows.hpp"
#include "genmod/nn/nn.hpp"
#include "support/flow_checks.hpp"

namespace flows_coupling_test {

using namespace genmod;
using V = Var<double>;
using Net = nn::DynamicSequential<double>;
using test::check_bijector;

namespace {

template <class M>
void randomize(M& m, std::uint64_t seed, double scale = 0.5) {
  test::randomize_parameters(m, seed, scale);
}

std::vector<double> values(const Tensor<double>& t) {
  return {t.begin(), t.end()};
}

Net mlp(std::int64_t in, std::int64_t out) {
  return Net{nn::Linear<double>(in, 16), nn::Tanh<double>(), nn::Linear<double>(16, out)};
}

Net conv_net(std::int64_t c, std::int64_t out) {
  return Net{nn::Conv2d<double>(c, 6, 3, {.padding = 1}), nn::Tanh<double>(),
             nn::Conv2d<double>(6, out, 3, {.padding = 1})};
}

}  // namespace

TEST_CASE("Masks: halves, alternating, checkerboard, channels, complement", "[flows][masks]") {
  CHECK(values(flows::halves_mask<double>(5)) == std::vector<double>{1, 1, 0, 0, 0});
  CHECK(values(flows::halves_mask<double>(4, flows::MaskParity::second)) == std::vector<double>{0, 0, 1, 1});
  CHECK(values(flows::alternating_mask<double>(5)) == std::vector<double>{1, 0, 1, 0, 1});
  CHECK(values(flows::alternating_mask<double>(4, flows::MaskParity::second)) == std::vector<double>{0, 1, 0, 1});
  const auto board = flows::checkerboard_mask<double>(Shape{2, 2, 3});
  CHECK(values(board) == std::vector<double>{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
  CHECK(values(flows::checkerboard_mask<double>(Shape{2, 2}, flows::MaskParity::second)) ==
        std::vector<double>{0, 1, 1, 0});
  CHECK(values(flows::channel_mask<double>(Shape{3, 1, 2})) == std::vector<double>{1, 1, 0, 0, 0, 0});
  CHECK(values(flows::complement(board)) == std::vector<double>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1});

  CHECK_THROWS_WITH(flows::checkerboard_mask<double>(Shape{4}), Catch::Contains("[H, W] or [C, H, W]"));
  CHECK_THROWS_WITH(flows::channel_mask<double>(Shape{1, 4, 4}),
                    Catch::Contains("dimension 0 >= 2, got shape [1, 4, 4]"));
  CHECK_THROWS_WITH(flows::halves_mask<double>(1), Catch::Contains("d >= 2, got 1"));
  CHECK_THROWS_WITH(flows::AffineCoupling<Net>(mlp(3, 6), from_data<double>({3}, {1, 0.5, 0})),
                    Catch::Contains("entries 0 or 1") && Catch::Contains("0.5 at index 1"));
  CHECK_THROWS_WITH(flows::AdditiveCoupling<Net>(mlp(3, 3), ones<double>({3})),
                    Catch::Contains("both kept (1) and transformed (0)"));
}

TEST_CASE("AffineCoupling on vectors: inverse and log-det against the Jacobian, every scale bound",
          "[flows][jacobian]") {
  const std::int64_t d = 7;
  const Tensor<double> x = test::rnd({3, d}, 11);
  for (auto bound : {flows::ScaleBound::tanh, flows::ScaleBound::sigmoid, flows::ScaleBound::exp}) {
    for (auto parity : {flows::MaskParity::first, flows::MaskParity::second}) {
      INFO("bound " << static_cast<int>(bound) << ", parity " << static_cast<int>(parity));
      flows::AffineCoupling<Net> step(mlp(d, 2 * d), flows::alternating_mask<double>(d, parity), {.bound = bound});
      randomize(step, 20 + static_cast<std::uint64_t>(bound));
      check_bijector(step, x, 1e-3);
    }
  }
}

TEST_CASE("AffineCoupling on images: checkerboard and channel masks with a convolutional conditioner",
          "[flows][jacobian]") {
  const Shape event{2, 4, 4};
  const Tensor<double> x = test::rnd({2, 2, 4, 4}, 12);
  for (const Tensor<double>& mask :
       {flows::checkerboard_mask<double>(event), flows::checkerboard_mask<double>(event, flows::MaskParity::second),
        flows::channel_mask<double>(event), flows::channel_mask<double>(event, flows::MaskParity::second)}) {
    flows::AffineCoupling<Net> step(conv_net(2, 4), mask);
    randomize(step, 30, 0.3);
    check_bijector(step, x, 1e-3);
  }
}

TEST_CASE("AffineCoupling: the kept dimensions pass unchanged, the log-scale is bounded", "[flows]") {
  const std::int64_t d = 6;
  const Tensor<double> mask = flows::halves_mask<double>(d);
  flows::AffineCoupling<Net> tanh_step(mlp(d, 2 * d), mask);
  flows::AffineCoupling<Net> sigmoid_step(mlp(d, 2 * d), mask, {.bound = flows::ScaleBound::sigmoid});
  randomize(tanh_step, 40, 3.0);  // large raw log-scales
  randomize(sigmoid_step, 41, 3.0);
  tanh_step.scale.value().fill(0.7);
  const Tensor<double> x = test::rnd({4, d}, 13, 3.0);
  NoGradGuard no_grad;
  const Tensor<double> y = tanh_step.forward(V(x)).y.value();
  const Tensor<double> s_tanh = tanh_step.log_scale(V(x)).value(), s_sig = sigmoid_step.log_scale(V(x)).value();
  for (std::int64_t n = 0; n < 4; ++n)
    for (std::int64_t i = 0; i < d; ++i) {
      if (mask[i] == 1) {
        CHECK(y(n, i) == x(n, i));
        CHECK(s_tanh(n, i) == 0);
      } else {
        CHECK(std::abs(s_tanh(n, i)) <= 0.7 + 1e-12);
        CHECK(s_sig(n, i) < 0);
      }
    }
  // Parameters: the conditioner's and the learned bound (tanh only); the mask is a buffer.
  CHECK(tanh_step.named_parameters().size() == 5);
  CHECK(sigmoid_step.named_parameters().size() == 4);
  CHECK(tanh_step.named_buffers().size() == 1);
}

TEST_CASE("AffineCoupling: gradients of the parameters through forward and inverse", "[flows][gradcheck]") {
  const std::int64_t d = 4;
  flows::AffineCoupling<Net> step(mlp(d, 2 * d), flows::alternating_mask<double>(d));
  randomize(step, 50);
  const Tensor<double> x = test::rnd({3, d}, 14);
  test::expect_module_gradients(step, [&] {
    auto r = step.forward(V(x));
    return add(sum(r.y, 1), r.logdet);
  });
  test::expect_module_gradients(step, [&] { return step.inverse(V(x)); });
}

TEST_CASE("AffineCoupling: the composed ops (fused = false) give the fused op's values and gradients",
          "[flows][jacobian]") {
  const std::int64_t d = 6;
  const Tensor<double> x = test::rnd({3, d}, 15), wy = test::rnd({3, d}, 16), wl = test::rnd({3}, 17);
  for (auto bound : {flows::ScaleBound::tanh, flows::ScaleBound::sigmoid, flows::ScaleBound::exp}) {
    INFO("bound " << static_cast<int>(bound));
    flows::AffineCoupling<Net> fused(mlp(d, 2 * d), flows::alternating_mask<double>(d), {.bound = bound});
    flows::AffineCoupling<Net> composed(mlp(d, 2 * d), flows::alternating_mask<double>(d),
                                        {.bound = bound, .fused = false});
    CHECK(fused.fused());
    CHECK_FALSE(composed.fused());
    randomize(fused, 60);  // the same seed over the same structure: the same parameters
    randomize(composed, 60);
    if (bound == flows::ScaleBound::tanh) {
      for (std::int64_t i = 0; i < d; ++i) fused.scale.value()[i] = composed.scale.value()[i] = 0.5 + 0.1 * i;
    }
    check_bijector(composed, x, 1e-3);
    // y, logdet and every gradient of a loss that weighs both, from the two forms.
    auto run = [&](flows::AffineCoupling<Net>& step) {
      step.zero_grad();
      Tape<double> tape;
      Parameter<double> xv(x.clone());  // a leaf with a gradient
      auto r = step.forward(xv.var());
      tape.backward(add(sum(mul(r.y, V(wy))), sum(mul(r.logdet, V(wl)))));
      std::vector<Tensor<double>> out{r.y.value().clone(), r.logdet.value().clone(), xv.grad().clone()};
      for (auto& p : step.parameters()) out.push_back(p.grad().clone());
      return out;
    };
    const auto a = run(fused), b = run(composed);
    REQUIRE(a.size() == b.size());
    for (std::size_t k = 0; k < a.size(); ++k) {
      INFO("output " << k << " (y, logdet, dx, then the parameters' gradients)");
      REQUIRE(a[k].shape() == b[k].shape());
      for (std::int64_t i = 0; i < a[k].numel(); ++i) CHECK(a[k][i] == Approx(b[k][i]).epsilon(1e-12).margin(1e-12));
    }
  }
}

TEST_CASE("AffineCoupling: shape errors name what was expected", "[flows][errors]") {
  flows::AffineCoupling<Net> wrong_net(mlp(4, 4), flows::halves_mask<double>(4));  // outputs D, not 2D
  CHECK_THROWS_WITH(wrong_net.forward(V(zeros<double>({2, 4}))),
                    Catch::Contains("expected the conditioner's output [2, 8]") && Catch::Contains("got [2, 4]"));
  flows::AffineCoupling<Net> step(mlp(4, 8), flows::halves_mask<double>(4));
  CHECK_THROWS_WITH(step.forward(V(zeros<double>({2, 5}))),
                    Catch::Contains("samples of shape [4]") && Catch::Contains("[2, 5]"));
  CHECK_THROWS_AS(step.inverse(V(zeros<double>({4}))), ShapeError);
}

TEST_CASE("AdditiveCoupling: volume preserving, inverse, Jacobian", "[flows][jacobian]") {
  const std::int64_t d = 6;
  flows::AdditiveCoupling<Net> step(mlp(d, d), flows::alternating_mask<double>(d));
  randomize(step, 60);
  const Tensor<double> x = test::rnd({3, d}, 15);
  check_bijector(step, x);
  NoGradGuard no_grad;
  auto r = step.forward(V(x));
  for (std::int64_t i = 0; i < 3; ++i) CHECK(r.logdet.value()[i] == 0);
  CHECK(r.y.value()(0, 0) == x(0, 0));          // kept
  CHECK(r.y.value()(0, 1) != Approx(x(0, 1)));  // shifted
  flows::AdditiveCoupling<Net> wrong(mlp(d, 2 * d), flows::alternating_mask<double>(d));
  CHECK_THROWS_WITH(wrong.forward(V(x)), Catch::Contains("the input's shape [3, 6]"));
}

TEST_CASE("Scaling: log-det sum(s) for every sample, Jacobian, inverse", "[flows][jacobian]") {
  flows::Scaling<double> step(Shape{5});
  step.log_scale.value().copy_from(from_data<double>({5}, {0.3, -0.7, 1.1, 0.0, -0.2}));
  const Tensor<double> x = test::rnd({2, 5}, 16);
  check_bijector(step, x, 0.4);
  NoGradGuard no_grad;
  CHECK(step.forward(V(x)).logdet.value()[1] == Approx(0.5));
  CHECK_THROWS_WITH(flows::Scaling<double>(Shape{}), Catch::Contains("at least one dimension"));
}

TEST_CASE("Scaling with data_init: unit standard deviation per dimension after the first batch", "[flows]") {
  flows::Scaling<double> step(Shape{3}, {.data_init = true});
  Tensor<double> x = test::rnd({50, 3}, 19);
  for (std::int64_t n = 0; n < 50; ++n) {
    x(n, 0) *= 0.01;  // a nearly constant pixel
    x(n, 2) *= 7.0;
  }
  NoGradGuard no_grad;
  const Tensor<double> y = step.forward(V(x)).y.value();
  REQUIRE(step.initialized());
  for (std::int64_t i = 0; i < 3; ++i) {
    double m = 0, v = 0;
    for (std::int64_t n = 0; n < 50; ++n) m += y(n, i) / 50;
    for (std::int64_t n = 0; n < 50; ++n) v += (y(n, i) - m) * (y(n, i) - m) / 50;
    CHECK(std::sqrt(v) == Approx(1).epsilon(1e-3));
  }
  const double s0 = step.log_scale.value()[0];
  CHECK(s0 > 4);
  step.forward(V(test::rnd({4, 3}, 20)));  // initialised once
  CHECK(step.log_scale.value()[0] == s0);
  CHECK(step.named_buffers().size() == 1);
  flows::Scaling<double> plain(Shape{3});
  plain.forward(V(x));
  CHECK(plain.log_scale.value()[0] == 0);
  CHECK(plain.named_buffers().empty());
}

TEST_CASE("LogitTransform: Jacobian, inverse, range errors", "[flows][jacobian]") {
  flows::LogitTransform<double> step(0.05);
  Tensor<double> x = test::uni({3, 6}, 17, 0.0, 1.0);
  x[0] = 0.0;  // the ends are allowed: alpha keeps them finite
  x[1] = 1.0;
  check_bijector(step, x);
  // Closed form of the log-det for one sample.
  NoGradGuard no_grad;
  const Tensor<double> ld = step.forward(V(x)).logdet.value();
  double expect = 0;
  for (std::int64_t i = 0; i < 6; ++i) {
    const double p = 0.05 + 0.9 * x[i];
    expect += std::log(0.9) - std::log(p) - std::log(1 - p);
  }
  CHECK(ld[0] == Approx(expect).epsilon(1e-12));
  Tensor<double> bad = x.clone();
  bad[7] = 1.5;
  CHECK_THROWS_WITH(step.forward(V(bad)), Catch::Contains("values in [0, 1]") && Catch::Contains("1.5 at index 7"));
  CHECK_THROWS_WITH(flows::LogitTransform<double>(0.5), Catch::Contains("alpha"));
}

TEST_CASE("Dequantize: noise within each pixel's bin, exact inverse, log-det -D log L", "[flows]") {
  flows::Dequantize<double> step({.levels = 256, .seed = 3});
  Tensor<double> x({2, 5});
  for (std::int64_t i = 0; i < 10; ++i) x[i] = static_cast<double>((i * 53) % 256) / 255.0;
  x[0] = 0;
  x[9] = 1;
  NoGradGuard no_grad;
  auto r1 = step.forward(V(x));
  auto r2 = step.forward(V(x));
  for (std::int64_t i = 0; i < 10; ++i) {
    const double k = std::round(x[i] * 255);
    CHECK(r1.y.value()[i] >= k / 256);
    CHECK(r1.y.value()[i] < (k + 1) / 256);
    CHECK(r1.y.value()[i] != r2.y.value()[i]);  // fresh noise at every call
  }
  CHECK(r1.logdet.value()[0] == Approx(-5 * std::log(256.0)));
  const Tensor<double> back = step.inverse(r1.y).value();
  for (std::int64_t i = 0; i < 10; ++i) CHECK(back[i] == x[i]);
  Tensor<double> bad = x.clone();
  bad[3] = 0.5;  // between two levels of 255
  CHECK_THROWS_WITH(step.forward(V(bad)), Catch::Contains("pixel values k / 255") && Catch::Contains("0.5 at index 3"));
  CHECK_THROWS_WITH(flows::Dequantize<double>({.levels = 1}), Catch::Contains("levels"));
}

TEST_CASE("A chain of logit, couplings and scaling: summed log-dets against the Jacobian", "[flows][jacobian]") {
  const std::int64_t d = 6;
  flows::FlowSequence<double> chain;
  chain.push_back(flows::LogitTransform<double>(0.05));
  chain.push_back(flows::AffineCoupling<Net>(mlp(d, 2 * d), flows::halves_mask<double>(d)));
  chain.push_back(flows::AdditiveCoupling<Net>(mlp(d, d), flows::halves_mask<double>(d, flows::MaskParity::second)));
  chain.push_back(flows::Scaling<double>(Shape{d}));
  randomize(chain, 70);
  check_bijector(chain, test::uni({3, d}, 18, 0.02, 0.98), 1e-3);
  CHECK(chain.named_parameters()[0].name == "steps.1.net.0.weight");
}

}  // namespace flows_coupling_test
