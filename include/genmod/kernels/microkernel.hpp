#pragma once
/// \file microkernel.hpp
/// The register-tile matrix product under gemm() and gemm_packed(): C[m x n] += alpha A B with A
/// and B copied ("packed") into panels that the tile reads at unit stride.
///
/// Why not Eigen's GEBP kernel, which these products ran on before: in Eigen 3.4 its AVX-512 tile
/// is 48 x 4, 12 accumulators of the 32 registers, and it measured about 75 % of the FMA peak on
/// the convolution and linear shapes here. The tile below keeps 24 accumulators (8 rows of C by 3
/// registers of columns) and reaches the mid 80s. With 16 registers (SSE, AVX2) it is 6 x 2.
///
/// Layout (all row-major, as C):
///   A panel  mr rows of A, depth-major: a[kk * mr + r] = A(i0 + r, k0 + kk), zero past A's rows
///   B panel  nr columns of B, depth-major: b[kk * nr + j] = B(k0 + kk, j0 + j), zero past B's columns
/// Blocking: one B panel (depth_block x nr, ~32 KB) stays in L1 while every A panel of the block
/// (rows x depth_block, in L2) streams past it; so each element of B is packed once and each of A
/// once per product.

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"

// The register transposes below inline AVX-512 shuffles that GCC 12 warns about inside its own
// header (see GENMOD_GCC_BUG_105593): silenced for the code of this file, as in simd.hpp.
GENMOD_GCC_BUG_105593_BEGIN

namespace genmod::kernels::tile {

/// The register tile for T on this target: mr rows of C by `vectors` SIMD registers of columns.
template <class T>
struct Tile {
#if defined(__AVX512F__) || defined(__aarch64__)
  ///@{
  /// mr rows of C by `vectors` registers of columns; this target has 32 vector registers.
  static constexpr int mr = 8, vectors = 3;  // 24 accumulators of 32 registers
  ///@}
#else
  ///@{
  /// mr rows of C by `vectors` registers of columns; this target has 16 vector registers.
  static constexpr int mr = 6, vectors = 2;  // 12 accumulators of 16 registers
  ///@}
#endif
  /// Lanes of one register of T.
  static constexpr int width = static_cast<int>(xsimd::batch<T>::size);
  /// Columns of C per tile: nr = vectors * width.
  static constexpr int nr = vectors * width;
  /// Depth of a block: the B panel (depth_block x nr) fits in half of a 48 KB L1.
  static constexpr std::int64_t depth_block = std::max<std::int64_t>(32, (24 * 1024 / (nr * sizeof(T))) / 8 * 8);
  /// Rows of A per block: the packed A block (rows x depth_block) stays within about 1 MB of L2.
  static constexpr std::int64_t row_block = std::max<std::int64_t>(mr, (1 << 20) / (depth_block * sizeof(T)) / mr * mr);
};

/// C[rows x cols] += alpha * (A panel)(B panel) over `depth` with NV of the tile's registers of
/// columns (NV < vectors for a narrow last panel, so its empty registers cost nothing); rows <= mr,
/// cols <= NV * width. The panels hold zeros beyond rows and cols: only the store needs to know.
template <class T, int NV>
inline void multiply_tile(std::int64_t depth, const T* __restrict a, const T* __restrict b, T alpha, T* c,
                          std::int64_t ldc, int rows, int cols) {
  using V = xsimd::batch<T>;
  using S = Tile<T>;
  constexpr int MR = S::mr, W = S::width, NR = S::nr;
  V acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V(T(0));
      // Unrolled so the loop's own integer work does not take issue slots from the FMA ports.
#pragma GCC unroll 4
  for (std::int64_t kk = 0; kk < depth; ++kk) {
    const T* bk = b + kk * NR;
    const T* ak = a + kk * MR;
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = V::load_aligned(bk + v * W);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const V ai(ak[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(ai, bv[v], acc[i][v]);
    }
  }
  const V va(alpha);
  const int full = cols / W;  // whole registers of columns; the rest, if any, lane by lane
  for (int i = 0; i < rows; ++i) {
    T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (v < full) {
        xsimd::fma(va, acc[i][v], V::load_unaligned(ci + v * W)).store_unaligned(ci + v * W);
      } else if (v == full && cols > full * W) {
        alignas(64) T lanes[W];
        acc[i][v].store_aligned(lanes);
        for (int j = 0; j < cols - full * W; ++j) ci[full * W + j] += alpha * lanes[j];
      }
    }
  }
}

/// multiply_tile with as many registers of columns as `cols` needs.
template <class T>
inline void multiply_any_tile(std::int64_t depth, const T* a, const T* b, T alpha, T* c, std::int64_t ldc, int rows,
                              int cols) {
  constexpr int W = Tile<T>::width, NV = Tile<T>::vectors;
  static_assert(NV == 2 || NV == 3);
  if (cols > (NV - 1) * W)
    multiply_tile<T, NV>(depth, a, b, alpha, c, ldc, rows, cols);
  else if (NV == 3 && cols > W)
    multiply_tile<T, (NV == 3 ? 2 : 1)>(depth, a, b, alpha, c, ldc, rows, cols);
  else
    multiply_tile<T, 1>(depth, a, b, alpha, c, ldc, rows, cols);
}

#if defined(__AVX512F__)
/// The 16 x 16 transpose of r[0..15] in registers (r[c] becomes column c).
inline void transpose_16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 4; ++c) {
      t[8 * i + c] = _mm512_shuffle_f32x4(r[8 * i + c], r[8 * i + 4 + c], 0x88);
      t[8 * i + 4 + c] = _mm512_shuffle_f32x4(r[8 * i + c], r[8 * i + 4 + c], 0xDD);
    }
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
  }
}
#endif

