#pragma once
/// \file precision_recall.hpp
/// Improved precision and recall of a generative model (Kynkäänniemi et al. 2019), from features
/// of real and generated samples:
///
///   each sample x of a set gets a ball of radius r_k(x), the distance to its k-th nearest neighbour
///   among the other samples of its own set (the sample itself excluded by index, so an exact
///   duplicate counts as a neighbour at distance 0);
///   precision = fraction of generated samples inside at least one real ball (how much of what the
///               model makes looks real),
///   recall    = fraction of real samples inside at least one generated ball (how much of the real
///               distribution the model covers).
///
/// "Inside" is ||x - y|| <= r (closed balls). A model that drops half the modes of the data keeps
/// its precision and loses half its recall; one that blurs between modes keeps recall and loses
/// precision. FID mixes the two into one number.
///
/// Distances are computed in blocks, ||x - y||^2 = ||x||^2 + ||y||^2 - 2 <x, y>, the inner products
/// of a block of rows against a block of columns being one matrix product (Eigen, in double): no
/// N x M matrix is ever held (a thread's tile is 2 MB). 10,000 real and 10,000 generated 128-d
/// features need three such N x N x D products, 4e10 multiply-adds: about 3 s of one core's time,
/// shared by the OpenMP threads, which take blocks of rows. The result does not depend on the
/// number of threads.
///
/// The expansion loses digits to cancellation when points are far from the origin, so the points
/// are first centred on the real set's mean (distances do not change under translation), and it
/// serves only to screen: a comparison whose screened value lies within its rounding bound of the
/// radius is decided again by direct differences, and radii are direct distances to the neighbour
/// found. The result is therefore what a naive double-precision loop over all pairs gives (unless
/// two candidates for a k-th neighbour are at distances equal to rounding, when either may set the
/// radius).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/Core>
GENMOD_EIGEN_INCLUDE_END

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

#if GENMOD_HAS_OPENMP
#include <omp.h>

// Eigen's AVX-512 code inlines GCC 12's intrinsics, which warn in every user's -Wall build
// (GENMOD_GCC_BUG_105593, see kernels/simd.hpp): silenced for the code of this file.
#if GENMOD_GCC_BUG_105593
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#endif

namespace genmod::eval {

/// Improved precision and recall (Kynkäänniemi et al. 2019), both in [0, 1].
struct PrecisionRecall {
  double precision = 0;  ///< fraction of generated samples inside some real sample's k-NN ball
  double recall = 0;     ///< fraction of real samples inside some generated sample's k-NN ball
  int k = 0;             ///< the neighbour rank that set the radii
};

namespace detail {

/// Row-major double matrix: one point per row, contiguous, as the features arrive.
using PointMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Query rows per block (one unit of work for a thread) and reference rows per tile: a tile of
/// 256 x 1024 doubles is 2 MB, and its product of depth D keeps the matrix kernel busy.
inline constexpr std::int64_t kDistanceRowBlock = 256;
inline constexpr std::int64_t kDistanceColBlock = 1024;

/// A point set prepared for blockwise distances: its rows moved to a common origin, in double,
/// and their squared norms.
struct CentredPoints {
  PointMatrix rows;              ///< [N, D] points minus the origin
  Eigen::VectorXd squared_norm;  ///< [N] ||row||^2
};

/// Checks features [N, D] with D >= 1; `arg` names them in messages.
template <class T>
void check_point_set(const char* op, const char* arg, const Tensor<T>& x) {
  check_rank(op, arg, x.shape(), 2, "[N, D]");
  check_dim_at_least(op, arg, x.shape(), 1, 1, "feature dimension");
}

/// Checks 1 <= k < N: a sample's k-th neighbour among the N - 1 others must exist.
inline void check_neighbour_rank(const char* op, int k, std::int64_t n, const char* which) {
  check_at_least(op, "k", k, 1);
  check_arg(k < n, op, "k", "< " + std::to_string(n) + " (the number of " + which + " samples)", std::to_string(k));
}

/// Mean of the rows of x, in double: the origin the points are centred on.
template <class T>
Eigen::RowVectorXd row_mean(const Tensor<T>& x) {
  return x.matrix().template cast<double>().colwise().mean();
}

/// The rows of x minus `origin`, and their squared norms. ValueError for Inf or NaN features.
template <class T>
CentredPoints centre_points(const char* op, const char* arg, const Tensor<T>& x, const Eigen::RowVectorXd& origin) {
  CentredPoints p;
  p.rows = x.matrix().template cast<double>();
  p.rows.rowwise() -= origin;
  if (!p.rows.allFinite()) throw ValueError(std::string(op) + ": expected finite " + arg + ", got Inf or NaN");
  p.squared_norm = p.rows.rowwise().squaredNorm();
  return p;
}

/// ||x - y||^2 by direct differences of the original values in double, summed in index order:
/// the value a naive loop computes, which every borderline decision and every radius comes from.
template <class T>
double direct_squared_distance(const T* x, const T* y, std::int64_t d) noexcept {
  double s = 0;
  for (std::int64_t i = 0; i < d; ++i) {
    const double diff = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    s += diff * diff;
  }
  return s;
}

/// Bound on |screened - direct| per unit of (||u||^2 + ||v||^2), u and v centred points of
/// dimension d (unit roundoff u = eps / 2, gamma_d ~ d u):
///   centring rounds each coordinate (<= u |u_i|), moving ||u - v||^2 by <= 4 u (||u||^2 + ||v||^2);
///   the two squared norms and the inner product, sums of d products, err by <= gamma_d each, the
///   inner product's error counting twice and bounded through |<u, v>| <= (||u||^2 + ||v||^2) / 2:
///   2 gamma_d in all; the two final additions add <= 4 u; the direct sum errs by <= gamma_d
///   ||u - v||^2 <= 2 gamma_d (||u||^2 + ||v||^2).
/// Total (4 d + 8) u = (2 d + 4) eps; twice that is the margin used, (4 d + 8) eps.
inline double screening_margin_factor(std::int64_t d) noexcept {
  return static_cast<double>(4 * d + 8) * std::numeric_limits<double>::epsilon();
}

/// Threads for `blocks` row blocks: genmod's thread count, 1 inside a parallel region.
inline int distance_threads(std::int64_t blocks) noexcept {
  if (in_parallel_region()) return 1;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(get_num_threads(), blocks)));
}

