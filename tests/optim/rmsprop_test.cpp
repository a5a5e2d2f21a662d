// RMSprop (plain, centered, with momentum and weight decay) against torch.optim.RMSprop's
// documented rule in double precision.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "genmod/optim/rmsprop.hpp"

namespace optim_rmsprop_test {

using namespace genmod;

namespace {

const std::vector<std::vector<double>> kGrads = {
    {0.3, -1.2, 0.0, 2.5, -0.01, 0.7, 1.1},
    {-0.6, 0.2, 0.4, 2.0, 0.02, -0.7, 0.9},
    {0.1, -0.9, -0.3, 1.0, 0.0, 0.5, -1.3},
};
const std::vector<double> kP0 = {1.0, -2.0, 0.5, 0.0, 3.0, -0.25, 0.125};

void run(const optim::RMSpropOptions& o) {
  Parameter<double> p(from_data<double>(Shape{7}, std::span<const double>(kP0)));
  optim::RMSprop opt{std::vector{p}, o};
  std::vector<double> ref = kP0, v(7, 0.0), a(7, 0.0), b(7, 0.0);
  for (const auto& grad : kGrads) {
    for (std::int64_t i = 0; i < 7; ++i) p.grad()[i] = grad[static_cast<std::size_t>(i)];
    opt.step();
    for (std::size_t i = 0; i < 7; ++i) {  // the documented rule, literally
      const double g = grad[i] + o.weight_decay * ref[i];
      v[i] = o.alpha * v[i] + (1 - o.alpha) * g * g;
      double vt = v[i];
      if (o.centered) {
        a[i] = a[i] * o.alpha + (1 - o.alpha) * g;
        vt = vt - a[i] * a[i];
      }
      if (o.momentum > 0) {
        b[i] = o.momentum * b[i] + g / (std::sqrt(vt) + o.eps);
        ref[i] = ref[i] - o.lr * b[i];
      } else {
        ref[i] = ref[i] - o.lr * g / (std::sqrt(vt) + o.eps);
      }
    }
    for (std::size_t i = 0; i < 7; ++i)
      CHECK(p.value()[static_cast<std::int64_t>(i)] == Approx(ref[i]).epsilon(1e-12).margin(1e-14));
  }
}

}  // namespace

TEST_CASE("RMSprop follows the documented rule", "[optim][rmsprop]") {
  run({.lr = 0.01, .alpha = 0.9});
  run({.lr = 0.05, .alpha = 0.8, .eps = 1e-4, .weight_decay = 0.1});
}

TEST_CASE("Centered RMSprop normalizes by the variance estimate", "[optim][rmsprop]") {
  run({.lr = 0.01, .alpha = 0.9, .centered = true});
  run({.lr = 0.02, .alpha = 0.7, .eps = 1e-3, .weight_decay = 0.01, .momentum = 0.9, .centered = true});
}

TEST_CASE("RMSprop with momentum keeps a buffer of normalized steps", "[optim][rmsprop]") {
  run({.lr = 0.01, .alpha = 0.99, .momentum = 0.5});
  Parameter<float> w(zeros<float>(Shape{2, 2}));
  optim::RMSprop opt{std::vector{w}, {.momentum = 0.5, .centered = true}};
  auto names = opt.buffer_names();
  CHECK(names == std::vector<std::string>{"square_avg", "grad_avg", "momentum_buffer"});
}

}  // namespace optim_rmsprop_test