/// dst[kk * ldd + r] = src[r * lds + kk] for r < rows, kk < depth: the transposing copy both
/// packers need when the operand runs along the depth. Rows of 16 or 8 floats go through
/// register transposes of 16 depths at a time; each source row is then read a cache line at a
/// time (reading one element per row per depth instead thrashes L1 when the rows are a power of
/// two apart, as a 1024-wide weight's are).
template <class T>
void transpose_rows(const T* src, std::int64_t lds, int rows, std::int64_t depth, T* dst, std::int64_t ldd) {
  std::int64_t kk = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (rows == 16 || rows == 8) {
      for (; kk + 16 <= depth; kk += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_loadu_ps(src + i * lds + kk) : _mm512_setzero_ps();
        transpose_16x16(r);
        if (rows == 16)
          for (int c = 0; c < 16; ++c) _mm512_storeu_ps(dst + (kk + c) * ldd, r[c]);
        else
          for (int c = 0; c < 16; ++c) _mm256_storeu_ps(dst + (kk + c) * ldd, _mm512_castps512_ps256(r[c]));
      }
    }
  }
#endif
  for (int r = 0; r < rows; ++r)
    for (std::int64_t k = kk; k < depth; ++k) dst[k * ldd + r] = src[r * lds + k];
}

/// Packs rows [i0, i0 + rows) x depths [k0, k0 + depth) of op(A) into A panels at dst (panel p at
/// dst + p * depth * mr). op(A) = A (m x k, row stride lda) or, with ta, A^T (A stored k x m).
template <class T>
void pack_a(bool ta, const T* A, std::int64_t lda, std::int64_t i0, std::int64_t rows, std::int64_t k0,
            std::int64_t depth, T* dst) {
  constexpr int MR = Tile<T>::mr;
  for (std::int64_t p = 0; p * MR < rows; ++p, dst += depth * MR) {
    const std::int64_t r_end = std::min<std::int64_t>(MR, rows - p * MR), i = i0 + p * MR;
    if (ta) {  // row kk of the panel is MR consecutive elements of A's row k0 + kk
      for (std::int64_t kk = 0; kk < depth; ++kk) {
        const T* src = A + (k0 + kk) * lda + i;
        T* d = dst + kk * MR;
        for (std::int64_t r = 0; r < r_end; ++r) d[r] = src[r];
        for (std::int64_t r = r_end; r < MR; ++r) d[r] = T(0);
      }
    } else {  // the panel's rows are runs of A's rows: a transposing copy
      transpose_rows(A + i * lda + k0, lda, static_cast<int>(r_end), depth, dst, MR);
      for (std::int64_t r = r_end; r < MR; ++r)
        for (std::int64_t kk = 0; kk < depth; ++kk) dst[kk * MR + r] = T(0);
    }
  }
}

