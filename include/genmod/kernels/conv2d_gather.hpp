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
///   input grad    by stride phases (InputGradPhase): each phase of dX is a stride-1 product of
///                 the output gradient, its columns gathered the same way (and, as they run
///                 consecutively within an image, mostly by masked loads), written once: no
///                 column matrix and no scatter-add
///
/// Available where the target has AVX-512 gathers, for float (the training type); elsewhere, and
/// for double, the explicit path in conv2d.hpp runs (the double gradient checks therefore test the
/// explicit path, and tests/kernels/conv2d_test.cpp holds the float path to it).

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
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

/// Whether the forward gathers its columns for geometry g with `images` images per product. It
/// pays where the explicit path copies most: strided convolutions (their phase split and short
/// rows), and stride-1 convolutions whose output is as wide as their input ("same" padding),
/// where a register of columns is one run of the image and is loaded, not gathered. Either needs a
/// column matrix of many rows: with few (a one-channel input) a gather per 16 elements costs more
/// than the copies. The offsets of a group must also fit the gather's 32-bit indices.
template <class T>
bool gather_columns(const Conv2dGeometry& g, std::int64_t images) {
  if constexpr (!kGatherColumns<T>) {
    return false;
  } else {
    const double extent = static_cast<double>(images) * static_cast<double>(g.cin * g.h * g.w);
    const bool strided = g.stride_h > 1 || g.stride_w > 1;
    return (strided || g.wo == g.w) && !g.pointwise() && g.k() >= 64 && extent < 1e9;
  }
}

/// Whether the weight gradient gathers cols^T: strided convolutions only (a register there spans
/// 16 (channel, tap) rows, never a run, and a stride-1 im2col is cheap).
template <class T>
bool gather_weight_grad_columns(const Conv2dGeometry& g, std::int64_t images) {
  return (g.stride_h > 1 || g.stride_w > 1) && gather_columns<T>(g, images);
}

