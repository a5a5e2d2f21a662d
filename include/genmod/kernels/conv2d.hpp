#pragma once
/// \file conv2d.hpp
/// 2-D convolution as three kernels on NCHW tensors, by im2col + GEMM per image:
///
///   forward       Y = C(X, W)         Y[n] = W_mat  cols(X[n])          (+ bias)
///   input_grad    X = Cx*(G, W)       X[n] = col2im(W_mat^T G[n])       (= transposed convolution)
///   weight_grad   W = Cw*(X, G)       W_mat = sum_n G[n] cols(X[n])^T
///
/// C is bilinear, so these three are closed under differentiation (autodiff/ops/conv.hpp builds
/// double backward from them), and a transposed convolution is input_grad with the roles swapped.
///
/// Why per image (or per small group): the column matrix of one image (K x HW) stays in cache,
/// where a batched im2col would stream N times more memory through the GEMM. Small outputs are
/// the exception: a 7x7 output gives the GEMM only 49 columns, so a few images are laid side by
/// side (images_per_gemm: about 256 columns) and their results copied to place. Images are spread
/// over threads,
/// each running a single-threaded GEMM on its own scratch; the weight gradient is reduced from
/// per-thread partial sums in a fixed order, so results do not depend on scheduling.
///
/// Masked convolutions (PixelCNN) list the kernel taps they keep; im2col packs only those rows,
/// so skipped taps cost nothing (a 7x7 type-A mask keeps 24 of 49).
///
/// Strided float convolutions on AVX-512 skip the column matrix altogether: conv2d_gather.hpp
/// gathers its panels straight from the images, and takes the input gradient by stride phases.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/conv2d_gather.hpp"
#include "genmod/kernels/conv2d_geometry.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/kernels/reduce.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

namespace detail {

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

/// The weight [Cout, K] packed once for every group's GEMM: as the left factor W (forward) or W^T
/// (input gradient, `transposed`).
template <class T>
PackedA<T> packed_weight_panels(const Conv2dGeometry& g, const Tensor<T>& w, bool transposed) {
  const Tensor<T> wp = packed_weight(g, w);
  return transposed ? PackedA<T>(true, g.k(), g.cout, wp.data(), g.k())
                    : PackedA<T>(false, g.cout, g.k(), wp.data(), g.k());
}

/// The forward's weight, packed once per call for the path forward_group takes: as the GEMM's
/// left factor W, or, where the forward multiplies straight from the phase stack
/// (forward_direct), as W^T [K, Cout] in panels of 64 output channels, depth-major (panel j:
/// [K, 64], zero past Cout).
template <class T>
struct ForwardWeights {
  PackedA<T> panels;  ///< W, when not direct
  Tensor<T> direct;   ///< W^T panels, when direct
};
template <class T>
ForwardWeights<T> forward_weights(const Conv2dGeometry& g, const Tensor<T>& w) {
  if (!forward_direct<T>(g)) return {packed_weight_panels(g, w, false), Tensor<T>()};
  constexpr std::int64_t NRD = 64;
  const Tensor<T> wp = packed_weight(g, w);
  const std::int64_t K = g.k(), panels = (g.cout + NRD - 1) / NRD;
  Tensor<T> wt = zeros<T>(Shape{panels * K * NRD});
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t k = 0; k < K; ++k) wt[((o / NRD) * K + k) * NRD + o % NRD] = wp[o * K + k];
  return {PackedA<T>(), std::move(wt)};
}

/// Images per GEMM: enough that the GEMM's N dimension (images x output pixels) reaches about 256
/// columns, where a small output (7x7 = 49 pixels) alone would leave the kernel starved of work
/// and re-pack the weight for every image. Pointwise convolutions read the image in place and stay
/// at one.
inline std::int64_t images_per_gemm(const Conv2dGeometry& g) {
  if (g.pointwise() || g.hw_out() >= 128) return 1;
  return std::clamp<std::int64_t>((256 + g.hw_out() - 1) / g.hw_out(), 1, 16);
}

/// Per-thread scratch: the column matrix of a group of images [K, group * HW], a matrix
/// [Cout, group * HW] (grouped outputs or output gradients), and the phase buffer of one image.
template <class T>
struct ConvScratch {
  T* cols;
  T* out;
  T* phases;
};
template <class T>
ConvScratch<T> conv_scratch(const Conv2dGeometry& g, std::int64_t group) {
  thread_local Tensor<T> scratch;
  // Each block rounded up to 16 elements keeps the next one 64-byte aligned.
  const auto round = [](std::int64_t v) { return (v + 15) / 16 * 16; };
  const std::int64_t cols = round(g.k() * g.hw_out() * group), out = round(g.cout * g.hw_out() * group);
  // The phase buffer comes first: col2im_gather addresses a few elements before a column row
  // (never reading them: masked lanes), which must still lie inside this allocation.
  const std::int64_t phases = round(std::max<std::int64_t>(phase_buffer_size(g), 64));
  const std::int64_t need = phases + cols + out;
  if (!scratch.defined() || scratch.numel() < need) scratch = Tensor<T>(Shape{need});
  return {scratch.data() + phases, scratch.data() + phases + cols, scratch.data()};
}

