#include "support/gradcheck.hpp"

namespace autodiff_custom_op_test {

using namespace genmod;

namespace {
// The example of docs/autodiff.md ("Adding an op"), verbatim.
/// softsign(x) = x / (1 + |x|).  d/dx = 1 / (1 + |x|)^2.
template <class T>
Var<T> softsign(const Var<T>& x) {
  return record_op("softsign",
      kernels::unary(x.value(), [](auto v) { return v / (decltype(v)(1) + kernels::simd::abs(v)); }),
      [x](const Var<T>& /*out*/, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, div(g, square(abs(x) + T(1))));   // written with differentiable ops
      },
      x);
}
}  // namespace

TEST_CASE("A user-defined op through record_op (the docs' example)", "[gradcheck][custom-op]") {
  GENMOD_CHECK_GRADIENTS([](std::span<const Var<double>> v) { return softsign(v[0]); },
                         test::away_from_zero({7}, 3));
  Var<float> x(from_data<float>({2}, {1.f, -3.f}));
  CHECK(softsign(x).value()[1] == Approx(-0.75f));
}

}  // namespace autodiff_custom_op_test
