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

/// op(A) [m x k] of C = op(A) op(B), packed once into Eigen's GEBP panel layout for many
/// products with the same A and different B: a convolution multiplies its weight by the column
/// matrix of every group of images, and plain gemm() would re-pack the weight for each group.
/// (In Eigen's column-major view of our row-major C, C^T = op(B)^T op(A)^T, A is the right-hand
/// side: its panels are nr columns wide, packed per depth block of kc.)
template <class T>
class PackedA {
 public:
  PackedA() = default;
  PackedA(bool ta, std::int64_t m, std::int64_t k, const T* A, std::int64_t lda) : m_(m), k_(k) {
    Eigen::Index kc = k, mc = 256, nc = m;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Eigen::Index{1});
    kc_ = std::max<std::int64_t>(1, kc);
    block_stride_ = (kc_ * m + 15) / 16 * 16;  // each depth block starts 64-byte aligned
    const std::int64_t blocks = (k + kc_ - 1) / kc_;
    panels_ = Tensor<T>(Shape{blocks * block_stride_ + 64});  // Eigen may read a packet past a panel
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t k2 = b * kc_, kk = std::min(kc_, k - k2);
      if (ta)  // A stored [k x m]: op(A)^T is k x m row-major
        pack<Eigen::RowMajor>(A, lda, k2, kk, panels_.data() + b * block_stride_);
      else  // A stored [m x k]: op(A)^T is k x m column-major
        pack<Eigen::ColMajor>(A, lda, k2, kk, panels_.data() + b * block_stride_);
    }
  }

  std::int64_t rows() const noexcept { return m_; }
  std::int64_t depth() const noexcept { return k_; }
  std::int64_t depth_block() const noexcept { return kc_; }
  /// The packed panels of depth block b (depths b * depth_block() ..).
  const T* block(std::int64_t b) const noexcept { return panels_.data() + b * block_stride_; }

 private:
  template <int Order>
  void pack(const T* A, std::int64_t lda, std::int64_t k2, std::int64_t kk, T* dst) {
    using Mapper = Eigen::internal::const_blas_data_mapper<T, Eigen::Index, Order>;
    using Traits = Eigen::internal::gebp_traits<T, T>;
    Eigen::internal::gemm_pack_rhs<T, Eigen::Index, Mapper, Traits::nr, Order> pack_rhs;
    pack_rhs(dst, Mapper(A, lda).getSubMapper(k2, 0), kk, m_);
  }

  std::int64_t m_ = 0, k_ = 0, kc_ = 1, block_stride_ = 0;
  Tensor<T> panels_;
};

namespace detail {

/// One thread's C[m x n] += alpha op(A) op(B) with A packed; B row-major (n x k when tb).
template <class T>
void gemm_packed_serial(const PackedA<T>& a, bool tb, std::int64_t n, T alpha, const T* B, std::int64_t ldb, T* C,
                        std::int64_t ldc) {
  using Traits = Eigen::internal::gebp_traits<T, T>;
  using ResMapper = Eigen::internal::blas_data_mapper<T, Eigen::Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
  const std::int64_t m = a.rows(), k = a.depth(), kc = a.depth_block();
  Eigen::Index kc_e = kc, mc_e = n, nc_e = m;
  Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc_e, mc_e, nc_e, Eigen::Index{1});
  const std::int64_t mc = std::max<std::int64_t>(1, std::min<std::int64_t>(n, mc_e));
  Tensor<T>& scratch = gemm_scratch<T>();
  const std::int64_t need = kc * mc + 64;
  if (!scratch.defined() || scratch.numel() < need) scratch = Tensor<T>(Shape{need});
  T* blockA = scratch.data();
  Eigen::internal::gebp_kernel<T, T, Eigen::Index, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
  const ResMapper res(C, ldc);
  auto run = [&]<int Order>() {
    using LhsMapper = Eigen::internal::const_blas_data_mapper<T, Eigen::Index, Order>;
    Eigen::internal::gemm_pack_lhs<T, Eigen::Index, LhsMapper, Traits::mr, Traits::LhsProgress,
                                   typename Traits::LhsPacket4Packing, Order>
        pack_lhs;
    const LhsMapper lhs(B, ldb);
    for (std::int64_t i2 = 0; i2 < n; i2 += mc) {
      const std::int64_t rows = std::min(mc, n - i2);
      for (std::int64_t b = 0, k2 = 0; k2 < k; ++b, k2 += kc) {
        const std::int64_t depth = std::min(kc, k - k2);
        pack_lhs(blockA, lhs.getSubMapper(i2, k2), depth, rows);
        gebp(res.getSubMapper(i2, 0), blockA, a.block(b), rows, depth, m, alpha);
      }
    }
  };
  // op(B)^T [n x k]: column-major for B stored [k x n], row-major for B stored [n x k] (tb).
  if (tb)
    run.template operator()<Eigen::RowMajor>();
  else
    run.template operator()<Eigen::ColMajor>();
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
