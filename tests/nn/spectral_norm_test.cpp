#include <catch2/catch.hpp>

#include <Eigen/SVD>
#include <cmath>
#include <optional>

#include "genmod/io/model_checkpoint.hpp"
#include "genmod/nn/layers/spectral_norm.hpp"
#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"

namespace nn_spectral_norm_test {

using namespace genmod;
using V = Var<double>;
using Xs = std::span<const V>;
using test::rnd;

namespace {

// W as the matrix spectral normalisation works on, built here independently of the header: rows
// are the outputs, dimension 0 of a Linear or Conv2d weight, dimension 1 of a ConvTranspose2d
// weight [Cin, Cout, k, k] (column (c, i, j) of row o is W[c, o, i, j]).
Eigen::MatrixXd weight_matrix(const Tensor<double>& w, int row_dim) {
  if (row_dim == 0) {
    const std::int64_t rows = w.dim(0), cols = w.numel() / rows;
    Eigen::MatrixXd m(rows, cols);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) m(r, c) = w[r * cols + c];
    return m;
  }
  const std::int64_t cin = w.dim(0), cout = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  Eigen::MatrixXd m(cout, cin * kh * kw);
  for (std::int64_t c = 0; c < cin; ++c)
    for (std::int64_t o = 0; o < cout; ++o)
      for (std::int64_t i = 0; i < kh; ++i)
        for (std::int64_t j = 0; j < kw; ++j) m(o, (c * kh + i) * kw + j) = w(c, o, i, j);
  return m;
}

Eigen::VectorXd singular_values(const Eigen::MatrixXd& m) {
  return Eigen::JacobiSVD<Eigen::MatrixXd>(m).singularValues();
}

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  double d = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

bool bitwise_equal(const Tensor<float>& a, const Tensor<float>& b) {
  if (!(a.shape() == b.shape())) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Runs `forwards` training forwards of `layer` on x (one power-iteration step each, the default),
// then checks sigma against the SVD of the weight viewed with its outputs along `row_dim`, and the
// normalised weight's spectral norm.
template <class Layer>
void expect_converges_to_top_singular_value(Layer& layer, const Tensor<double>& x, int forwards, int row_dim) {
  const Eigen::VectorXd s = singular_values(weight_matrix(layer.inner().weight.value(), row_dim));
  // Power iteration converges as (s1 / s0)^(2k): the gap of these seeded matrices makes it fast.
  INFO("singular values " << s.transpose() << ", ratio s1/s0 " << s(1) / s(0));
  REQUIRE(s(1) / s(0) < 0.95);
  for (int i = 0; i < forwards; ++i) layer(V(x));
  CHECK(layer.sigma() == Approx(s(0)).epsilon(1e-10));
  // (b) The normalised weight has spectral norm 1.
  const Eigen::VectorXd sn = singular_values(weight_matrix(layer.normalized_weight(), row_dim));
  CHECK(sn(0) == Approx(1.0).epsilon(1e-10));
}

// ||dD/dx||^2 of a discriminator at a fixed batch, as a function of D's parameters: the part of a
// gradient penalty that needs the second derivative. Finite differences call it without a tape.
template <class Net>
V squared_input_gradient(Net& net, const Tensor<double>& x) {
  std::optional<Tape<double>> own;
  Tape<double>* tape = Tape<double>::current();
  if (!tape) tape = &own.emplace();
  V xv = tape->leaf(x);
  V gx = tape->grad(sum(net(xv)), {xv}, {.create_graph = true})[0];
  return sum(square(gx));
}

}  // namespace

TEST_CASE("SpectralNorm: sigma converges to the largest singular value; the normalised weight has norm 1",
          "[nn][spectral_norm]") {
  SECTION("Linear") {
    Generator g(1);
    auto layer = nn::spectral_norm(nn::Linear<double>(12, 7, {.generator = &g}), {.generator = &g});
    expect_converges_to_top_singular_value(layer, rnd({3, 12}, 2), 300, 0);
  }
  SECTION("Conv2d: W viewed as [Cout, Cin k k]") {
    Generator g(3);
    auto layer = nn::spectral_norm(nn::Conv2d<double>(3, 5, 3, {.padding = 1, .generator = &g}), {.generator = &g});
    expect_converges_to_top_singular_value(layer, rnd({2, 3, 5, 5}, 4), 300, 0);
  }
  SECTION("ConvTranspose2d: W [Cin, Cout, k, k] viewed as [Cout, Cin k k]") {
    Generator g(5);
    auto layer = nn::spectral_norm(nn::ConvTranspose2d<double>(4, 3, 3, {.stride = 2, .padding = 1, .generator = &g}),
                                   {.generator = &g});
    expect_converges_to_top_singular_value(layer, rnd({2, 4, 3, 3}, 6), 300, 1);
  }
  SECTION("power_iterations = k in one forward is k forwards of one step") {
    Generator g1(7), g2(7);
    nn::SpectralNorm a(nn::Linear<double>(6, 4, {.generator = &g1}), {.power_iterations = 5, .generator = &g1});
    nn::SpectralNorm b(nn::Linear<double>(6, 4, {.generator = &g2}), {.generator = &g2});
    const auto x = rnd({2, 6}, 8);
    a(V(x));
    for (int i = 0; i < 5; ++i) b(V(x));
    CHECK(max_abs_diff(a.u, b.u) == 0.0);
    CHECK(max_abs_diff(a.v, b.v) == 0.0);
    CHECK(a.sigma() == b.sigma());
  }
}

TEST_CASE("SpectralNorm computes the wrapped op with W / sigma", "[nn][spectral_norm]") {
  Generator g(9);
  auto lin = nn::spectral_norm(nn::Linear<double>(5, 3, {.generator = &g}), {.generator = &g});
  auto conv =
      nn::spectral_norm(nn::Conv2d<double>(2, 4, 3, {.stride = 2, .padding = 1, .generator = &g}), {.generator = &g});
  auto convt = nn::spectral_norm(nn::ConvTranspose2d<double>(3, 2, 4, {.stride = 2, .padding = 1, .generator = &g}),
                                 {.generator = &g});
  const auto x = rnd({4, 5}, 10), xc = rnd({2, 2, 6, 5}, 11), xt = rnd({2, 3, 3, 4}, 12);
  for (bool training : {true, false}) {
    INFO("training " << training);
    lin.train(training);
    conv.train(training);
    convt.train(training);
    // The forward first updates u and v (in training), so the reference reads them after.
    const auto y = lin(V(x)).value();
    CHECK(max_abs_diff(y, linear(V(x), V(lin.normalized_weight()), V(lin.inner().bias.value())).value()) < 1e-13);
    const auto yc = conv(V(xc)).value();
    const auto yc_ref =
        conv2d(V(xc), V(conv.normalized_weight()), V(conv.inner().bias.value()), {.stride = 2, .padding = 1}).value();
    CHECK(max_abs_diff(yc, yc_ref) < 1e-13);
    const auto yt = convt(V(xt)).value();
    const auto yt_ref = conv_transpose2d(V(xt), V(convt.normalized_weight()), V(convt.inner().bias.value()),
                                         {.stride = 2, .padding = 1})
                            .value();
    CHECK(max_abs_diff(yt, yt_ref) < 1e-13);
  }
}

TEST_CASE("spectral_sigma: d sigma / dW = u v^T, the layout of each row dimension", "[gradcheck][nn][spectral_norm]") {
  for (int row_dim : {0, 1}) {
    INFO("row dimension " << row_dim);
    const auto w = rnd({3, 4, 2, 2}, 13);
    const std::int64_t rows = w.dim(row_dim), cols = w.numel() / rows;
    const auto u = rnd({rows}, 14), v = rnd({cols}, 15);
    Tape<double> tape;
    V wv = tape.leaf(w);
    V sigma = nn::spectral_sigma(wv, u, v, row_dim);
    const Eigen::MatrixXd m = weight_matrix(w, row_dim);
    const Eigen::Map<const Eigen::VectorXd> um(u.data(), rows), vm(v.data(), cols);
    CHECK(sigma.item() == Approx(um.dot(m * vm)).epsilon(1e-13));
    const auto gw = tape.grad(sigma, {wv})[0].value();
    const Eigen::MatrixXd gm = weight_matrix(gw, row_dim);
    CHECK((gm - um * vm.transpose()).cwiseAbs().maxCoeff() < 1e-14);
  }
}

// The layer's derivatives treat u and v as constants (Miyato et al., PyTorch). In evaluation mode
// they are constants: the output is a fixed function of x and W, which finite differences can
// check. In training mode each call first moves u and v (and finite differences would call it
// with different u and v); and even from a fixed starting u, the exact derivative of the map
// W -> output would include du/dW and dv/dW, which the method leaves out on purpose. So the checks
// run in evaluation mode after some training forwards, and the last test case shows that a
// training forward's gradient is the evaluation-mode gradient at the updated u and v.
TEST_CASE("SpectralNorm gradients in double: first order in x and W, second order through the tape",
          "[gradcheck][nn][spectral_norm]") {
  SECTION("the functional forms, first and second order in x, W and b") {
    const auto u = rnd({3}, 16), v = rnd({4}, 17);
    GENMOD_CHECK_GRADIENTS([&](Xs p) { return linear(p[0], div(p[1], nn::spectral_sigma(p[1], u, v, 0)), p[2]); },
                           rnd({2, 4}, 18), rnd({3, 4}, 19), rnd({3}, 20));
    const auto uc = rnd({3}, 21), vc = rnd({2 * 3 * 3}, 22);
    const Conv2dOptions o{.stride = 2, .padding = 1};
    GENMOD_CHECK_GRADIENTS([&](Xs p) { return conv2d(div(p[0], nn::spectral_sigma(p[1], uc, vc, 0)), p[1], p[2], o); },
                           rnd({2, 2, 5, 4}, 23), rnd({3, 2, 3, 3}, 24), rnd({3}, 25));
    const auto ut = rnd({2}, 26), vt = rnd({3 * 3 * 3}, 27);
    const ConvTranspose2dOptions ot{.stride = 2, .padding = 1};
    GENMOD_CHECK_GRADIENTS(
        [&](Xs p) { return conv_transpose2d(div(p[0], nn::spectral_sigma(p[1], ut, vt, 1)), p[1], p[2], ot); },
        rnd({2, 3, 3, 2}, 28), rnd({3, 2, 3, 3}, 29), rnd({2}, 30));
  }

  SECTION("the layers: output w.r.t. input and parameters, evaluation mode") {
    Generator g(31);
    auto lin = nn::spectral_norm(nn::Linear<double>(4, 3, {.generator = &g}), {.generator = &g});
    auto conv =
        nn::spectral_norm(nn::Conv2d<double>(2, 3, 3, {.stride = 2, .padding = 1, .generator = &g}), {.generator = &g});
    auto convt = nn::spectral_norm(nn::ConvTranspose2d<double>(3, 2, 3, {.stride = 2, .padding = 1, .generator = &g}),
                                   {.generator = &g});
    const auto x = rnd({2, 4}, 32), xc = rnd({2, 2, 5, 4}, 33), xt = rnd({2, 3, 3, 2}, 34);
    for (int i = 0; i < 3; ++i) {  // u and v away from their initial values
      lin(V(x));
      conv(V(xc));
      convt(V(xt));
    }
    lin.eval();
    conv.eval();
    convt.eval();
    GENMOD_CHECK_GRADIENTS([&](Xs p) { return lin(p[0]); }, x);
    GENMOD_CHECK_GRADIENTS([&](Xs p) { return conv(p[0]); }, xc);
    GENMOD_CHECK_GRADIENTS([&](Xs p) { return convt(p[0]); }, xt);
    test::expect_module_gradients(lin, [&] { return lin(V(x)); });
    test::expect_module_gradients(conv, [&] { return conv(V(xc)); });
    test::expect_module_gradients(convt, [&] { return convt(V(xt)); });
  }

  SECTION("second order: the parameter gradient of ||dD/dx||^2 of spectrally normalised discriminators") {
    Generator g(35);
    auto conv_critic = nn::Sequential{
        nn::spectral_norm(nn::Conv2d<double>(2, 3, 3, {.stride = 2, .padding = 1, .generator = &g}), {.generator = &g}),
        nn::Tanh<double>(), nn::Flatten<double>(),
        nn::spectral_norm(nn::Linear<double>(3 * 2 * 2, 1, {.generator = &g}), {.generator = &g})};
    auto transposed_critic = nn::Sequential{
        nn::spectral_norm(nn::ConvTranspose2d<double>(2, 2, 3, {.stride = 2, .padding = 1, .generator = &g}),
                          {.generator = &g}),
        nn::Tanh<double>(), nn::Flatten<double>(),
        nn::spectral_norm(nn::Linear<double>(2 * 3 * 3, 1, {.generator = &g}), {.generator = &g})};
    const auto x = rnd({2, 2, 4, 4}, 36), xt = rnd({2, 2, 2, 2}, 37);
    for (int i = 0; i < 3; ++i) {
      conv_critic(V(x));
      transposed_critic(V(xt));
    }
    conv_critic.eval();
    transposed_critic.eval();
    test::expect_module_gradients(conv_critic, [&] { return squared_input_gradient(conv_critic, x); });
    test::expect_module_gradients(transposed_critic, [&] { return squared_input_gradient(transposed_critic, xt); });
  }
}

TEST_CASE("SpectralNorm: evaluation mode leaves u and v alone, training mode updates them", "[nn][spectral_norm]") {
  Generator g(38);
  auto layer = nn::spectral_norm(nn::Conv2d<double>(2, 3, 3, {.generator = &g}), {.generator = &g});
  const auto x = rnd({2, 2, 4, 4}, 39);
  // (d) Evaluation: u, v and sigma stay bit for bit.
  layer.eval();
  const auto u0 = layer.u.clone(), v0 = layer.v.clone();
  layer(V(x));
  const double sigma0 = layer.sigma();
  for (int i = 0; i < 3; ++i) layer(V(x));
  CHECK(max_abs_diff(layer.u, u0) == 0.0);
  CHECK(max_abs_diff(layer.v, v0) == 0.0);
  CHECK(layer.sigma() == sigma0);
  // Training: the steps move them, and sigma = u^T W v grows towards the top singular value. (The
  // constructor set v = normalize(W^T u), which the first step recomputes as is: two steps.)
  layer.train();
  layer(V(x));
  CHECK(max_abs_diff(layer.u, u0) > 1e-6);
  layer(V(x));
  CHECK(max_abs_diff(layer.v, v0) > 1e-6);
  CHECK(layer.sigma() > sigma0);

  // A training forward's gradients are those of an evaluation forward at the updated u and v:
  // no gradient flows through the power iteration.
  layer.zero_grad();
  {
    Tape<double> tape;
    tape.backward(sum(square(layer(V(x)))));
  }
  const auto gw_train = layer.inner().weight.grad().clone(), gb_train = layer.inner().bias.grad().clone();
  const auto u1 = layer.u.clone();
  layer.eval();
  layer.zero_grad();
  {
    Tape<double> tape;
    tape.backward(sum(square(layer(V(x)))));
  }
  CHECK(max_abs_diff(layer.u, u1) == 0.0);
  CHECK(max_abs_diff(layer.inner().weight.grad(), gw_train) == 0.0);
  CHECK(max_abs_diff(layer.inner().bias.grad(), gb_train) == 0.0);
}

TEST_CASE("SpectralNorm is a layer: names, containers, and u and v through a checkpoint",
          "[nn][spectral_norm][checkpoint]") {
  static_assert(nn::LayerType<nn::SpectralNorm<nn::Linear<float>>>);
  static_assert(nn::LayerType<nn::SpectralNorm<nn::Conv2d<float>>>);
  static_assert(nn::LayerType<nn::SpectralNorm<nn::ConvTranspose2d<float>>>);
  auto make = [](std::uint64_t seed) {
    Generator g(seed);
    return nn::Sequential{
        nn::spectral_norm(nn::Conv2d<float>(1, 2, 3, {.stride = 2, .padding = 1, .generator = &g}), {.generator = &g}),
        nn::LeakyReLU(0.2f), nn::Flatten<float>(),
        nn::spectral_norm(nn::Linear<float>(2 * 3 * 3, 1, {.generator = &g}), {.generator = &g})};
  };
  auto a = make(40);
  std::vector<std::string> params, buffers;
  for (auto& p : a.named_parameters()) params.push_back(p.name);
  for (auto& b : a.named_buffers()) buffers.push_back(b.name);
  CHECK((params == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  CHECK((buffers == std::vector<std::string>{"0.u", "0.v", "3.u", "3.v"}));
  CHECK(a.get<0>().u.shape() == (Shape{2}));
  CHECK(a.get<0>().v.shape() == (Shape{1 * 3 * 3}));

  // DynamicSequential holds it too (type-erased), and train/eval reaches it there.
  Generator gd(41);
  nn::DynamicSequential<float> dyn{nn::spectral_norm(nn::Linear<float>(3, 2, {.generator = &gd}), {.generator = &gd}),
                                   nn::Tanh<float>()};
  Generator gx(42);
  const auto xd = randn<float>({4, 3}, gx);
  const auto ud = dyn.named_buffers()[0].tensor.clone();
  dyn.eval();
  dyn(Var<float>(xd));
  CHECK(bitwise_equal(dyn.named_buffers()[0].tensor, ud));
  dyn.train();
  dyn(Var<float>(xd));
  CHECK(!bitwise_equal(dyn.named_buffers()[0].tensor, ud));

  // (e) u and v go through a checkpoint: after training forwards, save; a network built from
  // another seed loads the weights and the vectors, and computes the same outputs.
  const auto x = randn<float>({3, 1, 6, 6}, gx);
  for (int i = 0; i < 4; ++i) a(Var<float>(x));
  test::TempDir dir("genmod_spectral_norm");
  const std::string path = dir.file("critic.npz");
  io::save_checkpoint(path, a);
  auto b = make(43);
  REQUIRE(!bitwise_equal(b.get<0>().u, a.get<0>().u));
  io::load_checkpoint(path, b);
  const auto na = a.named_buffers(), nb = b.named_buffers();
  REQUIRE(na.size() == nb.size());
  for (std::size_t i = 0; i < na.size(); ++i) {
    INFO(na[i].name);
    CHECK(bitwise_equal(na[i].tensor, nb[i].tensor));
  }
  // The loaded buffers are the layers' own (written in place): evaluation outputs agree exactly.
  a.eval();
  b.eval();
  CHECK(bitwise_equal(a(Var<float>(x)).value(), b(Var<float>(x)).value()));
  CHECK(b.get<3>().sigma() == a.get<3>().sigma());
}

TEST_CASE("SpectralNorm rejects bad options and inputs", "[nn][spectral_norm]") {
  using Catch::Contains;
  CHECK_THROWS_AS(nn::spectral_norm(nn::Linear<float>(3, 2), {.power_iterations = 0}), ValueError);
  CHECK_THROWS_WITH(nn::spectral_norm(nn::Linear<float>(3, 2), {.power_iterations = -2}),
                    Contains("SpectralNorm: expected power_iterations >= 1, got -2"));
  CHECK_THROWS_AS(nn::spectral_norm(nn::Linear<float>(3, 2), {.eps = 0.0}), ValueError);
  CHECK_THROWS_WITH(nn::spectral_norm(nn::Conv2d<float>(1, 2, 3), {.eps = -1e-12}),
                    Contains("SpectralNorm: expected eps > 0, got -1e-12"));
  CHECK_THROWS_AS(nn::spectral_norm(nn::Linear<float>(3, 2), {.eps = std::nan("")}), ValueError);

  auto lin = nn::spectral_norm(nn::Linear<float>(3, 2));
  CHECK_THROWS_WITH(lin(Var<float>(zeros<float>({4, 5}))),
                    Contains("SpectralNorm(Linear(3 -> 2))") && Contains("[N, 3]") && Contains("[4, 5]"));
  auto conv = nn::spectral_norm(nn::Conv2d<float>(2, 4, 3));
  CHECK_THROWS_AS(conv(Var<float>(zeros<float>({1, 3, 5, 5}))), ShapeError);
  const Tensor<float> w = zeros<float>({3, 4});
  CHECK_THROWS_WITH(nn::spectral_sigma(Var<float>(w), zeros<float>({4}), zeros<float>({4}), 0),
                    Contains("spectral_sigma") && Contains("u") && Contains("[3]"));
  CHECK_THROWS_AS(nn::spectral_sigma(Var<float>(w), zeros<float>({3}), zeros<float>({3}), 0), ShapeError);
  CHECK_THROWS_AS(nn::spectral_sigma(Var<float>(w), zeros<float>({3}), zeros<float>({4}), 2), ShapeError);
}

}  // namespace nn_spectral_norm_test
