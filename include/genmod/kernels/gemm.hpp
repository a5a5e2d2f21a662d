#pragma once
/// \file gemm.hpp
/// C = alpha * op(A) op(B) + beta * C for row-major matrices, on the register-tile kernel of
/// microkernel.hpp.
///
/// Packing buffers live in per-thread scratch tensors (from the caching pool, grown only when a
/// larger product appears), so a training step allocates nothing; the product is split across
/// threads by us, each thread computing a band of C's rows or columns.

#include <algorithm>
#include <cstdint>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/microkernel.hpp"

namespace genmod::kernels {

namespace detail {

/// One thread's C[m x n] += alpha op(A) B with B's panels from b_panel (see
/// tile::multiply_blocked): for products whose right factor is never stored whole, as a
/// convolution's column matrix.
template <class T, class BPanel>
void gemm_serial_with(bool ta, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* A, std::int64_t lda,
                      BPanel&& b_panel, T* C, std::int64_t ldc) {
  using S = tile::Tile<T>;
  const std::int64_t block_rows = (std::min(m, S::row_block) + S::mr - 1) / S::mr * S::mr;
  T* a_buf = tile::panel_scratch<T, 1>(block_rows * S::depth_block);
  tile::multiply_blocked<T>(
      m, n, k, alpha,
      [&](std::int64_t k0, std::int64_t depth, std::int64_t i0, std::int64_t rows) {
        tile::pack_a(ta, A, lda, i0, rows, k0, depth, a_buf);
        return static_cast<const T*>(a_buf);
      },
      b_panel, C, ldc);
}

/// One thread's product on a band: C[m x n] += alpha op(A) op(B), all row-major.
template <class T>
void gemm_serial(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* A,
                 std::int64_t lda, const T* B, std::int64_t ldb, T* C, std::int64_t ldc) {
  gemm_serial_with<T>(
      ta, m, n, k, alpha, A, lda,
      [&](std::int64_t k0, std::int64_t depth, std::int64_t j0, std::int64_t cols, T* dst) {
        tile::pack_b(tb, B, ldb, k0, depth, j0, cols, dst);
      },
      C, ldc);
}

/// C[m x n] *= beta, row stride ldc (beta = 0 writes zeros, so NaN or garbage in C is not kept).
template <class T>
void scale_block(std::int64_t m, std::int64_t n, T beta, T* C, std::int64_t ldc) {
  if (beta == T(1)) return;
  for (std::int64_t i = 0; i < m; ++i) {
    T* row = C + i * ldc;
    if (beta == T(0))
      std::fill(row, row + n, T(0));
    else
      for (std::int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
}

/// Runs f(lo, hi) on `bands` contiguous ranges of [0, extent), one per thread, each boundary a
/// multiple of 16 (a SIMD register of floats) so the kernels' edge cases stay at the matrix edge.
template <class F>
void for_each_band(std::int64_t extent, std::int64_t bands, F&& f) {
  parallel_for(bands, kParallelGrain, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t lo = (extent * b / bands) / 16 * 16;
      const std::int64_t hi = b + 1 == bands ? extent : (extent * (b + 1) / bands) / 16 * 16;
      if (hi > lo) f(lo, hi);
    }
  });
}

}  // namespace detail

/// op(A) [m x k] of C = op(A) op(B), packed once into the tile's A panels for many products with
/// the same A and different B: a convolution multiplies its weight by the column matrix of every
/// group of images, and plain gemm() would re-pack the weight for each group. Depth block b holds
/// the panels of all m rows for depths b * Tile<T>::depth_block ..
template <class T>
class PackedA {
 public:
  /// No panels; assign a packed PackedA before use.
  PackedA() = default;
  /// Packs the m x k matrix A (or A^T when ta), leading dimension lda, into the tile's panels, once.
  PackedA(bool ta, std::int64_t m, std::int64_t k, const T* A, std::int64_t lda) : m_(m), k_(k) {
    using S = tile::Tile<T>;
    const std::int64_t rows = (m + S::mr - 1) / S::mr * S::mr, blocks = (k + S::depth_block - 1) / S::depth_block;
    panels_ = Tensor<T>(Shape{std::max<std::int64_t>(1, rows * k)});
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t k0 = b * S::depth_block, depth = std::min(S::depth_block, k - k0);
      tile::pack_a(ta, A, lda, 0, m, k0, depth, panels_.data() + rows * k0);
    }
  }