/// The column matrices of `group` consecutive images starting at x, side by side in
/// scratch.cols ([K, group * HW], image j in columns j * HW ..).
template <class T>
void im2col_group(const Conv2dGeometry& g, const T* x, std::int64_t group, const ConvScratch<T>& scratch) {
  const std::int64_t in_size = g.cin * g.h * g.w, hw = g.hw_out();
  for (std::int64_t j = 0; j < group; ++j)
    im2col(g, phase_image(g, x + j * in_size, scratch.phases), scratch.cols + j * hw, group * hw);
}

/// dst[o, j * HW + p] = src[j][o, p] for the `group` images starting at src: per-image [Cout, HW]
/// blocks laid side by side as one [Cout, group * HW] matrix.
template <class T>
void interleave_images(const T* src, T* dst, std::int64_t group, std::int64_t cout, std::int64_t hw) {
  for (std::int64_t j = 0; j < group; ++j)
    for (std::int64_t o = 0; o < cout; ++o)
      std::copy(src + (j * cout + o) * hw, src + (j * cout + o + 1) * hw, dst + o * group * hw + j * hw);
}

/// Number of chunks the batch is split into (one per thread, at most one image each).
inline std::int64_t batch_chunks(const Conv2dGeometry& g) {
  const double flops = 2.0 * static_cast<double>(g.cout) * static_cast<double>(g.k()) * static_cast<double>(g.hw_out());
  if (static_cast<double>(g.n) * flops < 2e6 || in_parallel_region()) return 1;
  return std::min<std::int64_t>(get_num_threads(), g.n);
}

/// Sums the per-chunk weight-gradient blocks of `partial` [chunks, Cout, K] in chunk order and
/// returns the weight gradient in the weight's layout (zero at masked taps).
template <class T>
Tensor<T> reduce_weight_partials(const Conv2dGeometry& g, Tensor<T>& partial) {
  const std::int64_t K = g.k(), chunks = partial.dim(0);
  for (std::int64_t c = 1; c < chunks; ++c) axpy(T(1), partial.data() + c * g.cout * K, partial.data(), g.cout * K);
  // The reduced sum sits in the first block of `partial`, transposed ([K, Cout]) where the
  // weight gradient multiplied straight from the phase stack (weight_grad_direct_group).
  Tensor<T> sum = partial.rows(0, 1).reshape(Shape{g.cout, K});
  if (weight_grad_direct<T>(g)) {
    sum = Tensor<T>(Shape{g.cout, K});
    for (std::int64_t k0 = 0; k0 < K; k0 += 16)
      tile::transpose_rows(partial.data() + k0 * g.cout, g.cout, static_cast<int>(std::min<std::int64_t>(16, K - k0)),
                           g.cout, sum.data() + k0, K);
  }
  if (!g.masked()) return sum.reshape(g.weight_shape());  // a view, no copy
  Tensor<T> dw = zeros<T>(g.weight_shape());
  const std::int64_t nt = g.num_taps(), kk = g.kh * g.kw;
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t ci = 0; ci < g.cin; ++ci)
      for (std::int64_t t = 0; t < nt; ++t) dw[(o * g.cin + ci) * kk + g.tap(t)] = sum[o * K + ci * nt + t];
  return dw;
}

}  // namespace detail

/// Throws ShapeError naming `op` unless x and w fit geometry g.
inline void check_conv_shapes(const Conv2dGeometry& g, const Shape& x, const Shape& w, const char* op) {
  if (!(x == g.input_shape()))
    throw ShapeError(std::string(op) + ": input " + x.to_string() + " does not match the expected " +
                     g.input_shape().to_string());
  if (!(w == g.weight_shape()))
    throw ShapeError(std::string(op) + ": weight " + w.to_string() + " does not match the expected " +
                     g.weight_shape().to_string());
}

