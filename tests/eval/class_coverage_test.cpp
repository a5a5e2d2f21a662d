#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "genmod/eval/class_coverage.hpp"

namespace eval_class_coverage_test {

using namespace genmod;
using Catch::Matchers::Contains;

namespace {

eval::ClassCoverage coverage_of(const std::vector<std::int64_t>& predicted, int k, double min_fraction = 0.1) {
  return eval::class_coverage(std::span<const std::int64_t>(predicted), k, min_fraction);
}

/// `count` copies of class c appended to v.
void append(std::vector<std::int64_t>& v, std::int64_t c, int count) {
  for (int i = 0; i < count; ++i) v.push_back(c);
}

}  // namespace

TEST_CASE("class_coverage: counts, classes hit and KL of a small case, by hand", "[eval][class_coverage]") {
  // 6 samples over K = 4 classes: counts 2, 1, 3, 0; p = 1/3, 1/6, 1/2, 0.
  // KL = 1/3 log(4/3) + 1/6 log(4/6) + 1/2 log(4/2) + 0
  //    = 0.0958940 - 0.0675775 + 0.3465736 = 0.3748901 nats.
  // Uniform share 6/4 = 1.5, threshold 0.15: the three classes with a sample are hit.
  const eval::ClassCoverage c = coverage_of({0, 2, 2, 1, 2, 0}, 4);
  CHECK(c.counts == std::vector<std::int64_t>{2, 1, 3, 0});
  CHECK(c.classes_hit == 3);
  CHECK(c.kl_to_uniform == Approx(std::log(4.0 / 3.0) / 3 + std::log(4.0 / 6.0) / 6 + std::log(2.0) / 2));
  CHECK(c.kl_to_uniform == Approx(0.3748901).epsilon(1e-6));
}

TEST_CASE("class_coverage: balanced, collapsed and m-class predictions", "[eval][class_coverage]") {
  std::vector<std::int64_t> balanced;
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 10; ++c) balanced.push_back(c);
  const eval::ClassCoverage b = coverage_of(balanced, 10);
  CHECK(b.counts == std::vector<std::int64_t>(10, 7));
  CHECK(b.classes_hit == 10);
  CHECK(b.kl_to_uniform == 0.0);  // rounding below zero is reported as the exact 0

  // Everything in one class: KL = log K, the maximum; one class hit.
  const eval::ClassCoverage collapsed = coverage_of(std::vector<std::int64_t>(50, 3), 10);
  CHECK(collapsed.counts[3] == 50);
  CHECK(collapsed.classes_hit == 1);
  CHECK(collapsed.kl_to_uniform == Approx(std::log(10.0)));

  // m = 4 classes of 25 each out of K = 10: KL = log(K / m) = log 2.5.
  std::vector<std::int64_t> four;
  for (const std::int64_t c : {1, 4, 6, 9}) append(four, c, 25);
  const eval::ClassCoverage f = coverage_of(four, 10);
  CHECK(f.classes_hit == 4);
  CHECK(f.kl_to_uniform == Approx(std::log(2.5)));
}

TEST_CASE("class_coverage: a class is hit at min_fraction of its uniform share, exactly", "[eval][class_coverage]") {
  // N = 100, K = 10: uniform share 10 samples. Counts 3, 2, 10, 9, 76 (classes 0 to 4).
  std::vector<std::int64_t> p;
  append(p, 0, 3);
  append(p, 1, 2);
  append(p, 2, 10);
  append(p, 3, 9);
  append(p, 4, 76);
  // Default 0.1: threshold 1 sample, the five classes with samples are hit.
  CHECK(coverage_of(p, 10).classes_hit == 5);
  // 0.3: threshold 3 samples: class 0 with exactly 3 is hit, class 1 with 2 is not.
  CHECK(coverage_of(p, 10, 0.3).classes_hit == 4);
  // 1: a full share of 10: classes 2 and 4 only.
  CHECK(coverage_of(p, 10, 1.0).classes_hit == 2);
  // A tiny fraction: any class with one sample counts, an empty one never does.
  CHECK(coverage_of(p, 10, 1e-9).classes_hit == 5);
  // KL by hand: sum p log(10 p) over p = 0.03, 0.02, 0.10, 0.09, 0.76.
  double kl = 0;
  for (const double q : {0.03, 0.02, 0.10, 0.09, 0.76}) kl += q * std::log(10.0 * q);
  CHECK(coverage_of(p, 10).kl_to_uniform == Approx(kl).epsilon(1e-12));

  // N = 200, K = 10, min_fraction 0.55: threshold 11 samples, which 0.55 * 200 / 10 computes as
  // 11.000000000000002. Class 0 with exactly 11 is hit all the same; class 1 with 10 is not.
  REQUIRE(0.55 * 200 / 10 > 11.0);  // the rounding this case is about
  std::vector<std::int64_t> q;
  append(q, 0, 11);
  append(q, 1, 10);
  append(q, 2, 179);
  CHECK(coverage_of(q, 10, 0.55).classes_hit == 2);
}

