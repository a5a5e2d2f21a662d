#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "genmod/eval/frechet_distance.hpp"

namespace eval_frechet_distance_test {

using namespace genmod;
using Catch::Matchers::Contains;

namespace {

eval::GaussianStats stats(const Eigen::VectorXd& mean, const Eigen::MatrixXd& covariance) {
  return {mean, covariance, 0};
}

/// n samples of N(mean, covariance): mean + L z with L L^T = covariance (Cholesky), z ~ N(0, I).
Tensor<double> sample_gaussian(const Eigen::VectorXd& mean, const Eigen::MatrixXd& covariance, std::int64_t n,
                               Generator& g) {
  const Tensor<double> z = randn<double>({n, mean.size()}, g);
  const Eigen::MatrixXd L = covariance.llt().matrixL();
  Tensor<double> x({n, mean.size()});
  x.matrix() = (z.matrix() * L.transpose()).rowwise() + mean.transpose();
  return x;
}

/// A random symmetric positive definite matrix A A^T + 0.5 I.
Eigen::MatrixXd random_spd(Eigen::Index d, Generator& g) {
  const Tensor<double> a = randn<double>({d, d}, g);
  const Eigen::MatrixXd m = a.matrix();
  return m * m.transpose() + 0.5 * Eigen::MatrixXd::Identity(d, d);
}

Eigen::MatrixXd random_rotation(Eigen::Index d, Generator& g) {
  const Tensor<double> a = randn<double>({d, d}, g);
  const Eigen::MatrixXd m = a.matrix();
  return Eigen::HouseholderQR<Eigen::MatrixXd>(m).householderQ();
}

/// Principal square root of a matrix with positive real eigenvalues (here the non-symmetric
/// product S_a S_b) by the Denman-Beavers iteration: Y_0 = M, Z_0 = I,
/// Y <- (Y + Z^-1) / 2, Z <- (Z + Y^-1) / 2, Y -> M^{1/2}, Z -> M^{-1/2}. A route independent of
/// the library's symmetric eigendecompositions (general LU inverses on a non-symmetric matrix).
Eigen::MatrixXd denman_beavers_sqrt(const Eigen::MatrixXd& m) {
  Eigen::MatrixXd y = m, z = Eigen::MatrixXd::Identity(m.rows(), m.cols());
  for (int it = 0; it < 100; ++it) {
    const Eigen::MatrixXd y_next = 0.5 * (y + z.partialPivLu().inverse());
    const Eigen::MatrixXd z_next = 0.5 * (z + y.partialPivLu().inverse());
    const double change = (y_next - y).norm();
    y = y_next;
    z = z_next;
    if (change <= 1e-15 * y.norm()) break;
  }
  return y;
}

/// FD by the textbook formula with the non-symmetric product: ||dmu||^2 + tr(Sa + Sb - 2 sqrtm(Sa Sb)).
double fd_by_denman_beavers(const eval::GaussianStats& a, const eval::GaussianStats& b) {
  const Eigen::MatrixXd product = a.covariance * b.covariance;
  const Eigen::MatrixXd root = denman_beavers_sqrt(product);
  // The iteration itself is checked: its result squares back to the product.
  CHECK((root * root - product).norm() <= 1e-10 * product.norm());
  return (a.mean - b.mean).squaredNorm() + a.covariance.trace() + b.covariance.trace() - 2.0 * root.trace();
}

}  // namespace

TEST_CASE("gaussian_stats: mean and unbiased covariance of a hand-computed set", "[eval][frechet]") {
  // Rows (1, 2), (3, 6), (5, 4): mean (3, 4); deviations (-2, -2), (0, 2), (2, 0);
  // covariance / (N - 1) = [[8, 4], [4, 8]] / 2 = [[4, 2], [2, 4]].
  const auto x = from_data<float>({3, 2}, {1, 2, 3, 6, 5, 4});
  const eval::GaussianStats s = eval::gaussian_stats(x);
  CHECK(s.count == 3);
  REQUIRE(s.mean.size() == 2);
  CHECK(s.mean(0) == 3.0);
  CHECK(s.mean(1) == 4.0);
  REQUIRE(s.covariance.rows() == 2);
  REQUIRE(s.covariance.cols() == 2);
  CHECK(s.covariance(0, 0) == Approx(4.0));
  CHECK(s.covariance(1, 1) == Approx(4.0));
  CHECK(s.covariance(0, 1) == Approx(2.0));
  CHECK(s.covariance(1, 0) == Approx(2.0));
}

TEST_CASE("gaussian_stats: agrees with a direct two-pass loop over several row blocks, far from the origin",
          "[eval][frechet]") {
  // 2500 rows: three blocks of the accumulation (1024, 1024, 452). An offset of 1e4 on every
  // feature would cost E[x x^T] - mu mu^T eight of its sixteen digits; the centred sums keep them.
  Generator g(7);
  const std::int64_t n = 2500, d = 5;
  Tensor<double> x = randn<double>({n, d}, g);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) x(i, j) = 1e4 + (1.0 + static_cast<double>(j)) * x(i, j);
  const eval::GaussianStats s = eval::gaussian_stats(x);
  std::vector<double> mean(d, 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) mean[static_cast<std::size_t>(j)] += x(i, j) / static_cast<double>(n);
  for (std::int64_t p = 0; p < d; ++p) {
    CHECK(s.mean(p) == Approx(mean[static_cast<std::size_t>(p)]).epsilon(1e-13));
    for (std::int64_t q = 0; q < d; ++q) {
      double c = 0;
      for (std::int64_t i = 0; i < n; ++i)
        c += (x(i, p) - mean[static_cast<std::size_t>(p)]) * (x(i, q) - mean[static_cast<std::size_t>(q)]);
      c /= static_cast<double>(n - 1);
      CHECK(s.covariance(p, q) == Approx(c).epsilon(1e-9).margin(1e-9));
    }
  }
  // The sample covariance is near diag((j + 1)^2): a check that the data are what was meant.
  CHECK(s.covariance(4, 4) == Approx(25.0).epsilon(0.1));
}