namespace detail {

/// Runs body(chunk, first_image, images, scratch) over the batch: the images are split into
/// `chunks` contiguous ranges, one per thread, and each range is walked in groups of
/// images_per_gemm(g) with the thread's own scratch (none for pointwise convolutions).
template <class T, class F>
void for_each_image_group(const Conv2dGeometry& g, std::int64_t chunks, F&& body) {
  const std::int64_t group = images_per_gemm(g);
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto scratch = g.pointwise() ? ConvScratch<T>{} : conv_scratch<T>(g, group);
      const std::int64_t end = g.n * (c + 1) / chunks;
      for (std::int64_t i = g.n * c / chunks; i < end; i += group) body(c, i, std::min(group, end - i), scratch);
    }
  });
}

/// The column matrix of images [i, i + images) of x: the image itself for a pointwise
/// convolution, else built in scratch.cols.
template <class T>
const T* columns_of(const Conv2dGeometry& g, const T* x, std::int64_t i, std::int64_t images,
                    const ConvScratch<T>& scratch) {
  const T* xi = x + i * g.cin * g.h * g.w;
  if (g.pointwise()) return xi;
  im2col_group(g, xi, images, scratch);
  return scratch.cols;
}

/// What a forward built for its images that their weight gradient can use again: the column
/// matrix (explicit path) or the filled phase stack (direct path); null where it built neither.
template <class T>
struct ForwardColumns {
  const T* matrix = nullptr;
  const float* stack = nullptr;
};

/// y (the outputs of `images` consecutive images starting at image i of x) = W cols (+ bias):
/// straight into y for one image, else through scratch.out and copied to place with the bias
/// added. The column panels are gathered from the images where conv2d_gather.hpp can, else
/// packed from the column matrix built in scratch.cols, or multiplied straight from the phase
/// stack (forward_direct); returns the matrix or stack it built, so the fused pass does not build
/// it again for the weight gradient.
template <class T>
ForwardColumns<T> forward_group(const Conv2dGeometry& g, const ForwardWeights<T>& fw, const T* x, std::int64_t i,
                                std::int64_t images, const Tensor<T>& bias, T* y, const ConvScratch<T>& scratch) {
  const std::int64_t HW = g.hw_out(), ld = images * HW;
  const PackedA<T>& wp = fw.panels;
#if defined(__AVX512F__)
  if constexpr (kGatherColumns<T>) {
    if (fw.direct.defined())
      return {nullptr, forward_direct_group(g, fw.direct.data(), x + i * g.cin * g.h * g.w, images,
                                            bias.defined() ? bias.data() : nullptr, y, scratch.out)};
  }
#endif
  T* dst = images == 1 ? y : scratch.out;
  for (std::int64_t o = 0; o < g.cout; ++o)
    std::fill(dst + o * ld, dst + (o + 1) * ld, images == 1 && bias.defined() ? bias[o] : T(0));
  const T* cols = nullptr;
  bool done = false;
#if defined(__AVX512F__)  // the gathered panels (kGatherColumns) exist only there
  if constexpr (kGatherColumns<T>) {
    if (permute_columns<T>(g, images)) {
      const PermuteTables& tables = PermuteTables::of(g, images);
      const float* stack = filled_phase_stack(g, tables, x + i * g.cin * g.h * g.w);
      gemm_packed_serial_with<T>(wp, ld, T(1), PermutedColumns(g, tables, stack), dst, ld);
      done = true;
    } else if (gather_columns<T>(g, images)) {
      gemm_packed_serial_with<T>(wp, ld, T(1), GatheredColumns(forward_columns(g, images), x + i * g.cin * g.h * g.w),
                                 dst, ld);
      done = true;
    }
  }
#endif
  if (!done) {
    cols = columns_of(g, x, i, images, scratch);
    gemm_packed<T>(wp, false, ld, T(1), cols, ld, T(1), dst, ld);
  }
  if (images == 1) return {cols, nullptr};
  for (std::int64_t j = 0; j < images; ++j)
    for (std::int64_t o = 0; o < g.cout; ++o) {
      T* yo = y + (j * g.cout + o) * HW;
      const T* so = scratch.out + o * ld + j * HW;
      const T b = bias.defined() ? bias[o] : T(0);
      for (std::int64_t p = 0; p < HW; ++p) yo[p] = so[p] + b;
    }
  return {cols, nullptr};
}