TEST_CASE("class_coverage: from logits by argmax, the first maximum winning a tie", "[eval][class_coverage]") {
  // Rows' argmax: 2, 0, 1 (tie of 1 and 2 -> 1), 2, 0 (all equal -> 0).
  const auto logits = from_data<float>({5, 3}, {0.1f, 0.2f, 0.9f,  //
                                                3.0f, -1.f, 2.0f,  //
                                                0.0f, 5.0f, 5.0f,  //
                                                -3.f, -2.f, -1.f,  //
                                                7.0f, 7.0f, 7.0f});
  const eval::ClassCoverage c = eval::class_coverage(logits);
  CHECK(c.counts == std::vector<std::int64_t>{2, 1, 2});
  CHECK(c.classes_hit == 3);
  const eval::ClassCoverage same = coverage_of({2, 0, 1, 2, 0}, 3);
  CHECK(c.kl_to_uniform == same.kl_to_uniform);
  // Double logits, and min_fraction passed through: share 5/3, 0.7 of it = 1.17 -> class 1 with
  // one sample is missed.
  CHECK(eval::class_coverage(logits.cast<double>(), 0.7).classes_hit == 2);
}

TEST_CASE("class_agreement: fraction of samples classified as the class they were generated for",
          "[eval][class_coverage]") {
  const std::vector<std::int64_t> predicted{0, 1, 2, 3, 3, 1, 0, 2};
  const std::vector<std::int64_t> requested{0, 1, 0, 3, 2, 1, 0, 1};
  CHECK(eval::class_agreement(predicted, requested) == 5.0 / 8.0);
  CHECK(eval::class_agreement(predicted, predicted) == 1.0);
  CHECK(eval::class_agreement(std::vector<std::int64_t>{1, 1}, std::vector<std::int64_t>{0, 2}) == 0.0);
}

TEST_CASE("class_coverage and class_agreement: errors", "[eval][class_coverage][errors]") {
  CHECK_THROWS_WITH(coverage_of({0, 1, 4, 2}, 4), Contains("[0, 4)") && Contains("got 4") && Contains("position 2"));
  CHECK_THROWS_WITH(coverage_of({0, -1}, 4), Contains("got -1") && Contains("position 1"));
  CHECK_THROWS_AS(coverage_of({}, 4), ValueError);
  CHECK_THROWS_AS(coverage_of({0}, 0), ValueError);
  CHECK_THROWS_WITH(coverage_of({0}, 2, 0.0), Contains("min_fraction") && Contains("(0, 1]"));
  CHECK_THROWS_AS(coverage_of({0}, 2, 1.5), ValueError);
  CHECK_THROWS_AS(coverage_of({0}, 2, std::numeric_limits<double>::quiet_NaN()), ValueError);
  CHECK_NOTHROW(coverage_of({0}, 2, 1.0));

  Generator g(1);
  CHECK_THROWS_AS(eval::class_coverage(randn<float>({6}, g)), ShapeError);
  CHECK_THROWS_AS(eval::class_coverage(Tensor<float>({0, 3})), ShapeError);
  CHECK_THROWS_AS(eval::class_coverage(Tensor<float>({3, 0})), ShapeError);
  Tensor<float> nan_logits = randn<float>({4, 3}, g);
  nan_logits(2, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(eval::class_coverage(nan_logits), Contains("NaN") && Contains("row 2"));

  const std::vector<std::int64_t> three{0, 1, 2}, two{0, 1}, empty{}, negative{0, -3, 1};
  CHECK_THROWS_WITH(eval::class_agreement(three, two), Contains("3 predicted") && Contains("2 requested"));
  CHECK_THROWS_AS(eval::class_agreement(empty, empty), ValueError);
  CHECK_THROWS_WITH(eval::class_agreement(three, negative), Contains("-3") && Contains("requested"));
  CHECK_THROWS_WITH(eval::class_agreement(negative, three), Contains("-3") && Contains("predicted"));
}

}  // namespace eval_class_coverage_test
