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
/// Why per image: the column matrix of one image (K x HW) stays in cache, where a batched
/// im2col would stream N times more memory through the GEMM. Images are spread over threads,
/// each running a single-threaded GEMM on its own scratch; the weight gradient is reduced from
/// per-thread partial sums in a fixed order, so results do not depend on scheduling.
///
/// Masked convolutions (PixelCNN) list the kernel taps they keep; im2col packs only those rows,
/// so skipped taps cost nothing (a 7x7 type-A mask keeps 24 of 49).

#include <algorithm>
#include <array>
#include <span>
#include <cstdint>
#include <cstring>
#include <string>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"

namespace genmod::kernels {

/// Shapes and hyperparameters of one convolution C: input [N, Cin, H, W] -> output [N, Cout, Ho, Wo]
/// with weight [Cout, Cin, KH, KW].
struct Conv2dGeometry {
  std::int64_t n = 0, cin = 0, h = 0, w = 0;
  std::int64_t cout = 0, kh = 0, kw = 0;
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  std::int64_t ho = 0, wo = 0;

  /// Largest kernel (kh * kw) a masked convolution may have.
  static constexpr int kMaxMaskedTaps = 64;
  /// Kept taps as ky * kw + kx, ascending, when masked (a fixed array: geometries are captured
  /// by tape nodes, which must not allocate).
  std::array<std::int16_t, kMaxMaskedTaps> kept{};
  std::int32_t n_kept = 0;  ///< 0: dense, every tap kept

  bool masked() const { return n_kept > 0; }
  std::int64_t num_taps() const { return masked() ? n_kept : kh * kw; }
  std::int64_t tap(std::int64_t t) const { return masked() ? kept[static_cast<std::size_t>(t)] : t; }

  /// Keeps only the taps where keep[ky * kw + kx] is true (at least one).
  void set_mask(std::span<const bool> keep) {
    if (static_cast<std::int64_t>(keep.size()) != kh * kw)
      throw ShapeError("Conv2dGeometry::set_mask: " + std::to_string(keep.size()) + " mask entries for a " +
                       std::to_string(kh) + "x" + std::to_string(kw) + " kernel");
    if (kh * kw > kMaxMaskedTaps)
      throw ValueError("Conv2dGeometry::set_mask: masked kernels may have at most " + std::to_string(kMaxMaskedTaps) +
                       " taps, got " + std::to_string(kh * kw));
    n_kept = 0;
    for (std::size_t t = 0; t < keep.size(); ++t)
      if (keep[t]) kept[static_cast<std::size_t>(n_kept++)] = static_cast<std::int16_t>(t);
    if (n_kept == 0) throw ValueError("Conv2dGeometry::set_mask: the mask keeps no tap");
    if (n_kept == kh * kw) n_kept = 0;  // nothing masked: the dense path
  }
  /// Rows of the column matrix: Cin x kept taps.
  std::int64_t k() const { return cin * num_taps(); }
  std::int64_t hw_out() const { return ho * wo; }
  /// A 1x1, stride-1, unpadded convolution needs no im2col: the image is its own column matrix.
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0 && !masked();
  }
  Shape input_shape() const { return Shape{n, cin, h, w}; }
  Shape output_shape() const { return Shape{n, cout, ho, wo}; }
  Shape weight_shape() const { return Shape{cout, cin, kh, kw}; }
};

/// Output extent of a convolution along one axis, or -1 when the kernel does not fit.
inline std::int64_t conv_out_extent(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p, std::int64_t d) {
  const std::int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span) return -1;
  return (in + 2 * p - span) / s + 1;
}

