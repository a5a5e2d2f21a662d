#pragma once
/// \file index.hpp
/// Data movement: permute (transpose), concatenation, slicing and its adjoint, gather and
/// scatter-add along an axis, one-hot encoding, space-to-depth and its inverse.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/reduce.hpp"

namespace genmod::kernels {

/// y = x with dimensions reordered: y.shape[i] = x.shape[perm[i]].
template <class T>
Tensor<T> permute(const Tensor<T>& x, std::span<const int> perm) {
  const int r = x.rank();
  std::int64_t yd[kMaxRank] = {};
  std::int64_t xs[kMaxRank] = {};  // x stride for each y dimension
  for (int i = 0; i < r; ++i) {
    yd[i] = x.shape()[perm[static_cast<std::size_t>(i)]];
    xs[i] = x.shape().stride(perm[static_cast<std::size_t>(i)]);
  }
  Tensor<T> y(Shape(std::span<const std::int64_t>(yd, static_cast<std::size_t>(r))));
  // A rotation (k, ..., r - 1, 0, ..., k - 1) is the transpose of x seen as a [P, Q] matrix
  // (P the product of the first k extents): copied in square tiles, so that reads and writes both
  // stay within a few cache lines (the general loop below reads with a stride of Q).
  int k = perm[0];
  bool rotation = k > 0;
  for (int i = 0; i < r && rotation; ++i) rotation = perm[static_cast<std::size_t>(i)] == (k + i) % r;
  if (rotation) {
    std::int64_t p = 1, q = 1;
    for (int i = 0; i < r; ++i) (i < k ? p : q) *= x.shape()[i];
    constexpr std::int64_t tile = 32;
    const T* X = x.data();
    T* Y = y.data();
    parallel_for((q + tile - 1) / tile, p * tile, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t tq = b; tq < e; ++tq) {
        const std::int64_t q0 = tq * tile, q1 = std::min(q, q0 + tile);
        for (std::int64_t p0 = 0; p0 < p; p0 += tile) {
          const std::int64_t p1 = std::min(p, p0 + tile);
          for (std::int64_t jq = q0; jq < q1; ++jq)
            for (std::int64_t ip = p0; ip < p1; ++ip) Y[jq * p + ip] = X[ip * q + jq];
        }
      }
    });
    return y;
  }
  // Pad to rank 4 on the left.
  std::int64_t d[4] = {1, 1, 1, 1}, s[4] = {0, 0, 0, 0};
  for (int i = 0; i < r; ++i) {
    d[4 - r + i] = yd[i];
    s[4 - r + i] = xs[i];
  }
  const T* X = x.data();
  T* Y = y.data();
  parallel_for(d[0] * d[1], d[2] * d[3], [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t o = b; o < e; ++o) {
      const std::int64_t i0 = o / d[1], i1 = o % d[1];
      T* out = Y + o * d[2] * d[3];
      const T* base = X + i0 * s[0] + i1 * s[1];
      for (std::int64_t i2 = 0; i2 < d[2]; ++i2)
        for (std::int64_t i3 = 0; i3 < d[3]; ++i3) *out++ = base[i2 * s[2] + i3 * s[3]];
    }
  });
  return y;
}

/// Copies x into the block [start, start + x.extent) along `axis` of y (y's other extents equal x's).
template <class T>
void copy_into_axis(const Tensor<T>& x, Tensor<T>& y, int axis, std::int64_t start) {
  const AxisView vx = axis_view(x.shape(), axis);
  const AxisView vy = axis_view(y.shape(), axis);
  for (std::int64_t o = 0; o < vx.outer; ++o)
    std::memcpy(y.data() + (o * vy.n + start) * vy.inner, x.data() + o * vx.n * vx.inner,
                static_cast<std::size_t>(vx.n * vx.inner) * sizeof(T));
}

/// Adds x into the block [start, start + x.extent) along `axis` of y (y's other extents equal
/// x's): the in-place adjoint of slice. Runs shorter than 4096 values (a column of a map) are added
/// by a plain loop, longer ones by the parallel axpy.
template <class T>
void add_into_axis(const Tensor<T>& x, Tensor<T>& y, int axis, std::int64_t start) {
  const AxisView vx = axis_view(x.shape(), axis);
  const AxisView vy = axis_view(y.shape(), axis);
  const std::int64_t run = vx.n * vx.inner;
  for (std::int64_t o = 0; o < vx.outer; ++o) {
    T* d = y.data() + (o * vy.n + start) * vy.inner;
    const T* s = x.data() + o * run;
    if (run >= 4096) {
      axpy(T(1), s, d, run);
    } else {
      for (std::int64_t k = 0; k < run; ++k) d[k] += s[k];
    }
  }
}

/// The block [start, start + length) of x along `axis`, copied.
template <class T>
Tensor<T> slice_axis(const Tensor<T>& x, int axis, std::int64_t start, std::int64_t length) {
  Tensor<T> y(x.shape().with_dim(axis, length));
  const AxisView vx = axis_view(x.shape(), axis);
  for (std::int64_t o = 0; o < vx.outer; ++o)
    std::memcpy(y.data() + o * length * vx.inner, x.data() + (o * vx.n + start) * vx.inner,
                static_cast<std::size_t>(length * vx.inner) * sizeof(T));
  return y;
}

/// Zeros of `full` with x written at [start, start + x.extent) along `axis`: the adjoint of slice.
template <class T>
Tensor<T> embed_axis(const Tensor<T>& x, const Shape& full, int axis, std::int64_t start) {
  Tensor<T> y = zeros<T>(full);
  copy_into_axis(x, y, axis, start);
  return y;
}

