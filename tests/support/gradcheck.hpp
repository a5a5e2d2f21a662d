#pragma once
// Shared helpers of the op gradient checks: random inputs and a CHECK that prints the report.

#include <catch2/catch.hpp>

#include "genmod/autodiff/autodiff.hpp"

namespace genmod::test {

/// Normal values in double, seeded.
inline Tensor<double> rnd(const Shape& s, std::uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  auto t = randn<double>(s, g);
  for (auto& v : t) v *= scale;
  return t;
}

/// Uniform values in [lo, hi).
inline Tensor<double> uni(const Shape& s, std::uint64_t seed, double lo, double hi) {
  Generator g(seed);
  Tensor<double> t(s);
  fill_uniform(t, g, lo, hi);
  return t;
}

/// Values whose magnitude is at least `gap` (away from the kinks of relu, abs, ...).
inline Tensor<double> away_from_zero(const Shape& s, std::uint64_t seed, double gap = 0.1) {
  auto t = rnd(s, seed);
  for (auto& v : t) v = v >= 0 ? v + gap : v - gap;
  return t;
}

}  // namespace genmod::test

namespace genmod::test {

/// First- and second-order checks of f at the inputs, each within 1e-6.
template <class F, class... Ts>
void expect_gradients(F f, Ts... inputs) {
  const GradCheckFn fn = f;
  auto r1 = check_gradients(fn, {inputs...});
  INFO(r1.report);
  CHECK(r1.ok);
  CHECK(r1.elements_checked > 0);
  auto r2 = check_second_order(fn, {inputs...});
  INFO(r2.report);
  CHECK(r2.ok);
}

/// Checks every parameter gradient of a module: f() computes an output from the module; the tape's
/// backward of L = sum(w * f()) (w fixed random weights) is compared, for each parameter element,
/// with a central difference of L taken by perturbing the module's own parameter in place.
template <class M, class F>
void expect_module_gradients(M& module, F f, double tolerance = 1e-6) {
  auto params = module.named_parameters();
  Tensor<double> w;
  auto loss = [&]() {
    Var<double> y = f();
    if (!w.defined()) w = rnd(y.shape(), 99);
    return sum(mul(y, Var<double>(w)));
  };
  module.zero_grad();
  {
    Tape<double> tape;
    tape.backward(loss());
  }
  double worst = 0;
  std::string where = "none";
  for (auto& np : params) {
    Tensor<double>& v = np.parameter.value();
    for (std::int64_t k = 0; k < v.numel(); ++k) {
      const double x0 = v[k], h = 1e-6;
      v[k] = x0 + h;
      const double up = loss().item();
      v[k] = x0 - h;
      const double down = loss().item();
      v[k] = x0;
      const double num = (up - down) / (2 * h), ana = np.parameter.grad()[k];
      const double err = std::abs(ana - num) / std::max({1.0, std::abs(ana), std::abs(num)});
      if (err > worst) {
        worst = err;
        where = np.name + "[" + std::to_string(k) + "] analytic " + std::to_string(ana) + " numeric " + std::to_string(num);
      }
    }
  }
  INFO("worst parameter gradient error " << worst << " at " << where);
  CHECK(worst <= tolerance);
}

}  // namespace genmod::test

/// expect_gradients with the caller's line in the failure report (the arguments may contain
/// commas, e.g. lambdas with braced lists, hence the variadic form).
#define GENMOD_CHECK_GRADIENTS(...)                       \
  do {                                                    \
    INFO("gradient check at line " << __LINE__);          \
    ::genmod::test::expect_gradients(__VA_ARGS__);        \
  } while (0)