TEST_CASE("frechet_distance: diagonal covariances give sum (sqrt a_i - sqrt b_i)^2 + ||mu_a - mu_b||^2",
          "[eval][frechet]") {
  Eigen::VectorXd mu_a(4), mu_b(4), var_a(4), var_b(4);
  mu_a << 0.0, 1.0, -2.0, 0.5;
  mu_b << 1.0, 1.0, 0.0, -0.5;
  var_a << 1.0, 4.0, 0.25, 9.0;
  var_b << 4.0, 1.0, 0.25, 2.0;
  // Closed form: (1 - 2)^2 + (2 - 1)^2 + 0 + (3 - sqrt 2)^2 = 2 + (3 - sqrt 2)^2, plus 1 + 0 + 4 + 1 = 6.
  const double expected = 2.0 + std::pow(3.0 - std::sqrt(2.0), 2) + 6.0;
  const double fd = eval::frechet_distance(stats(mu_a, var_a.asDiagonal().toDenseMatrix()),
                                           stats(mu_b, var_b.asDiagonal().toDenseMatrix()));
  CHECK(fd == Approx(expected).epsilon(1e-12));
}

TEST_CASE("frechet_distance: a commuting non-diagonal pair (shared eigenvectors) matches the closed form",
          "[eval][frechet]") {
  // S_a = Q diag(a) Q^T, S_b = Q diag(b) Q^T commute, and (S_a^1/2 S_b S_a^1/2)^1/2 = Q diag(sqrt(a b)) Q^T,
  // so FD = ||dmu||^2 + sum (sqrt a_i - sqrt b_i)^2 whatever the rotation Q.
  Generator g(3);
  const Eigen::Index d = 6;
  const Eigen::MatrixXd q = random_rotation(d, g);
  Eigen::VectorXd a(d), b(d), mu_a = Eigen::VectorXd::Zero(d), mu_b(d);
  a << 0.1, 0.5, 1.0, 2.0, 3.0, 7.0;
  b << 2.0, 0.5, 0.2, 5.0, 3.0, 1.0;
  mu_b << 0.3, -0.2, 0.0, 1.0, 0.0, -1.0;
  const Eigen::MatrixXd sa = q * a.asDiagonal() * q.transpose(), sb = q * b.asDiagonal() * q.transpose();
  REQUIRE((sa * sb - sb * sa).norm() < 1e-12);  // they do commute
  REQUIRE(std::abs(sa(0, 1)) > 1e-3);           // and are not diagonal
  const double expected = mu_b.squaredNorm() + (a.cwiseSqrt() - b.cwiseSqrt()).squaredNorm();
  CHECK(eval::frechet_distance(stats(mu_a, sa), stats(mu_b, sb)) == Approx(expected).epsilon(1e-11));
}

