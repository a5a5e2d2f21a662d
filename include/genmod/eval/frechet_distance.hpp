#pragma once
/// \file frechet_distance.hpp
/// Fréchet distance between two sets of features, each summarised by a Gaussian (the FID of
/// Heusel et al. 2017 when the features are Inception activations of real and generated images):
///
///   FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}),
///
/// the squared 2-Wasserstein distance between N(mu_a, S_a) and N(mu_b, S_b). The matrix in the
/// trace term is the symmetric form of (S_a S_b)^{1/2}: S_a^{1/2} S_b S_a^{1/2} is similar to
/// S_a S_b (conjugate by S_a^{1/2}), so both have the same eigenvalues and their square roots the
/// same trace. The symmetric form needs only symmetric eigendecompositions (real, orthogonal,
/// backward stable), where the usual sqrtm(S_a S_b) of a non-symmetric product returns complex
/// rounding noise and fails on singular covariances.
///
/// All statistics are computed in double, whatever the feature type.
///
/// ```cpp
/// const auto real = eval::gaussian_stats(real_features);  // [N, D], once per data set
/// const double fid = eval::frechet_distance(real, eval::gaussian_stats(generated_features));
/// ```

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/Dense>
GENMOD_EIGEN_INCLUDE_END

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

// Eigen's AVX-512 code inlines GCC 12's intrinsics, which warn in every user's -Wall build
// (GENMOD_GCC_BUG_105593, see kernels/simd.hpp): silenced for the code of this file.
#if GENMOD_GCC_BUG_105593
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace genmod::eval {

/// Mean and unbiased covariance of a set of feature vectors: the Gaussian the Fréchet distance
/// compares. Computing it once for the real data set saves most of the work of repeated FIDs.
struct GaussianStats {
  Eigen::VectorXd mean;        ///< [D] mean of the rows
  Eigen::MatrixXd covariance;  ///< [D, D] sum (x - mean)(x - mean)^T / (count - 1)
  std::int64_t count = 0;      ///< number of rows the statistics were computed from
};

/// A bootstrap confidence interval for the Fréchet distance.
struct FrechetInterval {
  double estimate = 0;    ///< the distance of the full sets (not a bootstrap mean)
  double low = 0;         ///< lower percentile of the resampled distances
  double high = 0;        ///< upper percentile of the resampled distances
  int resamples = 0;      ///< number of bootstrap resamples
  double confidence = 0;  ///< nominal coverage, e.g. 0.95
};

namespace detail {

/// Rows of features gathered into double precision per block: a bound on the extra memory, so
/// that 50,000 x 2048 float features need no 800 MB double copy.
inline constexpr std::int64_t kStatsBlockRows = 1024;

/// Checks features [N, D] with N >= 2 and D >= 1; `op` and `arg` name the caller and argument.
template <class T>
void check_feature_matrix(const char* op, const char* arg, const Tensor<T>& features) {
  check_rank(op, arg, features.shape(), 2, "[N, D]");
  check_dim_at_least(op, arg, features.shape(), 0, 2, "samples, to estimate a covariance");
  check_dim_at_least(op, arg, features.shape(), 1, 1, "feature dimension");
}

/// Mean and unbiased covariance of rows rows[0..n) of x [N, D] (every row in order when `rows`
/// is null), in double. Two passes (mean, then centred products) avoid the cancellation of
/// E[x x^T] - mu mu^T when the features have a large mean.
template <class T>
GaussianStats gaussian_stats_of_rows(const char* op, const Tensor<T>& x, const std::int64_t* rows, std::int64_t n) {
  const std::int64_t d = x.dim(1);
  const T* data = x.data();
  const auto row_of = [&](std::int64_t i) { return rows ? rows[i] : i; };
  GaussianStats s;
  s.count = n;
  s.mean = Eigen::VectorXd::Zero(d);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* r = data + row_of(i) * d;
    for (std::int64_t j = 0; j < d; ++j) s.mean(j) += static_cast<double>(r[j]);
  }
  s.mean /= static_cast<double>(n);
  // A non-finite feature makes its column's sum Inf or NaN: one check here covers every input.
  if (!s.mean.allFinite()) throw ValueError(std::string(op) + ": expected finite features, got Inf or NaN");
  s.covariance = Eigen::MatrixXd::Zero(d, d);
  Eigen::MatrixXd centred(std::min(kStatsBlockRows, n), d);
  for (std::int64_t start = 0; start < n; start += kStatsBlockRows) {
    const std::int64_t b = std::min(kStatsBlockRows, n - start);
    if (b != centred.rows()) centred.resize(b, d);
    for (std::int64_t i = 0; i < b; ++i) {
      const T* r = data + row_of(start + i) * d;
      for (std::int64_t j = 0; j < d; ++j) centred(i, j) = static_cast<double>(r[j]) - s.mean(j);
    }
    s.covariance.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
  }
  s.covariance = s.covariance.selfadjointView<Eigen::Lower>();  // fill the upper triangle
  s.covariance /= static_cast<double>(n - 1);
  return s;
}

/// Checks that `s` is a consistent set of statistics: a mean of size D >= 1, a finite D x D
/// covariance.
inline void check_gaussian_stats(const char* op, const char* arg, const GaussianStats& s) {
  const auto d = s.mean.size();
  if (d < 1) throw ShapeError(std::string(op) + ": expected " + arg + " with a mean of dimension >= 1, got 0");
  if (s.covariance.rows() != d || s.covariance.cols() != d)
    throw ShapeError(std::string(op) + ": expected " + arg + "'s covariance [" + std::to_string(d) + ", " +
                     std::to_string(d) + "] to match its mean [" + std::to_string(d) + "], got [" +
                     std::to_string(s.covariance.rows()) + ", " + std::to_string(s.covariance.cols()) + "]");
  if (!s.mean.allFinite() || !s.covariance.allFinite())
    throw ValueError(std::string(op) + ": expected " + arg + " with a finite mean and covariance, got Inf or NaN");
}

/// q-quantile (q in [0, 1]) of sorted values by linear interpolation between order statistics
/// (h = (n - 1) q, the definition numpy and R use by default).
inline double sorted_quantile(const std::vector<double>& sorted, double q) {
  const double h = static_cast<double>(sorted.size() - 1) * q;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace detail

/// Mean and unbiased covariance (divided by N - 1) of the rows of features [N, D], N >= 2,
/// computed in double. ShapeError unless features is [N, D] with N >= 2 and D >= 1; ValueError if
/// a feature is Inf or NaN.
template <class T>
GaussianStats gaussian_stats(const Tensor<T>& features) {
  static_assert(std::is_arithmetic_v<T>, "gaussian_stats needs numeric features");
  detail::check_feature_matrix("gaussian_stats", "features", features);
  return detail::gaussian_stats_of_rows("gaussian_stats", features, nullptr, features.dim(0));
}

/// Fréchet distance between the Gaussians N(a.mean, a.covariance) and N(b.mean, b.covariance):
///   ||mu_a - mu_b||^2 + tr S_a + tr S_b - 2 sum_i sqrt(lambda_i(S_a^{1/2} S_b S_a^{1/2})),
/// with S_a^{1/2} the symmetric square root. Covariances must be symmetric positive semi-definite
/// (singular ones are fine: fewer samples than dimensions); only their lower triangles are read.
/// Costs two D x D symmetric eigendecompositions, O(D^3). Never negative: rounding can push the
/// exact value 0 of identical statistics a few ulps below zero, and the result is clamped to 0.
/// ShapeError if the dimensions differ (naming both) or a covariance does not match its mean;
/// ValueError for Inf or NaN statistics; NumericError if an eigendecomposition fails.
/// (A template only so that its eigensolvers, 3 s of compile time, are compiled where it is
/// called, not in every translation unit that includes this header: Stats is always
/// GaussianStats, and a call reads `frechet_distance(a, b)`.)
template <class Stats = GaussianStats>
double frechet_distance(const std::type_identity_t<Stats>& a, const std::type_identity_t<Stats>& b) {
  static_assert(std::is_same_v<Stats, GaussianStats>, "frechet_distance compares GaussianStats");
  detail::check_gaussian_stats("frechet_distance", "a", a);
  detail::check_gaussian_stats("frechet_distance", "b", b);
  if (a.mean.size() != b.mean.size())
    throw ShapeError("frechet_distance: expected statistics of the same dimension, got a of dimension " +
                     std::to_string(a.mean.size()) + " and b of dimension " + std::to_string(b.mean.size()));
  using Matrix = Eigen::MatrixXd;
  Eigen::SelfAdjointEigenSolver<Matrix> eig_a(a.covariance);  // reads the lower triangle
  if (eig_a.info() != Eigen::Success)
    throw NumericError("frechet_distance: the eigendecomposition of a's covariance did not converge");
  // A covariance is positive semi-definite, so its exact eigenvalues are >= 0; a singular one
  // (fewer samples than dimensions, or constant features) has exact zeros, which the solver returns
  // as tiny values of either sign (~ 1e-16 ||S||). Clamping them to 0 before the square root
  // changes the result by O(sqrt(1e-16 ||S||)) at most, where sqrt of a negative would be NaN.
  const Eigen::VectorXd root_eigenvalues = eig_a.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  const Matrix& v = eig_a.eigenvectors();
  const Matrix root_a = v * root_eigenvalues.asDiagonal() * v.transpose();
  const Matrix b_full = b.covariance.template selfadjointView<Eigen::Lower>();
  Matrix m = root_a * b_full * root_a;
  m = (0.5 * (m + m.transpose())).eval();  // exactly symmetric: the products are only up to rounding
  Eigen::SelfAdjointEigenSolver<Matrix> eig_m(m, Eigen::EigenvaluesOnly);
  if (eig_m.info() != Eigen::Success)
    throw NumericError("frechet_distance: the eigendecomposition of S_a^1/2 S_b S_a^1/2 did not converge");
  // S_a^{1/2} S_b S_a^{1/2} = R^T S_b R with R = S_a^{1/2} is positive semi-definite too (congruent
  // to S_b): its negative eigenvalues are rounding, clamped to 0 for the same reason.
  const double trace_sqrt = eig_m.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  const double mean_term = (a.mean - b.mean).squaredNorm();
  const double fd = mean_term + a.covariance.trace() + b.covariance.trace() - 2.0 * trace_sqrt;
  return std::max(fd, 0.0);
}

/// Fréchet distance between the Gaussians fitted to two feature sets [N_a, D] and [N_b, D]
/// (gaussian_stats of each). ShapeError if the feature dimensions differ (naming both shapes) or
/// a set is not [N, D] with N >= 2; ValueError for Inf or NaN features.
template <class T>
double frechet_distance(const Tensor<T>& a, const Tensor<T>& b) {
  detail::check_feature_matrix("frechet_distance", "features a", a);
  detail::check_feature_matrix("frechet_distance", "features b", b);
  if (a.dim(1) != b.dim(1))
    throw ShapeError("frechet_distance: expected features a " + a.shape().to_string() + " and b " +
                     b.shape().to_string() + " with the same feature dimension");
  return frechet_distance(detail::gaussian_stats_of_rows("frechet_distance", a, nullptr, a.dim(0)),
                          detail::gaussian_stats_of_rows("frechet_distance", b, nullptr, b.dim(0)));
}

/// Percentile-bootstrap interval for the Fréchet distance of two feature sets: `resamples` times,
/// draw N_a rows of features_a and N_b rows of features_b uniformly with replacement (from `gen`,
/// in order, so a seed gives the same interval), and compute their distance; low and high are the
/// (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of those distances (linear
/// interpolation between order statistics), estimate the distance of the full sets.
///
/// What the interval measures: the spread due to the finite samples. It is not centred on the
/// estimate: FD is biased upwards by finite samples (E||mean_a - mean_b||^2 alone exceeds the true
/// term by tr S_a / N_a + tr S_b / N_b), and resampling adds that bias again, so when the true
/// distance is near 0 the whole interval can lie above the estimate. Compare models with equal
/// sample sizes. Each resample costs two covariances, O((N_a + N_b) D^2), and one distance, O(D^3).
///
/// ShapeError as frechet_distance; ValueError unless resamples >= 2 and confidence is in (0, 1).
template <class T>
FrechetInterval frechet_distance_bootstrap(const Tensor<T>& features_a, const Tensor<T>& features_b, int resamples,
                                           double confidence, Generator& gen) {
  constexpr const char* op = "frechet_distance_bootstrap";
  detail::check_feature_matrix(op, "features a", features_a);
  detail::check_feature_matrix(op, "features b", features_b);
  if (features_a.dim(1) != features_b.dim(1))
    throw ShapeError(std::string(op) + ": expected features a " + features_a.shape().to_string() + " and b " +
                     features_b.shape().to_string() + " with the same feature dimension");
  check_at_least(op, "resamples", resamples, 2);
  check_in_range(op, "confidence", confidence, 0.0, 1.0, Bounds::open);

  const std::int64_t na = features_a.dim(0), nb = features_b.dim(0);
  FrechetInterval out;
  out.resamples = resamples;
  out.confidence = confidence;
  out.estimate = frechet_distance(detail::gaussian_stats_of_rows(op, features_a, nullptr, na),
                                  detail::gaussian_stats_of_rows(op, features_b, nullptr, nb));
  std::vector<std::int64_t> rows_a(static_cast<std::size_t>(na)), rows_b(static_cast<std::size_t>(nb));
  std::vector<double> distances(static_cast<std::size_t>(resamples));
  for (double& dist : distances) {
    for (auto& r : rows_a) r = static_cast<std::int64_t>(gen.uniform_int(static_cast<std::uint64_t>(na)));
    for (auto& r : rows_b) r = static_cast<std::int64_t>(gen.uniform_int(static_cast<std::uint64_t>(nb)));
    dist = frechet_distance(detail::gaussian_stats_of_rows(op, features_a, rows_a.data(), na),
                            detail::gaussian_stats_of_rows(op, features_b, rows_b.data(), nb));
  }
  std::sort(distances.begin(), distances.end());
  out.low = detail::sorted_quantile(distances, 0.5 * (1.0 - confidence));
  out.high = detail::sorted_quantile(distances, 0.5 * (1.0 + confidence));
  return out;
}

}  // namespace genmod::eval

#if GENMOD_GCC_BUG_105593
#pragma GCC diagnostic pop
#endif

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_TEMPLATE double genmod::eval::frechet_distance<genmod::eval::GaussianStats>(
    const genmod::eval::GaussianStats&, const genmod::eval::GaussianStats&);
GENMOD_DETAIL_TEMPLATE genmod::eval::FrechetInterval genmod::eval::frechet_distance_bootstrap<float>(
    const genmod::Tensor<float>&, const genmod::Tensor<float>&, int, double, genmod::Generator&);
#endif
