#include <catch2/catch.hpp>

#include "support/gradcheck.hpp"
#include "genmod/nn/nn.hpp"

namespace nn_layers_test {

using namespace genmod;
using V = Var<double>;
using Xs = std::span<const V>;
using test::rnd;

TEST_CASE("batch_norm in training mode: gradients for 1-d and 2-d inputs", "[gradcheck][nn][batchnorm]") {
  for (Shape s : {Shape{6, 3}, Shape{3, 2, 3, 2}}) {
    INFO("input " << s.to_string());
    const std::int64_t c = s[1];
    GENMOD_CHECK_GRADIENTS(
        [c](Xs v) {
          Tensor<double> rm = zeros<double>({c}), rv = ones<double>({c});
          return batch_norm(v[0], v[1], v[2], rm, rv, {.training = true});
        },
        rnd(s, 1), rnd({c}, 2), rnd({c}, 3));
    GENMOD_CHECK_GRADIENTS(  // no affine transform
        [c](Xs v) {
          Tensor<double> rm = zeros<double>({c}), rv = ones<double>({c});
          return mul(batch_norm(v[0], V(), V(), rm, rv, {.training = true}), V(rnd(v[0].shape(), 4)));
        },
        rnd(s, 5));
  }
  // Wider rows than a SIMD register, odd sizes (vector bodies and scalar tails), in float: the fused
  // op against the textbook formulas computed in double.
  for (Shape s : {Shape{5, 3, 7, 5}, Shape{9, 37}}) {
    INFO("input " << s.to_string());
    const std::int64_t n = s[0], c = s[1], inner = s.rank() == 4 ? s[2] * s[3] : 1, m = n * inner;
    Generator gen(9);
    Tensor<float> x(s), g(s), gamma({c}), beta({c});
    fill_normal(x, gen, 3.0f, 2.0f);  // a mean well away from 0
    fill_normal(g, gen);
    fill_normal(gamma, gen);
    fill_normal(beta, gen);
    Tape<float> tape;
    Var<float> xv = tape.leaf(x), gv = tape.leaf(gamma), bv = tape.leaf(beta);
    Tensor<float> rm = zeros<float>({c}), rv = ones<float>({c});
    Var<float> y = batch_norm(xv, gv, bv, rm, rv, {.training = true});
    tape.backward(y, g);
    const Tensor<float> dx = tape.gradient(xv), dgamma = tape.gradient(gv), dbeta = tape.gradient(bv);
    auto at = [&](const Tensor<float>& t, std::int64_t i, std::int64_t ch, std::int64_t j) {
      return static_cast<double>(t[(i * c + ch) * inner + j]);
    };
    for (std::int64_t ch = 0; ch < c; ++ch) {
      double mu = 0, var = 0, sg = 0, sgx = 0;
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < inner; ++j) mu += at(x, i, ch, j) / static_cast<double>(m);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < inner; ++j) var += std::pow(at(x, i, ch, j) - mu, 2) / static_cast<double>(m);
      const double is = 1 / std::sqrt(var + 1e-5);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < inner; ++j) {
          sg += at(g, i, ch, j);
          sgx += at(g, i, ch, j) * (at(x, i, ch, j) - mu) * is;
        }
      CHECK(dbeta[ch] == Approx(sg).margin(1e-4));
      CHECK(dgamma[ch] == Approx(sgx).margin(1e-4));
      CHECK(rm[ch] == Approx(0.1 * mu).margin(1e-5));
      CHECK(rv[ch] == Approx(0.9 + 0.1 * var * static_cast<double>(m) / static_cast<double>(m - 1)).margin(1e-5));
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < inner; ++j) {
          const double xh = (at(x, i, ch, j) - mu) * is;
          CHECK(at(y.value(), i, ch, j) == Approx(xh * gamma[ch] + beta[ch]).margin(1e-5));
          const double want =
              gamma[ch] * is * (at(g, i, ch, j) - sg / static_cast<double>(m) - xh * sgx / static_cast<double>(m));
          CHECK(at(dx, i, ch, j) == Approx(want).margin(1e-5));
        }
    }
  }
}

