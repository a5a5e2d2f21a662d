#pragma once
/// \file reduce.hpp
/// Reductions (sum, max with argmax, logsumexp) over all elements or one axis, and softmax /
/// log-softmax along an axis. An axis reduction views the tensor as [outer, n, inner].

#include <cmath>
#include <cstdint>
#include <limits>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

/// Extents of x seen as [outer, n, inner] around `axis`.
struct AxisView {
  ///@{
  /// Product of the extents before axis, the axis' extent, product of those after it.
  std::int64_t outer, n, inner;
  ///@}
};
/// s seen as [outer, n, inner] around `axis` (0 <= axis < rank): element (o, i, j) is at (o n + i) inner + j.
inline AxisView axis_view(const Shape& s, int axis) {
  AxisView v{1, s[axis], 1};
  for (int i = 0; i < axis; ++i) v.outer *= s[i];
  for (int i = axis + 1; i < s.rank(); ++i) v.inner *= s[i];
  return v;
}

/// Shape with `axis` removed (keepdim = false) or set to 1 (keepdim = true).
inline Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  std::int64_t d[kMaxRank];
  int r = 0;
  for (int i = 0; i < s.rank(); ++i) {
    if (i == axis) {
      if (keepdim) d[r++] = 1;
    } else {
      d[r++] = s[i];
    }
  }
  return Shape(std::span<const std::int64_t>(d, static_cast<std::size_t>(r)));
}

/// Sum of n contiguous values (SIMD, four independent accumulators).
template <class T>
T sum_contiguous(const T* x, std::int64_t n) {
  constexpr std::int64_t W = simd::width<T>;
  simd::Batch<T> a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
  std::int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 += xsimd::load_unaligned(x + i);
    a1 += xsimd::load_unaligned(x + i + W);
    a2 += xsimd::load_unaligned(x + i + 2 * W);
    a3 += xsimd::load_unaligned(x + i + 3 * W);
  }
  for (; i + W <= n; i += W) a0 += xsimd::load_unaligned(x + i);
  T s = simd::hsum((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) s += x[i];
  return s;
}

/// Sum of all elements; threads sum disjoint chunks, combined in a fixed order.
template <class T>
T sum_all(const Tensor<T>& x) {
  const std::int64_t n = x.numel();
  const int threads = get_num_threads();
  if (threads == 1 || n < kParallelGrain) return sum_contiguous(x.data(), n);
  T partial[64] = {};
  const std::int64_t chunks = std::min<std::int64_t>(std::min(threads, 64), n);
  parallel_for(chunks, kParallelGrain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t c = b; c < e; ++c)
      partial[c] = sum_contiguous(x.data() + n * c / chunks, n * (c + 1) / chunks - n * c / chunks);
  });
  T s = 0;
  for (std::int64_t c = 0; c < chunks; ++c) s += partial[c];
  return s;
}

/// Sum over `axis` (keepdim selects the output rank).
template <class T>
Tensor<T> sum_axis(const Tensor<T>& x, int axis, bool keepdim) {
  const AxisView v = axis_view(x.shape(), axis);
  Tensor<T> y(reduced_shape(x.shape(), axis, keepdim));
  const T* X = x.data();
  T* Y = y.data();
  if (v.inner == 1) {
    parallel_for(v.outer, v.n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) Y[o] = sum_contiguous(X + o * v.n, v.n);
    });
  } else {
    constexpr std::int64_t W = simd::width<T>;
    parallel_for(v.outer, v.n * v.inner, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        T* ry = Y + o * v.inner;
        std::fill(ry, ry + v.inner, T(0));
        for (std::int64_t k = 0; k < v.n; ++k) {
          const T* rx = X + (o * v.n + k) * v.inner;
          std::int64_t i = 0;
          for (; i + W <= v.inner; i += W)
            (xsimd::load_unaligned(ry + i) + xsimd::load_unaligned(rx + i)).store_unaligned(ry + i);
          for (; i < v.inner; ++i) ry[i] += rx[i];
        }
      }
    });
  }
  return y;
}

/// Maximum over `axis` and the index of its first occurrence.
template <class T>
void max_axis(const Tensor<T>& x, int axis, bool keepdim, Tensor<T>& values, Tensor<std::int64_t>& indices) {
  const AxisView v = axis_view(x.shape(), axis);
  const Shape rs = reduced_shape(x.shape(), axis, keepdim);
  values = Tensor<T>(rs);
  indices = Tensor<std::int64_t>(rs);
  const T* X = x.data();
  for (std::int64_t o = 0; o < v.outer; ++o)
    for (std::int64_t i = 0; i < v.inner; ++i) {
      const T* p = X + o * v.n * v.inner + i;
      T best = p[0];
      std::int64_t arg = 0;
      for (std::int64_t k = 1; k < v.n; ++k) {
        const T c = p[k * v.inner];
        if (c > best || (std::isnan(c) && !std::isnan(best))) {
          best = c;
          arg = k;
        }
      }
      values[o * v.inner + i] = best;
      indices[o * v.inner + i] = arg;
    }
}

/// log sum exp over `axis`, shifted by the maximum so that it neither overflows nor underflows.
template <class T>
Tensor<T> logsumexp_axis(const Tensor<T>& x, int axis, bool keepdim) {
  const AxisView v = axis_view(x.shape(), axis);
  Tensor<T> y(reduced_shape(x.shape(), axis, keepdim));
  const T* X = x.data();
  T* Y = y.data();
  parallel_for(v.outer * v.inner, v.n * 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t j = b; j < e; ++j) {
      const std::int64_t o = j / v.inner, i = j % v.inner;
      const T* p = X + o * v.n * v.inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (std::int64_t k = 0; k < v.n; ++k) m = std::max(m, p[k * v.inner]);
      if (!std::isfinite(m)) {
        Y[j] = m;  // all -inf -> -inf; any +inf -> +inf
        continue;
      }
      T s = 0;
      for (std::int64_t k = 0; k < v.n; ++k) s += std::exp(p[k * v.inner] - m);
      Y[j] = m + std::log(s);
    }
  });
  return y;
}