TEST_CASE("frechet_distance: a non-commuting 2-d pair matches the 2x2 closed form of tr sqrtm", "[eval][frechet]") {
  // For a 2x2 matrix M with eigenvalues l1, l2 > 0, (tr M^1/2)^2 = l1 + l2 + 2 sqrt(l1 l2)
  // = tr M + 2 sqrt(det M). With M = S_a S_b: tr sqrtm(S_a S_b) = sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b)).
  Eigen::MatrixXd sa(2, 2), sb(2, 2);
  sa << 2.0, 0.9, 0.9, 1.0;
  sb << 0.5, -0.3, -0.3, 3.0;
  REQUIRE((sa * sb - sb * sa).norm() > 0.5);  // they do not commute
  Eigen::VectorXd mu_a(2), mu_b(2);
  mu_a << 1.0, 2.0;
  mu_b << -1.0, 0.5;
  const double trace_root = std::sqrt((sa * sb).trace() + 2.0 * std::sqrt(sa.determinant() * sb.determinant()));
  const double expected = (mu_a - mu_b).squaredNorm() + sa.trace() + sb.trace() - 2.0 * trace_root;
  CHECK(eval::frechet_distance(stats(mu_a, sa), stats(mu_b, sb)) == Approx(expected).epsilon(1e-12));
}

TEST_CASE("frechet_distance: non-commuting pairs agree with sqrtm(S_a S_b) by the Denman-Beavers iteration",
          "[eval][frechet]") {
  Generator g(11);
  for (const Eigen::Index d : {3, 6, 12}) {
    const Eigen::MatrixXd sa = random_spd(d, g), sb = random_spd(d, g);
    REQUIRE((sa * sb - sb * sa).norm() > 1e-3 * sa.norm() * sb.norm());
    const Tensor<double> shift = randn<double>({d}, g);
    const eval::GaussianStats a = stats(Eigen::VectorXd::Zero(d), sa), b = stats(shift.vector(), sb);
    INFO("d = " << d);
    CHECK(eval::frechet_distance(a, b) == Approx(fd_by_denman_beavers(a, b)).epsilon(1e-9));
  }
}