/// Whether the weight gradient loads its cols^T panels from a channel-last phase stack
/// (ChannelLastColumns) rather than gathering them: where the columns are ordered tap-major
/// (t * Cin + c), a register of 16 is 16 consecutive channels at one tap and pixel, one load. Needs
/// whole registers of channels, and the same reach as the gathered paths.
template <class T>
bool weight_grad_channel_last(const Conv2dGeometry& g) {
  if constexpr (!kGatherColumns<T>) {
    return false;
  } else {
    const bool strided = g.stride_h > 1 || g.stride_w > 1;
    return (strided || g.wo == g.w) && !g.pointwise() && g.cin % 16 == 0 && g.k() >= 64;
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

/// Per-thread tables keyed by geometry and group size, built by build(tables) on first use. A
/// training step alternates between its layers' convolutions, so one entry would be rebuilt (and
/// its buffers reallocated) on every call; a few dozen cover any network here, and past that the
/// oldest entry is reused.
template <class Tables, class Build>
const Tables& cached_tables(const Conv2dGeometry& g, std::int64_t images, Build&& build) {
  struct Entry {
    Conv2dGeometry g;
    std::int64_t images = 0;
    Tables tables;
  };
  constexpr std::size_t kEntries = 32;
  thread_local std::vector<std::unique_ptr<Entry>> entries;
  thread_local std::size_t oldest = 0;
  for (const auto& e : entries)
    if (e->images == images && e->g == g) return e->tables;
  if (entries.size() < kEntries) entries.push_back(std::make_unique<Entry>());
  Entry& e = entries.size() < kEntries || oldest >= kEntries ? *entries.back() : *entries[oldest];
  if (entries.size() == kEntries) oldest = (oldest + 1) % kEntries;
  e.g = g;
  e.images = images;
  build(e.tables);
  return e.tables;
}

/// Where the rows of a gathered column matrix read: row k is channel k / taps, tap k % taps of a
/// source image stack whose channels are `plane` elements apart; column j reads, at channel c and
/// tap t, src[c * plane + offsets[j] + tap_offsets[t]] where bit j % 16 of masks[(j / NR * taps
/// + t) * NV + (j % NR) / 16] is set, and zero where it is not.
struct ColumnTables {
  static constexpr int NR = tile::Tile<float>::nr, NV = tile::Tile<float>::vectors;
  std::int64_t plane = 0, taps = 0;
  std::vector<std::int32_t> offsets, tap_offsets;
  std::vector<std::uint16_t> masks;
  /// Per register of columns: its offsets are consecutive (a run of one image row, or of a whole
  /// image when the columns follow its layout), so a masked load replaces the gather.
  std::vector<std::uint8_t> contiguous;

  /// Sized for n columns (rounded up to whole panels, the rest masked off), all masks clear.
  void reset(std::int64_t n, std::int64_t channel_plane, std::int64_t tap_count) {
    plane = channel_plane;
    taps = tap_count;
    const std::int64_t panels = (n + NR - 1) / NR;
    offsets.assign(static_cast<std::size_t>(panels * NR), 0);
    masks.assign(static_cast<std::size_t>(panels * taps * NV), 0);
    tap_offsets.assign(static_cast<std::size_t>(taps), 0);
  }
  /// Marks the registers whose columns (up to n) have consecutive offsets; call once the offsets
  /// are set.
  void find_runs(std::int64_t n) {
    const std::int64_t registers = static_cast<std::int64_t>(offsets.size()) / 16;
    contiguous.assign(static_cast<std::size_t>(registers), 0);
    for (std::int64_t r = 0; r < registers; ++r) {
      bool run = true;
      for (std::int64_t l = 1; l < 16 && r * 16 + l < n; ++l)
        run = run && offsets[static_cast<std::size_t>(r * 16 + l)] == offsets[static_cast<std::size_t>(r * 16)] + l;
      contiguous[static_cast<std::size_t>(r)] = run ? 1 : 0;
    }
  }
  void keep(std::int64_t j, std::int64_t t) {
    masks[static_cast<std::size_t>(((j / NR) * taps + t) * NV + (j % NR) / 16)] |=
        static_cast<std::uint16_t>(1u << (j % 16));
  }
};

#if defined(__AVX512F__)
/// B panels gathered by ColumnTables from the image stack at src (see multiply_blocked).
class GatheredColumns {
 public:
  static constexpr int NR = ColumnTables::NR, NV = ColumnTables::NV;
  GatheredColumns(const ColumnTables& tables, const float* src) : t_(tables), src_(src) {}

  /// Packs rows [k0, k0 + depth) x columns [j0, j0 + NR) (zero past the last column).
  void operator()(std::int64_t k0, std::int64_t depth, std::int64_t j0, std::int64_t, float* dst) const {
    const std::int64_t nt = t_.taps, panel = j0 / NR;
    __m512i base[NV];
    bool run[NV];
    std::int64_t first[NV];
    for (int v = 0; v < NV; ++v) {
      base[v] = _mm512_loadu_si512(t_.offsets.data() + j0 + v * 16);
      run[v] = t_.contiguous[static_cast<std::size_t>(j0 / 16 + v)] != 0;
      first[v] = t_.offsets[static_cast<std::size_t>(j0 + v * 16)];
    }
    std::int64_t c = k0 / nt, t = k0 % nt;
    for (std::int64_t kk = 0; kk < depth; ++kk) {
      const float* channel = src_ + c * t_.plane;
      const __m512i shift = _mm512_set1_epi32(t_.tap_offsets[static_cast<std::size_t>(t)]);
      const std::uint16_t* m = t_.masks.data() + (panel * nt + t) * NV;
      for (int v = 0; v < NV; ++v) {
        // Masked-off lanes are neither read nor faulted on, whether loaded or gathered.
        const __m512 r =
            run[v] ? _mm512_maskz_loadu_ps(m[v], channel + first[v] + t_.tap_offsets[static_cast<std::size_t>(t)])
                   : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m[v], _mm512_add_epi32(base[v], shift), channel, 4);
        _mm512_store_ps(dst + kk * NR + v * 16, r);
      }
      if (++t == nt) t = 0, ++c;
    }
  }

 private:
  const ColumnTables& t_;
  const float* src_;
};

#endif  // __AVX512F__

/// The forward's column tables for groups of `images` images: column j is image j / HW, output
/// pixel j % HW; row k is input channel k / T, kept tap k % T. They depend on the geometry and
/// the group size only, so each thread builds them once for a run of groups, not per group.
inline const ColumnTables& forward_columns(const Conv2dGeometry& g, std::int64_t images) {
  return cached_tables<ColumnTables>(g, images, [&](ColumnTables& tables) {
    const std::int64_t hw = g.hw_out(), n = images * hw, nt = g.num_taps(), in_size = g.cin * g.h * g.w;
    tables.reset(n, g.h * g.w, nt);
    for (std::int64_t t = 0; t < nt; ++t)
      tables.tap_offsets[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(tap_reach(g, t).offset(g));
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t img = j / hw, p = j % hw, oy = p / g.wo, ox = p % g.wo;
      tables.offsets[static_cast<std::size_t>(j)] =
          static_cast<std::int32_t>(img * in_size + oy * g.stride_h * g.w + ox * g.stride_w);
      for (std::int64_t t = 0; t < nt; ++t) {
        const TapReach r = tap_reach(g, t);
        if (r.row_inside(g, oy) && r.col_inside(g, ox)) tables.keep(j, t);
      }
    }
    tables.find_runs(n);
  });
}

/// The input gradient of a strided convolution, one stride phase at a time. The input pixels
/// (iy, ix) with (iy + pad_h) % sh = ry and (ix + pad_w) % sw = rx are reached only by the taps
/// with ky dh % sh = ry and kx dw % sw = rx, each from output pixel (qy - (ky dh - ry) / sh,
/// qx - (kx dw - rx) / sw), qy = (iy + pad_h - ry) / sh: a stride-1 convolution of the output
/// gradient with those taps. So dX's phase is a product W_phase^T [Cin x Cout T'] times columns
/// gathered from G, each dX element written once: no column matrix and no scatter-add (col2im).
struct InputGradPhase {
  std::int64_t ry = 0, rx = 0;
  std::int64_t iy0 = 0, ix0 = 0, rows = 0, cols = 0;  ///< first input row / column, and counts
  std::vector<std::int64_t> taps;                     ///< kept-tap indices reaching this phase
  std::int64_t pixels() const { return rows * cols; }
};

/// The stride phases of g with their taps.
inline std::vector<InputGradPhase> input_grad_phases(const Conv2dGeometry& g) {
  std::vector<InputGradPhase> phases;
  for (std::int64_t ry = 0; ry < g.stride_h; ++ry)
    for (std::int64_t rx = 0; rx < g.stride_w; ++rx) {
      InputGradPhase p;
      p.ry = ry;
      p.rx = rx;
      p.iy0 = ((ry - g.pad_h) % g.stride_h + g.stride_h) % g.stride_h;
      p.ix0 = ((rx - g.pad_w) % g.stride_w + g.stride_w) % g.stride_w;
      p.rows = p.iy0 < g.h ? (g.h - 1 - p.iy0) / g.stride_h + 1 : 0;
      p.cols = p.ix0 < g.w ? (g.w - 1 - p.ix0) / g.stride_w + 1 : 0;
      for (std::int64_t t = 0; t < g.num_taps(); ++t) {
        const std::int64_t tap = g.tap(t), ky = tap / g.kw, kx = tap % g.kw;
        if ((ky * g.dil_h) % g.stride_h == ry && (kx * g.dil_w) % g.stride_w == rx) p.taps.push_back(t);
      }
      phases.push_back(std::move(p));
    }
  return phases;
}

/// Column tables of one phase for groups of `images` output-gradient images: column j is image
/// j / P, phase pixel j % P (row-major over the phase's rows and columns); row k is output
/// channel k / T', the phase's tap k % T'.
inline void input_grad_columns(const Conv2dGeometry& g, const InputGradPhase& p, std::int64_t images,
                               ColumnTables& tables) {
  const std::int64_t np = p.pixels(), n = images * np, nt = static_cast<std::int64_t>(p.taps.size());
  const std::int64_t out_size = g.cout * g.hw_out();
  // Output row and column of tap t relative to the phase pixel's (qy, qx).
  const auto shift = [&](std::int64_t t) {
    const std::int64_t tap = g.tap(p.taps[static_cast<std::size_t>(t)]);
    return std::pair<std::int64_t, std::int64_t>{-((tap / g.kw) * g.dil_h - p.ry) / g.stride_h,
                                                 -((tap % g.kw) * g.dil_w - p.rx) / g.stride_w};
  };
  tables.reset(n, g.hw_out(), nt);
  for (std::int64_t t = 0; t < nt; ++t) {
    const auto [dy, dx] = shift(t);
    tables.tap_offsets[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(dy * g.wo + dx);
  }
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t img = j / np, a = (j % np) / p.cols, b = (j % np) % p.cols;
    const std::int64_t qy = (p.iy0 + a * g.stride_h + g.pad_h - p.ry) / g.stride_h;
    const std::int64_t qx = (p.ix0 + b * g.stride_w + g.pad_w - p.rx) / g.stride_w;
    tables.offsets[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(img * out_size + qy * g.wo + qx);
    for (std::int64_t t = 0; t < nt; ++t) {
      const auto [dy, dx] = shift(t);
      if (qy + dy >= 0 && qy + dy < g.ho && qx + dx >= 0 && qx + dx < g.wo) tables.keep(j, t);
    }
  }
  tables.find_runs(n);
}

/// The phases of one geometry and their column tables for one group size (per thread, cached).
struct InputGradPlan {
  std::vector<InputGradPhase> phases;
  std::vector<ColumnTables> columns;

  static const InputGradPlan& of(const Conv2dGeometry& g, std::int64_t images) {
    return cached_tables<InputGradPlan>(g, images, [&](InputGradPlan& plan) {
      plan.phases = input_grad_phases(g);
      plan.columns.resize(plan.phases.size());
      for (std::size_t p = 0; p < plan.phases.size(); ++p)
        input_grad_columns(g, plan.phases[p], images, plan.columns[p]);
    });
  }
};

/// Whether dX of geometry g goes by stride phases: strided (or stride 1 with "same" width, one
/// phase whose columns are runs of G), a product of some depth (Cout x the taps of a phase) and
/// enough input channels to fill the tile's rows; offsets within 32 bits.
template <class T>
bool gather_input_grad(const Conv2dGeometry& g, std::int64_t images) {
  if constexpr (!kGatherColumns<T>) {
    return false;
  } else {
    const double extent = static_cast<double>(images) * static_cast<double>(g.cout * g.hw_out());
    const std::int64_t phase_depth = g.cout * g.num_taps() / (g.stride_h * g.stride_w);
    const bool strided = g.stride_h > 1 || g.stride_w > 1;
    return (strided || g.wo == g.w) && !g.pointwise() && g.cin >= tile::Tile<T>::mr && phase_depth >= 64 &&
           extent < 1e9;
  }
}

#if defined(__AVX512F__)

/// The weight gradient's B panels, cols^T, for `images` images from x: row (depth) p of the
/// product is image p / HW, output pixel p % HW; column k is channel k / T, kept tap k % T.
class WeightGradColumns {
 public:
  static constexpr int NR = tile::Tile<float>::nr, NV = tile::Tile<float>::vectors;

  WeightGradColumns(const Conv2dGeometry& g, const float* x) : g_(g), x_(x) {
    const Tables& tables = cached_tables<Tables>(g, 0, [&](Tables& t) { t.build(g); });
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
    std::vector<std::int32_t> offsets;      // per column of K: channel and tap offset
    std::vector<std::uint16_t> rows, cols;  // per panel, output row (column) and register: taps inside

    void build(const Conv2dGeometry& g) {
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

/// The weight gradient's B panels, cols^T with tap-major columns (k = t * Cin + c), loaded from
/// a channel-last phase stack (conv2d.hpp, channel_last_phases) of `images` images: row (depth)
/// p is image p / HW, output pixel p % HW.
class ChannelLastColumns {
 public:
  static constexpr int NR = tile::Tile<float>::nr, NV = tile::Tile<float>::vectors;

  ChannelLastColumns(const Conv2dGeometry& g, const float* stack, std::int64_t images)
      : g_(g), stack_(stack), images_(images) {
    const std::int64_t sh = g.stride_h, sw = g.stride_w;
    hq_ = (g.h + 2 * g.pad_h + sh - 1) / sh;
    wq_ = (g.w + 2 * g.pad_w + sw - 1) / sw;
  }

  /// Packs pixels [p0, p0 + depth) x columns [j0, j0 + NR) (zero past the last column).
  void operator()(std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t cols, float* dst) const {
    const std::int64_t hw = g_.hw_out(), plane = hq_ * wq_, cin = g_.cin;
    // Per register: its tap's phase plane and row / column shift, and its first channel.
    std::int64_t base[NV];
    bool live[NV];
    for (int v = 0; v < NV; ++v) {
      const std::int64_t k = j0 + v * 16;
      live[v] = v * 16 < cols;
      if (!live[v]) continue;
      const std::int64_t tap = g_.tap(k / cin), dy = (tap / g_.kw) * g_.dil_h, dx = (tap % g_.kw) * g_.dil_w;
      const std::int64_t phase = (dy % g_.stride_h) * g_.stride_w + dx % g_.stride_w;
      base[v] = (phase * images_ * plane + (dy / g_.stride_h) * wq_ + dx / g_.stride_w) * cin + k % cin;
    }
    std::int64_t img = p0 / hw, oy = (p0 % hw) / g_.wo, ox = (p0 % hw) % g_.wo;
    for (std::int64_t pp = 0; pp < depth; ++pp) {
      const std::int64_t pixel = ((img * plane) + oy * wq_ + ox) * cin;
      for (int v = 0; v < NV; ++v)
        _mm512_store_ps(dst + pp * NR + v * 16,
                        live[v] ? _mm512_loadu_ps(stack_ + base[v] + pixel) : _mm512_setzero_ps());
      if (++ox == g_.wo) {
        ox = 0;
        if (++oy == g_.ho) oy = 0, ++img;
      }
    }
  }

 private:
  const Conv2dGeometry& g_;
  const float* stack_;
  std::int64_t images_, hq_ = 0, wq_ = 0;
};

#endif  // __AVX512F__

}  // namespace genmod::kernels::detail