/// Calls f(thread, first_row, rows) once per block of kDistanceRowBlock rows of [0, n), blocks
/// shared dynamically between `threads` threads (thread in [0, threads)). f must not throw.
template <class F>
void for_each_row_block(std::int64_t n, int threads, F&& f) {
  const std::int64_t blocks = (n + kDistanceRowBlock - 1) / kDistanceRowBlock;
#if GENMOD_HAS_OPENMP
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (std::int64_t b = 0; b < blocks; ++b)
      f(omp_get_thread_num(), b * kDistanceRowBlock, std::min(kDistanceRowBlock, n - b * kDistanceRowBlock));
    return;
  }
#endif
  (void)threads;
  for (std::int64_t b = 0; b < blocks; ++b)
    f(0, b * kDistanceRowBlock, std::min(kDistanceRowBlock, n - b * kDistanceRowBlock));
}

/// tile(i, j) = <a_{i0 + i}, b_{j0 + j}> for a rows x cols tile, written into the top-left corner
/// of a buffer allocated beforehand: the workers allocate nothing (an exception cannot leave an
/// OpenMP region).
inline auto inner_product_tile(const CentredPoints& a, std::int64_t i0, std::int64_t rows, const CentredPoints& b,
                               std::int64_t j0, std::int64_t cols, PointMatrix& buffer) {
  auto tile = buffer.topLeftCorner(rows, cols);
  tile.noalias() = a.rows.middleRows(i0, rows) * b.rows.middleRows(j0, cols).transpose();
  return tile;
}