  /// m, the rows of the packed matrix.
  std::int64_t rows() const noexcept { return m_; }
  /// k, the depth (columns of A, rows of B) of the products it serves.
  std::int64_t depth() const noexcept { return k_; }
  /// The A panels of rows i0 .. (a multiple of the tile's rows) for the depth block at k0.
  const T* panels(std::int64_t k0, std::int64_t depth, std::int64_t i0) const noexcept {
    const std::int64_t rows = (m_ + tile::Tile<T>::mr - 1) / tile::Tile<T>::mr * tile::Tile<T>::mr;
    return panels_.data() + rows * k0 + i0 * depth;
  }

 private:
  std::int64_t m_ = 0, k_ = 0;
  Tensor<T> panels_;
};

namespace detail {

/// One thread's C[m x n] += alpha op(A) B with A packed and B's panels from b_panel.
template <class T, class BPanel>
void gemm_packed_serial_with(const PackedA<T>& a, std::int64_t n, T alpha, BPanel&& b_panel, T* C, std::int64_t ldc) {
  tile::multiply_blocked<T>(
      a.rows(), n, a.depth(), alpha,
      [&](std::int64_t k0, std::int64_t depth, std::int64_t i0, std::int64_t) { return a.panels(k0, depth, i0); },
      b_panel, C, ldc);
}

/// One thread's C[m x n] += alpha op(A) op(B) with A packed; B row-major (n x k when tb).
template <class T>
void gemm_packed_serial(const PackedA<T>& a, bool tb, std::int64_t n, T alpha, const T* B, std::int64_t ldb, T* C,
                        std::int64_t ldc) {
  gemm_packed_serial_with<T>(
      a, n, alpha,
      [&](std::int64_t k0, std::int64_t depth, std::int64_t j0, std::int64_t cols, T* dst) {
        tile::pack_b(tb, B, ldb, k0, depth, j0, cols, dst);
      },
      C, ldc);
}

}  // namespace detail

/// C[m x n] = alpha * op(A) op(B) + beta * C with op(A) pre-packed (see PackedA); B is k x n
/// (n x k when tb) with row stride ldb. Threads split C's columns when called outside a parallel
/// region and the product is large enough, as gemm() does.
template <class T>
void gemm_packed(const PackedA<T>& a, bool tb, std::int64_t n, T alpha, const T* B, std::int64_t ldb, T beta, T* C,
                 std::int64_t ldc) {
  const std::int64_t m = a.rows(), k = a.depth();
  if (m <= 0 || n <= 0) return;
  const bool product = k > 0 && alpha != T(0);
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const std::int64_t bands = !product || flops < 4e6 || in_parallel_region()
                                 ? 1
                                 : std::min<std::int64_t>(get_num_threads(), std::max<std::int64_t>(1, n / 16));
  detail::for_each_band(n, bands, [&](std::int64_t lo, std::int64_t hi) {
    detail::scale_block(m, hi - lo, beta, C + lo, ldc);
    if (product) detail::gemm_packed_serial(a, tb, hi - lo, alpha, tb ? B + lo * ldb : B + lo, ldb, C + lo, ldc);
  });
}

/// C[m x n] = alpha * op(A) op(B) + beta * C, row-major, op(X) = X or X^T.
/// A is m x k (k x m when ta) with row stride lda; B is k x n (n x k when tb) with row stride ldb.
template <class T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* A, std::int64_t lda,
          const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const bool product = k > 0 && alpha != T(0);
  const int threads = get_num_threads();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (!product || threads <= 1 || flops < 4e6 || in_parallel_region()) {
    detail::scale_block(m, n, beta, C, ldc);
    if (product) detail::gemm_serial(ta, tb, m, n, k, alpha, A, lda, B, ldb, C, ldc);
    return;
  }
  // Split the larger of m and n into one band per thread, each band a multiple of 16 (a SIMD
  // register of floats) so the kernels' edge cases stay at the matrix edge.
  const bool split_rows = m >= n;
  const std::int64_t extent = split_rows ? m : n;
  const std::int64_t bands = std::min<std::int64_t>(threads, std::max<std::int64_t>(1, extent / 16));
  // Each thread applies beta to its own band just before accumulating onto it: the band is then
  // still in cache, and the pass over C is split across threads.
  detail::for_each_band(extent, bands, [&](std::int64_t lo, std::int64_t hi) {
    if (split_rows) {
      detail::scale_block(hi - lo, n, beta, C + lo * ldc, ldc);
      detail::gemm_serial(ta, tb, hi - lo, n, k, alpha, ta ? A + lo : A + lo * lda, lda, B, ldb, C + lo * ldc, ldc);
    } else {
      detail::scale_block(m, hi - lo, beta, C + lo, ldc);
      detail::gemm_serial(ta, tb, m, hi - lo, k, alpha, A, lda, tb ? B + lo * ldb : B + lo, ldb, C + lo, ldc);
    }
  });
}

}  // namespace genmod::kernels
