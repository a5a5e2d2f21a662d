#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "genmod/core/parallel.hpp"
#include "genmod/eval/precision_recall.hpp"

namespace eval_precision_recall_test {

using namespace genmod;
using Catch::Matchers::Contains;

namespace {

/// Squared distance by differences of the rows, in double.
template <class T>
double naive_squared_distance(const Tensor<T>& a, std::int64_t i, const Tensor<T>& b, std::int64_t j) {
  double s = 0;
  for (std::int64_t c = 0; c < a.dim(1); ++c) {
    const double diff = static_cast<double>(a(i, c)) - static_cast<double>(b(j, c));
    s += diff * diff;
  }
  return s;
}

/// k-th smallest squared distance from each row of x to the other rows: all pairs, sorted.
template <class T>
std::vector<double> naive_kth_squared(const Tensor<T>& x, int k) {
  const std::int64_t n = x.dim(0);
  std::vector<double> out;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<double> d;
    for (std::int64_t j = 0; j < n; ++j)
      if (j != i) d.push_back(naive_squared_distance(x, i, x, j));
    std::sort(d.begin(), d.end());
    out.push_back(d[static_cast<std::size_t>(k - 1)]);
  }
  return out;
}

/// Improved precision and recall by the definition, O(N M D): every pair, closed balls.
template <class T>
eval::PrecisionRecall naive_precision_recall(const Tensor<T>& real, const Tensor<T>& gen, int k) {
  const std::vector<double> r_real = naive_kth_squared(real, k), r_gen = naive_kth_squared(gen, k);
  std::int64_t precise = 0, recalled = 0;
  for (std::int64_t i = 0; i < gen.dim(0); ++i) {
    bool inside = false;
    for (std::int64_t j = 0; j < real.dim(0) && !inside; ++j)
      inside = naive_squared_distance(gen, i, real, j) <= r_real[static_cast<std::size_t>(j)];
    precise += inside;
  }
  for (std::int64_t j = 0; j < real.dim(0); ++j) {
    bool inside = false;
    for (std::int64_t i = 0; i < gen.dim(0) && !inside; ++i)
      inside = naive_squared_distance(gen, i, real, j) <= r_gen[static_cast<std::size_t>(i)];
    recalled += inside;
  }
  return {static_cast<double>(precise) / static_cast<double>(gen.dim(0)),
          static_cast<double>(recalled) / static_cast<double>(real.dim(0)), k};
}

/// n points in `dim` dimensions around mode centres 20 * m on the first axis (m = first,
/// first + 1, ..., first + count - 1 in turn), unit Gaussian noise: modes 20 standard deviations apart.
Tensor<double> gaussian_modes(std::int64_t n, int first, int count, int dim, Generator& g) {
  Tensor<double> x = randn<double>({n, dim}, g);
  for (std::int64_t i = 0; i < n; ++i) x(i, 0) += 20.0 * (first + static_cast<int>(i % count));
  return x;
}

/// Restores the thread count a test changed.
struct ThreadCountGuard {
  int saved = get_num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

}  // namespace

TEST_CASE("kth_nearest_neighbour_distances: points on a line, by hand", "[eval][precision_recall]") {
  // Points 0, 1, 3, 6 (in 2-d, on the first axis). Distances from 0: 1, 3, 6; from 1: 1, 2, 5;
  // from 3: 2, 3, 3; from 6: 3, 5, 6.
  const auto x = from_data<float>({4, 2}, {0, 0, 1, 0, 3, 0, 6, 0});
  using V = std::vector<double>;
  CHECK(eval::kth_nearest_neighbour_distances(x, 1) == V{1, 1, 2, 3});
  CHECK(eval::kth_nearest_neighbour_distances(x, 2) == V{3, 2, 3, 5});
  CHECK(eval::kth_nearest_neighbour_distances(x, 3) == V{6, 5, 3, 6});
  // A duplicate is a neighbour at distance 0 (the sample itself is excluded by index, not by value).
  const auto dup = from_data<double>({3, 1}, {2, 2, 5});
  CHECK(eval::kth_nearest_neighbour_distances(dup, 1) == V{0, 0, 3});
}

TEST_CASE("precision_recall: agrees exactly with the all-pairs definition on random sets", "[eval][precision_recall]") {
  struct Case {
    std::int64_t n_real, n_gen, dim;
    int k;
    double offset;  // added to every feature: cancellation in ||x||^2 + ||y||^2 - 2 <x, y>
  };
  // Sizes below, at and beyond one block (256 query rows, 1024 reference rows); 1100 x 300 has
  // several blocks each way.
  const Case cases[] = {{60, 45, 5, 1, 0.0},   {60, 45, 5, 2, 0.0},    {60, 45, 5, 3, 0.0},    {45, 60, 5, 7, 0.0},
                        {257, 300, 4, 3, 0.0}, {1100, 300, 3, 3, 0.0}, {300, 1100, 8, 5, 0.0}, {200, 150, 6, 3, 1e4}};
  Generator g(123);
  for (const Case& c : cases) {
    // Three generated samples in four from a narrower Gaussian (real tails left uncovered: recall
    // < 1), one in four shifted off the real support (precision < 1).
    Tensor<double> real = randn<double>({c.n_real, c.dim}, g), gen = randn<double>({c.n_gen, c.dim}, g);
    for (double& v : real) v += c.offset;
    for (std::int64_t i = 0; i < c.n_gen; ++i)
      for (std::int64_t j = 0; j < c.dim; ++j) gen(i, j) = (i % 4 == 0 ? gen(i, j) + 4.0 : 0.6 * gen(i, j)) + c.offset;
    const eval::PrecisionRecall got = eval::precision_recall(real, gen, c.k);
    const eval::PrecisionRecall want = naive_precision_recall(real, gen, c.k);
    INFO("real " << c.n_real << ", generated " << c.n_gen << ", dim " << c.dim << ", k " << c.k << ", offset "
                 << c.offset);
    CHECK(got.k == c.k);
    CHECK(got.precision == want.precision);
    CHECK(got.recall == want.recall);
    CHECK(got.precision > 0.0);
    CHECK(got.precision < 1.0);
    CHECK(got.recall > 0.0);
    CHECK(got.recall < 1.0);
    // The radii themselves: the direct distance to the neighbour found, as the naive sort gives.
    const std::vector<double> radii = eval::kth_nearest_neighbour_distances(real, c.k);
    const std::vector<double> naive = naive_kth_squared(real, c.k);
    for (std::size_t i = 0; i < radii.size(); ++i) CHECK(radii[i] == Approx(std::sqrt(naive[i])).epsilon(1e-12));
  }
}

TEST_CASE("precision_recall: lattice points with duplicates and ties on the ball boundaries",
          "[eval][precision_recall]") {
  // Integer coordinates in {0, 1, 2}^3: many duplicates (radius 0) and many distances equal to a
  // radius exactly, where the closed ball counts and where the screened value ||x||^2 + ||y||^2 -
  // 2 <x, y>, off by rounding, must not decide.
  Generator g(8);
  for (const int k : {1, 2, 3, 6}) {
    Tensor<float> real({90, 3}), gen({70, 3});
    for (float& v : real) v = static_cast<float>(g.uniform_int(3));
    for (float& v : gen) v = static_cast<float>(g.uniform_int(2)) + (g.uniform_int(4) == 0 ? 0.5f : 0.0f);
    const eval::PrecisionRecall got = eval::precision_recall(real, gen, k);
    const eval::PrecisionRecall want = naive_precision_recall(real, gen, k);
    INFO("k " << k);
    CHECK(got.precision == want.precision);
    CHECK(got.recall == want.recall);
  }
}

TEST_CASE("precision_recall: identical sets give 1 and 1, far-apart sets 0 and 0", "[eval][precision_recall]") {
  Generator g(4);
  const Tensor<float> x = randn<float>({500, 16}, g);
  const eval::PrecisionRecall same = eval::precision_recall(x, x.clone(), 3);
  CHECK(same.precision == 1.0);  // every sample is its own twin's centre, at distance 0
  CHECK(same.recall == 1.0);
  CHECK(same.k == 3);
  // 100 standard deviations apart on every axis: no ball reaches the other set.
  Tensor<float> far = randn<float>({400, 16}, g);
  for (float& v : far) v += 100.0f;
  const eval::PrecisionRecall apart = eval::precision_recall(x, far, 3);
  CHECK(apart.precision == 0.0);
  CHECK(apart.recall == 0.0);
}

TEST_CASE("precision_recall: a generator covering half of the modes keeps its precision and halves its recall",
          "[eval][precision_recall]") {
  // Real: 10 unit Gaussians 20 apart in 2-d, 200 samples each. Generated: 200 samples from each of
  // the first 5. Every real sample of the 5 missing modes is 20 - O(4) away from any generated
  // sample, far outside any generated k-NN ball, so recall <= 0.5; a real sample of a covered mode
  // is inside a generated ball unless it lies in the sparse tail, so recall is a little under 0.5.
  // Precision is what it would be for a generator of the whole distribution: a little under 1 for
  // the same reason. Over 50 seeds (this one not among them): precision 0.972 (sd 0.008, min
  // 0.948), recall 0.486 (sd 0.0035, min 0.477, max 0.494). The bounds below are ~5 sd away.
  Generator g(31);
  const Tensor<double> real = gaussian_modes(2000, 0, 10, 2, g);
  const Tensor<double> half = gaussian_modes(1000, 0, 5, 2, g);
  const eval::PrecisionRecall pr = eval::precision_recall(real, half, 3);
  CHECK(pr.precision > 0.93);
  CHECK(pr.recall <= 0.5);
  CHECK(pr.recall > 0.468);
  // The same generator shifted onto the missing modes: same picture. Onto all modes at once
  // (the whole distribution): the recall doubles.
  const Tensor<double> other_half = gaussian_modes(1000, 5, 5, 2, g);
  const eval::PrecisionRecall pr_other = eval::precision_recall(real, other_half, 3);
  CHECK(pr_other.precision > 0.93);
  CHECK(pr_other.recall <= 0.5);
  CHECK(pr_other.recall > 0.468);
  const Tensor<double> whole = gaussian_modes(2000, 0, 10, 2, g);
  const eval::PrecisionRecall pr_whole = eval::precision_recall(real, whole, 3);
  CHECK(pr_whole.precision > 0.93);
  CHECK(pr_whole.recall > 0.93);
}

TEST_CASE("precision_recall: the same result on one thread or two, for float or double features",
          "[eval][precision_recall]") {
  ThreadCountGuard guard;
  Generator g(6);
  const Tensor<float> real = randn<float>({700, 10}, g);
  Tensor<float> gen = randn<float>({600, 10}, g);
  for (float& v : gen) v *= 1.3f;
  set_num_threads(1);
  const eval::PrecisionRecall one = eval::precision_recall(real, gen, 4);
  set_num_threads(2);
  const eval::PrecisionRecall two = eval::precision_recall(real, gen, 4);
  CHECK(one.precision == two.precision);
  CHECK(one.recall == two.recall);
  // Float features are converted exactly to double: the same answer as double features.
  const eval::PrecisionRecall as_double = eval::precision_recall(real.cast<double>(), gen.cast<double>(), 4);
  CHECK(as_double.precision == one.precision);
  CHECK(as_double.recall == one.recall);
}

TEST_CASE("precision_recall: errors for k, shapes and non-finite features", "[eval][precision_recall][errors]") {
  Generator g(1);
  const Tensor<double> real = randn<double>({10, 3}, g), gen = randn<double>({8, 3}, g);
  CHECK_THROWS_WITH(eval::precision_recall(real, gen, 0),
                    Contains("precision_recall") && Contains("k") && Contains(">= 1"));
  CHECK_THROWS_AS(eval::precision_recall(real, gen, -2), ValueError);
  // k-th neighbour among the other N - 1: k = 9 is fine for 10 real samples, not for 8 generated.
  CHECK_THROWS_WITH(eval::precision_recall(real, gen, 8), Contains("< 8") && Contains("generated"));
  CHECK_THROWS_WITH(eval::precision_recall(gen, real, 8), Contains("< 8") && Contains("real"));
  CHECK_NOTHROW(eval::precision_recall(real, randn<double>({11, 3}, g), 9));
  CHECK_THROWS_AS(eval::precision_recall(real, randn<double>({10, 3}, g), 10), ValueError);
  CHECK_THROWS_AS(eval::precision_recall(real, randn<double>({0, 3}, g), 1), ValueError);
  // Shapes.
  CHECK_THROWS_AS(eval::precision_recall(real, randn<double>({8, 4}, g), 3), ShapeError);
  CHECK_THROWS_WITH(eval::precision_recall(real, randn<double>({8, 4}, g), 3),
                    Contains("[10, 3]") && Contains("[8, 4]"));
  CHECK_THROWS_AS(eval::precision_recall(randn<double>({30}, g), randn<double>({30}, g), 3), ShapeError);
  CHECK_THROWS_AS(eval::precision_recall(real, randn<double>({2, 2, 3}, g), 1), ShapeError);
  CHECK_THROWS_AS(eval::precision_recall(randn<double>({10, 0}, g), randn<double>({10, 0}, g), 3), ShapeError);
  // Non-finite features.
  Tensor<double> bad = gen.clone();
  bad(3, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(eval::precision_recall(real, bad, 3), ValueError);
  CHECK_THROWS_AS(eval::precision_recall(bad, real, 3), ValueError);
  CHECK_THROWS_AS(eval::kth_nearest_neighbour_distances(bad, 3), ValueError);
  CHECK_THROWS_AS(eval::kth_nearest_neighbour_distances(real, 10), ValueError);
  CHECK_THROWS_AS(eval::kth_nearest_neighbour_distances(real, 0), ValueError);
}

}  // namespace eval_precision_recall_test
