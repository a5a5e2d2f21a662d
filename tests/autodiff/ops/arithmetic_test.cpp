#include "support/gradcheck.hpp"

namespace autodiff_ops_arithmetic_test {

using namespace genmod;
using genmod::test::rnd;
using genmod::test::uni;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("add, sub, mul, div: gradients with equal shapes", "[gradcheck][ops]") {
  auto a = rnd({3, 4}, 1), b = rnd({3, 4}, 2);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return add(x[0], x[1]); }, a, b);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return sub(x[0], x[1]); }, a, b);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return mul(x[0], x[1]); }, a, b);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return div(x[0], x[1]); }, a, uni({3, 4}, 3, 0.5, 2.0));
}

TEST_CASE("add, sub, mul, div: gradients under NumPy broadcasting", "[gradcheck][ops][broadcast]") {
  // row vector, column vector, scalar, and a rank-4 case with broadcasting on both sides.
  auto a = rnd({2, 3, 4}, 4);
  auto row = rnd({4}, 5), col = rnd({3, 1}, 6), s = rnd({}, 7);
  auto pos_row = uni({4}, 8, 0.5, 2.0), pos_col = uni({3, 1}, 9, 0.5, 2.0);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return add(x[0], x[1]); }, a, row);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return sub(x[1], x[0]); }, a, col);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return mul(x[0], x[1]); }, a, s);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return mul(x[0], x[1]); }, col, row);  // [3,1] x [4] -> [3,4]
  GENMOD_CHECK_GRADIENTS([](Xs x) { return div(x[0], x[1]); }, a, pos_row);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return div(x[1], x[0]); }, uni({2, 3, 4}, 10, 0.5, 2.0), pos_col);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return add(x[0], x[1]); }, rnd({2, 1, 3, 1}, 11), rnd({4, 1, 5}, 12));
}

TEST_CASE("neg and scalar forms", "[gradcheck][ops]") {
  auto a = rnd({5}, 13);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return neg(x[0]); }, a);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return x[0] * 3.0 + 1.5; }, a);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return 2.0 - x[0] / 4.0; }, a);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return 2.0 / x[0]; }, uni({5}, 14, 0.5, 2.0));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return -(x[0] * x[0]); }, a);
}

TEST_CASE("Broadcasting shape errors name the op and both shapes", "[ops][errors]") {
  V a(zeros<double>({2, 3})), b(zeros<double>({4}));
  CHECK_THROWS_AS(add(a, b), ShapeError);
  CHECK_THROWS_WITH(mul(a, b), Catch::Contains("mul") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(div(a, b), Catch::Contains("div"));
  CHECK_THROWS_WITH(sub(a, b), Catch::Contains("sub"));
}

TEST_CASE("Forward values of arithmetic with broadcasting", "[ops]") {
  V a(from_data<double>({2, 2}, {1, 2, 3, 4})), b(from_data<double>({2}, {10, 20}));
  auto y = add(a, b).value();
  CHECK(y(0, 0) == 11);
  CHECK(y(1, 1) == 24);
  auto z = div(a, b).value();
  CHECK(z(1, 0) == Approx(0.3));
}

}  // namespace autodiff_ops_arithmetic_test
