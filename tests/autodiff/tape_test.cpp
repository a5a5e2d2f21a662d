#include <catch2/catch.hpp>

#include "genmod/autodiff/autodiff.hpp"

namespace autodiff_tape_test {

using namespace genmod;
using V = Var<double>;

TEST_CASE("Gradients accumulate where a value is used twice", "[autodiff][tape]") {
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({2}, {3.0, -1.0}));
  auto y = sum(x * x + x);  // dy/dx = 2x + 1
  tape.backward(y);
  auto g = tape.gradient(x);
  CHECK(g[0] == 7.0);
  CHECK(g[1] == -1.0);
  // The same Var on both sides of an op.
  Tape<double> t2;
  auto z = t2.leaf(from_data<double>({1}, {2.0}));
  auto w = z + z;
  CHECK(t2.grad(sum(w * z), {z})[0].value()[0] == 8.0);  // d(2z^2)/dz = 4z
}

TEST_CASE("Ops on constants record nothing", "[autodiff][tape]") {
  Tape<double> tape;
  V c(ones<double>({3}));
  auto d = exp(c) * 2.0 + c;
  CHECK(tape.num_nodes() == 0);
  CHECK_FALSE(d.requires_grad());
  auto x = tape.leaf(ones<double>({3}));
  auto y = x * d;
  CHECK(tape.num_nodes() == 1);
  CHECK(y.requires_grad());
  CHECK(std::string(tape.producer_name(y)) == "mul");
}

TEST_CASE("detach and NoGradGuard stop gradients", "[autodiff][tape]") {
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({1}, {2.0}));
  auto y = x * x;
  auto z = y.detach() * x;  // d/dx = y = 4 (not 3x^2 = 12)
  CHECK(tape.grad(sum(z), {x})[0].value()[0] == 4.0);
  const auto before = tape.num_nodes();
  {
    NoGradGuard guard;
    auto q = x * x * x;
    CHECK_FALSE(q.requires_grad());
    CHECK(grad_enabled() == false);
  }
  CHECK(grad_enabled());
  CHECK(tape.num_nodes() == before);
}

TEST_CASE("Parameter gradients accumulate across backward calls until zeroed", "[autodiff][parameter]") {
  Parameter<double> w(from_data<double>({2}, {1.0, 2.0}));
  for (int i = 0; i < 3; ++i) {
    Tape<double> tape;
    auto loss = sum(w.var() * w.var());  // the same leaf is reused within a tape
    CHECK(tape.num_slots() == 3);        // one leaf (reused by both uses), the product, the sum
    tape.backward(loss);
  }
  CHECK(w.grad()[0] == 6.0);  // 3 x 2w
  CHECK(w.grad()[1] == 12.0);
  w.zero_grad();
  CHECK(w.grad()[1] == 0.0);
  w.set_requires_grad(false);
  Tape<double> tape;
  CHECK_FALSE(w.var().requires_grad());
}

TEST_CASE("backward needs a scalar root or a seed", "[autodiff][tape][errors]") {
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({2}, {1.0, 2.0}));
  auto y = x * 3.0;
  CHECK_THROWS_AS(tape.backward(y), AutodiffError);
  tape.backward(y, from_data<double>({2}, {1.0, 10.0}));
  CHECK(tape.gradient(x)[1] == 30.0);
  CHECK_THROWS_AS(tape.backward(y, ones<double>({3})), ShapeError);
  CHECK_THROWS_AS(tape.backward(V(ones<double>({}))), AutodiffError);
}

TEST_CASE("A Var from a finished tape is a constant on the next", "[autodiff][tape]") {
  V kept;
  {
    Tape<double> t1;
    kept = t1.leaf(ones<double>({2})) * 2.0;
    CHECK(kept.requires_grad());
  }
  CHECK_FALSE(kept.requires_grad());
  Tape<double> t2;
  CHECK_FALSE(kept.requires_grad());
  auto x = t2.leaf(ones<double>({2}));
  auto y = sum(x * kept);
  CHECK(t2.grad(y, {x})[0].value()[0] == 2.0);
}

TEST_CASE("grad of an input the root does not use throws, naming the input", "[autodiff][tape][errors]") {
  Tape<double> tape;
  auto x = tape.leaf(ones<double>({2}));
  auto unused = tape.leaf(ones<double>({3}));
  auto y = sum(x);
  CHECK_THROWS_AS(tape.grad(y, {x, unused}), AutodiffError);
  CHECK_THROWS_WITH(tape.grad(y, {x, unused}), Catch::Contains("input 1 (of 2") && Catch::Contains("does not depend") &&
                                                   Catch::Contains("allow_unused"));
  // Not recorded on the tape at all: a constant, a detached copy, a value made under NoGradGuard.
  V c(ones<double>({2}));
  CHECK_THROWS_WITH(tape.grad(y, {c}), Catch::Contains("input 0 (of 1") && Catch::Contains("not recorded"));
  CHECK_THROWS_WITH(tape.grad(y, {x, x.detach()}), Catch::Contains("input 1") && Catch::Contains("not recorded"));
  V guarded;
  {
    NoGradGuard guard;
    guarded = x * 2.0;
  }
  CHECK_THROWS_WITH(tape.grad(y, {guarded}), Catch::Contains("input 0") && Catch::Contains("not recorded"));
  // The tape is still usable after the error.
  CHECK(tape.grad(y, {x})[0].value()[1] == 1.0);
}

