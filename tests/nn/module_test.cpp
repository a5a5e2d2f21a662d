#include <catch2/catch.hpp>

#include "support/gradcheck.hpp"
#include "genmod/nn/nn.hpp"

namespace nn_module_test {

using namespace genmod;

TEST_CASE("Sequential names its parameters with dotted paths and shares them", "[nn][module]") {
  manual_seed(1);
  nn::Sequential net{nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2, {.bias = false})};
  auto named = net.named_parameters();
  REQUIRE(named.size() == 3);
  CHECK(named[0].name == "0.weight");
  CHECK(named[1].name == "0.bias");
  CHECK(named[2].name == "2.weight");
  CHECK(named[0].parameter.shape() == (Shape{3, 4}));
  CHECK(net.num_parameters() == 12 + 3 + 6);
  // The handles share the module's buffers.
  named[1].parameter.value()[0] = 42.f;
  CHECK(net.get<0>().bias.value()[0] == 42.f);
  // Mode propagates to every child.
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.get<1>().is_training());
  net.train();
  CHECK(net.get<2>().is_training());
}

TEST_CASE("Nested and run-time stacks compose names", "[nn][module]") {
  nn::DynamicSequential<float> stack;
  stack.push_back(nn::Linear(2, 2));
  stack.push_back(nn::Tanh());
  stack.push_back(nn::Sequential{nn::Linear(2, 1)});
  auto named = stack.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[2].name == "2.0.weight");
  Var<float> y = stack(Var<float>(ones<float>({5, 2})));
  CHECK(y.shape() == (Shape{5, 1}));
  CHECK(stack[2].as<nn::Sequential<nn::Linear<float>>>() != nullptr);
}

TEST_CASE("Linear matches x W^T + b and PyTorch's default init bounds", "[nn][linear]") {
  manual_seed(3);
  nn::Linear<float> lin(100, 50);
  const float bound = 1.0f / 10.0f;
  for (float w : lin.weight.value()) CHECK(std::abs(w) <= bound);
  for (float b : lin.bias.value()) CHECK(std::abs(b) <= bound);
  Generator g(4);
  auto x = randn<float>({7, 100}, g);
  auto y = lin(Var<float>(x)).value();
  Eigen::MatrixXf ref = x.matrix() * lin.weight.value().matrix().transpose();
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 50; ++j) CHECK(y(i, j) == Approx(ref(i, j) + lin.bias.value()[j]).margin(1e-5));
  CHECK_THROWS_WITH(lin(Var<float>(ones<float>({2, 99}))),
                    Catch::Contains("Linear(100 -> 50)") && Catch::Contains("[2, 99]"));
  CHECK_THROWS_AS(nn::Linear<float>(0, 3), ValueError);
}

TEST_CASE("linear op gradients, with and without bias", "[gradcheck][nn][linear]") {
  using V = Var<double>;
  GENMOD_CHECK_GRADIENTS([](std::span<const V> v) { return linear(v[0], v[1], v[2]); }, test::rnd({3, 4}, 1),
                         test::rnd({5, 4}, 2), test::rnd({5}, 3));
  GENMOD_CHECK_GRADIENTS([](std::span<const V> v) { return linear(v[0], v[1], V()); }, test::rnd({3, 4}, 4),
                         test::rnd({2, 4}, 5));
}

TEST_CASE("Linear layer gradients reach its parameters", "[gradcheck][nn][linear]") {
  manual_seed(5);
  nn::Linear<double> lin(3, 2);
  Generator g(6);
  auto x = randn<double>({4, 3}, g);
  auto r = check_gradients([&](std::span<const Var<double>> p) { return linear(Var<double>(x), p[0], p[1]); },
                           {lin.weight.value().clone(), lin.bias.value().clone()});
  INFO(r.report);
  CHECK(r.ok);
  Tape<double> tape;
  tape.backward(sum(lin(Var<double>(x))));
  // d sum(x W^T + b) / db = N for every output.
  CHECK(lin.bias.grad()[0] == 4.0);
}

