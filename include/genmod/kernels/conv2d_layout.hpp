#pragma once
/// \file conv2d_layout.hpp
/// Where the explicit convolution path (conv2d.hpp) puts the numbers it moves: the zero-padded
/// image split into stride phases (PhaseLayout), the column matrix built from it (im2col) and its
/// adjoint (col2im), the weight as a [Cout, Cin x kept taps] matrix, and the grouping of small
/// images side by side in one product (images_per_gemm, interleave_images). Data movement only:
/// no arithmetic but col2im's sums.
///
/// The column matrix of one image: row (c, t) for input channel c and kept tap t = (ky, kx),
/// column p = oy Wo + ox for output pixel (oy, ox), entry
///
///   cols[c T + t, p] = x[c, oy sh - ph + ky dh, ox sw - pw + kx dw]    (0 in the padding)
///
/// so that the forward is the product W [Cout, Cin T] cols, the weight gradient G cols^T, and the
/// input gradient col2im(W^T G).

#include <algorithm>
#include <array>
#include <cstdint>

#include "genmod/core/tensor.hpp"
#include "genmod/kernels/conv2d_geometry.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::kernels::detail {

/// Extents of the zero-padded input image.
inline std::int64_t padded_h(const Conv2dGeometry& g) {
  return g.h + 2 * g.pad_h;
}
inline std::int64_t padded_w(const Conv2dGeometry& g) {
  return g.w + 2 * g.pad_w;
}

/// The zero-padded image split into stride phases: phase (py, px) of channel c holds the padded
/// pixels (r * sh + py, q * sw + px) as a [hq, wq] plane. A tap (ky, kx) of a strided convolution
/// then reads one phase at unit stride (rows oy + ky*dh/sh, columns ox + kx*dw/sw), so im2col and
/// col2im move contiguous runs of Wo pixels instead of gathering every sw-th one. With stride 1
/// there is one phase, the padded image itself.
struct PhaseLayout {
  std::int64_t sh, sw, hq, wq;
  std::int64_t plane() const { return hq * wq; }
  std::int64_t channel() const { return sh * sw * hq * wq; }
  /// Offset of padded pixel row dy, column dx (relative to a phase origin) within a channel.
  std::int64_t offset(std::int64_t dy, std::int64_t dx) const {
    return ((dy % sh) * sw + dx % sw) * plane() + (dy / sh) * wq + dx / sw;
  }
};
inline PhaseLayout phase_layout(const Conv2dGeometry& g) {
  const std::int64_t sh = g.stride_h, sw = g.stride_w;
  return {sh, sw, (padded_h(g) + sh - 1) / sh, (padded_w(g) + sw - 1) / sw};
}
/// An unpadded stride-1 image is its own phase layout: no copy.
inline bool phases_in_place(const Conv2dGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
}
/// Elements of the phase buffer of one image.
inline std::int64_t phase_buffer_size(const Conv2dGeometry& g) {
  return g.cin * phase_layout(g).channel();
}

/// dst[q] = src[q * S] for q < n (S = 0: the stride is the run-time s), and its adjoint
/// scatter: constant strides 1 and 2 let the compiler vectorize the (de)interleave.
template <int S, class T>
inline void gather_strided(const T* src, T* dst, std::int64_t n, std::int64_t s) {
  const std::int64_t st = S > 0 ? S : s;
  for (std::int64_t q = 0; q < n; ++q) dst[q] = src[q * st];
}
template <int S, class T>
inline void scatter_strided(const T* src, T* dst, std::int64_t n, std::int64_t s) {
  const std::int64_t st = S > 0 ? S : s;
  for (std::int64_t q = 0; q < n; ++q) dst[q * st] = src[q];
}
template <bool Scatter, class T>
inline void move_strided(const T* src, T* dst, std::int64_t n, std::int64_t s) {
  if (s == 1)
    Scatter ? scatter_strided<1>(src, dst, n, s) : gather_strided<1>(src, dst, n, s);
  else if (s == 2)
    Scatter ? scatter_strided<2>(src, dst, n, s) : gather_strided<2>(src, dst, n, s);
  else
    Scatter ? scatter_strided<0>(src, dst, n, s) : gather_strided<0>(src, dst, n, s);
}

/// Calls f(src_offset, dst_offset, n) for every (padded row Y, phase column px) run of one
/// channel's input row y: input columns x0, x0 + sw, ... of row y are phase px's columns q0, q0 + 1,
/// ... (n of them) in phase row Y / sh. The divisions happen once per row and phase, not per
/// channel: f loops over the channels itself.
template <class F>
void for_each_phase_run(const Conv2dGeometry& g, const PhaseLayout& L, F&& f) {
  for (std::int64_t px = 0; px < L.sw; ++px) {
    const std::int64_t x0 = ((px - g.pad_w) % L.sw + L.sw) % L.sw;
    if (x0 >= g.w) continue;
    const std::int64_t n = (g.w - x0 + L.sw - 1) / L.sw, q0 = (x0 + g.pad_w) / L.sw;
    for (std::int64_t y = 0; y < g.h; ++y) f(y * g.w + x0, L.offset(y + g.pad_h, 0) + px * L.plane() + q0, n);
  }
}