TEST_CASE("frechet_distance: zero for equal statistics, symmetric, finite for singular covariances",
          "[eval][frechet]") {
  Generator g(5);
  const Eigen::Index d = 8;
  const Tensor<double> m = randn<double>({d}, g), m2 = randn<double>({d}, g);
  const eval::GaussianStats a = stats(m.vector(), random_spd(d, g)), b = stats(m2.vector(), random_spd(d, g));
  // Equal statistics: exactly 0 up to the rounding of the eigendecompositions (the trace is ~ 60).
  const double self = eval::frechet_distance(a, a);
  CHECK(self >= 0.0);
  CHECK(self <= 1e-12 * a.covariance.trace());
  // Symmetry: the formula is symmetric in a and b although the computation (S_a^1/2 S_b S_a^1/2) is not.
  const double ab = eval::frechet_distance(a, b), ba = eval::frechet_distance(b, a);
  CHECK(ab > 1.0);
  CHECK(ab == Approx(ba).epsilon(1e-11));

  // A point mass (S_a = 0) against N(mu_b, S_b): ||dmu||^2 + tr S_b. All eigenvalues of S_a are
  // zeros that rounding may turn slightly negative.
  const eval::GaussianStats point = stats(m.vector(), Eigen::MatrixXd::Zero(d, d));
  CHECK(eval::frechet_distance(point, b) == Approx((m.vector() - m2.vector()).squaredNorm() + b.covariance.trace()));
  CHECK(eval::frechet_distance(b, point) == Approx((m.vector() - m2.vector()).squaredNorm() + b.covariance.trace()));

  // Fewer samples than dimensions: covariances of rank 3 in 10 dimensions. The distance of a set
  // to itself stays 0 (not NaN), and to another set it agrees with the textbook formula computed
  // on the eigenvalues of the non-symmetric product (real and >= 0, clamped the same way).
  const Tensor<double> few = randn<double>({4, 10}, g), other = randn<double>({4, 10}, g);
  const double few_self = eval::frechet_distance(few, few);
  CHECK(std::isfinite(few_self));
  CHECK(few_self <= 1e-12 * eval::gaussian_stats(few).covariance.trace());
  const eval::GaussianStats fa = eval::gaussian_stats(few), fb = eval::gaussian_stats(other);
  const Eigen::VectorXcd eig = (fa.covariance * fb.covariance).eigenvalues();
  double trace_root = 0;
  for (const auto& l : eig) trace_root += std::sqrt(std::max(l.real(), 0.0));
  const double expected =
      (fa.mean - fb.mean).squaredNorm() + fa.covariance.trace() + fb.covariance.trace() - 2.0 * trace_root;
  CHECK(eval::frechet_distance(fa, fb) == Approx(expected).epsilon(1e-6));
}

TEST_CASE("frechet_distance: the distance of large samples approaches that of the Gaussians they come from",
          "[eval][frechet]") {
  Eigen::VectorXd mu_a(3), mu_b(3);
  mu_a << 0.0, 1.0, -1.0;
  mu_b << 0.5, 0.5, 0.0;
  Eigen::MatrixXd sa(3, 3), sb(3, 3);
  sa << 2.0, 0.8, 0.3, 0.8, 1.5, -0.4, 0.3, -0.4, 1.0;
  sb << 1.0, -0.5, 0.2, -0.5, 2.5, 0.6, 0.2, 0.6, 0.7;
  const double truth = fd_by_denman_beavers(stats(mu_a, sa), stats(mu_b, sb));  // 2.8452
  Generator g(2024);
  const std::int64_t n = 200000;
  const double fd = eval::frechet_distance(sample_gaussian(mu_a, sa, n, g), sample_gaussian(mu_b, sb, n, g));
  // The estimate's standard deviation at n = 200,000 per set, measured over 30 seeds, is 0.0104
  // (its bias, O(1/n), is below 0.002): 0.05 is about five standard deviations.
  CHECK(std::abs(fd - truth) < 0.05);
}

TEST_CASE("frechet_distance: the tensor overload is the distance of gaussian_stats, for float and double",
          "[eval][frechet]") {
  Generator g(9);
  const Tensor<float> a = randn<float>({300, 7}, g), b = randn<float>({200, 7}, g);
  CHECK(eval::frechet_distance(a, b) == eval::frechet_distance(eval::gaussian_stats(a), eval::gaussian_stats(b)));
  CHECK(eval::frechet_distance(a.cast<double>(), b.cast<double>()) == eval::frechet_distance(a, b));
}