/// Checks an index tensor for gather/scatter along `axis` of a tensor of shape `data`.
inline void check_gather_index(const Shape& data, const Tensor<std::int64_t>& index, int axis, const char* op) {
  if (index.rank() != data.rank())
    throw ShapeError(std::string(op) + ": index shape " + index.shape().to_string() + " must have the rank of " +
                     data.to_string());
  for (int i = 0; i < data.rank(); ++i)
    if (i != axis && index.shape()[i] != data[i])
      throw ShapeError(std::string(op) + ": index shape " + index.shape().to_string() + " must match " +
                       data.to_string() + " except along axis " + std::to_string(axis));
  const std::int64_t n = data[axis];
  for (std::int64_t i = 0; i < index.numel(); ++i)
    if (index[i] < 0 || index[i] >= n)
      throw ValueError(std::string(op) + ": index " + std::to_string(index[i]) + " is outside [0, " +
                       std::to_string(n) + ") along axis " + std::to_string(axis));
}

/// y[o, j, i] = x[o, index[o, j, i], i] along `axis` (index validated by check_gather_index).
template <class T>
Tensor<T> gather_axis(const Tensor<T>& x, int axis, const Tensor<std::int64_t>& index) {
  Tensor<T> y(index.shape());
  const AxisView vx = axis_view(x.shape(), axis);
  const AxisView vi = axis_view(index.shape(), axis);
  for (std::int64_t o = 0; o < vi.outer; ++o)
    for (std::int64_t j = 0; j < vi.n; ++j)
      for (std::int64_t i = 0; i < vi.inner; ++i) {
        const std::int64_t at = (o * vi.n + j) * vi.inner + i;
        y[at] = x[(o * vx.n + index[at]) * vx.inner + i];
      }
  return y;
}

/// Zeros of `shape` with y[o, index[o, j, i], i] += g[o, j, i]: the adjoint of gather.
template <class T>
Tensor<T> scatter_add_axis(const Tensor<T>& g, const Shape& shape, int axis, const Tensor<std::int64_t>& index) {
  Tensor<T> y = zeros<T>(shape);
  const AxisView vy = axis_view(shape, axis);
  const AxisView vi = axis_view(index.shape(), axis);
  for (std::int64_t o = 0; o < vi.outer; ++o)
    for (std::int64_t j = 0; j < vi.n; ++j)
      for (std::int64_t i = 0; i < vi.inner; ++i) {
        const std::int64_t at = (o * vi.n + j) * vi.inner + i;
        y[(o * vy.n + index[at]) * vy.inner + i] += g[at];
      }
  return y;
}

/// [N] labels in [0, classes) -> [N, classes] one-hot rows.
template <class T>
Tensor<T> one_hot(const Tensor<std::int64_t>& labels, std::int64_t classes) {
  if (labels.rank() != 1)
    throw ShapeError("one_hot: expected labels of rank 1, got shape " + labels.shape().to_string());
  if (classes <= 0) throw ValueError("one_hot: expected a positive number of classes, got " + std::to_string(classes));
  Tensor<T> y = zeros<T>({labels.numel(), classes});
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes)
      throw ValueError("one_hot: label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
                       " is outside [0, " + std::to_string(classes) + ")");
    y(i, labels[i]) = T(1);
  }
  return y;
}

/// Space to depth by a factor f: x [N, C, H, W] -> [N, C f^2, H / f, W / f] with
///   y[n, (c f + a) f + b, i, j] = x[n, c, i f + a, j f + b]
/// (each f x f block of a channel becomes f^2 channels, in row-major order within the block).
/// H and W must be multiples of f (checked by the caller).
template <class T>
Tensor<T> space_to_depth(const Tensor<T>& x, std::int64_t f) {
  const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), ho = h / f, wo = w / f;
  Tensor<T> y(Shape{n, c * f * f, ho, wo});
  const T* src = x.data();
  T* dst = y.data();
  parallel_for(n * c, h * w, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t nc = begin; nc < end; ++nc)
      for (std::int64_t a = 0; a < f; ++a)
        for (std::int64_t b = 0; b < f; ++b) {
          T* out = dst + (nc * f * f + a * f + b) * ho * wo;
          for (std::int64_t i = 0; i < ho; ++i)
            for (std::int64_t j = 0; j < wo; ++j) out[i * wo + j] = src[(nc * h + i * f + a) * w + j * f + b];
        }
  });
  return y;
}

/// The inverse of space_to_depth: x [N, C f^2, H, W] -> [N, C, H f, W f].
template <class T>
Tensor<T> depth_to_space(const Tensor<T>& x, std::int64_t f) {
  const std::int64_t n = x.dim(0), c = x.dim(1) / (f * f), ho = x.dim(2), wo = x.dim(3), h = ho * f, w = wo * f;
  Tensor<T> y(Shape{n, c, h, w});
  const T* src = x.data();
  T* dst = y.data();
  parallel_for(n * c, h * w, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t nc = begin; nc < end; ++nc)
      for (std::int64_t a = 0; a < f; ++a)
        for (std::int64_t b = 0; b < f; ++b) {
          const T* in = src + (nc * f * f + a * f + b) * ho * wo;
          for (std::int64_t i = 0; i < ho; ++i)
            for (std::int64_t j = 0; j < wo; ++j) dst[(nc * h + i * f + a) * w + j * f + b] = in[i * wo + j];
        }
  });
  return y;
}

}  // namespace genmod::kernels
