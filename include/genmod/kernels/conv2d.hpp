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

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

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
inline std::int64_t padded_h(const Conv2dGeometry& g) {
  return g.h + 2 * g.pad_h;
}
inline std::int64_t padded_w(const Conv2dGeometry& g) {
  return g.w + 2 * g.pad_w;
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

/// cols[(c * T + t), oy * Wo + ox] = padded x[c][oy * sh + ky * dh][ox * sw + kx * dw] for kept tap
/// t = (ky, kx); rows of cols are `ld` apart (ld >= HW lets several images sit side by side in one
/// column matrix). Every read is inside the padded image (the output extent was computed from
/// it), so there are no bounds checks; unit-stride rows are block copies.
template <class T>
void im2col(const Conv2dGeometry& g, const T* xpad, T* cols, std::int64_t ld) {
  const std::int64_t nt = g.num_taps(), wp = padded_w(g), plane = padded_h(g) * wp;
  const std::int64_t sh = g.stride_h, sw = g.stride_w, wo = g.wo;
  for (std::int64_t c = 0; c < g.cin; ++c) {
    const T* base = xpad + c * plane;
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int64_t tap = g.tap(t), ky = tap / g.kw, kx = tap % g.kw;
      const T* first = base + ky * g.dil_h * wp + kx * g.dil_w;
      T* row = cols + (c * nt + t) * ld;
      for (std::int64_t oy = 0; oy < g.ho; ++oy) {
        const T* src = first + oy * sh * wp;
        T* dst = row + oy * wo;
        if (sw == 1)
          std::copy(src, src + wo, dst);
        else
          for (std::int64_t ox = 0; ox < wo; ++ox) dst[ox] = src[ox * sw];
      }
    }
  }
}