TEST_CASE("allow_unused gives an unused input a zero gradient", "[autodiff][tape]") {
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({2}, {1.0, 2.0}));
  auto unused = tape.leaf(ones<double>({3}));
  V c(ones<double>({4}));
  auto g = tape.grad(sum(x * x), {x, unused, c}, {.allow_unused = true});
  REQUIRE(g.size() == 3);
  CHECK(g[0].value()[1] == 4.0);  // d(x^2)/dx = 2x
  CHECK(g[1].value().shape() == (Shape{3}));
  CHECK(g[2].value().shape() == (Shape{4}));
  for (double v : g[1].value()) CHECK(v == 0.0);
  for (double v : g[2].value()) CHECK(v == 0.0);
  // With create_graph too (the option set is one struct).
  auto h = tape.grad(sum(x * x), {unused, x}, {.create_graph = true, .allow_unused = true});
  CHECK(h[0].value()[2] == 0.0);
  CHECK(h[1].requires_grad());
}

TEST_CASE("A gradient penalty taken with respect to the wrong Var is an error, not a constant",
          "[autodiff][tape][errors]") {
  // WGAN-GP: penalty = (||d critic(x_hat) / d x_hat|| - 1)^2. If x_hat is not the Var the critic
  // saw (here a detached copy was fed to it), the gradient used to be silently zero and the
  // penalty the constant 1.
  Tape<double> tape;
  Parameter<double> w(from_data<double>({3}, {0.5, -1.0, 2.0}));
  auto x_hat = tape.leaf(from_data<double>({3}, {1.0, 2.0, 3.0}));
  auto critic = [&](const V& x) { return sum(x * w.var()); };
  CHECK_THROWS_AS(tape.grad(critic(x_hat.detach()), {x_hat}, {.create_graph = true}), AutodiffError);
  auto g = tape.grad(critic(x_hat), {x_hat}, {.create_graph = true})[0];
  CHECK(g.value()[2] == 2.0);  // d(x . w)/dx = w
}

TEST_CASE("An input reached through an op with a zero derivative gets zero, not an error", "[autodiff][tape]") {
  // The root depends on x, but the op between them adds no gradient (a step function): zero is
  // the true gradient.
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({2}, {-1.0, 3.0}));
  Tensor<double> step_value = from_data<double>({2}, {0.0, 1.0});
  auto step = record_op(
      "step", step_value, [](const V&, const V&, GradSink<double>&) {}, x);
  REQUIRE(step.requires_grad());
  auto g = tape.grad(sum(step * 2.0), {x});
  CHECK(g[0].value()[0] == 0.0);
  CHECK(g[0].value()[1] == 0.0);
}

TEST_CASE("grad with respect to an intermediate result and a leaf upstream of it", "[autodiff][tape]") {
  Tape<double> tape;
  auto x = tape.leaf(from_data<double>({1}, {2.0}));
  auto y = x * x;         // an intermediate, also requested
  auto z = sum(y * 3.0);  // dz/dy = 3, dz/dx = 3 * 2x = 12
  auto g = tape.grad(z, {y, x});
  CHECK(g[0].value()[0] == 3.0);
  CHECK(g[1].value()[0] == 12.0);
  CHECK(tape.grad(z, {y})[0].value()[0] == 3.0);
  CHECK(tape.grad(z, {z})[0].value()[0] == 1.0);  // the root with respect to itself
}

TEST_CASE("Tapes nest, and the inner one sees the outer's Vars as constants", "[autodiff][tape]") {
  Tape<double> outer;
  auto x = outer.leaf(from_data<double>({1}, {3.0}));
  {
    Tape<double> inner;
    CHECK_FALSE(x.requires_grad());
    auto y = inner.leaf(from_data<double>({1}, {2.0}));
    CHECK(inner.grad(sum(x * y), {y})[0].value()[0] == 3.0);
  }
  CHECK(x.requires_grad());
  CHECK(Tape<double>::current() == &outer);
}

TEST_CASE("The finite-value check names the op that made a NaN or Inf", "[autodiff][tape][nan]") {
  Tape<double> tape;
  tape.set_check_finite(true);
  auto x = tape.leaf(from_data<double>({2}, {1.0, -1.0}));
  CHECK_THROWS_WITH(log(x), Catch::Contains("log") && Catch::Contains("non-finite"));
  auto z = tape.leaf(from_data<double>({1}, {0.0}));
  CHECK_THROWS_WITH(1.0 / z, Catch::Contains("div"));
}

TEST_CASE("clear() forgets the recording", "[autodiff][tape]") {
  Tape<double> tape;
  auto x = tape.leaf(ones<double>({2}));
  auto y = x * x;
  tape.clear();
  CHECK(tape.num_nodes() == 0);
  CHECK_FALSE(y.requires_grad());
}

}  // namespace autodiff_tape_test