/// x [Cin, H, W] zero-padded and split into phases in buf (returns x itself when in place).
template <class T>
const T* phase_image(const Conv2dGeometry& g, const T* x, T* buf) {
  if (phases_in_place(g)) return x;
  const PhaseLayout L = phase_layout(g);
  const std::int64_t in_plane = g.h * g.w, chan = L.channel();
  std::fill(buf, buf + g.cin * chan, T(0));
  for_each_phase_run(g, L, [&](std::int64_t src, std::int64_t dst, std::int64_t n) {
    for (std::int64_t c = 0; c < g.cin; ++c) move_strided<false>(x + c * in_plane + src, buf + c * chan + dst, n, L.sw);
  });
  return buf;
}

/// dx [Cin, H, W] = the interior of the phase buffer (the adjoint of phase_image).
template <class T>
void unphase_image(const Conv2dGeometry& g, const T* buf, T* dx) {
  const PhaseLayout L = phase_layout(g);
  const std::int64_t in_plane = g.h * g.w, chan = L.channel();
  for_each_phase_run(g, L, [&](std::int64_t dst, std::int64_t src, std::int64_t n) {
    for (std::int64_t c = 0; c < g.cin; ++c) move_strided<true>(buf + c * chan + src, dx + c * in_plane + dst, n, L.sw);
  });
}

/// Where tap t reads: its offset within a channel's phase buffer.
inline std::int64_t tap_offset(const Conv2dGeometry& g, const PhaseLayout& L, std::int64_t t) {
  const std::int64_t tap = g.tap(t);
  return L.offset((tap / g.kw) * g.dil_h, (tap % g.kw) * g.dil_w);
}

/// cols[(c * T + t), oy * Wo + ox] = padded x[c][oy * sh + ky * dh][ox * sw + kx * dw] for kept tap
/// t = (ky, kx), read from the phase buffer; rows of cols are `ld` apart (ld >= HW lets several
/// images sit side by side in one column matrix). Every read is inside the padded image (the
/// output extent was computed from it), so there are no bounds checks.
template <class T>
void im2col(const Conv2dGeometry& g, const T* phases, T* cols, std::int64_t ld) {
  const PhaseLayout L = phase_layout(g);
  const std::int64_t nt = g.num_taps(), wo = g.wo, ho = g.ho, wq = L.wq, chan = L.channel();
  for (std::int64_t t = 0; t < nt; ++t) {
    const std::int64_t off = tap_offset(g, L, t);
    for (std::int64_t c = 0; c < g.cin; ++c) {
      const T* first = phases + c * chan + off;
      T* row = cols + (c * nt + t) * ld;
      for (std::int64_t oy = 0; oy < ho; ++oy) simd::short_row<false>(first + oy * wq, row + oy * wo, wo);
    }
  }
}

