#include <catch2/catch.hpp>

#include <optional>

#include "genmod/autodiff/autodiff.hpp"

namespace autodiff_double_backward_test {

using namespace genmod;
using V = Var<double>;

namespace {

// A 2-layer critic D(x) = act(x W1 + b1) w2 + b2, x of shape [N, 3].
template <class Act>
V critic(const V& x, const V& W1, const V& b1, const V& w2, const V& b2, Act act) {
  return add(matmul(act(add(matmul(x, W1), b1)), w2), b2);
}

// The WGAN-GP penalty on a fixed batch: mean_i (||dD(x_i)/dx_i||_2 - 1)^2, and the plain
// squared norm mean_i ||dD/dx_i||^2, as functions of the critic's parameters.
template <class Act>
V penalty(std::span<const V> p, const Tensor<double>& xdata, Act act, bool gp_form) {
  std::optional<Tape<double>> own;  // finite differences call this without a tape
  Tape<double>* tape = Tape<double>::current();
  if (!tape) tape = &own.emplace();
  V x = tape->leaf(xdata);
  V d = critic(x, p[0], p[1], p[2], p[3], act);
  V gx = tape->grad(sum(d), {x}, {.create_graph = true})[0];  // [N, 3]
  V sq = sum(square(gx), 1);                                   // ||dD/dx_i||^2
  if (!gp_form) return mean(sq);
  return mean(square(sqrt(sq) - 1.0));
}

Tensor<double> rnd(const Shape& s, std::uint64_t seed) {
  Generator g(seed);
  return randn<double>(s, g);
}

}  // namespace

TEST_CASE("Double backward: gradient penalty of a 2-layer critic against finite differences",
          "[double-backward][gradcheck]") {
  const auto x = rnd({5, 3}, 1);
  std::vector<Tensor<double>> params{rnd({3, 4}, 2), rnd({4}, 3), rnd({4, 1}, 4), rnd({1}, 5)};
  auto tanh_act = [](const V& v) { return tanh(v); };
  auto leaky = [](const V& v) { return leaky_relu(v, 0.2); };
  auto softplus_act = [](const V& v) { return softplus(v); };
  for (bool gp : {false, true}) {
    INFO("GP form " << gp);
    auto r1 = check_gradients([&](std::span<const V> p) { return penalty(p, x, tanh_act, gp); }, params);
    INFO(r1.report);
    CHECK(r1.ok);
    auto r2 = check_gradients([&](std::span<const V> p) { return penalty(p, x, leaky, gp); }, params);
    INFO(r2.report);
    CHECK(r2.ok);
    auto r3 = check_gradients([&](std::span<const V> p) { return penalty(p, x, softplus_act, gp); }, params);
    INFO(r3.report);
    CHECK(r3.ok);
  }
}

TEST_CASE("Double backward accumulates into Parameters like a WGAN-GP step", "[double-backward]") {
  Parameter<double> W1(rnd({3, 4}, 2)), b1(rnd({4}, 3)), w2(rnd({4, 1}, 4)), b2(rnd({1}, 5));
  const auto xdata = rnd({5, 3}, 1);
  {
    Tape<double> tape;
    V x = tape.leaf(xdata);
    V d = critic(x, W1.var(), b1.var(), w2.var(), b2.var(), [](const V& v) { return tanh(v); });
    V gx = tape.grad(sum(d), {x}, {.create_graph = true})[0];
    // grad() must not touch parameter buffers.
    CHECK(W1.grad()[0] == 0.0);
    V loss = mean(d) + 10.0 * mean(square(sqrt(sum(square(gx), 1)) - 1.0));
    tape.backward(loss);
  }
  // Compare with the same quantity through check_gradients' tape-free definition.
  double max_abs = 0;
  for (auto v : W1.grad()) max_abs = std::max(max_abs, std::abs(v));
  CHECK(max_abs > 0);
  // b2 only enters through mean(d): its gradient is exactly 1.
  CHECK(b2.grad()[0] == Approx(1.0));
}

}  // namespace autodiff_double_backward_test