TEST_CASE("BatchNorm running statistics and evaluation mode match hand computation", "[nn][batchnorm]") {
  nn::BatchNorm1d<double> bn(2, {.momentum = 0.5});
  auto x = from_data<double>({3, 2}, {1, 10, 2, 20, 6, 30});  // channel means 3 and 20
  auto y = bn(V(x)).value();
  // Channel 0: mean 3, biased var (4 + 1 + 9)/3, unbiased (4 + 1 + 9)/2 = 7.
  CHECK(bn.running_mean[0] == Approx(0.5 * 0 + 0.5 * 3));
  CHECK(bn.running_var[0] == Approx(0.5 * 1 + 0.5 * 7));
  CHECK(bn.running_mean[1] == Approx(10));
  CHECK(y(0, 0) == Approx((1 - 3) / std::sqrt(14.0 / 3 + 1e-5)));
  // Evaluation uses the running statistics.
  bn.eval();
  auto e = bn(V(x)).value();
  CHECK(e(0, 0) == Approx((1 - 1.5) / std::sqrt(4.0 + 1e-5)));
  auto named = bn.named_buffers();
  REQUIRE(named.size() == 2);
  CHECK(named[0].name == "running_mean");
  CHECK_THROWS_WITH(bn(V(zeros<double>({3, 5}))), Catch::Contains("BatchNorm1d(2)") && Catch::Contains("[3, 5]"));
  nn::BatchNorm2d<double> bn2(4);
  CHECK_THROWS_AS(bn2(V(zeros<double>({1, 4, 1, 1}))), ValueError);  // one value per channel
  Tensor<double> none(Shape{0});
  CHECK_THROWS_WITH(batch_norm(V(zeros<double>({3, 0})), V(), V(), none, none),
                    Catch::Contains("at least one channel") && Catch::Contains("[3, 0]"));
}

TEST_CASE("layer_norm gradients and values", "[gradcheck][nn][layernorm]") {
  GENMOD_CHECK_GRADIENTS([](Xs v) { return layer_norm(v[0], 1, v[1], v[2]); }, rnd({3, 4}, 4), rnd({4}, 5),
                         rnd({4}, 6));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return layer_norm(v[0], 2, v[1], v[2]); }, rnd({2, 3, 4}, 7), rnd({3, 4}, 8),
                         rnd({3, 4}, 9));
  nn::LayerNorm<double> ln({4});
  auto y = ln(V(from_data<double>({1, 4}, {1, 2, 3, 4}))).value();
  CHECK(y[0] == Approx(-1.5 / std::sqrt(1.25 + 1e-5)));
  CHECK_THROWS_AS(ln(V(zeros<double>({2, 5}))), ShapeError);
}

TEST_CASE("Pooling and upsampling: gradients and values", "[gradcheck][nn][pool]") {
  // Distinct values so that window maxima are unique.
  Tensor<double> x({2, 2, 4, 4});
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = 0.1 * static_cast<double>((i * 37) % 64);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return max_pool2d(v[0], 2); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return max_pool2d(v[0], 3, 1, 1); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return avg_pool2d(v[0], 2); }, rnd({2, 2, 4, 4}, 10));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return avg_pool2d(v[0], 3, 2, 1); }, rnd({1, 2, 5, 5}, 11));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return upsample_nearest(v[0], 2); }, rnd({2, 1, 2, 3}, 12));
  auto p = from_data<double>({1, 1, 2, 2}, {1, 4, 3, 2});
  CHECK(max_pool2d(V(p), 2).item() == 4);
  CHECK(avg_pool2d(V(p), 2).item() == 2.5);
  auto u = upsample_nearest(V(p), 2).value();
  CHECK(u.shape() == (Shape{1, 1, 4, 4}));
  CHECK(u(0, 0, 1, 1) == 1);
  CHECK(u(0, 0, 3, 0) == 3);
  CHECK_THROWS_AS(max_pool2d(V(zeros<double>({1, 1, 2, 2})), 3), ShapeError);
}