TEST_CASE("Linear adds weight gradients into the parameter buffers in place, and only in backward()",
          "[nn][linear][autodiff]") {
  // backward() lets linear accumulate G^T x straight into the weight's gradient buffer; grad()
  // must leave the buffers alone, and create_graph must still record a differentiable gradient.
  using V = Var<double>;
  auto diff = [](const Tensor<double>& a, const Tensor<double>& b, double scale_b) {
    double d = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(a[i] - scale_b * b[i]));
    return d;
  };
  manual_seed(11);
  nn::Linear<double> lin(3, 2);
  Generator g(12);
  const Tensor<double> x1 = randn<double>({4, 3}, g), x2 = randn<double>({5, 3}, g);
  Tensor<double> gw_ref, gb_ref;
  {
    Tape<double> tape;
    V w = tape.leaf(lin.weight.value()), b = tape.leaf(lin.bias.value());
    // The weight used twice in one tape, and once by an op that returns its gradient the usual
    // way (the penalty): all three contributions add up.
    V loss = sum(square(linear(V(x1), w, b))) + sum(linear(V(x2), w, b)) + sum(square(w)) * 0.5;
    const auto gr = tape.grad(loss, {w, b});
    gw_ref = gr[0].value().clone();
    gb_ref = gr[1].value().clone();
  }
  auto loss_of = [&] { return sum(square(lin(V(x1)))) + sum(lin(V(x2))) + sum(square(lin.weight.var())) * 0.5; };
  {
    Tape<double> tape;
    const auto gr = tape.grad(loss_of(), {lin.weight.var()});
    CHECK(diff(gr[0].value(), gw_ref, 1) < 1e-12);
  }
  CHECK(diff(lin.weight.grad(), gw_ref, 0) == 0.0);  // grad() added nothing to the buffers
  CHECK(diff(lin.bias.grad(), gb_ref, 0) == 0.0);
  for (int round = 1; round <= 2; ++round) {  // buffers accumulate across backward calls
    Tape<double> tape;
    tape.backward(loss_of());
    CHECK(diff(lin.weight.grad(), gw_ref, round) < 1e-12);
    CHECK(diff(lin.bias.grad(), gb_ref, round) < 1e-12);
  }
  lin.zero_grad();
  {
    Tape<double> tape;
    tape.backward(loss_of(), {.create_graph = true});
    CHECK(diff(lin.weight.grad(), gw_ref, 1) < 1e-12);
  }
}

TEST_CASE("Initializers follow PyTorch's formulas", "[nn][init]") {
  Generator g(7);
  Tensor<float> w({256, 128});
  nn::init::xavier_uniform(w, g);
  const double b = std::sqrt(6.0 / (256 + 128));
  double mx = 0, var = 0;
  for (float v : w) {
    mx = std::max(mx, std::abs(static_cast<double>(v)));
    var += static_cast<double>(v) * v;
  }
  var /= static_cast<double>(w.numel());
  CHECK(mx <= b);
  CHECK(var == Approx(b * b / 3).epsilon(0.03));
  nn::init::kaiming_normal(w, g, 0.0, nn::init::FanMode::fan_in, "relu");
  var = 0;
  for (float v : w) var += static_cast<double>(v) * v;
  CHECK(var / static_cast<double>(w.numel()) == Approx(2.0 / 128).epsilon(0.03));
  auto f = nn::init::fans(Shape{8, 3, 5, 5});
  CHECK(f.in == 75);
  CHECK(f.out == 200);
  CHECK(nn::init::gain("leaky_relu", 0.2) == Approx(std::sqrt(2.0 / 1.04)));
  CHECK_THROWS_AS(nn::init::gain("swish"), ValueError);
}

TEST_CASE("EvalModeGuard: evaluation mode for a scope, the previous mode back on every path", "[nn][module]") {
  nn::Sequential<nn::Linear<float>, nn::Dropout<float>> net(nn::Linear<float>(2, 2), nn::Dropout<float>(0.5));
  {
    nn::EvalModeGuard eval_mode(net);
    CHECK_FALSE(net.is_training());
    CHECK_FALSE(net.get<1>().is_training());
  }
  CHECK(net.is_training());
  CHECK(net.get<1>().is_training());
  try {
    nn::EvalModeGuard eval_mode(net);
    throw ValueError("leaves the scope");
  } catch (const ValueError&) {
  }
  CHECK(net.get<1>().is_training());
  net.eval();
  { nn::EvalModeGuard eval_mode(net); }
  CHECK_FALSE(net.get<1>().is_training());  // a module in evaluation mode stays there
}

}  // namespace nn_module_test