/// The adjoint of im2col, phase by phase: every element of the phase buffer (or of dx itself
/// when the phases are in place) is written once, as the sum of the column-matrix entries of
/// the taps that read it, accumulated in registers. (Adding each tap's rows into the buffer
/// instead re-reads rows just written through masked stores, which the CPU cannot forward: that
/// version spent half its time stalled.) Returns false, touching nothing, when the shape does not
/// fit the register form.
template <class T>
bool col2im_gather(const Conv2dGeometry& g, const PhaseLayout& L, const T* cols, std::int64_t ld, T* acc) {
  constexpr std::int64_t lanes = simd::masked_lanes<T>;
  constexpr std::int64_t max_taps = 256, max_phases = 64;
  const std::int64_t nt = g.num_taps(), phases = L.sh * L.sw, wo = g.wo, ho = g.ho, wq = L.wq, hq = L.hq;
  if (lanes == 0 || nt > max_taps || phases > max_phases || wq + wo > 62) return false;
  // Taps grouped by the phase they read, with their row and column shift inside it.
  struct Shifted {
    std::int16_t t, ry, rx;
  };
  std::array<Shifted, max_taps> order{};
  std::array<std::int16_t, max_phases + 1> begin{};
  const auto phase_of = [&](std::int64_t t) {
    const std::int64_t tap = g.tap(t), dy = (tap / g.kw) * g.dil_h, dx = (tap % g.kw) * g.dil_w;
    return std::array<std::int64_t, 3>{(dy % L.sh) * L.sw + dx % L.sw, dy / L.sh, dx / L.sw};
  };
  for (std::int64_t t = 0; t < nt; ++t) ++begin[static_cast<std::size_t>(phase_of(t)[0] + 1)];
  for (std::int64_t p = 0; p < phases; ++p)
    begin[static_cast<std::size_t>(p + 1)] += begin[static_cast<std::size_t>(p)];
  std::array<std::int16_t, max_phases + 1> fill = begin;
  for (std::int64_t t = 0; t < nt; ++t) {
    const auto [p, ry, rx] = phase_of(t);
    order[static_cast<std::size_t>(fill[static_cast<std::size_t>(p)]++)] = {
        static_cast<std::int16_t>(t), static_cast<std::int16_t>(ry), static_cast<std::int16_t>(rx)};
  }
  for (std::int64_t p = 0; p < phases; ++p) {
    const std::int64_t t0 = begin[static_cast<std::size_t>(p)], t1 = begin[static_cast<std::size_t>(p + 1)];
    for (std::int64_t c = 0; c < g.cin; ++c) {
      T* plane = acc + c * L.channel() + p * L.plane();
      for (std::int64_t r = 0; r < hq; ++r)
        for (std::int64_t b = 0; b < wq; b += lanes) {
          simd::MaskedSum<T> sum;
          for (std::int64_t i = t0; i < t1; ++i) {
            const Shifted& o = order[static_cast<std::size_t>(i)];
            const std::int64_t t = o.t, rx = o.rx, oy = r - o.ry;
            if (oy < 0 || oy >= ho) continue;
            // Lane l is phase column b + l, which tap t reaches from output column b + l - rx.
            const std::int64_t lo = std::max<std::int64_t>(rx - b, 0), hi = std::min<std::int64_t>(rx + wo - b, lanes);
            if (hi <= lo) continue;
            const T* row = cols + (c * nt + t) * ld + oy * wo;
            sum.add(row + (b - rx), lo, hi);
          }
          sum.store(plane + r * wq + b, std::min<std::int64_t>(lanes, wq - b));
        }
    }
  }
  return true;
}

/// The adjoint of im2col: dx [Cin, H, W] = crop of the scatter-add of cols (rows `ld` apart) into
/// the phase buffer (or straight into dx when the phases are in place).
template <class T>
void col2im(const Conv2dGeometry& g, const T* cols, std::int64_t ld, T* buf, T* dx) {
  const PhaseLayout L = phase_layout(g);
  const bool in_place = phases_in_place(g);
  T* acc = in_place ? dx : buf;
  if (!col2im_gather(g, L, cols, ld, acc)) {
    const std::int64_t nt = g.num_taps(), wo = g.wo, ho = g.ho, wq = L.wq, chan = L.channel();
    std::fill(acc, acc + g.cin * chan, T(0));
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int64_t off = tap_offset(g, L, t);
      for (std::int64_t c = 0; c < g.cin; ++c) {
        T* first = acc + c * chan + off;
        const T* row = cols + (c * nt + t) * ld;
        for (std::int64_t oy = 0; oy < ho; ++oy)
          for (std::int64_t ox = 0; ox < wo; ++ox) first[oy * wq + ox] += row[oy * wo + ox];
      }
    }
  }
  if (!in_place) unphase_image(g, buf, dx);
}

/// The weight as a [Cout, Cin * kept taps] matrix (a copy only when taps are masked).
template <class T>
Tensor<T> packed_weight(const Conv2dGeometry& g, const Tensor<T>& w) {
  if (!g.masked()) return w.reshape(Shape{g.cout, g.k()});
  const std::int64_t nt = g.num_taps(), kk = g.kh * g.kw;
  Tensor<T> p(Shape{g.cout, g.k()});
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t c = 0; c < g.cin; ++c)
      for (std::int64_t t = 0; t < nt; ++t) p[(o * g.cin + c) * nt + t] = w[(o * g.cin + c) * kk + g.tap(t)];
  return p;
}

/// Images per GEMM: enough that the GEMM's N dimension (images x output pixels) reaches about 256
/// columns, where a small output (7x7 = 49 pixels) alone would leave the kernel starved of work
/// and re-pack the weight for every image. Pointwise convolutions read the image in place and stay
/// at one.
inline std::int64_t images_per_gemm(const Conv2dGeometry& g) {
  if (g.pointwise() || g.hw_out() >= 128) return 1;
  return std::clamp<std::int64_t>((256 + g.hw_out() - 1) / g.hw_out(), 1, 16);
}

/// dst[o, j * HW + p] = src[j][o, p] for the `group` images starting at src: per-image [Cout, HW]
/// blocks laid side by side as one [Cout, group * HW] matrix.
template <class T>
void interleave_images(const T* src, T* dst, std::int64_t group, std::int64_t cout, std::int64_t hw) {
  for (std::int64_t j = 0; j < group; ++j)
    for (std::int64_t o = 0; o < cout; ++o)
      std::copy(src + (j * cout + o) * hw, src + (j * cout + o + 1) * hw, dst + o * group * hw + j * hw);
}
}  // namespace genmod::kernels::detail
