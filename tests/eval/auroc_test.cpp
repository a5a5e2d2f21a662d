#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "genmod/eval/auroc.hpp"

namespace eval_auroc_test {

using namespace genmod;

namespace {

double auroc_of(std::vector<double> s, std::vector<int> l) {
  return eval::auroc(s, l);
}

/// O(n^2) reference: every (positive, negative) pair, 1 if the positive scores higher, 1/2 on a tie.
double brute_force_auroc(const std::vector<double>& s, const std::vector<int>& l) {
  double wins = 0, pairs = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    for (std::size_t k = 0; k < s.size(); ++k)
      if (l[i] == 1 && l[k] == 0) {
        pairs += 1;
        wins += s[i] > s[k] ? 1.0 : s[i] == s[k] ? 0.5 : 0.0;
      }
  return wins / pairs;
}

}  // namespace

TEST_CASE("auroc: perfect, reversed and fully tied scores", "[eval][auroc]") {
  CHECK(auroc_of({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}) == 1.0);
  CHECK(auroc_of({0.1, 0.2, 0.8, 0.9}, {1, 1, 0, 0}) == 0.0);
  CHECK(auroc_of({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}) == 0.5);
  // Order of the inputs does not matter; infinities are scores like any other.
  CHECK(auroc_of({0.9, 0.1, 0.8, 0.2}, {1, 0, 1, 0}) == 1.0);
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(auroc_of({-inf, inf}, {0, 1}) == 1.0);
  CHECK(auroc_of({inf, inf}, {0, 1}) == 0.5);
}

TEST_CASE("auroc: a small case with ties, counted by hand", "[eval][auroc]") {
  // Positives 0.4, 0.4, 0.9; negatives 0.1, 0.4, 0.7: 9 pairs.
  //   each positive 0.4: beats 0.1 (1), ties 0.4 (1/2), loses to 0.7 (0) -> 1.5, twice -> 3
  //   positive 0.9: beats all three -> 3
  // AUROC = 6 / 9 = 2/3.
  CHECK(auroc_of({0.1, 0.4, 0.4, 0.7, 0.4, 0.9}, {0, 0, 1, 0, 1, 1}) == Approx(2.0 / 3.0));
  // One positive at 1 and negatives at 0, 1, 1, 2: (1 + 1/2 + 1/2 + 0) / 4 = 1/2.
  CHECK(auroc_of({1, 0, 1, 1, 2}, {1, 0, 0, 0, 0}) == Approx(0.5));
  // Two positives at 3 and 2 against negatives 2, 2, 1: (3 + (1/2 + 1/2 + 1)) / 6 = 5/6.
  CHECK(auroc_of({3, 2, 2, 2, 1}, {1, 1, 0, 0, 0}) == Approx(5.0 / 6.0));
}

TEST_CASE("auroc: agrees with the O(n^2) pair count on random data with many ties", "[eval][auroc]") {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const std::size_t n = 50 + 37 * seed;
    const int levels = 1 + static_cast<int>(seed % 7) * 3;  // 1 to 19 distinct scores: many ties
    std::uniform_int_distribution<int> level(0, levels - 1), bit(0, 1);
    std::vector<double> s(n);
    std::vector<int> l(n);
    for (std::size_t i = 0; i < n; ++i) {
      l[i] = bit(rng);
      s[i] = level(rng) * 0.25 + 0.5 * l[i] * bit(rng);  // positives lean higher
    }
    l[0] = 0;
    l[1] = 1;
    INFO("seed " << seed);
    CHECK(eval::auroc(s, l) == Approx(brute_force_auroc(s, l)).epsilon(1e-12));
  }
}

TEST_CASE("auroc: overloads for spans, float scores and bool or int64 labels", "[eval][auroc]") {
  const std::vector<double> s{0.1, 0.4, 0.4, 0.7, 0.4, 0.9};
  const std::vector<int> l{0, 0, 1, 0, 1, 1};
  CHECK(eval::auroc(std::span<const double>(s), std::span<const int>(l)) == Approx(2.0 / 3.0));
  const std::vector<float> sf{0.1f, 0.4f, 0.4f, 0.7f, 0.4f, 0.9f};
  CHECK(eval::auroc(sf, std::vector<bool>{false, false, true, false, true, true}) == Approx(2.0 / 3.0));
  CHECK(eval::auroc(s, std::vector<std::int64_t>{0, 0, 1, 0, 1, 1}) == Approx(2.0 / 3.0));
  CHECK(eval::auroc(sf, std::vector<unsigned char>{0, 0, 1, 0, 1, 1}) == Approx(2.0 / 3.0));
}

TEST_CASE("auroc: mismatched sizes, bad labels, NaN and a single class throw", "[eval][auroc]") {
  CHECK_THROWS_AS(auroc_of({0.1, 0.2, 0.3}, {0, 1}), ValueError);
  CHECK_THROWS_AS(auroc_of({0.1, 0.2}, {1, 1}), ValueError);
  CHECK_THROWS_AS(auroc_of({0.1, 0.2}, {0, 0}), ValueError);
  CHECK_THROWS_AS(auroc_of({}, {}), ValueError);
  CHECK_THROWS_WITH(auroc_of({0.1, 0.2, 0.3}, {0, 2, 1}),
                    Catch::Contains("auroc") && Catch::Contains("got 2") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(auroc_of({0.1, 0.2}, {-1, 1}), ValueError);
  CHECK_THROWS_WITH(auroc_of({0.1, std::numeric_limits<double>::quiet_NaN()}, {0, 1}),
                    Catch::Contains("NaN") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(eval::auroc(std::vector<float>{0.1f, 0.2f}, std::vector<std::int64_t>{0, 5}), ValueError);
  CHECK_THROWS_AS(eval::auroc(std::vector<float>{0.1f, 0.2f}, std::vector<int>{0, 1, 1}), ValueError);
}

}  // namespace eval_auroc_test
