#pragma once
/// \file conv2d_gather.hpp
/// Implicit im2col: the column matrix of a convolution, gathered panel by panel straight from the
/// images into the register tile's B panels (microkernel.hpp), never stored whole.
///
/// The explicit path copies every input element three or four times before the FMAs see it: the
/// zero-padded phase image, the column matrix (K x pixels), then the GEMM's packed panel. For the
/// small strided images here (14 x 14 -> 7 x 7) those copies took a third of a convolution. A
/// column of the matrix is one output pixel: which input element a row (channel c, tap t) reads
/// there is the pixel's offset plus the tap's, so one register of 16 columns is a masked gather
/// whose lanes outside the image (the padding) are masked off and read as zero.
///
///   forward       B = cols (K x pixels):   a panel is 16-pixel registers; per row (c, t) one
///                 gather per register at the channel, indices = pixel offsets + tap offset
///   weight grad   B = cols^T (pixels x K): a panel is 16-row registers; per pixel one gather per
///                 register, indices = row offsets + pixel offset
///
/// Available where the target has AVX-512 gathers, for float (the training type); elsewhere, and
/// for double, the explicit path in conv2d.hpp runs.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "genmod/kernels/conv2d_geometry.hpp"
#include "genmod/kernels/microkernel.hpp"

namespace genmod::kernels::detail {

template <class T>
inline constexpr bool kGatherColumns = false;
#if defined(__AVX512F__)
template <>
inline constexpr bool kGatherColumns<float> = tile::Tile<float>::width == 16 && tile::Tile<float>::vectors == 3;
#endif

/// Whether the gathered path serves geometry g with `images` images per product. It pays where
/// the explicit path copies most: strided convolutions (their phase split and short rows) with a
/// column matrix of many rows; with few rows (a one-channel input) a gather per 16 elements costs
/// more than the copies, and a stride-1 image's im2col moves whole rows. The offsets of a group
/// must also fit the gather's 32-bit indices.
template <class T>
bool gather_columns(const Conv2dGeometry& g, std::int64_t images) {
  if constexpr (!kGatherColumns<T>) {
    return false;
  } else {
    const double extent = static_cast<double>(images) * static_cast<double>(g.cin * g.h * g.w);
    return (g.stride_h > 1 || g.stride_w > 1) && g.k() >= 64 && extent < 1e9;
  }
}

/// Input offset of kept tap t relative to an output pixel's origin (oy * sh, ox * sw), and whether
/// the tap's row and column are inside the image there.
struct TapReach {
  std::int64_t dy, dx;  ///< ky * dh - pad_h, kx * dw - pad_w
  bool row_inside(const Conv2dGeometry& g, std::int64_t oy) const { return in(oy * g.stride_h + dy, g.h); }
  bool col_inside(const Conv2dGeometry& g, std::int64_t ox) const { return in(ox * g.stride_w + dx, g.w); }
  std::int64_t offset(const Conv2dGeometry& g) const { return dy * g.w + dx; }

 private:
  static bool in(std::int64_t v, std::int64_t n) { return v >= 0 && v < n; }
};
inline TapReach tap_reach(const Conv2dGeometry& g, std::int64_t t) {
  const std::int64_t tap = g.tap(t);
  return {(tap / g.kw) * g.dil_h - g.pad_h, (tap % g.kw) * g.dil_w - g.pad_w};
}

#if defined(__AVX512F__)

/// The forward's B panels for `images` images from x (their first): column j of the product is
/// image j / HW, output pixel j % HW; row k is channel k / T, kept tap k % T.
class ForwardColumns {
 public:
  static constexpr int NR = tile::Tile<float>::nr, NV = tile::Tile<float>::vectors;

  /// The tables depend on the geometry and the group size only: built once per thread for a run
  /// of groups of one convolution, not per group.
  ForwardColumns(const Conv2dGeometry& g, const float* x, std::int64_t images) : g_(g), x_(x) {
    thread_local Tables tables;
    if (!(tables.g == g) || tables.images != images) tables.build(g, images);
    offsets_ = tables.offsets.data();
    tap_offsets_ = tables.tap_offsets.data();
    masks_ = tables.masks.data();
  }

  /// Packs rows [k0, k0 + depth) x columns [j0, j0 + NR) (zero past the last column).
  void operator()(std::int64_t k0, std::int64_t depth, std::int64_t j0, std::int64_t, float* dst) const {
    const std::int64_t nt = g_.num_taps(), plane = g_.h * g_.w, panel = j0 / NR;
    __m512i base[NV];
    for (int v = 0; v < NV; ++v) base[v] = _mm512_loadu_si512(offsets_ + j0 + v * 16);
    std::int64_t c = k0 / nt, t = k0 % nt;
    for (std::int64_t kk = 0; kk < depth; ++kk) {
      const float* channel = x_ + c * plane;
      const __m512i shift = _mm512_set1_epi32(tap_offsets_[t]);
      const std::uint16_t* m = masks_ + (panel * nt + t) * NV;
      for (int v = 0; v < NV; ++v) {
        const __m512 r =
            _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m[v], _mm512_add_epi32(base[v], shift), channel, 4);
        _mm512_store_ps(dst + kk * NR + v * 16, r);
      }
      if (++t == nt) t = 0, ++c;
    }
  }

 private:
  struct Tables {
    Conv2dGeometry g;
    std::int64_t images = 0;
    std::vector<std::int32_t> offsets, tap_offsets;  // per column; per kept tap
    std::vector<std::uint16_t> masks;                // per panel, tap and register