/// The adjoint of im2col: dx [Cin, H, W] = crop of the scatter-add of cols (rows `ld` apart) into
/// a padded image.
template <class T>
void col2im(const Conv2dGeometry& g, const T* cols, std::int64_t ld, T* pad, T* dx) {
  const std::int64_t nt = g.num_taps(), hp = padded_h(g), wp = padded_w(g), plane = hp * wp;
  const std::int64_t sh = g.stride_h, sw = g.stride_w, wo = g.wo;
  const bool padded = g.pad_h != 0 || g.pad_w != 0;
  T* acc = padded ? pad : dx;
  std::fill(acc, acc + g.cin * plane, T(0));
  for (std::int64_t c = 0; c < g.cin; ++c) {
    T* base = acc + c * plane;
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int64_t tap = g.tap(t), ky = tap / g.kw, kx = tap % g.kw;
      T* first = base + ky * g.dil_h * wp + kx * g.dil_w;
      const T* row = cols + (c * nt + t) * ld;
      for (std::int64_t oy = 0; oy < g.ho; ++oy) {
        T* dst = first + oy * sh * wp;
        const T* src = row + oy * wo;
        if (sw == 1)
          for (std::int64_t ox = 0; ox < wo; ++ox) dst[ox] += src[ox];
        else
          for (std::int64_t ox = 0; ox < wo; ++ox) dst[ox * sw] += src[ox];
      }
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

/// Images per GEMM: enough that the GEMM's N dimension (images x output pixels) reaches about 256
/// columns, where a small output (7x7 = 49 pixels) alone would leave the kernel starved of work
/// and re-pack the weight for every image. Pointwise convolutions read the image in place and stay
/// at one.
inline std::int64_t images_per_gemm(const Conv2dGeometry& g) {
  if (g.pointwise() || g.hw_out() >= 128) return 1;
  return std::clamp<std::int64_t>((256 + g.hw_out() - 1) / g.hw_out(), 1, 16);
}

/// Per-thread scratch: the column matrix of a group of images [K, group * HW], a matrix
/// [Cout, group * HW] (grouped outputs or output gradients), and one padded image.
template <class T>
struct ConvScratch {
  T* cols;
  T* out;
  T* pad;
};
template <class T>
ConvScratch<T> conv_scratch(const Conv2dGeometry& g, std::int64_t group) {
  thread_local Tensor<T> scratch;
  // Each block rounded up to 16 elements keeps the next one 64-byte aligned.
  const auto round = [](std::int64_t v) { return (v + 15) / 16 * 16; };
  const std::int64_t cols = round(g.k() * g.hw_out() * group), out = round(g.cout * g.hw_out() * group);
  const std::int64_t need = cols + out + g.cin * padded_h(g) * padded_w(g);
  if (!scratch.defined() || scratch.numel() < need) scratch = Tensor<T>(Shape{need});
  return {scratch.data(), scratch.data() + cols, scratch.data() + cols + out};
}

/// The column matrices of `group` consecutive images starting at x, side by side in
/// scratch.cols ([K, group * HW], image j in columns j * HW ..).
template <class T>
void im2col_group(const Conv2dGeometry& g, const T* x, std::int64_t group, const ConvScratch<T>& scratch) {
  const std::int64_t in_size = g.cin * g.h * g.w, hw = g.hw_out();
  for (std::int64_t j = 0; j < group; ++j)
    im2col(g, pad_image(g, x + j * in_size, scratch.pad), scratch.cols + j * hw, group * hw);
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
  // The reduced sum sits in the first block of `partial`: return it as a view, no copy.
  if (!g.masked()) return partial.rows(0, 1).reshape(g.weight_shape());
  Tensor<T> dw = zeros<T>(g.weight_shape());
  const std::int64_t nt = g.num_taps(), kk = g.kh * g.kw;
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t ci = 0; ci < g.cin; ++ci)
      for (std::int64_t t = 0; t < nt; ++t) dw[(o * g.cin + ci) * kk + g.tap(t)] = partial[(o * g.cin + ci) * nt + t];
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

/// Y = C(X, W) (+ bias per output channel when `bias` is defined).
template <class T>
Tensor<T> conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias) {
  Tensor<T> y(g.output_shape());
  const Tensor<T> wp = detail::packed_weight(g, w);
  const std::int64_t K = g.k(), HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const std::int64_t chunks = detail::batch_chunks(g), group = detail::images_per_gemm(g);
  const T* X = x.data();
  T* Y = y.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g, group);
      const std::int64_t end = g.n * (c + 1) / chunks;
      for (std::int64_t i = g.n * c / chunks; i < end; i += group) {
        const std::int64_t gi = std::min(group, end - i), ld = gi * HW;
        if (g.pointwise()) {
          T* yi = Y + i * out_size;
          if (bias.defined())
            for (std::int64_t o = 0; o < g.cout; ++o) std::fill(yi + o * HW, yi + (o + 1) * HW, bias[o]);
          gemm<T>(false, false, g.cout, HW, K, T(1), wp.data(), K, X + i * in_size, HW, bias.defined() ? T(1) : T(0),
                  yi, HW);
          continue;
        }
        detail::im2col_group(g, X + i * in_size, gi, scratch);
        if (gi == 1) {  // straight into Y, on top of the bias
          T* yi = Y + i * out_size;
          if (bias.defined())
            for (std::int64_t o = 0; o < g.cout; ++o) std::fill(yi + o * HW, yi + (o + 1) * HW, bias[o]);
          gemm<T>(false, false, g.cout, HW, K, T(1), wp.data(), K, scratch.cols, HW, bias.defined() ? T(1) : T(0), yi,
                  HW);
          continue;
        }
        // A group: into scratch, then each image's block to its place with the bias added.
        gemm<T>(false, false, g.cout, ld, K, T(1), wp.data(), K, scratch.cols, ld, T(0), scratch.out, ld);
        for (std::int64_t j = 0; j < gi; ++j)
          for (std::int64_t o = 0; o < g.cout; ++o) {
            T* yo = Y + (i + j) * out_size + o * HW;
            const T* so = scratch.out + o * ld + j * HW;
            const T b = bias.defined() ? bias[o] : T(0);
            for (std::int64_t p = 0; p < HW; ++p) yo[p] = so[p] + b;
          }
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
  const std::int64_t chunks = detail::batch_chunks(g), group = detail::images_per_gemm(g);
  const T* G = grad_out.data();
  T* DX = dx.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g, group);
      const std::int64_t end = g.n * (c + 1) / chunks;
      for (std::int64_t i = g.n * c / chunks; i < end; i += group) {
        const std::int64_t gi = std::min(group, end - i), ld = gi * HW;
        if (g.pointwise()) {
          gemm<T>(true, false, K, HW, g.cout, T(1), wp.data(), K, G + i * out_size, HW, T(0), DX + i * in_size, HW);
          continue;
        }
        const T* src = G + i * out_size;
        if (gi > 1) {
          detail::interleave_images(src, scratch.out, gi, g.cout, HW);
          src = scratch.out;
        }
        gemm<T>(true, false, K, ld, g.cout, T(1), wp.data(), K, src, ld, T(0), scratch.cols, ld);
        for (std::int64_t j = 0; j < gi; ++j)
          detail::col2im(g, scratch.cols + j * HW, ld, scratch.pad, DX + (i + j) * in_size);
      }
    }
  });
  return dx;
}