/// Squared distance from each row of x to its k-th nearest other row (ranked by screened values;
/// the value returned is the direct distance to the neighbour found), for p = x centred.
template <class T>
std::vector<double> kth_neighbour_squared_distances(const Tensor<T>& x, const CentredPoints& p, int k) {
  const std::int64_t n = x.dim(0), d = x.dim(1);
  const auto kk = static_cast<std::size_t>(k);
  const int threads = distance_threads((n + kDistanceRowBlock - 1) / kDistanceRowBlock);
  using Candidate = std::pair<double, std::int64_t>;  // (screened squared distance, index)
  std::vector<PointMatrix> buffers(static_cast<std::size_t>(threads),
                                   PointMatrix(std::min(kDistanceRowBlock, n), std::min(kDistanceColBlock, n)));
  std::vector<std::vector<Candidate>> heaps(static_cast<std::size_t>(threads),
                                            std::vector<Candidate>(static_cast<std::size_t>(kDistanceRowBlock) * kk));
  std::vector<std::vector<std::size_t>> heap_sizes(
      static_cast<std::size_t>(threads), std::vector<std::size_t>(static_cast<std::size_t>(kDistanceRowBlock)));
  std::vector<double> result(static_cast<std::size_t>(n));
  for_each_row_block(n, threads, [&](int thread, std::int64_t i0, std::int64_t rows) {
    // Row i's k smallest candidates so far, a max-heap on the screened value: one comparison with
    // the top rejects almost every candidate.
    std::vector<Candidate>& heap = heaps[static_cast<std::size_t>(thread)];
    std::vector<std::size_t>& size = heap_sizes[static_cast<std::size_t>(thread)];
    std::fill(size.begin(), size.end(), std::size_t{0});
    for (std::int64_t j0 = 0; j0 < n; j0 += kDistanceColBlock) {
      const std::int64_t cols = std::min(kDistanceColBlock, n - j0);
      const auto tile = inner_product_tile(p, i0, rows, p, j0, cols, buffers[static_cast<std::size_t>(thread)]);
      for (std::int64_t i = 0; i < rows; ++i) {
        Candidate* h = heap.data() + static_cast<std::size_t>(i) * kk;
        std::size_t& sz = size[static_cast<std::size_t>(i)];
        const double ni = p.squared_norm(i0 + i);
        for (std::int64_t j = 0; j < cols; ++j) {
          if (i0 + i == j0 + j) continue;  // the sample itself
          const Candidate c{ni + p.squared_norm(j0 + j) - 2.0 * tile(i, j), j0 + j};
          if (sz < kk) {
            h[sz++] = c;
            std::push_heap(h, h + sz);
          } else if (c < h[0]) {
            std::pop_heap(h, h + kk);
            h[kk - 1] = c;
            std::push_heap(h, h + kk);
          }
        }
      }
    }
    const T* data = x.data();
    for (std::int64_t i = 0; i < rows; ++i) {
      const std::int64_t neighbour = heap[static_cast<std::size_t>(i) * kk].second;  // the k-th smallest
      result[static_cast<std::size_t>(i0 + i)] = direct_squared_distance(data + (i0 + i) * d, data + neighbour * d, d);
    }
  });
  return result;
}

}  // namespace detail

/// Distance from each row of points [N, D] to its k-th nearest neighbour among the other rows
/// (1 <= k < N; a duplicate row is a neighbour at distance 0): the radii of precision_recall's
/// balls. N values, computed blockwise without an N x N matrix. ShapeError unless points is
/// [N, D] with D >= 1; ValueError unless 1 <= k < N or for Inf or NaN points.
template <class T>
std::vector<double> kth_nearest_neighbour_distances(const Tensor<T>& points, int k) {
  constexpr const char* op = "kth_nearest_neighbour_distances";
  detail::check_point_set(op, "points", points);
  detail::check_neighbour_rank(op, k, points.dim(0), "points'");
  const detail::CentredPoints p = detail::centre_points(op, "points", points, detail::row_mean(points));
  std::vector<double> r = detail::kth_neighbour_squared_distances(points, p, k);
  for (double& v : r) v = std::sqrt(v);
  return r;
}