    void build(const Conv2dGeometry& geometry, std::int64_t group) {
      g = geometry;
      images = group;
      const std::int64_t hw = g.hw_out(), n = images * hw, panels = (n + NR - 1) / NR, nt = g.num_taps();
      const std::int64_t in_size = g.cin * g.h * g.w;
      offsets.assign(static_cast<std::size_t>(panels * NR), 0);
      masks.assign(static_cast<std::size_t>(panels * nt * NV), 0);
      tap_offsets.resize(static_cast<std::size_t>(nt));
      for (std::int64_t t = 0; t < nt; ++t)
        tap_offsets[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(tap_reach(g, t).offset(g));
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t img = j / hw, p = j % hw, oy = p / g.wo, ox = p % g.wo;
        offsets[static_cast<std::size_t>(j)] =
            static_cast<std::int32_t>(img * in_size + oy * g.stride_h * g.w + ox * g.stride_w);
        const std::int64_t panel = j / NR, v = (j % NR) / 16, lane = j % 16;
        for (std::int64_t t = 0; t < nt; ++t) {
          const TapReach r = tap_reach(g, t);
          if (r.row_inside(g, oy) && r.col_inside(g, ox))
            masks[static_cast<std::size_t>((panel * nt + t) * NV + v)] |= static_cast<std::uint16_t>(1u << lane);
        }
      }
    }
  };

  const Conv2dGeometry& g_;
  const float* x_;
  const std::int32_t* offsets_;
  const std::int32_t* tap_offsets_;
  const std::uint16_t* masks_;
};

/// The weight gradient's B panels, cols^T, for `images` images from x: row (depth) p of the
/// product is image p / HW, output pixel p % HW; column k is channel k / T, kept tap k % T.
class WeightGradColumns {
 public:
  static constexpr int NR = tile::Tile<float>::nr, NV = tile::Tile<float>::vectors;

  WeightGradColumns(const Conv2dGeometry& g, const float* x) : g_(g), x_(x) {
    thread_local Tables tables;
    if (!(tables.g == g) || !tables.built) tables.build(g);
    offsets_ = tables.offsets.data();
    row_masks_ = tables.rows.data();
    col_masks_ = tables.cols.data();
  }

  /// Packs pixels [p0, p0 + depth) x columns [j0, j0 + NR) (zero past the last column).
  void operator()(std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t, float* dst) const {
    const std::int64_t hw = g_.hw_out(), in_size = g_.cin * g_.h * g_.w, panel = j0 / NR;
    __m512i rows[NV];
    for (int v = 0; v < NV; ++v) rows[v] = _mm512_loadu_si512(offsets_ + j0 + v * 16);
    std::int64_t img = p0 / hw, oy = (p0 % hw) / g_.wo, ox = (p0 % hw) % g_.wo;
    for (std::int64_t pp = 0; pp < depth; ++pp) {
      const __m512i shift =
          _mm512_set1_epi32(static_cast<std::int32_t>(img * in_size + oy * g_.stride_h * g_.w + ox * g_.stride_w));
      const std::uint16_t* rm = row_masks_ + (panel * g_.ho + oy) * NV;
      const std::uint16_t* cm = col_masks_ + (panel * g_.wo + ox) * NV;
      for (int v = 0; v < NV; ++v) {
        const auto mask = static_cast<__mmask16>(rm[v] & cm[v]);
        const __m512 r = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, _mm512_add_epi32(rows[v], shift), x_, 4);
        _mm512_store_ps(dst + pp * NR + v * 16, r);
      }
      if (++ox == g_.wo) {
        ox = 0;
        if (++oy == g_.ho) oy = 0, ++img;
      }
    }
  }

 private:
  struct Tables {
    Conv2dGeometry g;
    bool built = false;
    std::vector<std::int32_t> offsets;      // per column of K: channel and tap offset
    std::vector<std::uint16_t> rows, cols;  // per panel, output row (column) and register: taps inside

    void build(const Conv2dGeometry& geometry) {
      g = geometry;
      built = true;
      const std::int64_t K = g.k(), panels = (K + NR - 1) / NR, nt = g.num_taps(), plane = g.h * g.w;
      offsets.assign(static_cast<std::size_t>(panels * NR), 0);
      rows.assign(static_cast<std::size_t>(panels * g.ho * NV), 0);
      cols.assign(static_cast<std::size_t>(panels * g.wo * NV), 0);
      for (std::int64_t k = 0; k < K; ++k) {
        const TapReach r = tap_reach(g, k % nt);
        offsets[static_cast<std::size_t>(k)] = static_cast<std::int32_t>((k / nt) * plane + r.offset(g));
        const std::int64_t panel = k / NR, v = (k % NR) / 16;
        const auto bit = static_cast<std::uint16_t>(1u << (k % 16));
        for (std::int64_t oy = 0; oy < g.ho; ++oy)
          if (r.row_inside(g, oy)) rows[static_cast<std::size_t>((panel * g.ho + oy) * NV + v)] |= bit;
        for (std::int64_t ox = 0; ox < g.wo; ++ox)
          if (r.col_inside(g, ox)) cols[static_cast<std::size_t>((panel * g.wo + ox) * NV + v)] |= bit;
      }
    }
  };

  const Conv2dGeometry& g_;
  const float* x_;
  const std::int32_t* offsets_;
  const std::uint16_t* row_masks_;
  const std::uint16_t* col_masks_;
};

#endif  // __AVX512F__

}  // namespace genmod::kernels::detail
