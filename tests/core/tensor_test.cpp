#include <catch2/catch.hpp>

#include "genmod/core/tensor.hpp"

namespace core_tensor_test {

using namespace genmod;

TEST_CASE("Shape reports rank, extents and element count", "[core][shape]") {
  Shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 24);
  CHECK(s[-1] == 4);
  CHECK(s.stride(0) == 12);
  CHECK(s.to_string() == "[2, 3, 4]");
  CHECK(Shape{}.numel() == 1);
  CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5}), ShapeError);
  CHECK_THROWS_AS((Shape{2, -1}), ShapeError);
  CHECK_THROWS_WITH(s.dim(3), Catch::Contains("axis 3") && Catch::Contains("[2, 3, 4]"));
}

TEST_CASE("broadcast_shapes follows NumPy rules", "[core][shape]") {
  CHECK(broadcast_shapes(Shape{4, 1, 3}, Shape{5, 1}, "op") == (Shape{4, 5, 3}));
  CHECK(broadcast_shapes(Shape{}, Shape{2, 2}, "op") == (Shape{2, 2}));
  CHECK_THROWS_WITH(broadcast_shapes(Shape{2, 3}, Shape{4}, "add"),
                    Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK(broadcastable_to(Shape{3}, Shape{2, 3}));
  CHECK_FALSE(broadcastable_to(Shape{2, 3}, Shape{3}));
}

TEST_CASE("Tensor buffers are 64-byte aligned, shared on copy and deep on clone", "[core][tensor]") {
  auto a = zeros<float>({3, 5});
  CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 64 == 0);
  a(1, 2) = 7.f;
  CHECK(a[1 * 5 + 2] == 7.f);
  Tensor<float> b = a;
  CHECK(b.shares_buffer_with(a));
  CHECK_FALSE(a.is_unique());
  auto c = a.clone();
  c(1, 2) = 1.f;
  CHECK(a(1, 2) == 7.f);
  auto r = a.reshape({5, -1});
  CHECK(r.shape() == (Shape{5, 3}));
  CHECK_THROWS_AS(a.reshape({4, 4}), ShapeError);
  auto v = a.rows(1, 2);
  CHECK(v.shape() == (Shape{2, 5}));
  CHECK(v(0, 2) == 7.f);
  CHECK_THROWS_AS(a.rows(2, 2), ShapeError);
  CHECK(a.matrix().rows() == 3);
  CHECK(a.matrix()(1, 2) == 7.f);
}

TEST_CASE("from_data checks the element count", "[core][tensor]") {
  auto t = from_data<double>({2, 2}, {1, 2, 3, 4});
  CHECK(t(1, 0) == 3.0);
  CHECK_THROWS_WITH(from_data<double>({2, 2}, {1, 2, 3}), Catch::Contains("[2, 2]") && Catch::Contains("3"));
}

TEST_CASE("The pool reuses released blocks", "[core][memory]") {
  { auto warm = empty<float>({1000}); }
  const auto before = memory_stats().system_allocations;
  for (int i = 0; i < 10; ++i) {
    auto t = empty<float>({1000});
    t.fill(1.f);
  }
  CHECK(memory_stats().system_allocations == before);
}

TEST_CASE("Random fills are reproducible and independent of the thread count", "[core][random]") {
  Generator g1(42), g2(42);
  auto a = randn<double>({1001}, g1);
  auto b = randn<double>({1001}, g2);
  CHECK(allclose(a, b, 0.0, 0.0));
  // The second draw continues the sequence: it differs from the first.
  auto c = randn<double>({1001}, g1);
  CHECK_FALSE(allclose(a, c));
  // Moments of a large normal sample.
  Generator g3(7);
  const int saved = get_num_threads();
  set_num_threads(1);
  auto x1 = randn<float>({200000}, g3);
  set_num_threads(2);
  Generator g4(7);
  auto x2 = randn<float>({200000}, g4);
  set_num_threads(saved);
  CHECK(allclose(x1, x2, 0.0, 0.0));
  double mean = 0, var = 0;
  for (float v : x1) mean += v;
  mean /= 200000;
  for (float v : x1) var += (v - mean) * (v - mean);
  var /= 200000;
  CHECK(std::abs(mean) < 0.01);
  CHECK(std::abs(var - 1.0) < 0.02);
  Generator gu(3);
  auto u = rand<float>({100000}, gu);
  CHECK(*std::min_element(u.begin(), u.end()) >= 0.f);
  CHECK(*std::max_element(u.begin(), u.end()) < 1.f);
}

TEST_CASE("Generator state round-trips", "[core][random]") {
  Generator g(5, 9);
  g.next_u64();
  const auto st = g.state();
  const auto x = g.next_u64();
  Generator h;
  h.set_state(st);
  CHECK(h.next_u64() == x);
  CHECK(g.uniform_int(10) < 10);
}

}  // namespace core_tensor_test