namespace detail {

/// Extents of the zero-padded input image.
inline std::int64_t padded_h(const Conv2dGeometry& g) { return g.h + 2 * g.pad_h; }
inline std::int64_t padded_w(const Conv2dGeometry& g) { return g.w + 2 * g.pad_w; }

/// For each kept tap t and output pixel j = oy * wo + ox, the offset of its input pixel in the
/// zero-padded image: (oy*s + ky*d) * Wp + (ox*s + kx*d). Every such offset is inside the padded
/// image (the output extent was computed from it), so im2col needs no bounds checks. One table per
/// convolution call, shared by all channels, images and threads.
inline Tensor<std::int32_t> tap_offsets(const Conv2dGeometry& g) {
  const std::int64_t nt = g.num_taps(), hw = g.hw_out(), wp = padded_w(g);
  Tensor<std::int32_t> off(Shape{nt, hw});
  for (std::int64_t t = 0; t < nt; ++t) {
    const std::int64_t tap = g.tap(t), ky = tap / g.kw, kx = tap % g.kw;
    std::int32_t* o = off.data() + t * hw;
    for (std::int64_t oy = 0; oy < g.ho; ++oy)
      for (std::int64_t ox = 0; ox < g.wo; ++ox)
        o[oy * g.wo + ox] =
            static_cast<std::int32_t>((oy * g.stride_h + ky * g.dil_h) * wp + ox * g.stride_w + kx * g.dil_w);
  }
  return off;
}

/// The image x [Cin, H, W] zero-padded into pad [Cin, Hp, Wp] (returns x itself when unpadded).
template <class T>
const T* pad_image(const Conv2dGeometry& g, const T* x, T* pad) {
  if (g.pad_h == 0 && g.pad_w == 0) return x;
  const std::int64_t hp = padded_h(g), wp = padded_w(g);
  std::fill(pad, pad + g.cin * hp * wp, T(0));
  for (std::int64_t c = 0; c < g.cin; ++c)
    for (std::int64_t y = 0; y < g.h; ++y)
      std::copy(x + (c * g.h + y) * g.w, x + (c * g.h + y + 1) * g.w, pad + (c * hp + y + g.pad_h) * wp + g.pad_w);
  return pad;
}

/// cols[(c * T + t), j] = padded x[c] at offset[t][j].
template <class T>
void im2col(const Conv2dGeometry& g, const Tensor<std::int32_t>& offsets, const T* xpad, T* cols) {
  const std::int64_t nt = g.num_taps(), hw = g.hw_out(), plane = padded_h(g) * padded_w(g);
  const bool rows_contiguous = g.stride_w == 1;
  for (std::int64_t c = 0; c < g.cin; ++c) {
    const T* base = xpad + c * plane;
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int32_t* off = offsets.data() + t * hw;
      T* row = cols + (c * nt + t) * hw;
      if (rows_contiguous) {
        for (std::int64_t oy = 0; oy < g.ho; ++oy) {
          const T* src = base + off[oy * g.wo];
          std::copy(src, src + g.wo, row + oy * g.wo);
        }
      } else {
        for (std::int64_t j = 0; j < hw; ++j) row[j] = base[off[j]];
      }
    }
  }
}

/// The adjoint of im2col: dx [Cin, H, W] = crop of the scatter-add of cols into a padded image.
template <class T>
void col2im(const Conv2dGeometry& g, const Tensor<std::int32_t>& offsets, const T* cols, T* pad, T* dx) {
  const std::int64_t nt = g.num_taps(), hw = g.hw_out(), hp = padded_h(g), wp = padded_w(g), plane = hp * wp;
  const bool padded = g.pad_h != 0 || g.pad_w != 0;
  T* acc = padded ? pad : dx;
  std::fill(acc, acc + g.cin * plane, T(0));
  for (std::int64_t c = 0; c < g.cin; ++c) {
    T* base = acc + c * plane;
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int32_t* off = offsets.data() + t * hw;
      const T* row = cols + (c * nt + t) * hw;
      for (std::int64_t j = 0; j < hw; ++j) base[off[j]] += row[j];
    }
  }
  if (padded)
    for (std::int64_t c = 0; c < g.cin; ++c)
      for (std::int64_t y = 0; y < g.h; ++y)
        std::copy(pad + (c * hp + y + g.pad_h) * wp + g.pad_w, pad + (c * hp + y + g.pad_h) * wp + g.pad_w + g.w,
                  dx + (c * g.h + y) * g.w);
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

/// Per-thread scratch: the column matrix of one image, then its padded copy.
template <class T>
struct ConvScratch {
  T* cols;
  T* pad;
};
template <class T>
ConvScratch<T> conv_scratch(const Conv2dGeometry& g) {
  thread_local Tensor<T> scratch;
  const std::int64_t cols = g.k() * g.hw_out(), pad = g.cin * padded_h(g) * padded_w(g);
  // 16 elements of margin keep the second block 64-byte aligned.
  const std::int64_t need = (cols + 15) / 16 * 16 + pad;
  if (!scratch.defined() || scratch.numel() < need) scratch = Tensor<T>(Shape{need});
  return {scratch.data(), scratch.data() + (cols + 15) / 16 * 16};
}