/// dw [Cout, K] += G cols^T for the output gradients gy of `images` consecutive images starting
/// at image i of x: straight from the images' phase stack where conv2d_gather.hpp can (dw is then
/// [K, Cout], see weight_grad_direct), else G (interleaved into scratch.out when there are several
/// images) times the packed column matrix (`built`: what the forward of these images built, if
/// it ran just before: the matrix or the stack is then not built again).
template <class T>
void weight_grad_group(const Conv2dGeometry& g, const T* x, const T* gy, std::int64_t i, std::int64_t images,
                       const ConvScratch<T>& scratch, T* dw, const ForwardColumns<T>& built = {}) {
  const std::int64_t K = g.k(), HW = g.hw_out(), ld = images * HW;
#if defined(__AVX512F__)
  if constexpr (kGatherColumns<T>) {
    if (weight_grad_direct<T>(g)) {
      weight_grad_direct_group(g, x + i * g.cin * g.h * g.w, gy, images, dw, built.stack);
      return;
    }
  }
#endif
  const T* cols = built.matrix;
  if (images > 1) {
    interleave_images(gy, scratch.out, images, g.cout, HW);
    gy = scratch.out;
  }
  if (cols == nullptr) cols = columns_of(g, x, i, images, scratch);
  gemm<T>(false, true, g.cout, K, ld, T(1), gy, ld, cols, ld, T(1), dw, K);
}

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

/// dX = Cx*(G, W) by stride phases (conv2d_gather.hpp): for each phase, dX's phase pixels =
/// W_phase^T times columns gathered from G, written to place. Returns false, touching nothing,
/// where that path does not serve g.
template <class T>
bool input_grad_by_phases(const Conv2dGeometry& g, const Tensor<T>& grad_out, const Tensor<T>& w, Tensor<T>& dx) {
#if !defined(__AVX512F__)
  (void)g, (void)grad_out, (void)w, (void)dx;
  return false;
#else
  if constexpr (!kGatherColumns<T>) {
    return false;
  } else {
    const std::int64_t group = images_per_gemm(g);
    if (!gather_input_grad<T>(g, group)) return false;
    // W_phase^T [Cin, Cout T'] per phase, packed once per call: A(c, o T' + t) = W[o, c, tap t].
    const std::vector<InputGradPhase>& phases = InputGradPlan::of(g, group).phases;
    // (A reference, so the workers below use this thread's panels, not their own thread_local.)
    thread_local std::vector<PackedA<T>> packed_store;
    std::vector<PackedA<T>>& packed = packed_store;
    packed.resize(phases.size());
    const std::int64_t kk = g.kh * g.kw;
    for (std::size_t p = 0; p < phases.size(); ++p) {
      const std::int64_t nt = static_cast<std::int64_t>(phases[p].taps.size()), depth = g.cout * nt;
      Tensor<T> wp(Shape{g.cin, std::max<std::int64_t>(depth, 1)});
      for (std::int64_t c = 0; c < g.cin; ++c)
        for (std::int64_t o = 0; o < g.cout; ++o)
          for (std::int64_t t = 0; t < nt; ++t)
            wp[c * depth + o * nt + t] = w[(o * g.cin + c) * kk + g.tap(phases[p].taps[static_cast<std::size_t>(t)])];
      packed[p] = PackedA<T>(false, g.cin, depth, wp.data(), std::max<std::int64_t>(depth, 1));
    }
    const std::int64_t in_size = g.cin * g.h * g.w, out_size = g.cout * g.hw_out(), chunks = batch_chunks(g);
    parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t chunk = c0; chunk < c1; ++chunk) {
        const std::int64_t end = g.n * (chunk + 1) / chunks;
        for (std::int64_t i = g.n * chunk / chunks; i < end; i += group) {
          const std::int64_t images = std::min(group, end - i);
          const InputGradPlan& plan = InputGradPlan::of(g, images);
          // Each phase's product lands in its own block of the scratch; the blocks are then
          // interleaved into dX row by row.
          const std::size_t phases_n = plan.phases.size();
          std::int64_t total = 0;
          for (const InputGradPhase& ph : plan.phases) total += g.cin * images * ph.pixels();
          thread_local Tensor<T> scratch;
          if (!scratch.defined() || scratch.numel() < total)
            scratch = Tensor<T>(Shape{std::max<std::int64_t>(total, 1)});
          std::fill(scratch.data(), scratch.data() + total, T(0));
          thread_local std::vector<const T*> block_store;
          std::vector<const T*>& block = block_store;
          block.assign(phases_n, nullptr);
          T* next = scratch.data();
          for (std::size_t p = 0; p < phases_n; ++p) {
            const std::int64_t ld = images * plan.phases[p].pixels();
            block[p] = next;
            if (ld > 0)
              gemm_packed_serial_with<T>(packed[p], ld, T(1),
                                         GatheredColumns(plan.columns[p], grad_out.data() + i * out_size), next, ld);
            next += g.cin * ld;
          }
          write_phases(g, plan.phases, block.data(), images, dx.data() + i * in_size);
        }
      }
    });
    return true;
  }
#endif
}

}  // namespace detail

