#include "support/gradcheck.hpp"

namespace autodiff_ops_softmax_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("softmax and log_softmax along each axis", "[gradcheck][ops][softmax]") {
  auto x = rnd({2, 3, 4}, 1, 2.0);
  for (int axis : {0, 1, 2}) {
    INFO("axis " << axis);
    GENMOD_CHECK_GRADIENTS([=](Xs v) { return softmax(v[0], axis); }, x);
    GENMOD_CHECK_GRADIENTS([=](Xs v) { return log_softmax(v[0], axis); }, x);
  }
}

TEST_CASE("softmax values sum to one and stay finite at +-80", "[ops][softmax][stability]") {
  Var<float> x(from_data<float>({2, 3}, {80.f, -80.f, 0.f, 1000.f, 1000.f, -1000.f}));
  auto p = softmax(x, 1).value();
  CHECK(p(0, 0) + p(0, 1) + p(0, 2) == Approx(1.0));
  CHECK(p(1, 0) == Approx(0.5));
  auto lp = log_softmax(x, 1).value();
  for (float v : lp) CHECK(std::isfinite(v));
  CHECK(lp(0, 1) == Approx(-160.0));
  CHECK(lp(1, 2) == Approx(-2000.0 - std::log(2.0)));
}

}  // namespace autodiff_ops_softmax_test
