#include "genmod/kernels/tensor_math.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "genmod/autodiff/autodiff.hpp"

namespace core_tensor_math_test {

using namespace genmod;

namespace {

Tensor<float> row(std::initializer_list<float> v) {
  return from_data<float>({static_cast<std::int64_t>(v.size())}, v);
}

void check_equal(const Tensor<float>& got, const Shape& shape, std::initializer_list<float> want) {
  REQUIRE(got.shape() == shape);
  std::int64_t i = 0;
  for (float w : want) CHECK(got[i++] == Approx(w));
}

}  // namespace

TEST_CASE("Tensor arithmetic with a tensor of the same shape", "[core][tensor_math]") {
  const auto a = from_data<float>({2, 2}, {1.f, 2.f, 3.f, 4.f});
  const auto b = from_data<float>({2, 2}, {2.f, 4.f, -1.f, 0.5f});
  check_equal(a + b, {2, 2}, {3.f, 6.f, 2.f, 4.5f});
  check_equal(a - b, {2, 2}, {-1.f, -2.f, 4.f, 3.5f});
  check_equal(a * b, {2, 2}, {2.f, 8.f, -3.f, 2.f});
  check_equal(a / b, {2, 2}, {0.5f, 0.5f, -3.f, 8.f});
  check_equal(-a, {2, 2}, {-1.f, -2.f, -3.f, -4.f});
  // The operands are untouched and the result has its own buffer.
  const auto c = a + b;
  CHECK(a[0] == 1.f);
  CHECK_FALSE(c.shares_buffer_with(a));
}

TEST_CASE("Tensor arithmetic broadcasts as NumPy does", "[core][tensor_math]") {
  const auto m = from_data<float>({2, 3}, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  check_equal(m + row({10.f, 20.f, 30.f}), {2, 3}, {11.f, 22.f, 33.f, 14.f, 25.f, 36.f});
  check_equal(row({10.f, 20.f, 30.f}) - m, {2, 3}, {9.f, 18.f, 27.f, 6.f, 15.f, 24.f});
  const auto col = from_data<float>({2, 1}, {2.f, -1.f});
  check_equal(m * col, {2, 3}, {2.f, 4.f, 6.f, -4.f, -5.f, -6.f});
  check_equal(col / row({1.f, 2.f, 4.f}), {2, 3}, {2.f, 1.f, 0.5f, -1.f, -0.5f, -0.25f});  // [2,1] op [3]
  check_equal(m + scalar<float>(1.f), {2, 3}, {2.f, 3.f, 4.f, 5.f, 6.f, 7.f});             // rank 0
  // A mismatch names the operator and both shapes.
  CHECK_THROWS_AS(m + row({1.f, 2.f}), ShapeError);
  CHECK_THROWS_WITH(m * row({1.f, 2.f}),
                    Catch::Contains("operator*") && Catch::Contains("[2, 3]") && Catch::Contains("[2]"));
}

TEST_CASE("Tensor arithmetic with a scalar, on either side", "[core][tensor_math]") {
  const auto a = row({1.f, 2.f, 4.f});
  check_equal(a + 1.f, {3}, {2.f, 3.f, 5.f});
  check_equal(1.f + a, {3}, {2.f, 3.f, 5.f});
  check_equal(a - 1.f, {3}, {0.f, 1.f, 3.f});
  check_equal(1.f - a, {3}, {0.f, -1.f, -3.f});
  check_equal(a * 2, {3}, {2.f, 4.f, 8.f});  // an int or a double literal converts to T
  check_equal(0.5 * a, {3}, {0.5f, 1.f, 2.f});
  check_equal(a / 4.f, {3}, {0.25f, 0.5f, 1.f});
  check_equal(4.f / a, {3}, {4.f, 2.f, 1.f});
  // A true division: 1/3 is not exactly a float, so a * (1/3) could differ from a / 3.
  const auto third = row({1.f, 2.f, 10.f}) / 3.f;
  CHECK(third[2] == 10.f / 3.f);
}

TEST_CASE("Compound assignment updates the left tensor in place", "[core][tensor_math]") {
  auto a = row({1.f, 2.f, 3.f});
  const Tensor<float> alias = a;  // a shallow copy: shares a's buffer
  a += row({1.f, 1.f, 1.f});
  a *= 2.f;
  a -= 1.f;
  a /= row({1.f, 2.f, 4.f});
  check_equal(a, {3}, {3.f, 2.5f, 1.75f});
  CHECK(alias[2] == 1.75f);  // as in NumPy and PyTorch, copies see an in-place update
  a *= row({2.f, 2.f, 2.f});
  a /= 0.5f;
  check_equal(a, {3}, {12.f, 10.f, 7.f});

  // The right operand broadcasts to the left's shape; the left's shape cannot change.
  auto m = zeros<float>({2, 3});
  m += row({1.f, 2.f, 3.f});
  m -= from_data<float>({2, 1}, {0.f, 1.f});
  check_equal(m, {2, 3}, {1.f, 2.f, 3.f, 0.f, 1.f, 2.f});
  auto r = row({1.f, 2.f, 3.f});
  CHECK_THROWS_WITH(r += m, Catch::Contains("operator+=") && Catch::Contains("[2, 3]"));
  CHECK(r[0] == 1.f);  // untouched by the failed update
}

TEST_CASE("Elementwise functions of a tensor", "[core][tensor_math]") {
  const auto x = row({-2.f, 0.f, 4.f});
  check_equal(abs(x), {3}, {2.f, 0.f, 4.f});
  check_equal(square(x), {3}, {4.f, 0.f, 16.f});
  check_equal(sqrt(abs(x)), {3}, {std::sqrt(2.f), 0.f, 2.f});
  check_equal(pow(abs(x), 3.f), {3}, {8.f, 0.f, 64.f});
  check_equal(exp(x), {3}, {std::exp(-2.f), 1.f, std::exp(4.f)});
  check_equal(log(row({1.f, std::exp(1.f), 0.5f})), {3}, {0.f, 1.f, std::log(0.5f)});
  CHECK(std::isnan(sqrt(x)[0]));
}

TEST_CASE("Reductions of a tensor: a number over all elements, a tensor along an axis", "[core][tensor_math]") {
  const auto m = from_data<float>({2, 3}, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  static_assert(std::is_same_v<decltype(sum(m)), float>);
  static_assert(std::is_same_v<decltype(mean(m)), float>);
  CHECK(sum(m) == 21.f);
  CHECK(mean(m) == 3.5f);
  check_equal(sum(m, 0), {3}, {5.f, 7.f, 9.f});
  check_equal(sum(m, -1), {2}, {6.f, 15.f});
  check_equal(sum(m, 1, true), {2, 1}, {6.f, 15.f});
  check_equal(mean(m, 0), {3}, {2.5f, 3.5f, 4.5f});
  check_equal(mean(m, 1, true), {2, 1}, {2.f, 5.f});
  CHECK_THROWS_AS(sum(m, 2), ShapeError);
  // A mean over nothing is an error rather than 0/0.
  CHECK(sum(zeros<float>({0})) == 0.f);
  CHECK_THROWS_AS(mean(zeros<float>({0})), ValueError);
  CHECK_THROWS_AS(mean(zeros<float>({2, 0}), 1), ValueError);
  // The norm over all non-batch dimensions of an image batch, as a gradient penalty takes it.
  const auto g = full<float>({2, 1, 2, 2}, 0.5f);
  check_equal(sqrt(sum(square(g.reshape({2, -1})), 1)), {2}, {1.f, 1.f});
}

TEST_CASE("Tensor arithmetic on large tensors matches a scalar loop", "[core][tensor_math]") {
  // Enough elements for the SIMD body, its tail and the threaded path, in double.
  Generator gen(7);
  const std::int64_t n = 100003;
  const auto a = randn<double>({n}, gen);
  const auto b = rand<double>({n}, gen) + 0.5;
  const auto y = (a * b - a / b) * 3.0 + 1.0;
  double want_sum = 0, worst = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double w = (a[i] * b[i] - a[i] / b[i]) * 3.0 + 1.0;
    worst = std::max(worst, std::abs(y[i] - w) / std::max(1.0, std::abs(w)));
    want_sum += w;
  }
  CHECK(worst < 1e-14);
  CHECK(sum(y) == Approx(want_sum).epsilon(1e-10));
  CHECK(mean(y) == Approx(want_sum / static_cast<double>(n)).epsilon(1e-10));
}

TEST_CASE("Undefined tensors are reported, not dereferenced", "[core][tensor_math][errors]") {
  Tensor<float> undefined;
  const auto a = row({1.f});
  CHECK_THROWS_AS(a + undefined, ValueError);
  CHECK_THROWS_AS(undefined * 2.f, ValueError);
  CHECK_THROWS_WITH(sum(undefined), Catch::Contains("sum") && Catch::Contains("undefined"));
}

TEST_CASE("Tensor and Var expressions stay apart: no ambiguity, no recording", "[core][tensor_math][autodiff]") {
  Tape<float> tape;
  const auto t = row({1.f, 2.f});
  const Var<float> x = tape.leaf(row({3.f, 4.f}));
  // Tensor op Tensor is plain arithmetic: a Tensor, and nothing on the tape even while one records.
  static_assert(std::is_same_v<decltype(t + t), Tensor<float>>);
  static_assert(std::is_same_v<decltype(2.f * t - t / 2.f), Tensor<float>>);
  static_assert(std::is_same_v<decltype(sqrt(t)), Tensor<float>>);
  static_assert(std::is_same_v<decltype(sum(t, 0)), Tensor<float>>);
  const auto before = tape.num_nodes();
  const auto u = sqrt(t * t + 1.f);
  CHECK(tape.num_nodes() == before);
  // Var op Var is differentiable: a Var, recorded.
  static_assert(std::is_same_v<decltype(x + x), Var<float>>);
  static_assert(std::is_same_v<decltype(sqrt(x)), Var<float>>);
  static_assert(std::is_same_v<decltype(sum(x)), Var<float>>);
  const auto y = sum(x * x);
  CHECK(y.requires_grad());
  // A Var with a Tensor is a Var, the Tensor a constant in it.
  static_assert(std::is_same_v<decltype(x * t), Var<float>>);
  static_assert(std::is_same_v<decltype(t - x), Var<float>>);
  const auto z = sum(x * u + (t - x) / t);  // dz/dx = u - 1/t
  CHECK(z.requires_grad());
  const auto g = tape.grad(z, {x})[0].value();
  CHECK(g[0] == Approx(u[0] - 1.f));
  CHECK(g[1] == Approx(u[1] - 0.5f));
}

}  // namespace core_tensor_math_test
