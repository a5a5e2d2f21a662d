#pragma once
/// \file conv2d_reference.hpp
/// The convolution kernels of conv2d.hpp written as their definition: plain nested loops over
/// the same geometry (stride, padding, dilation, masked taps), one product at a time. They are
/// slow (no blocking, no vectors, no threads) and exist to be read and to hold the fast paths to
/// (tests/kernels/conv2d_reference_test.cpp). Not part of the umbrella genmod.hpp: include it
/// where it is used, so programs do not compile loops they never call.
///
/// With x [N, Cin, H, W], w [Cout, Cin, KH, KW] and output y [N, Cout, Ho, Wo], input pixel
///
///   in(oy, ky) = oy sh - ph + ky dh,   in(ox, kx) = ox sw - pw + kx dw
///
/// is what tap (ky, kx) of output pixel (oy, ox) reads; taps that land in the padding read zero,
/// and a masked geometry (PixelCNN) sums over its kept taps only. Then
///
///   forward        y[n,o,oy,ox]  = b[o] + sum_{c, kept (ky,kx)} w[o,c,ky,kx] x[n,c,in(oy,ky),in(ox,kx)]
///   input grad     dx[n,c,iy,ix] = sum_{o, kept (ky,kx), (oy,ox) reading (iy,ix)} w[o,c,ky,kx] g[n,o,oy,ox]
///   weight grad    dw[o,c,ky,kx] = sum_{n, oy, ox} g[n,o,oy,ox] x[n,c,in(oy,ky),in(ox,kx)]   (0 if masked)
///   bias grad      db[o]         = sum_{n, oy, ox} g[n,o,oy,ox]
///
/// The two gradients are the adjoints of the forward: <g, y(x, w)> = <dx(g, w), x> = <dw(x, g), w>.
/// A transposed convolution is the input gradient of the convolution it inverts the shape of
/// (autodiff/ops/conv.hpp builds that geometry), so it needs no loops of its own here either.

#include <cstdint>
#include <utility>

#include "genmod/core/tensor.hpp"
#include "genmod/kernels/conv2d_geometry.hpp"

namespace genmod::kernels::reference {

namespace detail {

/// Calls f(wi, xi, yi) for every product w[wi] x[xi] that output element y[yi] sums (flat
/// offsets into w [Cout, Cin, KH, KW], x [N, Cin, H, W] and y [N, Cout, Ho, Wo]), skipping masked
/// taps and taps that read the padding. Each kernel below is this one loop nest with a different
/// accumulation, so all of them read the same pixels by construction.
template <class F>
void for_each_product(const Conv2dGeometry& g, F&& f) {
  for (std::int64_t n = 0; n < g.n; ++n)
    for (std::int64_t o = 0; o < g.cout; ++o)
      for (std::int64_t c = 0; c < g.cin; ++c)
        for (std::int64_t t = 0; t < g.num_taps(); ++t) {  // kept taps only
          const std::int64_t ky = g.tap(t) / g.kw, kx = g.tap(t) % g.kw;
          const std::int64_t wi = ((o * g.cin + c) * g.kh + ky) * g.kw + kx;
          for (std::int64_t oy = 0; oy < g.ho; ++oy) {
            const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dil_h;
            if (iy < 0 || iy >= g.h) continue;  // zero padding
            for (std::int64_t ox = 0; ox < g.wo; ++ox) {
              const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dil_w;
              if (ix < 0 || ix >= g.w) continue;
              f(wi, ((n * g.cin + c) * g.h + iy) * g.w + ix, ((n * g.cout + o) * g.ho + oy) * g.wo + ox);
            }
          }
        }
}

}  // namespace detail

/// Y = C(X, W) (+ bias per output channel when `bias` is defined), by the definition above.
template <class T>
Tensor<T> conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias) {
  Tensor<T> y = zeros<T>(g.output_shape());
  if (bias.defined())
    for (std::int64_t n = 0; n < g.n; ++n)
      for (std::int64_t o = 0; o < g.cout; ++o)
        for (std::int64_t p = 0; p < g.hw_out(); ++p) y[(n * g.cout + o) * g.hw_out() + p] = bias[o];
  detail::for_each_product(g, [&](std::int64_t wi, std::int64_t xi, std::int64_t yi) { y[yi] += w[wi] * x[xi]; });
  return y;
}

/// X = Cx*(G, W): d<G, C(X, W)>/dX. Each product w x of the forward sends w g back to the input
/// pixel x it read; pixels no tap reads (or that only the padding would) get zero.
template <class T>
Tensor<T> conv2d_input_grad(const Conv2dGeometry& g, const Tensor<T>& grad_out, const Tensor<T>& w) {
  Tensor<T> dx = zeros<T>(g.input_shape());
  detail::for_each_product(g,
                           [&](std::int64_t wi, std::int64_t xi, std::int64_t yi) { dx[xi] += w[wi] * grad_out[yi]; });
  return dx;
}

/// W = Cw*(X, G): d<G, C(X, W)>/dW. Each product w x of the forward sends x g back to its weight;
/// masked taps take part in no product, so their gradient is zero.
template <class T>
Tensor<T> conv2d_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& grad_out) {
  Tensor<T> dw = zeros<T>(g.weight_shape());
  detail::for_each_product(g,
                           [&](std::int64_t wi, std::int64_t xi, std::int64_t yi) { dw[wi] += x[xi] * grad_out[yi]; });
  return dw;
}

/// (C(X, W), Cw*(X, G)): the pair conv2d_forward_and_weight_grad computes in one pass.
template <class T>
std::pair<Tensor<T>, Tensor<T>> conv2d_forward_and_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x,
                                                               const Tensor<T>& w, const Tensor<T>& grad_out) {
  return {conv2d_forward(g, x, w, Tensor<T>()), conv2d_weight_grad(g, x, grad_out)};
}

/// db[o] = sum of G[n, o, :, :] over the batch and the pixels: d<G, Y + b>/db.
template <class T>
Tensor<T> conv2d_bias_grad(const Tensor<T>& grad_out) {
  const std::int64_t n = grad_out.dim(0), c = grad_out.dim(1), hw = grad_out.dim(2) * grad_out.dim(3);
  Tensor<T> db = zeros<T>(Shape{c});
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t o = 0; o < c; ++o)
      for (std::int64_t p = 0; p < hw; ++p) db[o] += grad_out[(i * c + o) * hw + p];
  return db;
}

}  // namespace genmod::kernels::reference