/// softmax (log_domain = false) or log_softmax (log_domain = true) along `axis`.
template <class T>
Tensor<T> softmax_axis(const Tensor<T>& x, int axis, bool log_domain) {
  const AxisView v = axis_view(x.shape(), axis);
  Tensor<T> y(x.shape());
  const T* X = x.data();
  T* Y = y.data();
  constexpr std::int64_t W = simd::width<T>;
  if (v.inner == 1) {
    parallel_for(v.outer, v.n * 8, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        const T* p = X + o * v.n;
        T* q = Y + o * v.n;
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < v.n; ++k) m = std::max(m, p[k]);
        std::int64_t k = 0;
        simd::Batch<T> acc(T(0));
        for (; k + W <= v.n; k += W) {
          auto ex = simd::exp(xsimd::load_unaligned(p + k) - simd::Batch<T>(m));
          if (!log_domain) ex.store_unaligned(q + k);
          acc += ex;
        }
        T s = simd::hsum(acc);
        for (; k < v.n; ++k) {
          const T ex = std::exp(p[k] - m);
          if (!log_domain) q[k] = ex;
          s += ex;
        }
        if (log_domain) {
          const T lse = m + std::log(s);
          for (std::int64_t j = 0; j < v.n; ++j) q[j] = p[j] - lse;
        } else {
          const T inv = T(1) / s;
          for (std::int64_t j = 0; j < v.n; ++j) q[j] *= inv;
        }
      }
    });
    return y;
  }
  parallel_for(v.outer, v.n * v.inner * 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t o = b; o < e; ++o)
      for (std::int64_t i = 0; i < v.inner; ++i) {
        const T* p = X + o * v.n * v.inner + i;
        T* q = Y + o * v.n * v.inner + i;
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < v.n; ++k) m = std::max(m, p[k * v.inner]);
        T s = 0;
        for (std::int64_t k = 0; k < v.n; ++k) s += std::exp(p[k * v.inner] - m);
        if (log_domain) {
          const T lse = m + std::log(s);
          for (std::int64_t k = 0; k < v.n; ++k) q[k * v.inner] = p[k * v.inner] - lse;
        } else {
          for (std::int64_t k = 0; k < v.n; ++k) q[k * v.inner] = std::exp(p[k * v.inner] - m) / s;
        }
      }
  });
  return y;
}

/// x seen as [n, c, inner] (inner = H W for [N, C, H, W], 1 for [N, C]): the layout of
/// per-channel reductions (bias gradients, batch-norm statistics).
struct ChannelLayout {
  ///@{
  /// Batch size, channels, and values per sample and channel.
  std::int64_t n, c, inner;
  ///@}
  std::int64_t count() const noexcept { return n * inner; }  ///< values per channel
};

namespace detail {

/// sum over a run of f(V x_j, V y_j) for V a batch or a scalar (y may be null when f ignores it).
template <class T, class F>
T run_sum(const T* x, const T* y, std::int64_t len, F f) {
  constexpr std::int64_t W = simd::width<T>;
  simd::Batch<T> a0(T(0)), a1(T(0));
  std::int64_t j = 0;
  auto at = [&](std::int64_t k) {
    return f(simd::loadu<simd::Batch<T>>(x + k), y ? simd::loadu<simd::Batch<T>>(y + k) : simd::Batch<T>(T(0)));
  };
  for (; j + 2 * W <= len; j += 2 * W) {
    a0 += at(j);
    a1 += at(j + W);
  }
  for (; j + W <= len; j += W) a0 += at(j);
  T s = simd::hsum(a0 + a1);
  for (; j < len; ++j) s += f(x[j], y ? y[j] : T(0));
  return s;
}

/// out[ch] = sum over the channel of f(x, y) (y may be null), threads over channels.
template <class T, class F>
void channel_sums(const ChannelLayout& l, const T* x, const T* y, T* out, F f) {
  parallel_for(l.c, l.count(), [&](std::int64_t c0, std::int64_t c1) {
    if (l.inner == 1) {
      for (std::int64_t ch = c0; ch < c1; ++ch) out[ch] = T(0);
      for (std::int64_t i = 0; i < l.n; ++i)
        for (std::int64_t ch = c0; ch < c1; ++ch) out[ch] += f(x[i * l.c + ch], y ? y[i * l.c + ch] : T(0), ch);
      return;
    }
    for (std::int64_t ch = c0; ch < c1; ++ch) {
      T s = 0;
      for (std::int64_t i = 0; i < l.n; ++i) {
        const std::int64_t off = (i * l.c + ch) * l.inner;
        s += run_sum(x + off, y ? y + off : nullptr, l.inner, [&](auto a, auto b) { return f(a, b, ch); });
      }
      out[ch] = s;
    }
  });
}

}  // namespace detail

/// out[ch] = sum of x over channel ch (a bias gradient, a batch mean before scaling).
template <class T>
void channel_sum(const ChannelLayout& l, const T* x, T* out) {
  detail::channel_sums(l, x, static_cast<const T*>(nullptr), out, [](auto a, auto, std::int64_t) { return a; });
}

}  // namespace genmod::kernels