/// W = Cw*(X, G): the gradient of <G, C(X, W)> with respect to W (zero at masked taps).
template <class T>
Tensor<T> conv2d_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& grad_out) {
  const std::int64_t K = g.k(), HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const std::int64_t chunks = detail::batch_chunks(g), group = detail::images_per_gemm(g);
  Tensor<T> partial(Shape{chunks, g.cout, K});
  const T* X = x.data();
  const T* G = grad_out.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* dw = partial.data() + c * g.cout * K;
      std::fill(dw, dw + g.cout * K, T(0));
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g, group);
      const std::int64_t end = g.n * (c + 1) / chunks;
      for (std::int64_t i = g.n * c / chunks; i < end; i += group) {
        const std::int64_t gi = std::min(group, end - i), ld = gi * HW;
        if (g.pointwise()) {
          gemm<T>(false, true, g.cout, K, HW, T(1), G + i * out_size, HW, X + i * in_size, HW, T(1), dw, K);
          continue;
        }
        detail::im2col_group(g, X + i * in_size, gi, scratch);
        const T* src = G + i * out_size;
        if (gi > 1) {
          detail::interleave_images(src, scratch.out, gi, g.cout, HW);
          src = scratch.out;
        }
        gemm<T>(false, true, g.cout, K, ld, T(1), src, ld, scratch.cols, ld, T(1), dw, K);
      }
    }
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
  const Tensor<T> wp = detail::packed_weight(g, w);
  const std::int64_t K = g.k(), HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const std::int64_t chunks = detail::batch_chunks(g), group = detail::images_per_gemm(g);
  Tensor<T> partial(Shape{chunks, g.cout, K});
  const T* X = x.data();
  const T* G = grad_out.data();
  T* Y = y.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* dw = partial.data() + c * g.cout * K;
      std::fill(dw, dw + g.cout * K, T(0));
      const auto scratch = g.pointwise() ? detail::ConvScratch<T>{} : detail::conv_scratch<T>(g, group);
      const std::int64_t end = g.n * (c + 1) / chunks;
      for (std::int64_t i = g.n * c / chunks; i < end; i += group) {
        const std::int64_t gi = std::min(group, end - i), ld = gi * HW;
        if (g.pointwise()) {
          gemm<T>(false, false, g.cout, HW, K, T(1), wp.data(), K, X + i * in_size, HW, T(0), Y + i * out_size, HW);
          gemm<T>(false, true, g.cout, K, HW, T(1), G + i * out_size, HW, X + i * in_size, HW, T(1), dw, K);
          continue;
        }
        detail::im2col_group(g, X + i * in_size, gi, scratch);
        if (gi == 1) {
          gemm<T>(false, false, g.cout, HW, K, T(1), wp.data(), K, scratch.cols, HW, T(0), Y + i * out_size, HW);
          gemm<T>(false, true, g.cout, K, HW, T(1), G + i * out_size, HW, scratch.cols, HW, T(1), dw, K);
          continue;
        }
        gemm<T>(false, false, g.cout, ld, K, T(1), wp.data(), K, scratch.cols, ld, T(0), scratch.out, ld);
        for (std::int64_t j = 0; j < gi; ++j)
          for (std::int64_t o = 0; o < g.cout; ++o)
            std::copy(scratch.out + o * ld + j * HW, scratch.out + o * ld + (j + 1) * HW,
                      Y + (i + j) * out_size + o * HW);
        detail::interleave_images(G + i * out_size, scratch.out, gi, g.cout, HW);
        gemm<T>(false, true, g.cout, K, ld, T(1), scratch.out, ld, scratch.cols, ld, T(1), dw, K);
      }
    }
  });
  return {std::move(y), detail::reduce_weight_partials(g, partial)};
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
