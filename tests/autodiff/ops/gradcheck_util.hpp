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

}  // namespace genmod::test

/// expect_gradients with the caller's line in the failure report (the arguments may contain
/// commas, e.g. lambdas with braced lists, hence the variadic form).
#define GENMOD_CHECK_GRADIENTS(...)                       \
  do {                                                    \
    INFO("gradient check at line " << __LINE__);          \
    ::genmod::test::expect_gradients(__VA_ARGS__);        \
  } while (0)