/// Y = C(X, W) (+ bias per output channel when `bias` is defined).
template <class T>
Tensor<T> conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias) {
  Tensor<T> y(g.output_shape());
  const detail::ForwardWeights<T> fw = detail::forward_weights(g, w);
  const std::int64_t out_size = g.cout * g.hw_out();
  detail::for_each_image_group<T>(
      g, detail::batch_chunks(g), [&](std::int64_t, std::int64_t i, std::int64_t n, const auto& scratch) {
        detail::forward_group(g, fw, x.data(), i, n, bias, y.data() + i * out_size, scratch);
      });
  return y;
}

/// X = Cx*(G, W): the gradient of <G, C(X, W)> with respect to X; also the transposed convolution.
template <class T>
Tensor<T> conv2d_input_grad(const Conv2dGeometry& g, const Tensor<T>& grad_out, const Tensor<T>& w) {
  Tensor<T> dx(g.input_shape());
  if (detail::input_grad_by_phases(g, grad_out, w, dx)) return dx;
  const PackedA<T> wp = detail::packed_weight_panels(g, w, true);
  const std::int64_t HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const T* G = grad_out.data();
  T* DX = dx.data();
  detail::for_each_image_group<T>(
      g, detail::batch_chunks(g), [&](std::int64_t, std::int64_t i, std::int64_t n, const auto& scratch) {
        const std::int64_t ld = n * HW;
        if (g.pointwise()) {
          gemm_packed<T>(wp, false, HW, T(1), G + i * out_size, HW, T(0), DX + i * in_size, HW);
          return;
        }
        const T* src = G + i * out_size;
        if (n > 1) {
          detail::interleave_images(src, scratch.out, n, g.cout, HW);
          src = scratch.out;
        }
        gemm_packed<T>(wp, false, ld, T(1), src, ld, T(0), scratch.cols, ld);
        for (std::int64_t j = 0; j < n; ++j)
          detail::col2im(g, scratch.cols + j * HW, ld, scratch.phases, DX + (i + j) * in_size);
      });
  return dx;
}

/// W = Cw*(X, G): the gradient of <G, C(X, W)> with respect to W (zero at masked taps).
template <class T>
Tensor<T> conv2d_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& grad_out) {
  const std::int64_t K = g.k(), out_size = g.cout * g.hw_out(), chunks = detail::batch_chunks(g);
  Tensor<T> partial = zeros<T>(Shape{chunks, g.cout, K});
  detail::for_each_image_group<T>(g, chunks, [&](std::int64_t c, std::int64_t i, std::int64_t n, const auto& scratch) {
    detail::weight_grad_group(g, x.data(), grad_out.data() + i * out_size, i, n, scratch,
                              partial.data() + c * g.cout * K);
  });
  return detail::reduce_weight_partials(g, partial);
}

/// (C(X, W), Cw*(X, G)) from one im2col of X: a transposed convolution's backward needs both
/// (the gradient of its input is a convolution of the incoming gradient, the gradient of its
/// weight the weight adjoint of that same tensor), and building the column matrix once saves a
/// third of the pass.
template <class T>
std::pair<Tensor<T>, Tensor<T>> conv2d_forward_and_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x,
                                                               const Tensor<T>& w, const Tensor<T>& grad_out) {
  Tensor<T> y(g.output_shape());
  const detail::ForwardWeights<T> fw = detail::forward_weights(g, w);
  const std::int64_t K = g.k(), out_size = g.cout * g.hw_out(), chunks = detail::batch_chunks(g);
  Tensor<T> partial = zeros<T>(Shape{chunks, g.cout, K});
  detail::for_each_image_group<T>(g, chunks, [&](std::int64_t c, std::int64_t i, std::int64_t n, const auto& scratch) {
    // The forward's grouped result passes through scratch.out before the gradients use it.
    const auto built = detail::forward_group(g, fw, x.data(), i, n, Tensor<T>(), y.data() + i * out_size, scratch);
    detail::weight_grad_group(g, x.data(), grad_out.data() + i * out_size, i, n, scratch,
                              partial.data() + c * g.cout * K, built);
  });
  return {std::move(y), detail::reduce_weight_partials(g, partial)};
}

/// Sum of G over N, H, W per channel: the bias gradient.
template <class T>
Tensor<T> conv2d_bias_grad(const Tensor<T>& grad_out) {
  const std::int64_t n = grad_out.dim(0), c = grad_out.dim(1), hw = grad_out.dim(2) * grad_out.dim(3);
  Tensor<T> db(Shape{c});
  channel_sum(ChannelLayout{n, c, hw}, grad_out.data(), db.data());
  return db;
}

}  // namespace genmod::kernels
