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
///   forward       B = cols (K x pixels), a panel of 16-pixel registers. Strided: two loads and
///                 one permute per register from a zero-padded phase stack (PermuteTables);
///                 stride 1 with "same" width: masked loads of image runs (gathers where a
///                 register's columns do not run consecutively)
///   weight grad   dW^T = cols G^T with cols never packed: its elements are broadcast straight
///                 from the phase stack, and only G^T is packed (weight_grad_direct_group)
///   input grad    by stride phases (InputGradPhase): each phase of dX is a stride-1 product of
///                 the output gradient, its columns loaded from runs of it (two masked loads for a
///                 register across two images), written once: no column matrix and no
///                 scatter-add
///
/// Available where the target has AVX-512 gathers, for float (the training type); elsewhere, and
/// for double, the explicit path (conv2d_layout.hpp) runs. conv2d.hpp's table says which geometry
/// takes which path; tests/kernels/conv2d_reference_test.cpp holds every path to the plain-loop
/// reference.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/kernels/conv2d_geometry.hpp"
#include "genmod/kernels/conv2d_layout.hpp"
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
  /// Per register of columns: whether its offsets are one run of consecutive offsets (of one
  /// image row, or of a whole image when the columns follow its layout) or two (a register that
  /// straddles two images: 49-pixel images put 5 of every 19 registers across a boundary), so that
  /// one or two masked loads replace the gather; lanes [0, split) are the first run, [split, 16)
  /// the second, which starts at offset `second`.
  std::vector<std::uint8_t> contiguous, split;
  std::vector<std::int32_t> second;

  /// Sized for n columns (rounded up to whole panels, the rest masked off), all masks clear.
  void reset(std::int64_t n, std::int64_t channel_plane, std::int64_t tap_count) {
    plane = channel_plane;
    taps = tap_count;
    const std::int64_t panels = (n + NR - 1) / NR;
    offsets.assign(static_cast<std::size_t>(panels * NR), 0);
    masks.assign(static_cast<std::size_t>(panels * taps * NV), 0);
    tap_offsets.assign(static_cast<std::size_t>(taps), 0);
  }
  /// Finds the runs of each register's columns (up to n); call once the offsets are set.
  void find_runs(std::int64_t n) {
    const std::int64_t registers = static_cast<std::int64_t>(offsets.size()) / 16;
    contiguous.assign(static_cast<std::size_t>(registers), 0);
    split.assign(static_cast<std::size_t>(registers), 16);
    second.assign(static_cast<std::size_t>(registers), 0);
    const auto at = [&](std::int64_t j) { return offsets[static_cast<std::size_t>(j)]; };
    for (std::int64_t r = 0; r < registers; ++r) {
      const std::int64_t j0 = r * 16, lanes = std::clamp<std::int64_t>(n - j0, 1, 16);
      std::int64_t breaks = 0, at_lane = 16;
      for (std::int64_t l = 1; l < lanes; ++l)
        if (at(j0 + l) != at(j0 + l - 1) + 1) ++breaks, at_lane = std::min(at_lane, l);
      // The second run's load starts `split` elements before it: that address must not precede
      // the first run's (it never does here: the second run is a later image).
      const bool two = breaks == 1 && at(j0 + at_lane) - at_lane >= at(j0);
      contiguous[static_cast<std::size_t>(r)] = breaks == 0 || two ? 1 : 0;
      split[static_cast<std::size_t>(r)] = static_cast<std::uint8_t>(breaks == 0 ? 16 : at_lane);
      second[static_cast<std::size_t>(r)] = two ? at(j0 + at_lane) : 0;
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
    // Locals, not members: the intrinsic stores may alias anything, so members would be reloaded
    // on every row.
    const float* src = src_;
    const std::int64_t plane = t_.plane;
    const std::int32_t* tap_offsets = t_.tap_offsets.data();
    const std::uint16_t* masks = t_.masks.data() + panel * nt * NV;  // row (c, t), register v: [t * NV + v]
    // Every register one run (PixelCNN's "same" 3 x 3, whose 784-pixel images fill registers
    // whole): row by row, three loads each.
    bool runs = true;
    std::int64_t first[NV];
    for (int v = 0; v < NV; ++v) {
      const auto r = static_cast<std::size_t>(j0 / 16 + v);
      runs = runs && t_.contiguous[r] != 0 && t_.split[r] == 16;
      first[v] = t_.offsets[static_cast<std::size_t>(j0 + v * 16)];
    }
    if (runs) {
      std::int64_t c = k0 / nt, t = k0 % nt;
      for (std::int64_t kk = 0; kk < depth; ++c, t = 0)
        for (; t < nt && kk < depth; ++t, ++kk) {
          const float* at = src + c * plane + tap_offsets[t];
          for (int v = 0; v < NV; ++v)
            _mm512_store_ps(dst + kk * NR + v * 16,
                            _mm512_maskz_loadu_ps(static_cast<__mmask16>(masks[t * NV + v]), at + first[v]));
        }
      return;
    }
    // Otherwise register by register, so each depth loop is one kind of access, without branches.
    for (int v = 0; v < NV; ++v) {
      const auto r = static_cast<std::size_t>(j0 / 16 + v);
      const std::int64_t first = t_.offsets[static_cast<std::size_t>(j0 + v * 16)];
      const int kind = t_.contiguous[r] == 0 ? 0 : t_.split[r] < 16 ? 2 : 1;
      const auto low = static_cast<__mmask16>((1u << t_.split[r]) - 1u);
      const std::int64_t next = t_.second[r] - t_.split[r];  // lane l of the second run reads next + l
      const __m512i base = _mm512_loadu_si512(t_.offsets.data() + j0 + v * 16);
      float* out = dst + v * 16;
      const std::uint16_t* m = masks + v;
      std::int64_t c = k0 / nt, t = k0 % nt;
      // Masked-off lanes are neither read nor faulted on, whether loaded or gathered.
      for (std::int64_t kk = 0; kk < depth; ++c, t = 0)
        for (; t < nt && kk < depth; ++t, ++kk) {
          const float* at = src + c * plane + tap_offsets[t];
          const auto mk = static_cast<__mmask16>(m[t * NV]);
          __m512 x;
          if (kind == 1)
            x = _mm512_maskz_loadu_ps(mk, at + first);
          else if (kind == 2)
            x = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(mk & low, at + first), static_cast<__mmask16>(mk & ~low),
                                     at + next);
          else
            x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk,
                                         _mm512_add_epi32(base, _mm512_set1_epi32(tap_offsets[t])), src + c * plane, 4);
          _mm512_store_ps(out + kk * NR, x);
        }
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

/// The phase stack and where the column matrix lies in it. The group's images are stored
/// zero-padded and split into stride phases, channel-major: stack[((c * phases + phase) * images +
/// img) * hq * wq + r * wq + q] = padded pixel (r sh + py, q sw + px) of image img, channel c
/// (phase = py sw + px). Row (c, t) of the column matrix then reads one phase at unit stride:
/// column j (image img, output pixel oy, ox) at position pos_j = img hq wq + oy wq + ox, plus the
/// row's offset; the padding is stored as zeros, so nothing needs a mask. The direct products
/// (below) broadcast from these addresses. Strided forwards with few output channels build B
/// panels from them instead (PermutedColumns): a register's 16 columns are a few short runs (7
/// pixels per output row for 7x7 outputs) within 32 consecutive positions, the same lanes for
/// every row, so two loads and one two-source permute (vpermt2ps) build it, where a gather took
/// ~18 cycles; only the columns past the end are masked.
struct PermuteTables {
  static constexpr int NR = tile::Tile<float>::nr, NV = tile::Tile<float>::vectors;
  std::int64_t hq = 0, wq = 0, phases = 0, images = 0;
  std::int64_t channel = 0;               ///< stack elements per input channel
  std::vector<std::int32_t> tap_offsets;  ///< per kept tap: phase block + row and column shift
  std::vector<std::int32_t> first;        ///< per register: position of its first column
  std::vector<std::int32_t> lanes;        ///< per register, 16 lanes: position - first (< 32)
  std::vector<std::uint16_t> live;        ///< per register: lanes holding a column
  std::vector<std::int32_t> positions;    ///< per column: its position pos_j
  std::vector<std::int32_t> row_offsets;  ///< per row k = (c, t) of K: c * channel + the tap's offset
  bool fits = false;                      ///< every register spans fewer than 32 positions

  /// Stack elements, with room past the end for the second load of the last register.
  std::int64_t stack_size(std::int64_t cin) const { return cin * channel + 32; }

  void build(const Conv2dGeometry& g, std::int64_t group) {
    const std::int64_t sh = g.stride_h, sw = g.stride_w, hw = g.hw_out(), n = group * hw, nt = g.num_taps();
    hq = (g.h + 2 * g.pad_h + sh - 1) / sh;
    wq = (g.w + 2 * g.pad_w + sw - 1) / sw;
    phases = sh * sw;
    images = group;
    channel = phases * images * hq * wq;
    tap_offsets.resize(static_cast<std::size_t>(nt));
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int64_t tap = g.tap(t), dy = (tap / g.kw) * g.dil_h, dx = (tap % g.kw) * g.dil_w;
      const std::int64_t phase = (dy % sh) * sw + dx % sw;
      tap_offsets[static_cast<std::size_t>(t)] =
          static_cast<std::int32_t>(phase * images * hq * wq + (dy / sh) * wq + dx / sw);
    }
    const std::int64_t registers = (n + NR - 1) / NR * NV;
    first.assign(static_cast<std::size_t>(registers), 0);
    lanes.assign(static_cast<std::size_t>(registers * 16), 0);
    live.assign(static_cast<std::size_t>(registers), 0);
    fits = channel < (std::int64_t{1} << 30);
    row_offsets.resize(static_cast<std::size_t>(g.k()));
    for (std::int64_t k = 0; k < g.k(); ++k)
      row_offsets[static_cast<std::size_t>(k)] =
          static_cast<std::int32_t>((k / nt) * channel + tap_offsets[static_cast<std::size_t>(k % nt)]);
    const auto position = [&](std::int64_t j) {
      const std::int64_t p = j % hw;
      return (j / hw) * hq * wq + (p / g.wo) * wq + p % g.wo;
    };
    positions.resize(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j)
      positions[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(position(j));
    for (std::int64_t r = 0; r * 16 < n; ++r) {
      const std::int64_t base = position(r * 16);
      first[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(base);
      for (std::int64_t l = 0; l < 16 && r * 16 + l < n; ++l) {
        const std::int64_t d = position(r * 16 + l) - base;
        fits = fits && d < 32;
        lanes[static_cast<std::size_t>(r * 16 + l)] = static_cast<std::int32_t>(d & 31);
        live[static_cast<std::size_t>(r)] |= static_cast<std::uint16_t>(1u << l);
      }
    }
  }

  static const PermuteTables& of(const Conv2dGeometry& g, std::int64_t group) {
    return cached_tables<PermuteTables>(g, group, [&](PermuteTables& t) { t.build(g, group); });
  }
};

/// Whether the forward of g builds its columns by permutes from a phase stack (PermuteTables):
/// strided convolutions the gathered path would take, whose registers all fit.
template <class T>
bool permute_columns(const Conv2dGeometry& g, std::int64_t images) {
  return (g.stride_h > 1 || g.stride_w > 1) && gather_columns<T>(g, images) && PermuteTables::of(g, images).fits;
}

/// Fills the phase stack of PermuteTables t from the `t.images` images [Cin, H, W] at x (stack:
/// t.stack_size(Cin) elements). Each stack row is written whole, padding included, so nothing is
/// filled first.
template <class T>
void fill_phase_stack(const Conv2dGeometry& g, const PermuteTables& t, const T* x, T* stack) {
  const std::int64_t sh = g.stride_h, sw = g.stride_w, plane = t.hq * t.wq, in_plane = g.h * g.w;
  const std::int64_t block = t.images * plane;  // one (channel, phase)
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (g.w <= 16 && t.wq <= 16 && sw <= 16) {
      // Lane q of phase column px's row is input column q sw + px - pad_w, zero outside.
      __m512i pick[16];
      __mmask16 inside[16];
      for (std::int64_t px = 0; px < sw; ++px) {
        alignas(64) std::int32_t idx[16];
        std::uint32_t bits = 0;
        for (std::int64_t q = 0; q < 16; ++q) {
          const std::int64_t col = q * sw + px - g.pad_w;
          const bool in = q < t.wq && col >= 0 && col < g.w;
          idx[q] = in ? static_cast<std::int32_t>(col) : 0;
          bits |= in ? 1u << q : 0u;
        }
        pick[px] = _mm512_load_si512(idx);
        inside[px] = static_cast<__mmask16>(bits);
      }
      const auto row_mask = static_cast<__mmask16>((1u << g.w) - 1u),
                 out_mask = static_cast<__mmask16>((1u << t.wq) - 1u);
      // Image by image, channel by channel: x is read in order (one stream for the prefetcher,
      // where the batch does not fit in L2).
      for (std::int64_t img = 0; img < t.images; ++img)
        for (std::int64_t c = 0; c < g.cin; ++c) {
          // The prefetcher does not follow masked loads: fetch the plane after next meanwhile.
          const char* ahead = reinterpret_cast<const char*>(x + (img * g.cin + c + 2) * in_plane);
          for (std::int64_t b = 0; b < in_plane * 4; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
          for (std::int64_t py = 0; py < sh; ++py)
            for (std::int64_t r = 0; r < t.hq; ++r) {
              const std::int64_t y = r * sh + py - g.pad_h;
              const bool row_in = y >= 0 && y < g.h;
              const __m512 row = row_in ? _mm512_maskz_loadu_ps(row_mask, x + (img * g.cin + c) * in_plane + y * g.w)
                                        : _mm512_setzero_ps();
              for (std::int64_t px = 0; px < sw; ++px)
                _mm512_mask_storeu_ps(stack + (c * t.phases + py * sw + px) * block + img * plane + r * t.wq, out_mask,
                                      _mm512_maskz_permutexvar_ps(inside[px], pick[px], row));
            }
        }
      std::fill(stack + g.cin * t.channel, stack + t.stack_size(g.cin), T(0));
      return;
    }
    if (sw == 1) {
      // Unit stride along rows: each stack row is the input row shifted by the padding, loaded
      // 16 at a time with the lanes outside the image masked off (not read, stored as zeros).
      for (std::int64_t img = 0; img < t.images; ++img)
        for (std::int64_t c = 0; c < g.cin; ++c)
          for (std::int64_t py = 0; py < sh; ++py)
            for (std::int64_t r = 0; r < t.hq; ++r) {
              const std::int64_t y = r * sh + py - g.pad_h;
              float* out = stack + (c * t.phases + py) * block + img * plane + r * t.wq;
              const float* row = x + (img * g.cin + c) * in_plane + y * g.w - g.pad_w;  // at q = 0
              for (std::int64_t q0 = 0; q0 < t.wq; q0 += 16) {
                std::uint32_t in = 0;
                for (std::int64_t l = 0; l < 16; ++l) {
                  const std::int64_t col = q0 + l - g.pad_w;
                  in |= (y >= 0 && y < g.h && col >= 0 && col < g.w && q0 + l < t.wq) ? 1u << l : 0u;
                }
                const auto store = static_cast<__mmask16>((1u << std::min<std::int64_t>(16, t.wq - q0)) - 1u);
                _mm512_mask_storeu_ps(
                    out + q0, store,
                    in != 0 ? _mm512_maskz_loadu_ps(static_cast<__mmask16>(in), row + q0) : _mm512_setzero_ps());
              }
            }
      std::fill(stack + g.cin * t.channel, stack + t.stack_size(g.cin), T(0));
      return;
    }
  }
#endif
  for (std::int64_t img = 0; img < t.images; ++img)
    for (std::int64_t c = 0; c < g.cin; ++c)
      for (std::int64_t py = 0; py < sh; ++py)
        for (std::int64_t r = 0; r < t.hq; ++r) {
          const std::int64_t y = r * sh + py - g.pad_h;
          const T* row = x + (img * g.cin + c) * in_plane + y * g.w;
          for (std::int64_t px = 0; px < sw; ++px) {
            T* out = stack + (c * t.phases + py * sw + px) * block + img * plane + r * t.wq;
            for (std::int64_t q = 0; q < t.wq; ++q) {
              const std::int64_t col = q * sw + px - g.pad_w;
              out[q] = y >= 0 && y < g.h && col >= 0 && col < g.w ? row[col] : T(0);
            }
          }
        }
  std::fill(stack + g.cin * t.channel, stack + t.stack_size(g.cin), T(0));
}

#if defined(__AVX512F__)
/// B panels of the forward's columns built from a phase stack by PermuteTables.
class PermutedColumns {
 public:
  static constexpr int NR = PermuteTables::NR, NV = PermuteTables::NV;
  PermutedColumns(const Conv2dGeometry& g, const PermuteTables& tables, const float* stack)
      : t_(tables), stack_(stack), taps_(g.num_taps()) {}

  /// Packs rows [k0, k0 + depth) x columns [j0, j0 + NR) (zero past the last column).
  void operator()(std::int64_t k0, std::int64_t depth, std::int64_t j0, std::int64_t, float* dst) const {
    __m512i lanes[NV];
    __mmask16 live[NV];
    std::int64_t first[NV];
    for (int v = 0; v < NV; ++v) {
      const auto r = static_cast<std::size_t>(j0 / 16 + v);
      lanes[v] = _mm512_loadu_si512(t_.lanes.data() + r * 16);
      live[v] = t_.live[r];
      first[v] = t_.first[r];
    }
    std::int64_t c = k0 / taps_, t = k0 % taps_;
    for (std::int64_t kk = 0; kk < depth; ++kk) {
      const float* row = stack_ + c * t_.channel + t_.tap_offsets[static_cast<std::size_t>(t)];
      for (int v = 0; v < NV; ++v) {
        const __m512 lo = _mm512_loadu_ps(row + first[v]), hi = _mm512_loadu_ps(row + first[v] + 16);
        _mm512_store_ps(dst + kk * NR + v * 16, _mm512_maskz_permutex2var_ps(live[v], lo, lanes[v], hi));
      }
      if (++t == taps_) t = 0, ++c;
    }
  }

 private:
  const PermuteTables& t_;
  const float* stack_;
  std::int64_t taps_;
};
#endif  // __AVX512F__

/// Whether the convolution passes of g multiply straight from the phase stack (the forward by
/// forward_direct_group, the weight gradient by weight_grad_direct_group): the geometries whose
/// columns the gathered path would read from the images, with output channels enough for the
/// 64-wide tile, and a stack whose offsets fit 32 bits. A decision on the geometry alone, as the
/// layout of the weight gradient's partial sums depends on it (reduce_weight_partials).
template <class T>
bool direct_from_stack(const Conv2dGeometry& g) {
  if constexpr (!kGatherColumns<T>) {
    return false;
  } else {
    const bool strided = g.stride_h > 1 || g.stride_w > 1;
    const double hq = static_cast<double>((g.h + 2 * g.pad_h + g.stride_h - 1) / g.stride_h),
                 wq = static_cast<double>((g.w + 2 * g.pad_w + g.stride_w - 1) / g.stride_w);
    const double stack = static_cast<double>(g.cin * g.stride_h * g.stride_w) * 16.0 * hq * wq;  // <= 16 images
    return (strided || g.wo == g.w) && !g.pointwise() && g.k() >= 64 && g.cout >= 32 && stack < 1e9;
  }
}
template <class T>
bool weight_grad_direct(const Conv2dGeometry& g) {
  return direct_from_stack<T>(g);
}
/// The forward only where strided: a stride-1 "same" convolution loads its columns as runs of
/// the image itself (GatheredColumns), where the stack would be one more copy (measured 7 % slower
/// on PixelCNN's masked 3 x 3).
template <class T>
bool forward_direct(const Conv2dGeometry& g) {
  return (g.stride_h > 1 || g.stride_w > 1) && direct_from_stack<T>(g);
}

/// The phase stack of `images` images at x, filled into this thread's buffer (grown, never
/// shrunk; one for every user of the stack, so a step allocates nothing once warm).
inline const float* filled_phase_stack(const Conv2dGeometry& g, const PermuteTables& t, const float* x) {
  thread_local Tensor<float> store;
  if (!store.defined() || store.numel() < t.stack_size(g.cin)) store = Tensor<float>(Shape{t.stack_size(g.cin)});
  fill_phase_stack(g, t, x, store.data());
  return store.data();
}

#if defined(__AVX512F__)
/// C[nrows x 16 NV] += A B, where A's row i at depth kk is the single element rows[i][pos[kk]]
/// (broadcast from wherever it lies: A is never packed) and B is a depth-major panel 16 NV wide.
/// Only `vectors` registers of columns are stored, the last under the mask `last`.
template <int MR, int NV>
inline void multiply_direct_tile(std::int64_t depth, const float* const* rows, const std::int32_t* pos, const float* b,
                                 float* c, std::int64_t ldc, int nrows, int vectors, __mmask16 last) {
  __m512 acc[MR][NV];
  const float* r[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    r[i] = rows[i];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (std::int64_t kk = 0; kk < depth; ++kk) {
    const std::int64_t p = pos[kk];
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + (kk * NV + v) * 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(r[i][p]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < nrows; ++i)
    for (int v = 0; v < vectors; ++v) {
      const __mmask16 m = v == vectors - 1 ? last : static_cast<__mmask16>(0xFFFF);
      float* ci = c + i * ldc + v * 16;
      _mm512_mask_storeu_ps(ci, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, ci), acc[i][v]));
    }
}

/// C [m x n] (row stride n) += A B over blocks of multiply_direct_tile: A's row i at depth kk is
/// row_of(i)[offsets[kk]], and b_panel(k0, depth, j0, cols) returns the depth-major B panel (64
/// columns wide, zero past n) of that block. The forward and the weight gradient below are this
/// product with the roles of pixels and rows of K exchanged.
template <class RowOf, class BPanel>
void multiply_direct(std::int64_t m, std::int64_t n, std::int64_t k, RowOf&& row_of, const std::int32_t* offsets,
                     BPanel&& b_panel, float* c) {
  constexpr int MR = 6, NV = 4, NRD = NV * 16;
  constexpr std::int64_t KC = 128;  // a B panel of 32 KB
  for (std::int64_t k0 = 0; k0 < k; k0 += KC) {
    const std::int64_t depth = std::min(KC, k - k0);
    for (std::int64_t j0 = 0; j0 < n; j0 += NRD) {
      const std::int64_t cols = std::min<std::int64_t>(NRD, n - j0);
      const int vectors = static_cast<int>((cols + 15) / 16);
      const auto last = static_cast<__mmask16>((1u << (cols - (vectors - 1) * 16)) - 1u);
      const float* b = b_panel(k0, depth, j0, cols);
      for (std::int64_t i0 = 0; i0 < m; i0 += MR) {
        const float* rows[MR];
        for (int i = 0; i < MR; ++i) rows[i] = row_of(std::min(i0 + i, m - 1));  // rows past m: never stored
        multiply_direct_tile<MR, NV>(depth, rows, offsets + k0, b, c + i0 * n + j0, n,
                                     static_cast<int>(std::min<std::int64_t>(MR, m - i0)), vectors, last);
      }
    }
  }
}

/// dW^T [K x Cout] += cols G^T for the `images` images at x [images, Cin, H, W] with output
/// gradients gy [images, Cout, Ho, Wo]. The column matrix is neither formed nor packed: its row
/// (channel c, tap t) is the phase stack at its row offset, read at each pixel's position by
/// broadcasts. Only G^T is packed (a block of pixels by 64 output channels), and each of its
/// elements then serves all K rows, where with cols^T as the packed operand each served only Cout.
/// `stack`: these images' phase stack if already filled (by their forward), else null.
inline void weight_grad_direct_group(const Conv2dGeometry& g, const float* x, const float* gy, std::int64_t images,
                                     float* dwt, const float* stack = nullptr) {
  constexpr std::int64_t NRD = 64, KC = 128;
  const PermuteTables& t = PermuteTables::of(g, images);
  if (stack == nullptr) stack = filled_phase_stack(g, t, x);
  float* panel = tile::panel_scratch<float, 0>(KC * NRD);
  const std::int64_t hw = g.hw_out(), cout = g.cout;
  // panel[kk * NRD + o] = G[image of p][j0 + o][pixel of p] for p = p0 + kk; zero past Cout.
  const auto pack_gt = [&](std::int64_t p0, std::int64_t depth, std::int64_t j0, std::int64_t cols) {
    for (std::int64_t p = p0; p < p0 + depth;) {
      const std::int64_t img = p / hw, pix = p % hw, run = std::min(hw - pix, p0 + depth - p);
      for (std::int64_t o = 0; o < cols; o += 16)
        tile::transpose_rows(gy + (img * cout + j0 + o) * hw + pix, hw,
                             static_cast<int>(std::min<std::int64_t>(16, cols - o)), run, panel + (p - p0) * NRD + o,
                             NRD);
      p += run;
    }
    if (cols < NRD)
      for (std::int64_t kk = 0; kk < depth; ++kk) std::fill(panel + kk * NRD + cols, panel + (kk + 1) * NRD, 0.0f);
    return static_cast<const float*>(panel);
  };
  multiply_direct(
      g.k(), cout, images * hw, [&](std::int64_t k) { return stack + t.row_offsets[static_cast<std::size_t>(k)]; },
      t.positions.data(), pack_gt, dwt);
}

/// y = W cols (+ bias) for the `images` images at x (where forward_direct), as Y^T [pixels x
/// Cout] = cols^T W^T: row i of cols^T (a pixel) is broadcast from the phase stack at the pixel's
/// position plus each row offset of K, so the only packed operand is W^T, once per call (wt:
/// ForwardWeights). Y^T is built in yt (images x HW x Cout) and transposed into y [images, Cout,
/// Ho, Wo]. Returns the filled phase stack.
inline const float* forward_direct_group(const Conv2dGeometry& g, const float* wt, const float* x, std::int64_t images,
                                         const float* bias, float* y, float* yt) {
  constexpr std::int64_t NRD = 64;
  const PermuteTables& t = PermuteTables::of(g, images);
  const float* stack = filled_phase_stack(g, t, x);
  const std::int64_t hw = g.hw_out(), n = images * hw, K = g.k(), cout = g.cout;
  for (std::int64_t p = 0; p < n; ++p)
    for (std::int64_t o = 0; o < cout; ++o) yt[p * cout + o] = bias != nullptr ? bias[o] : 0.0f;
  multiply_direct(
      n, cout, K, [&](std::int64_t p) { return stack + t.positions[static_cast<std::size_t>(p)]; },
      t.row_offsets.data(),
      [&](std::int64_t k0, std::int64_t, std::int64_t j0, std::int64_t) { return wt + ((j0 / NRD) * K + k0) * NRD; },
      yt);
  for (std::int64_t img = 0; img < images; ++img)
    for (std::int64_t p0 = 0; p0 < hw; p0 += 16)
      tile::transpose_rows(yt + (img * hw + p0) * cout, cout, static_cast<int>(std::min<std::int64_t>(16, hw - p0)),
                           cout, y + img * cout * hw + p0, hw);
  return stack;
}
#endif  // __AVX512F__

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

/// dX rows of `images` images from the phase blocks (block[p]: [Cin, images x P_p], phase p's
/// pixels row-major per image). With stride 2 along the row and rows of at most 16 pixels (the
/// small images of strided convolutions), the two column phases of a row are interleaved in
/// registers; otherwise each phase row is scattered at the stride.
template <class T>
void write_phases(const Conv2dGeometry& g, const std::vector<InputGradPhase>& phases, const T* const* block,
                  std::int64_t images, T* dx) {
  const std::int64_t in_size = g.cin * g.h * g.w, plane = g.h * g.w;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (g.stride_w == 2 && g.w <= 16 && static_cast<std::int64_t>(phases.size()) == g.stride_h * 2) {
      // Lane 2q of a row is lane q of the even-column phase, lane 2q + 1 lane q of the odd one.
      const __m512i pick = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
      const auto row_mask = static_cast<__mmask16>((1u << g.w) - 1u);
      for (std::int64_t ry = 0; ry < g.stride_h; ++ry) {
        const InputGradPhase& p0 = phases[static_cast<std::size_t>(ry * 2)];
        const InputGradPhase& p1 = phases[static_cast<std::size_t>(ry * 2 + 1)];
        const InputGradPhase& even = p0.ix0 == 0 ? p0 : p1;
        const InputGradPhase& odd = p0.ix0 == 0 ? p1 : p0;
        const T* be = block[p0.ix0 == 0 ? ry * 2 : ry * 2 + 1];
        const T* bo = block[p0.ix0 == 0 ? ry * 2 + 1 : ry * 2];
        const std::int64_t lde = images * even.pixels(), ldo = images * odd.pixels();
        const auto me = static_cast<__mmask16>((1u << even.cols) - 1u),
                   mo = static_cast<__mmask16>((1u << odd.cols) - 1u);
        for (std::int64_t j = 0; j < images; ++j)
          for (std::int64_t c = 0; c < g.cin; ++c)
            for (std::int64_t a = 0; a < even.rows; ++a) {
              const __m512 e = _mm512_maskz_loadu_ps(me, be + c * lde + j * even.pixels() + a * even.cols);
              const __m512 o = _mm512_maskz_loadu_ps(mo, bo + c * ldo + j * odd.pixels() + a * odd.cols);
              _mm512_mask_storeu_ps(dx + j * in_size + c * plane + (even.iy0 + a * g.stride_h) * g.w, row_mask,
                                    _mm512_permutex2var_ps(e, pick, o));
            }
      }
      return;
    }
  }
#endif
  for (std::size_t p = 0; p < phases.size(); ++p) {
    const InputGradPhase& ph = phases[p];
    const std::int64_t np = ph.pixels(), ld = images * np;
    for (std::int64_t j = 0; j < images; ++j)
      for (std::int64_t c = 0; c < g.cin; ++c)
        for (std::int64_t a = 0; a < ph.rows; ++a)
          move_strided<true>(block[p] + c * ld + j * np + a * ph.cols,
                             dx + j * in_size + c * plane + (ph.iy0 + a * g.stride_h) * g.w + ph.ix0, ph.cols,
                             g.stride_w);
  }
}

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

}  // namespace genmod::kernels::detail
