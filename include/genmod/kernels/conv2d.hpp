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

/// cols[(c * T + t), oy * wo + ox] = x[c, oy*s - p + ky*d, ox*s - p + kx*d] (0 outside).
template <class T>
void im2col(const Conv2dGeometry& g, const T* x, T* cols) {
  const std::int64_t nt = g.num_taps(), hw = g.hw_out();
  for (std::int64_t c = 0; c < g.cin; ++c) {
    const T* xc = x + c * g.h * g.w;
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int64_t tap = g.tap(t), ky = tap / g.kw, kx = tap % g.kw;
      T* row = cols + (c * nt + t) * hw;
      for (std::int64_t oy = 0; oy < g.ho; ++oy) {
        const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dil_h;
        T* out = row + oy * g.wo;
        if (iy < 0 || iy >= g.h) {
          std::fill(out, out + g.wo, T(0));
          continue;
        }
        const T* in = xc + iy * g.w;
        const std::int64_t x0 = kx * g.dil_w - g.pad_w;
        if (g.stride_w == 1) {
          // Contiguous: zeros, a copied run, zeros.
          const std::int64_t lo = std::clamp<std::int64_t>(-x0, 0, g.wo);
          const std::int64_t hi = std::clamp<std::int64_t>(g.w - x0, lo, g.wo);
          std::fill(out, out + lo, T(0));
          std::copy(in + x0 + lo, in + x0 + hi, out + lo);
          std::fill(out + hi, out + g.wo, T(0));
        } else {
          for (std::int64_t ox = 0; ox < g.wo; ++ox) {
            const std::int64_t ix = x0 + ox * g.stride_w;
            out[ox] = (ix >= 0 && ix < g.w) ? in[ix] : T(0);
          }
        }
      }
    }
  }
}

/// The adjoint of im2col: x[c, iy, ix] += cols[...] (x zeroed first).
template <class T>
void col2im(const Conv2dGeometry& g, const T* cols, T* x) {
  std::fill(x, x + g.cin * g.h * g.w, T(0));
  const std::int64_t nt = g.num_taps(), hw = g.hw_out();
  for (std::int64_t c = 0; c < g.cin; ++c) {
    T* xc = x + c * g.h * g.w;
    for (std::int64_t t = 0; t < nt; ++t) {
      const std::int64_t tap = g.tap(t), ky = tap / g.kw, kx = tap % g.kw;
      const T* row = cols + (c * nt + t) * hw;
      for (std::int64_t oy = 0; oy < g.ho; ++oy) {
        const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dil_h;
        if (iy < 0 || iy >= g.h) continue;
        T* in = xc + iy * g.w;
        const T* src = row + oy * g.wo;
        const std::int64_t x0 = kx * g.dil_w - g.pad_w;
        if (g.stride_w == 1) {
          const std::int64_t lo = std::clamp<std::int64_t>(-x0, 0, g.wo);
          const std::int64_t hi = std::clamp<std::int64_t>(g.w - x0, lo, g.wo);
          for (std::int64_t ox = lo; ox < hi; ++ox) in[x0 + ox] += src[ox];
        } else {
          for (std::int64_t ox = 0; ox < g.wo; ++ox) {
            const std::int64_t ix = x0 + ox * g.stride_w;
            if (ix >= 0 && ix < g.w) in[ix] += src[ox];
          }
        }
      }
    }
  }
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

/// Per-thread column scratch of at least `n` elements.
template <class T>
T* column_scratch(std::int64_t n) {
  thread_local Tensor<T> scratch;
  if (!scratch.defined() || scratch.numel() < n) scratch = Tensor<T>(Shape{n});
  return scratch.data();
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
  const T* X = x.data();
  T* Y = y.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* cols = g.pointwise() ? nullptr : detail::column_scratch<T>(K * HW);
      for (std::int64_t i = g.n * c / chunks; i < g.n * (c + 1) / chunks; ++i) {
        const T* colsrc = g.pointwise() ? X + i * in_size : cols;
        if (!g.pointwise()) detail::im2col(g, X + i * in_size, cols);
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
  const T* G = grad_out.data();
  T* DX = dx.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* cols = g.pointwise() ? nullptr : detail::column_scratch<T>(K * HW);
      for (std::int64_t i = g.n * c / chunks; i < g.n * (c + 1) / chunks; ++i) {
        T* dst = g.pointwise() ? DX + i * in_size : cols;
        gemm<T>(true, false, K, HW, g.cout, T(1), wp.data(), K, G + i * out_size, HW, T(0), dst, HW);
        if (!g.pointwise()) detail::col2im(g, cols, DX + i * in_size);
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
  const T* X = x.data();
  const T* G = grad_out.data();
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      T* dw = partial.data() + c * g.cout * K;
      std::fill(dw, dw + g.cout * K, T(0));
      T* cols = g.pointwise() ? nullptr : detail::column_scratch<T>(K * HW);
      for (std::int64_t i = g.n * c / chunks; i < g.n * (c + 1) / chunks; ++i) {
        const T* colsrc = g.pointwise() ? X + i * in_size : cols;
        if (!g.pointwise()) detail::im2col(g, X + i * in_size, cols);
        gemm<T>(false, true, g.cout, K, HW, T(1), G + i * out_size, HW, colsrc, HW, T(1), dw, K);
      }
    }
  });
  for (std::int64_t c = 1; c < chunks; ++c) axpy(T(1), partial.data() + c * g.cout * K, partial.data(), g.cout * K);
  if (!g.masked()) return partial.rows(0, 1).reshape(g.weight_shape()).clone();
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
