#include "support/gradcheck.hpp"

namespace autodiff_ops_reduce_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("sum and mean over all elements and along each axis", "[gradcheck][ops][reduce]") {
  auto x = rnd({2, 3, 4}, 1);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return sum(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return mean(v[0]); }, x);
  for (int axis : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      INFO("axis " << axis << " keepdim " << keep);
      GENMOD_CHECK_GRADIENTS([=](Xs v) { return sum(v[0], axis, keep); }, x);
      GENMOD_CHECK_GRADIENTS([=](Xs v) { return mean(v[0], axis, keep); }, x);
    }
}

TEST_CASE("max over all elements and along an axis", "[gradcheck][ops][reduce]") {
  // Distinct values (a permutation), so the arg-max is unique and the gradient defined.
  Tensor<double> x({3, 4});
  const int order[] = {7, 2, 11, 0, 5, 9, 1, 4, 10, 3, 8, 6};
  for (int i = 0; i < 12; ++i) x[i] = 0.3 * order[i];
  GENMOD_CHECK_GRADIENTS([](Xs v) { return max(v[0]); }, x);
  for (int axis : {0, 1})
    for (bool keep : {false, true}) GENMOD_CHECK_GRADIENTS([=](Xs v) { return max(v[0], axis, keep); }, x);
}

TEST_CASE("logsumexp along an axis and over all elements", "[gradcheck][ops][reduce]") {
  auto x = rnd({3, 5}, 2, 2.0);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return logsumexp(v[0]); }, x);
  for (int axis : {0, 1})
    for (bool keep : {false, true}) GENMOD_CHECK_GRADIENTS([=](Xs v) { return logsumexp(v[0], axis, keep); }, x);
}

TEST_CASE("Reduction values, and logsumexp stable at +-80 and beyond", "[ops][reduce][stability]") {
  V x(from_data<double>({2, 3}, {1, 5, 3, -2, 0, 2}));
  CHECK(sum(x).item() == 9);
  CHECK(sum(x, 0).value()[1] == 5);
  CHECK(sum(x, 1, true).value().shape() == (Shape{2, 1}));
  CHECK(mean(x, 1).value()[1] == 0);
  CHECK(max(x).item() == 5);
  CHECK(max(x, 1).value()[1] == 2);
  Var<float> big(from_data<float>({3}, {80.f, 80.f, -1000.f}));
  CHECK(logsumexp(big).item() == Approx(80.0 + std::log(2.0)));
  Var<float> huge(from_data<float>({2}, {1000.f, 1000.f}));
  CHECK(logsumexp(huge).item() == Approx(1000.0 + std::log(2.0)));
  Var<float> tiny(from_data<float>({2}, {-1000.f, -1000.f}));
  CHECK(logsumexp(tiny).item() == Approx(-1000.0 + std::log(2.0)));
  // Sums of large float tensors are accurate (blocked SIMD accumulation).
  Var<float> ones_(full<float>({1 << 20}, 1.f));
  CHECK(sum(ones_).item() == float(1 << 20));
}

}  // namespace autodiff_ops_reduce_test
