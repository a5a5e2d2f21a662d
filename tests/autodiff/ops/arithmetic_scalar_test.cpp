#include "support/gradcheck.hpp"

namespace autodiff_ops_arithmetic_scalar_test {

// The scalar forms of arithmetic.hpp called by name (the operator tests in arithmetic_test.cpp
// reach them through `x * 3.0`, `2.0 / x`, ...), so that the op list can point at a check of each.

using namespace genmod;
using genmod::test::rnd;
using genmod::test::uni;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("add_scalar, scale, rdiv_scalar: gradients", "[gradcheck][ops]") {
  auto a = rnd({3, 4}, 21);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return add_scalar(x[0], 1.5); }, a);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return scale(x[0], -0.75); }, a);
  // c / a: d/da = -c / a^2, d2/da2 = 2c / a^3 (a kept away from 0).
  GENMOD_CHECK_GRADIENTS([](Xs x) { return rdiv_scalar(2.0, x[0]); }, uni({3, 4}, 22, 0.5, 2.0));
  // Products make the second derivatives non-trivial: d2/da2 (a * scale(a, c)) = 2c.
  GENMOD_CHECK_GRADIENTS([](Xs x) { return mul(x[0], scale(add_scalar(x[0], 0.5), 3.0)); }, a);
}

}  // namespace autodiff_ops_arithmetic_scalar_test