/// Improved precision and recall of `generated` [M, D] against `real` [N, D] with k-th nearest
/// neighbour balls (k = 3, the paper's choice, by default): precision = fraction of generated
/// samples inside at least one real ball, recall = fraction of real samples inside at least one
/// generated ball, each ball's radius the distance from its sample to the k-th nearest other
/// sample of the same set. O((N + M)^2 D) time in matrix products, O((N + M) D) memory.
/// ShapeError unless both are [., D] with the same D >= 1 (naming both shapes); ValueError unless
/// 1 <= k < min(N, M), or for Inf or NaN features.
template <class T>
PrecisionRecall precision_recall(const Tensor<T>& real, const Tensor<T>& generated, int k = 3) {
  constexpr const char* op = "precision_recall";
  detail::check_point_set(op, "real features", real);
  detail::check_point_set(op, "generated features", generated);
  if (real.dim(1) != generated.dim(1))
    throw ShapeError(std::string(op) + ": expected real features " + real.shape().to_string() +
                     " and generated features " + generated.shape().to_string() + " with the same feature dimension");
  detail::check_neighbour_rank(op, k, real.dim(0), "real");
  detail::check_neighbour_rank(op, k, generated.dim(0), "generated");

  const std::int64_t n_real = real.dim(0), n_gen = generated.dim(0), d = real.dim(1);
  const Eigen::RowVectorXd origin = detail::row_mean(real);
  const detail::CentredPoints r = detail::centre_points(op, "real features", real, origin);
  const detail::CentredPoints g = detail::centre_points(op, "generated features", generated, origin);
  const std::vector<double> real_radius2 = detail::kth_neighbour_squared_distances(real, r, k);
  const std::vector<double> gen_radius2 = detail::kth_neighbour_squared_distances(generated, g, k);

  // One pass over generated x real tiles answers both questions: entry (i, j) tests generated i
  // against real j's ball (precision) and real j against generated i's ball (recall).
  const double margin_factor = detail::screening_margin_factor(d);
  const int threads = detail::distance_threads((n_gen + detail::kDistanceRowBlock - 1) / detail::kDistanceRowBlock);
  std::vector<detail::PointMatrix> buffers(
      static_cast<std::size_t>(threads),
      detail::PointMatrix(std::min(detail::kDistanceRowBlock, n_gen), std::min(detail::kDistanceColBlock, n_real)));
  std::vector<char> gen_covered(static_cast<std::size_t>(n_gen), 0);
  // Real samples are columns, visited by every thread: one flag array per thread, merged after.
  std::vector<std::vector<char>> real_covered(static_cast<std::size_t>(threads),
                                              std::vector<char>(static_cast<std::size_t>(n_real), 0));
  const T* gen_data = generated.data();
  const T* real_data = real.data();
  detail::for_each_row_block(n_gen, threads, [&](int thread, std::int64_t i0, std::int64_t rows) {
    std::vector<char>& real_hit = real_covered[static_cast<std::size_t>(thread)];
    for (std::int64_t j0 = 0; j0 < n_real; j0 += detail::kDistanceColBlock) {
      const std::int64_t cols = std::min(detail::kDistanceColBlock, n_real - j0);
      const auto tile = detail::inner_product_tile(g, i0, rows, r, j0, cols, buffers[static_cast<std::size_t>(thread)]);
      for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t gi = i0 + i;
        const double ni = g.squared_norm(gi), gen_r2 = gen_radius2[static_cast<std::size_t>(gi)];
        char& gen_hit = gen_covered[static_cast<std::size_t>(gi)];
        for (std::int64_t j = 0; j < cols; ++j) {
          const std::int64_t rj = j0 + j;
          const double nj = r.squared_norm(rj);
          const double screened = ni + nj - 2.0 * tile(i, j);
          const double margin = margin_factor * (ni + nj);
          // Inside a ball of squared radius r2: certainly when screened <= r2 - margin, certainly
          // not when screened > r2 + margin, and by the direct distance in between.
          double direct = -1;  // computed at most once per pair, when a comparison is borderline
          const auto inside = [&](double r2) {
            if (screened <= r2 - margin) return true;
            if (screened > r2 + margin) return false;
            if (direct < 0) direct = detail::direct_squared_distance(gen_data + gi * d, real_data + rj * d, d);
            return direct <= r2;
          };
          if (!gen_hit && inside(real_radius2[static_cast<std::size_t>(rj)])) gen_hit = 1;
          char& real_flag = real_hit[static_cast<std::size_t>(rj)];
          if (!real_flag && inside(gen_r2)) real_flag = 1;
        }
      }
    }
  });

  std::int64_t precise = 0, recalled = 0;
  for (const char c : gen_covered) precise += c;
  for (std::int64_t j = 0; j < n_real; ++j) {
    bool hit = false;
    for (const auto& flags : real_covered) hit = hit || flags[static_cast<std::size_t>(j)];
    recalled += hit ? 1 : 0;
  }
  return {static_cast<double>(precise) / static_cast<double>(n_gen),
          static_cast<double>(recalled) / static_cast<double>(n_real), k};
}

}  // namespace genmod::eval

#if GENMOD_GCC_BUG_105593
#pragma GCC diagnostic pop
#endif

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_TEMPLATE genmod::eval::PrecisionRecall genmod::eval::precision_recall<float>(const genmod::Tensor<float>&,
                                                                                           const genmod::Tensor<float>&,
                                                                                           int);
#endif