TEST_CASE("frechet_distance_bootstrap: contains the estimate, nests by confidence, narrows with more samples",
          "[eval][frechet]") {
  // a ~ N(0, I_4), b ~ N(0.5 * 1, 2 I_4): FD = 4 * 0.25 + 4 (sqrt 2 - 1)^2 = 1.686, large against the
  // finite-sample bias (~ (tr S_a + tr S_b) / N = 0.024 at N = 500) which could otherwise push the
  // interval above the estimate (see the header).
  const Eigen::Index d = 4;
  const Eigen::VectorXd mu_a = Eigen::VectorXd::Zero(d), mu_b = Eigen::VectorXd::Constant(d, 0.5);
  const Eigen::MatrixXd sa = Eigen::MatrixXd::Identity(d, d), sb = 2.0 * Eigen::MatrixXd::Identity(d, d);
  const double truth = 4 * 0.25 + 4 * std::pow(std::sqrt(2.0) - 1.0, 2);
  Generator data(1);
  const Tensor<double> small_a = sample_gaussian(mu_a, sa, 500, data), small_b = sample_gaussian(mu_b, sb, 500, data);
  const Tensor<double> big_a = sample_gaussian(mu_a, sa, 8000, data), big_b = sample_gaussian(mu_b, sb, 8000, data);

  Generator g(42);
  const eval::FrechetInterval small = eval::frechet_distance_bootstrap(small_a, small_b, 200, 0.9, g);
  CHECK(small.resamples == 200);
  CHECK(small.confidence == 0.9);
  CHECK(small.estimate == eval::frechet_distance(small_a, small_b));
  CHECK(small.low <= small.estimate);
  CHECK(small.estimate <= small.high);
  CHECK(small.low <= truth);
  CHECK(truth <= small.high);

  // The same seed gives the same resamples: a 50% interval lies inside the 90% one.
  Generator g_again(42);
  const eval::FrechetInterval half = eval::frechet_distance_bootstrap(small_a, small_b, 200, 0.5, g_again);
  CHECK(small.low <= half.low);
  CHECK(half.low < half.high);
  CHECK(half.high <= small.high);
  Generator g_same(42);
  const eval::FrechetInterval repeat = eval::frechet_distance_bootstrap(small_a, small_b, 200, 0.9, g_same);
  CHECK(repeat.low == small.low);
  CHECK(repeat.high == small.high);

  const eval::FrechetInterval big = eval::frechet_distance_bootstrap(big_a, big_b, 200, 0.9, g);
  CHECK(big.low <= big.estimate);
  CHECK(big.estimate <= big.high);
  // The width shrinks as 1 / sqrt(N): 16 times the samples, a quarter of the width. Half is a
  // margin for the bootstrap's own noise (200 resamples estimate a quantile to a few percent).
  CHECK(big.high - big.low < 0.5 * (small.high - small.low));
}

TEST_CASE("frechet_distance_bootstrap: the interval's width matches the spread of independent estimates",
          "[eval][frechet]") {
  // What the bootstrap claims to measure: how much the estimate would vary over fresh samples.
  // 60 independent pairs of sets give the actual standard deviation; a 90% percentile interval of
  // a near-normal statistic spans about 2 * 1.645 standard deviations. The band [0.6, 1.6] is
  // several standard errors wide: 60 replicates estimate a standard deviation to ~9%, and the
  // bootstrap width of one data set varies by ~10-15% between data sets.
  const Eigen::Index d = 3;
  const Eigen::VectorXd mu_a = Eigen::VectorXd::Zero(d), mu_b = Eigen::VectorXd::Constant(d, 0.7);
  const Eigen::MatrixXd sa = Eigen::MatrixXd::Identity(d, d), sb = 1.5 * Eigen::MatrixXd::Identity(d, d);
  const std::int64_t n = 1000;
  Generator data(77);
  std::vector<double> estimates;
  for (int r = 0; r < 60; ++r)
    estimates.push_back(eval::frechet_distance(sample_gaussian(mu_a, sa, n, data), sample_gaussian(mu_b, sb, n, data)));
  double mean = 0, var = 0;
  for (double e : estimates) mean += e / 60.0;
  for (double e : estimates) var += (e - mean) * (e - mean) / 59.0;
  const double sd = std::sqrt(var);
  Generator g(5);
  const eval::FrechetInterval ci = eval::frechet_distance_bootstrap(sample_gaussian(mu_a, sa, n, data),
                                                                    sample_gaussian(mu_b, sb, n, data), 400, 0.9, g);
  const double ratio = (ci.high - ci.low) / (2.0 * 1.6449 * sd);
  INFO("bootstrap width " << ci.high - ci.low << ", sd of estimates " << sd);
  CHECK(ratio > 0.6);
  CHECK(ratio < 1.6);
}

