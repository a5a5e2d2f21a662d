// SGD against torch.optim.SGD's documented rule over three steps, with values worked out by hand.
#include <catch2/catch.hpp>

#include <vector>

#include "genmod/optim/adam.hpp"
#include "genmod/optim/rmsprop.hpp"
#include "genmod/optim/sgd.hpp"

namespace optim_sgd_test {

using namespace genmod;

namespace {

// Three steps of a one-element parameter p0 = 1 with gradient 1 each step (lr = 0.1); returns
// p after each step.
std::vector<double> three_steps(optim::SGDOptions o) {
  Parameter<double> p(from_data<double>(Shape{1}, {1.0}));
  optim::SGD opt{std::vector{p}, o};
  std::vector<double> out;
  for (int t = 0; t < 3; ++t) {
    p.grad()[0] = 1.0;
    opt.step();
    out.push_back(p.value()[0]);
  }
  return out;
}

}  // namespace

TEST_CASE("Plain SGD: p <- p - lr g", "[optim][sgd]") {
  auto p = three_steps({.lr = 0.1});
  CHECK(p[0] == Approx(0.9));
  CHECK(p[1] == Approx(0.8));
  CHECK(p[2] == Approx(0.7));
}

TEST_CASE("SGD momentum: b1 = g, then b = mu b + g", "[optim][sgd]") {
  // b = 1, 1.9, 2.71  ->  p = 0.9, 0.71, 0.439
  auto p = three_steps({.lr = 0.1, .momentum = 0.9});
  CHECK(p[0] == Approx(0.9).epsilon(1e-14));
  CHECK(p[1] == Approx(0.71).epsilon(1e-14));
  CHECK(p[2] == Approx(0.439).epsilon(1e-14));
}

TEST_CASE("SGD momentum with dampening: no dampening on the first step", "[optim][sgd]") {
  // b = 1, 0.9 + 0.5 = 1.4, 1.26 + 0.5 = 1.76  ->  p = 0.9, 0.76, 0.584
  auto p = three_steps({.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  CHECK(p[0] == Approx(0.9).epsilon(1e-14));
  CHECK(p[1] == Approx(0.76).epsilon(1e-14));
  CHECK(p[2] == Approx(0.584).epsilon(1e-14));
}

TEST_CASE("SGD Nesterov: the step is g + mu b", "[optim][sgd]") {
  // b = 1, 1.9, 2.71; d = 1.9, 2.71, 3.439  ->  p = 0.81, 0.539, 0.1951
  auto p = three_steps({.lr = 0.1, .momentum = 0.9, .nesterov = true});
  CHECK(p[0] == Approx(0.81).epsilon(1e-14));
  CHECK(p[1] == Approx(0.539).epsilon(1e-14));
  CHECK(p[2] == Approx(0.1951).epsilon(1e-14));
}

TEST_CASE("SGD weight decay is added to the gradient before the momentum buffer", "[optim][sgd]") {
  // wd = 0.5, mu = 0.9, lr = 0.1, g = 1 each step, p0 = 1:
  //   d1 = 1 + 0.5        = 1.5,     b1 = 1.5,                   p1 = 1 - 0.15          = 0.85
  //   d2 = 1 + 0.425      = 1.425,   b2 = 1.35 + 1.425 = 2.775,  p2 = 0.85 - 0.2775     = 0.5725
  //   d3 = 1 + 0.28625    = 1.28625, b3 = 2.4975 + 1.28625 = 3.78375, p3 = 0.5725 - 0.378375 = 0.194125
  auto p = three_steps({.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5});
  CHECK(p[0] == Approx(0.85).epsilon(1e-14));
  CHECK(p[1] == Approx(0.5725).epsilon(1e-14));
  CHECK(p[2] == Approx(0.194125).epsilon(1e-14));
}

TEST_CASE("SGD updates long float parameters identically in SIMD body and tail", "[optim][sgd]") {
  // 1000 elements with distinct values: every element must follow the scalar rule.
  const std::int64_t n = 1000;
  Parameter<float> w(empty<float>(Shape{n}));
  for (std::int64_t i = 0; i < n; ++i) {
    w.value()[i] = 0.01f * static_cast<float>(i);
    w.grad()[i] = 1.f - 0.002f * static_cast<float>(i);
  }
  optim::SGD opt{std::vector{w}, {.lr = 0.5, .momentum = 0.5, .nesterov = true}};
  opt.step();
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = 1.f - 0.002f * static_cast<float>(i);
    const float expect = 0.01f * static_cast<float>(i) - 0.5f * (g + 0.5f * g);
    REQUIRE(w.value()[i] == Approx(expect).margin(1e-6));
  }
  CHECK(opt.state()[2].first == "0.momentum_buffer");
}

TEST_CASE("Options given as designated initializers reach the optimizer when its type is deduced", "[optim][sgd]") {
  // GCC 12.2 at -O2 -march=native (AVX-512), with the optimizers taking their options by value:
  // after one deduced SGD built from {.lr = 1.0}, a second one built from {.lr = 0.5, .momentum =
  // 0.5, .nesterov = true} received dampening = 0.5 and threw. Clean under ASan and UBSan, right
  // with clang, with -fno-tree-slp-vectorize or without -march=native: a miscompile in GCC's SLP
  // vectorizer. The optimizers take their options by const reference, which it gets right.
  Parameter<float> w(zeros<float>(Shape{3}));
  optim::SGD first{std::vector{w}, {.lr = 1.0}};
  CHECK(first.options().lr == 1.0);
  optim::SGD second{std::vector{w}, {.lr = 0.5, .momentum = 0.5, .nesterov = true}};
  CHECK(second.options().lr == 0.5);
  CHECK(second.options().momentum == 0.5);
  CHECK(second.options().dampening == 0.0);
  CHECK(second.options().nesterov);
  optim::Adam adam{std::vector{w}, {.lr = 0.25}};
  optim::Adam adam2{std::vector{w}, {.lr = 0.5, .eps = 0.125, .amsgrad = true}};
  CHECK(adam2.options().lr == 0.5);
  CHECK(adam2.options().eps == 0.125);
  CHECK(adam2.options().weight_decay == 0.0);
  CHECK(adam2.options().amsgrad);
  optim::RMSprop rms{std::vector{w}, {.lr = 0.25}};
  optim::RMSprop rms2{std::vector{w}, {.lr = 0.5, .momentum = 0.5}};
  CHECK(rms2.options().lr == 0.5);
  CHECK(rms2.options().momentum == 0.5);
}

}  // namespace optim_sgd_test
