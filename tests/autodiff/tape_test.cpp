#include <catch2/catch.hpp>

#include "genmod/autodiff/autodiff.hpp"

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
    CHECK(tape.num_slots() == 3);         // one leaf (reused by both uses), the product, the sum
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

TEST_CASE("grad of an input the root does not use is zero", "[autodiff][tape]") {
  Tape<double> tape;
  auto x = tape.leaf(ones<double>({2}));
  auto unused = tape.leaf(ones<double>({3}));
  auto g = tape.grad(sum(x), {x, unused});
  CHECK(g[1].value().shape() == (Shape{3}));
  CHECK(g[1].value()[0] == 0.0);
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
