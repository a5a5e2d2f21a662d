#include <catch2/catch.hpp>

#include "genmod/autodiff/autodiff.hpp"

namespace autodiff_grad_check_test {

using namespace genmod;
using V = Var<double>;

namespace {
// x^3 with a deliberately wrong derivative (2x^2 instead of 3x^2).
V wrong_cube(const V& x) {
  return record_op(
      "wrong_cube", kernels::unary(x.value(), [](auto v) { return v * v * v; }),
      [x](const V&, const V& g, GradSink<double>& sink) { sink.add(0, mul(g, scale(mul(x, x), 2.0))); }, x);
}
}  // namespace

TEST_CASE("check_gradients catches a wrong derivative and names the worst element", "[gradcheck][checker]") {
  auto x = from_data<double>({3}, {0.5, -2.0, 1.0});
  auto r = check_gradients([](std::span<const V> v) { return wrong_cube(v[0]); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.worst_input == 0);
  CHECK(r.worst_index == 1);  // |x| largest at element 1
  CHECK(r.report.find("element 1") != std::string::npos);
  CHECK(r.numeric == Approx(3.0 * 4.0 * r.numeric / 12.0));  // finite difference sees 3x^2 (times its weight)
  auto good = check_gradients([](std::span<const V> v) { return v[0] * v[0] * v[0]; }, {x});
  INFO(good.report);
  CHECK(good.ok);
  CHECK(good.max_error < 1e-8);
}

}  // namespace autodiff_grad_check_test
