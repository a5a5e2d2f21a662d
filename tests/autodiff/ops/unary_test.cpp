#include "support/gradcheck.hpp"

namespace autodiff_ops_unary_test {

using namespace genmod;
using genmod::test::away_from_zero;
using genmod::test::rnd;
using genmod::test::uni;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("exp, log, log1p, sqrt", "[gradcheck][ops]") {
  GENMOD_CHECK_GRADIENTS([](Xs x) { return exp(x[0]); }, rnd({3, 4}, 1));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return log(x[0]); }, uni({3, 4}, 2, 0.2, 3.0));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return log1p(x[0]); }, uni({3, 4}, 3, -0.5, 3.0));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return sqrt(x[0]); }, uni({3, 4}, 4, 0.2, 3.0));
}

TEST_CASE("pow by a scalar, square, abs, clamp", "[gradcheck][ops]") {
  auto pos = uni({6}, 5, 0.3, 2.0);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return pow(x[0], 3.0); }, rnd({6}, 6));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return pow(x[0], 2.5); }, pos);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return pow(x[0], -1.5); }, pos);
  GENMOD_CHECK_GRADIENTS([](Xs x) { return square(x[0]); }, rnd({6}, 7));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return abs(x[0]); }, away_from_zero({6}, 8));
  // Values spread around the clamp limits, none within 0.05 of them.
  auto c = from_data<double>({6}, {-2.0, -0.9, -0.3, 0.2, 0.8, 1.7});
  GENMOD_CHECK_GRADIENTS([](Xs x) { return clamp(x[0], -1.0, 1.0); }, c);
}

TEST_CASE("Unary forward values", "[ops]") {
  V x(from_data<double>({3}, {-2.0, 0.0, 4.0}));
  CHECK(abs(x).value()[0] == 2.0);
  CHECK(clamp(x, -1.0, 1.0).value()[2] == 1.0);
  CHECK(pow(x, 2.0).value()[0] == 4.0);
  CHECK(sqrt(V(from_data<double>({1}, {9.0}))).value()[0] == 3.0);
  CHECK_THROWS_AS(clamp(x, 1.0, -1.0), ValueError);
}

}  // namespace autodiff_ops_unary_test
