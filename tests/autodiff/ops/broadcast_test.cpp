#include "support/gradcheck.hpp"

namespace autodiff_ops_broadcast_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("broadcast_to and sum_to: gradients", "[gradcheck][ops][broadcast]") {
  // broadcast_to's backward is sum_to and the reverse, so each checks the other's formula too.
  GENMOD_CHECK_GRADIENTS([](Xs x) { return broadcast_to(x[0], Shape{2, 3, 4}); }, rnd({3, 1}, 31));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return broadcast_to(x[0], Shape{2, 3, 4}); }, rnd({}, 32));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return sum_to(x[0], Shape{3, 1}); }, rnd({2, 3, 4}, 33));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return sum_to(x[0], Shape{4}); }, rnd({2, 3, 4}, 34));
  // Squared so that the second derivative is not zero.
  GENMOD_CHECK_GRADIENTS([](Xs x) { return square(sum_to(mul(x[0], x[0]), Shape{1, 4})); }, rnd({3, 4}, 35));
}

TEST_CASE("broadcast_to and sum_to: values", "[ops][broadcast]") {
  const V x(from_data<double>({2, 1}, {1, 2}));
  const Tensor<double> y = broadcast_to(x, Shape{2, 3}).value();
  CHECK(y.shape() == Shape{2, 3});
  CHECK(y(1, 2) == 2.0);
  const Tensor<double> s = sum_to(V(from_data<double>({2, 3}, {1, 2, 3, 4, 5, 6})), Shape{3}).value();
  CHECK(s.shape() == Shape{3});
  CHECK(s[0] == 5.0);
  CHECK(s[2] == 9.0);
}

}  // namespace autodiff_ops_broadcast_test