/// Number of chunks the batch is split into (one per thread, at most one image each).
inline std::int64_t batch_chunks(const Conv2dGeometry& g) {
  const double flops = 2.0 * static_cast<double>(g.cout) * static_cast<double>(g.k()) * static_cast<double>(g.hw_out());
  if (static_cast<double>(g.n) * flops < 2e6 || in_parallel_region()) return 1;
  return std::min<std::int64_t>(get_num_threads(), g.n);
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

/// Y = C(X, W) (+ bias per output channel when `bias` is defined).
template <class T>
Tensor<T> conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias) {
  Tensor<T> y(g.output_shape());
  const Tensor<T> wp = detail::packed_weight(g, w);
  const std::int64_t K = g.k(), HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const std::int64_t chunks = detail::batch_chunks(g);
  const Tensor<std::int32_t> offsets = g.pointwise() ? Tensor<std::int32_t>() : detail::tap_offsets(g);
  const T* X = x.data();
  T* Y = y.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g);
      for (std::int64_t i = g.n * c / chunks; i < g.n * (c + 1) / chunks; ++i) {
        const T* colsrc = g.pointwise() ? X + i * in_size : scratch.cols;
        if (!g.pointwise())
          detail::im2col(g, offsets, detail::pad_image(g, X + i * in_size, scratch.pad), scratch.cols);
        T* yi = Y + i * out_size;
        if (bias.defined())
          for (std::int64_t o = 0; o < g.cout; ++o) std::fill(yi + o * HW, yi + (o + 1) * HW, bias[o]);
        gemm<T>(false, false, g.cout, HW, K, T(1), wp.data(), K, colsrc, HW, bias.defined() ? T(1) : T(0), yi, HW);
      }
    }
  });
  return y;
}

/// X = Cx*(G, W): the gradient of <G, C(X, W)> with respect to X; also the transposed convolution.
template <class T>
Tensor<T> conv2d_input_grad(const Conv2dGeometry& g, const Tensor<T>& grad_out, const Tensor<T>& w) {
  Tensor<T> dx(g.input_shape());
  const Tensor<T> wp = detail::packed_weight(g, w);
  const std::int64_t K = g.k(), HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const std::int64_t chunks = detail::batch_chunks(g);
  const Tensor<std::int32_t> offsets = g.pointwise() ? Tensor<std::int32_t>() : detail::tap_offsets(g);
  const T* G = grad_out.data();
  T* DX = dx.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g);
      for (std::int64_t i = g.n * c / chunks; i < g.n * (c + 1) / chunks; ++i) {
        T* dst = g.pointwise() ? DX + i * in_size : scratch.cols;
        gemm<T>(true, false, K, HW, g.cout, T(1), wp.data(), K, G + i * out_size, HW, T(0), dst, HW);
        if (!g.pointwise()) detail::col2im(g, offsets, scratch.cols, scratch.pad, DX + i * in_size);
      }
    }
  });
  return dx;
}

/// W = Cw*(X, G): the gradient of <G, C(X, W)> with respect to W (zero at masked taps).
template <class T>
Tensor<T> conv2d_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& grad_out) {
  const std::int64_t K = g.k(), HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const std::int64_t chunks = detail::batch_chunks(g);
  Tensor<T> partial(Shape{chunks, g.cout, K});
  const Tensor<std::int32_t> offsets = g.pointwise() ? Tensor<std::int32_t>() : detail::tap_offsets(g);
  const T* X = x.data();
  const T* G = grad_out.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* dw = partial.data() + c * g.cout * K;
      std::fill(dw, dw + g.cout * K, T(0));
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g);
      for (std::int64_t i = g.n * c / chunks; i < g.n * (c + 1) / chunks; ++i) {
        const T* colsrc = g.pointwise() ? X + i * in_size : scratch.cols;
        if (!g.pointwise())
          detail::im2col(g, offsets, detail::pad_image(g, X + i * in_size, scratch.pad), scratch.cols);
        gemm<T>(false, true, g.cout, K, HW, T(1), G + i * out_size, HW, colsrc, HW, T(1), dw, K);
      }
    }
  });
  for (std::int64_t c = 1; c < chunks; ++c) axpy(T(1), partial.data() + c * g.cout * K, partial.data(), g.cout * K);
  // The reduced sum sits in the first block of `partial`: return it as a view, no copy.
  if (!g.masked()) return partial.rows(0, 1).reshape(g.weight_shape());
  Tensor<T> dw = zeros<T>(g.weight_shape());
  const std::int64_t nt = g.num_taps(), kk = g.kh * g.kw;
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t ci = 0; ci < g.cin; ++ci)
      for (std::int64_t t = 0; t < nt; ++t) dw[(o * g.cin + ci) * kk + g.tap(t)] = partial[(o * g.cin + ci) * nt + t];
  return dw;
}

/// Sum of G over N, H, W per channel: the bias gradient.
template <class T>
Tensor<T> conv2d_bias_grad(const Tensor<T>& grad_out) {
  const std::int64_t n = grad_out.dim(0), c = grad_out.dim(1), hw = grad_out.dim(2) * grad_out.dim(3);
  Tensor<T> db = zeros<T>(Shape{c});
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t o = 0; o < c; ++o) {
      const T* p = grad_out.data() + (i * c + o) * hw;
      T s = 0;
      for (std::int64_t j = 0; j < hw; ++j) s += p[j];
      db[o] += s;
    }
  return db;
}

}  // namespace genmod::kernels
