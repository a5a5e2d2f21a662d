#pragma once
/// \file pool.hpp
/// Pooling index and averaging kernels on NCHW tensors.

#include <cstdint>
#include <limits>

#include "genmod/core/tensor.hpp"

namespace genmod::kernels {

/// Window geometry of a 2-D pooling: kernel k, stride s, padding p (padding never wins a max).
struct Pool2dGeometry {
  ///@{
  /// Input [n, c, h, w], window k x k, stride s, padding p, output ho x wo.
  std::int64_t n = 0, c = 0, h = 0, w = 0, k = 1, s = 1, p = 0, ho = 0, wo = 0;
  ///@}
};

/// For each output pixel, the flat index iy * W + ix of the window's maximum (first on ties).
template <class T>
Tensor<std::int64_t> max_pool2d_indices(const Pool2dGeometry& g, const Tensor<T>& x) {
  Tensor<std::int64_t> idx(Shape{g.n, g.c, g.ho * g.wo});
  const std::int64_t planes = g.n * g.c;
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    const T* src = x.data() + pl * g.h * g.w;
    std::int64_t* out = idx.data() + pl * g.ho * g.wo;
    for (std::int64_t oy = 0; oy < g.ho; ++oy)
      for (std::int64_t ox = 0; ox < g.wo; ++ox) {
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t arg = -1;
        for (std::int64_t ky = 0; ky < g.k; ++ky) {
          const std::int64_t iy = oy * g.s - g.p + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (std::int64_t kx = 0; kx < g.k; ++kx) {
            const std::int64_t ix = ox * g.s - g.p + kx;
            if (ix < 0 || ix >= g.w) continue;
            const T v = src[iy * g.w + ix];
            if (arg < 0 || v > best) {
              best = v;
              arg = iy * g.w + ix;
            }
          }
        }
        out[oy * g.wo + ox] = arg;
      }
  }
  return idx;
}

/// Average over each window (padding counted as zeros, as PyTorch's count_include_pad default).
template <class T>
Tensor<T> avg_pool2d(const Pool2dGeometry& g, const Tensor<T>& x) {
  Tensor<T> y(Shape{g.n, g.c, g.ho, g.wo});
  const T inv = T(1) / static_cast<T>(g.k * g.k);
  for (std::int64_t pl = 0; pl < g.n * g.c; ++pl) {
    const T* src = x.data() + pl * g.h * g.w;
    T* out = y.data() + pl * g.ho * g.wo;
    for (std::int64_t oy = 0; oy < g.ho; ++oy)
      for (std::int64_t ox = 0; ox < g.wo; ++ox) {
        T acc = 0;
        for (std::int64_t ky = 0; ky < g.k; ++ky) {
          const std::int64_t iy = oy * g.s - g.p + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (std::int64_t kx = 0; kx < g.k; ++kx) {
            const std::int64_t ix = ox * g.s - g.p + kx;
            if (ix >= 0 && ix < g.w) acc += src[iy * g.w + ix];
          }
        }
        out[oy * g.wo + ox] = acc * inv;
      }
  }
  return y;
}

/// The adjoint of avg_pool2d: each output gradient spread evenly over its window.
template <class T>
Tensor<T> avg_pool2d_adjoint(const Pool2dGeometry& g, const Tensor<T>& gy) {
  Tensor<T> dx = zeros<T>(Shape{g.n, g.c, g.h, g.w});
  const T inv = T(1) / static_cast<T>(g.k * g.k);
  for (std::int64_t pl = 0; pl < g.n * g.c; ++pl) {
    T* dst = dx.data() + pl * g.h * g.w;
    const T* src = gy.data() + pl * g.ho * g.wo;
    for (std::int64_t oy = 0; oy < g.ho; ++oy)
      for (std::int64_t ox = 0; ox < g.wo; ++ox) {
        const T v = src[oy * g.wo + ox] * inv;
        for (std::int64_t ky = 0; ky < g.k; ++ky) {
          const std::int64_t iy = oy * g.s - g.p + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (std::int64_t kx = 0; kx < g.k; ++kx) {
            const std::int64_t ix = ox * g.s - g.p + kx;
            if (ix >= 0 && ix < g.w) dst[iy * g.w + ix] += v;
          }
        }
      }
  }
  return dx;
}

}  // namespace genmod::kernels