TEST_CASE("Dropout keeps the expectation and is the identity in evaluation", "[nn][dropout]") {
  nn::Dropout<float> d(0.3, 7);
  Var<float> x(ones<float>({100000}));
  auto y = d(x).value();
  double sum = 0, zeros_ = 0;
  for (float v : y) {
    sum += v;
    zeros_ += v == 0.f;
  }
  CHECK(sum / 100000 == Approx(1.0).epsilon(0.02));
  CHECK(zeros_ / 100000 == Approx(0.3).epsilon(0.03));
  d.eval();
  CHECK(d(x).value().shares_buffer_with(x.value()));
  CHECK_THROWS_AS(nn::Dropout<float>(1.0), ValueError);
}

TEST_CASE("Embedding looks up rows and sends gradients back to them", "[gradcheck][nn][embedding]") {
  manual_seed(2);
  nn::Embedding<double> emb(5, 3);
  auto idx = from_data<std::int64_t>({4}, {4, 0, 4, 2});
  auto y = emb.lookup(idx).value();
  CHECK(y(0, 1) == emb.weight.value()(4, 1));
  Tape<double> tape;
  tape.backward(sum(emb.lookup(idx)));
  CHECK(emb.weight.grad()(4, 0) == 2.0);  // used twice
  CHECK(emb.weight.grad()(1, 0) == 0.0);
  auto r = check_gradients(
      [&](Xs v) {
        return gather(v[0], 0, from_data<std::int64_t>({2, 3}, {4, 4, 4, 1, 1, 1}));
      },
      {emb.weight.value().clone()});
  CHECK(r.ok);
  CHECK_THROWS_AS(emb.lookup(from_data<std::int64_t>({1}, {5})), ValueError);
}

TEST_CASE("LSTMCell: PyTorch layout, gradients through two steps", "[gradcheck][nn][lstm]") {
  manual_seed(3);
  nn::LSTMCell<double> cell(3, 2);
  CHECK(cell.weight_ih.shape() == (Shape{8, 3}));
  CHECK(cell.named_parameters()[3].name == "bias_hh");
  auto x = rnd({2, 3}, 13);
  // State gradients through two steps (first and second order).
  GENMOD_CHECK_GRADIENTS(
      [&](Xs v) {
        auto s2 = cell.step(V(x), cell.step(v[0], {v[1], v[2]}));
        return add(s2.h, s2.c);
      },
      rnd({2, 3}, 16), rnd({2, 2}, 14), rnd({2, 2}, 15));
  // Parameter gradients through two steps.
  test::expect_module_gradients(cell, [&] {
    auto s2 = cell.step(V(x), cell.step(V(x), cell.initial_state(2)));
    return add(s2.h, s2.c);
  });
  CHECK(cell.step(V(x), cell.initial_state(2)).h.shape() == (Shape{2, 2}));
  CHECK_THROWS_AS(cell.step(V(zeros<double>({2, 4})), cell.initial_state(2)), ShapeError);
  CHECK_THROWS_AS(cell.step(V(x), cell.initial_state(3)), ShapeError);
}

TEST_CASE("Layer parameter gradients: Linear, Conv2d, ConvTranspose2d, MaskedConv2d, BatchNorm2d, LayerNorm",
          "[gradcheck][nn]") {
  manual_seed(4);
  auto x2 = rnd({3, 4}, 20);
  auto x4 = rnd({2, 2, 5, 5}, 21);
  nn::Linear<double> lin(4, 3);
  test::expect_module_gradients(lin, [&] { return lin(V(x2)); });
  nn::Conv2d<double> conv(2, 3, 3, {.stride = 2, .padding = 1});
  test::expect_module_gradients(conv, [&] { return conv(V(x4)); });
  nn::ConvTranspose2d<double> convt(2, 3, 4, {.stride = 2, .padding = 1});
  test::expect_module_gradients(convt, [&] { return convt(V(x4)); });
  nn::MaskedConv2d<double> masked(nn::MaskType::B, 2, 3, 3, {.padding = 1});
  test::expect_module_gradients(masked, [&] { return masked(V(x4)); });
  nn::BatchNorm2d<double> bn(2);
  bn.weight.value()[0] = 1.5;
  test::expect_module_gradients(bn, [&] { return bn(V(x4)); });
  nn::LayerNorm<double> ln({2, 5, 5});
  test::expect_module_gradients(ln, [&] { return ln(V(x4)); });
}

}  // namespace nn_layers_test
