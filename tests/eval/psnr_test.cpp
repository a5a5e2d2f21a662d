#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "genmod/eval/psnr.hpp"

namespace eval_psnr_test {

using namespace genmod;

TEST_CASE("psnr: identical tensors give +infinity", "[eval][psnr]") {
  Generator g(1);
  auto x = rand<float>({3, 4, 4}, g);
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(eval::psnr(x, x) == inf);
  CHECK(eval::psnr(x, x.clone()) == inf);
  for (double p : eval::psnr_per_sample(x, x)) CHECK(p == inf);
  CHECK(eval::mean_psnr_per_sample(x, x) == inf);
}

TEST_CASE("psnr: hand-computed decibels", "[eval][psnr]") {
  // Every pixel off by 0.1: MSE = 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB.
  auto ref = zeros<double>({2, 2});
  auto test = full<double>({2, 2}, 0.1);
  CHECK(eval::psnr(ref, test) == Approx(20.0));
  CHECK(eval::psnr(test, ref) == Approx(20.0));
  // max_value = 2: 10 log10(4 / 0.01) = 20 + 10 log10(4) = 26.0206 dB.
  CHECK(eval::psnr(ref, test, 2.0) == Approx(20.0 + 10.0 * std::log10(4.0)));
  // 8-bit pixels off by 10: MSE = 100, 10 log10(255^2 / 100) = 28.1308 dB.
  auto a = full<std::uint8_t>({4, 4}, std::uint8_t{100});
  auto b = full<std::uint8_t>({4, 4}, std::uint8_t{110});
  CHECK(eval::psnr(a, b, 255.0) == Approx(28.1308036));
  CHECK(eval::psnr(b, a, 255.0) == Approx(28.1308036));  // no unsigned wrap-around
}

TEST_CASE("psnr_per_sample: one value per row, and its mean differs from the pooled PSNR", "[eval][psnr]") {
  // Row 0 off by 0.1 (MSE 0.01, 20 dB), row 1 off by 0.01 (MSE 1e-4, 40 dB): mean 30 dB.
  // Pooled: MSE = (0.01 + 1e-4) / 2 = 0.00505, 10 log10(1 / 0.00505) = 22.9671 dB (never more
  // than the mean of the per-row values: log is concave).
  auto ref = zeros<float>({2, 1, 2, 2});
  auto test = from_data<float>({2, 1, 2, 2}, {0.1f, -0.1f, 0.1f, 0.1f, 0.01f, 0.01f, -0.01f, 0.01f});
  auto per = eval::psnr_per_sample(ref, test);
  REQUIRE(per.size() == 2);
  CHECK(per[0] == Approx(20.0).epsilon(1e-5));
  CHECK(per[1] == Approx(40.0).epsilon(1e-5));
  CHECK(eval::mean_psnr_per_sample(ref, test) == Approx(30.0).epsilon(1e-5));
  CHECK(eval::psnr(ref, test) == Approx(22.9670862).epsilon(1e-5));
  // A row reproduced exactly is +infinity, and so is the mean.
  auto same_row = from_data<float>({2, 2}, {0.f, 0.f, 0.5f, 0.5f});
  auto per2 = eval::psnr_per_sample(zeros<float>({2, 2}), same_row);
  CHECK(per2[0] == std::numeric_limits<double>::infinity());
  CHECK(per2[1] == Approx(10.0 * std::log10(1.0 / 0.25)));
  // Rank 1: each element is a sample.
  auto per3 = eval::psnr_per_sample(zeros<double>({3}), from_data<double>({3}, {0.1, 0.01, 1.0}));
  CHECK(per3[0] == Approx(20.0));
  CHECK(per3[1] == Approx(40.0));
  CHECK(per3[2] == Approx(0.0).margin(1e-12));
}

TEST_CASE("psnr: mismatched or empty shapes and a bad max_value throw", "[eval][psnr]") {
  auto a = zeros<float>({2, 3});
  CHECK_THROWS_AS(eval::psnr(a, zeros<float>({3, 2})), ShapeError);
  CHECK_THROWS_WITH(eval::psnr(a, zeros<float>({6})), Catch::Contains("psnr") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(eval::psnr_per_sample(a, zeros<float>({2, 2})), ShapeError);
  CHECK_THROWS_AS(eval::mean_psnr_per_sample(a, zeros<float>({1, 3})), ShapeError);
  CHECK_THROWS_AS(eval::psnr(zeros<float>({0, 3}), zeros<float>({0, 3})), ShapeError);
  CHECK_THROWS_AS(eval::psnr_per_sample(scalar<float>(1.f), scalar<float>(1.f)), ShapeError);
  CHECK_THROWS_AS(eval::psnr(a, a, 0.0), ValueError);
  CHECK_THROWS_AS(eval::psnr(a, a, -1.0), ValueError);
  CHECK_THROWS_AS(eval::psnr_per_sample(a, a, std::numeric_limits<double>::infinity()), ValueError);
}

}  // namespace eval_psnr_test