/// Packs columns [j0, j0 + cols) x depths [k0, k0 + depth) of op(B) into one B panel at dst.
/// op(B) = B (k x n, row stride ldb) or, with tb, B^T (B stored n x k).
template <class T>
void pack_b(bool tb, const T* B, std::int64_t ldb, std::int64_t k0, std::int64_t depth, std::int64_t j0,
            std::int64_t cols, T* dst) {
  using V = xsimd::batch<T>;
  constexpr int NR = Tile<T>::nr, W = Tile<T>::width;
  if (tb) {
    // Column j of the panel is row j0 + j of B: transposed a register of columns at a time.
    for (std::int64_t j = 0; j < cols; j += W)
      transpose_rows(B + (j0 + j) * ldb + k0, ldb, static_cast<int>(std::min<std::int64_t>(W, cols - j)), depth,
                     dst + j, NR);
    if (cols < NR)
      for (std::int64_t kk = 0; kk < depth; ++kk) std::fill(dst + kk * NR + cols, dst + (kk + 1) * NR, T(0));
    return;
  }
  for (std::int64_t kk = 0; kk < depth; ++kk) {
    const T* src = B + (k0 + kk) * ldb + j0;
    T* d = dst + kk * NR;
    if (cols == NR) {
#pragma GCC unroll 4
      for (int v = 0; v < NR / W; ++v) V::load_unaligned(src + v * W).store_aligned(d + v * W);
    } else {
      std::copy(src, src + cols, d);
      std::fill(d + cols, d + NR, T(0));
    }
  }
}

/// Per-thread scratch for packed panels (from the caching pool; grown, never shrunk): slot 0 holds
/// the B panel, slot 1 the A panels.
template <class T, int Slot>
T* panel_scratch(std::int64_t elements) {
  thread_local Tensor<T> scratch;
  if (!scratch.defined() || scratch.numel() < elements) scratch = Tensor<T>(Shape{elements});
  return scratch.data();
}

/// One thread's C[m x n] += alpha op(A) op(B), the operands supplied through two packers:
///   a_panels(k0, depth, i0, rows) -> const T*   the A panels of that block (packed or pre-packed)
///   b_panel(k0, depth, j0, cols, T* dst)        packs one B panel into dst
/// so callers can pack from anything: a matrix, a pre-packed weight, an image.
template <class T, class APanels, class BPanel>
void multiply_blocked(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, APanels&& a_panels, BPanel&& b_panel,
                      T* C, std::int64_t ldc) {
  using S = Tile<T>;
  constexpr int MR = S::mr, NR = S::nr;
  constexpr std::int64_t KC = S::depth_block, MC = S::row_block;
  T* bbuf = panel_scratch<T, 0>(KC * NR);
  for (std::int64_t k0 = 0; k0 < k; k0 += KC) {
    const std::int64_t depth = std::min(KC, k - k0);
    for (std::int64_t i0 = 0; i0 < m; i0 += MC) {
      const std::int64_t rows = std::min(MC, m - i0);
      const T* ap = a_panels(k0, depth, i0, rows);
      for (std::int64_t j0 = 0; j0 < n; j0 += NR) {
        const int cols = static_cast<int>(std::min<std::int64_t>(NR, n - j0));
        b_panel(k0, depth, j0, cols, bbuf);
        for (std::int64_t p = 0; p * MR < rows; ++p)
          multiply_any_tile(depth, ap + p * depth * MR, bbuf, alpha, C + (i0 + p * MR) * ldc + j0, ldc,
                            static_cast<int>(std::min<std::int64_t>(MR, rows - p * MR)), cols);
      }
    }
  }
}

}  // namespace genmod::kernels::tile

GENMOD_GCC_BUG_105593_END
