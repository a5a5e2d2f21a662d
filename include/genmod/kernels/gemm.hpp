#pragma once
/// \file gemm.hpp
/// C = alpha * op(A) op(B) + beta * C for row-major matrices, on Eigen's GEBP kernels.
///
/// Why not `C.noalias() = A * B` on Eigen maps: at these sizes Eigen mallocs its packing buffers on
/// every product, which would break the "no heap allocation per training step" rule. We call
/// Eigen's blocked product directly with packing buffers that live in a per-thread scratch tensor
/// (from the caching pool, grown only when a larger product appears), and split the product
/// across threads ourselves, each thread computing a band of C's rows or columns.

#include <algorithm>
#include <cstdint>

#include <Eigen/Core>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::kernels {

namespace detail {

/// Eigen blocking object whose packing buffers are ours.
template <class T>
class ScratchBlocking : public Eigen::internal::level3_blocking<T, T> {
  using Base = Eigen::internal::level3_blocking<T, T>;

 public:
  /// Blocking for a column-major product of rows x cols with depth, packed into scratch.
  ScratchBlocking(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth, Tensor<T>& scratch) {
    Eigen::Index kc = depth, mc = rows, nc = cols;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Eigen::Index{1});
    this->m_kc = kc;
    this->m_mc = mc;
    this->m_nc = nc;
    // Eigen reads its packed panels with aligned loads, which fault on SSE builds when a panel is
    // not 16-byte aligned: start block B on a 64-byte boundary after block A (the scratch
    // itself is 64-byte aligned), and keep a margin of 64 elements, as Eigen may read one packet
    // past a panel.
    const std::int64_t size_a = (kc * mc + 15) / 16 * 16, size_b = kc * nc;
    const std::int64_t need = size_a + 64 + size_b + 64;
    if (!scratch.defined() || scratch.numel() < need) scratch = Tensor<T>(Shape{need});
    this->m_blockA = scratch.data();
    this->m_blockB = scratch.data() + size_a + 64;
  }
};

template <class T>
Tensor<T>& gemm_scratch() {
  thread_local Tensor<T> scratch;
  return scratch;
}

/// One thread's product on a band: C[m x n] (+)= alpha op(A) op(B), all row-major.
template <class T>
void gemm_serial(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* A,
                 std::int64_t lda, const T* B, std::int64_t ldb, T* C, std::int64_t ldc) {
  using Eigen::ColMajor;
  using Eigen::RowMajor;
  using Eigen::internal::general_matrix_matrix_product;
  // The row-major product is run as the column-major product C^T = op(B)^T op(A)^T.
  ScratchBlocking<T> blocking(n, m, k, gemm_scratch<T>());
  if (!ta && !tb)
    general_matrix_matrix_product<Eigen::Index, T, RowMajor, false, T, RowMajor, false, RowMajor, 1>::run(
        m, n, k, A, lda, B, ldb, C, 1, ldc, alpha, blocking, nullptr);
  else if (!ta && tb)
    general_matrix_matrix_product<Eigen::Index, T, RowMajor, false, T, ColMajor, false, RowMajor, 1>::run(
        m, n, k, A, lda, B, ldb, C, 1, ldc, alpha, blocking, nullptr);
  else if (ta && !tb)
    general_matrix_matrix_product<Eigen::Index, T, ColMajor, false, T, RowMajor, false, RowMajor, 1>::run(
        m, n, k, A, lda, B, ldb, C, 1, ldc, alpha, blocking, nullptr);
  else
    general_matrix_matrix_product<Eigen::Index, T, ColMajor, false, T, ColMajor, false, RowMajor, 1>::run(
        m, n, k, A, lda, B, ldb, C, 1, ldc, alpha, blocking, nullptr);
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

}  // namespace detail

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
  parallel_for(bands, kParallelGrain, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t lo = (extent * b / bands) / 16 * 16;
      const std::int64_t hi = b + 1 == bands ? extent : (extent * (b + 1) / bands) / 16 * 16;
      if (hi <= lo) continue;
      // Each thread applies beta to its own band just before accumulating onto it: the band is
      // then still in cache, and the pass over C is split across threads.
      if (split_rows) {
        const T* Ab = ta ? A + lo : A + lo * lda;
        detail::scale_block(hi - lo, n, beta, C + lo * ldc, ldc);
        detail::gemm_serial(ta, tb, hi - lo, n, k, alpha, Ab, lda, B, ldb, C + lo * ldc, ldc);
      } else {
        const T* Bb = tb ? B + lo * ldb : B + lo;
        detail::scale_block(m, hi - lo, beta, C + lo, ldc);
        detail::gemm_serial(ta, tb, m, hi - lo, k, alpha, A, lda, Bb, ldb, C + lo, ldc);
      }
    }
  });
}

}  // namespace genmod::kernels