TEST_CASE("frechet_distance: errors name the argument and both shapes", "[eval][frechet][errors]") {
  Generator g(1);
  const Tensor<double> a = randn<double>({10, 3}, g), b = randn<double>({12, 4}, g);
  CHECK_THROWS_AS(eval::gaussian_stats(randn<double>({10}, g)), ShapeError);
  CHECK_THROWS_WITH(eval::gaussian_stats(randn<double>({2, 3, 4}, g)),
                    Contains("gaussian_stats") && Contains("rank 2"));
  CHECK_THROWS_AS(eval::gaussian_stats(randn<double>({1, 3}, g)), ShapeError);  // one sample: no covariance
  CHECK_THROWS_AS(eval::gaussian_stats(Tensor<double>()), ShapeError);
  CHECK_THROWS_AS(eval::frechet_distance(a, b), ShapeError);
  CHECK_THROWS_WITH(eval::frechet_distance(a, b), Contains("[10, 3]") && Contains("[12, 4]"));
  CHECK_THROWS_AS(eval::frechet_distance(eval::gaussian_stats(a), eval::gaussian_stats(b)), ShapeError);
  CHECK_THROWS_WITH(eval::frechet_distance(eval::gaussian_stats(a), eval::gaussian_stats(b)),
                    Contains("a of dimension 3") && Contains("b of dimension 4"));
  // A covariance that does not match its mean, an empty one, non-finite values.
  eval::GaussianStats bad = eval::gaussian_stats(a);
  bad.covariance = Eigen::MatrixXd::Identity(3, 2);
  CHECK_THROWS_AS(eval::frechet_distance(bad, eval::gaussian_stats(a)), ShapeError);
  CHECK_THROWS_AS(eval::frechet_distance(eval::GaussianStats{}, eval::GaussianStats{}), ShapeError);
  eval::GaussianStats nan_stats = eval::gaussian_stats(a);
  nan_stats.mean(1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(eval::frechet_distance(eval::gaussian_stats(a), nan_stats), ValueError);
  Tensor<double> with_inf = a.clone();
  with_inf(4, 2) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(eval::gaussian_stats(with_inf), ValueError);
  CHECK_THROWS_AS(eval::frechet_distance(with_inf, a), ValueError);
}

TEST_CASE("frechet_distance_bootstrap: errors for resamples, confidence and shapes", "[eval][frechet][errors]") {
  Generator g(1);
  const Tensor<double> a = randn<double>({10, 3}, g), b = randn<double>({12, 3}, g);
  CHECK_THROWS_WITH(eval::frechet_distance_bootstrap(a, b, 1, 0.9, g), Contains("resamples") && Contains(">= 2"));
  CHECK_THROWS_AS(eval::frechet_distance_bootstrap(a, b, 0, 0.9, g), ValueError);
  CHECK_THROWS_WITH(eval::frechet_distance_bootstrap(a, b, 10, 0.0, g), Contains("confidence") && Contains("(0, 1)"));
  CHECK_THROWS_AS(eval::frechet_distance_bootstrap(a, b, 10, 1.0, g), ValueError);
  CHECK_THROWS_AS(eval::frechet_distance_bootstrap(a, b, 10, std::numeric_limits<double>::quiet_NaN(), g), ValueError);
  CHECK_THROWS_AS(eval::frechet_distance_bootstrap(a, randn<double>({12, 4}, g), 10, 0.9, g), ShapeError);
  CHECK_THROWS_AS(eval::frechet_distance_bootstrap(a, randn<double>({1, 3}, g), 10, 0.9, g), ShapeError);
}

}  // namespace eval_frechet_distance_test
