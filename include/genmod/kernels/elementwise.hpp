#pragma once
/// \file elementwise.hpp
/// Elementwise maps over contiguous arrays, vectorised with xsimd and threaded with OpenMP when
/// the array is large; binary maps with NumPy broadcasting. Compute only: no autodiff here.

#include <cstdint>

#include "genmod/core/parallel.hpp"
#include "genmod/core/shape.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

/// y[i] = f(x[i]) for i in [0, n). f accepts a simd batch and a scalar.
template <class T, class F>
void map(const T* x, T* y, std::int64_t n, F f) {
  constexpr std::int64_t W = simd::width<T>;
  parallel_for(n, 4, [&](std::int64_t b, std::int64_t e) {
    std::int64_t i = b;
    for (; i + W <= e; i += W) f(xsimd::load_unaligned(x + i)).store_unaligned(y + i);
    for (; i < e; ++i) y[i] = f(x[i]);
  });
}

/// y[i] = f(a[i], b[i]).
template <class T, class F>
void map2(const T* a, const T* b, T* y, std::int64_t n, F f) {
  constexpr std::int64_t W = simd::width<T>;
  parallel_for(n, 4, [&](std::int64_t s, std::int64_t e) {
    std::int64_t i = s;
    for (; i + W <= e; i += W) f(xsimd::load_unaligned(a + i), xsimd::load_unaligned(b + i)).store_unaligned(y + i);
    for (; i < e; ++i) y[i] = f(a[i], b[i]);
  });
}

/// y[i] = f(a[i], b[i], c[i]).
template <class T, class F>
void map3(const T* a, const T* b, const T* c, T* y, std::int64_t n, F f) {
  constexpr std::int64_t W = simd::width<T>;
  parallel_for(n, 6, [&](std::int64_t s, std::int64_t e) {
    std::int64_t i = s;
    for (; i + W <= e; i += W)
      f(xsimd::load_unaligned(a + i), xsimd::load_unaligned(b + i), xsimd::load_unaligned(c + i))
          .store_unaligned(y + i);
    for (; i < e; ++i) y[i] = f(a[i], b[i], c[i]);
  });
}

/// Output tensor of f applied to every element of x.
template <class T, class F>
Tensor<T> unary(const Tensor<T>& x, F f) {
  Tensor<T> y(x.shape());
  map(x.data(), y.data(), x.numel(), f);
  return y;
}

namespace detail {

/// Shapes padded on the left to rank 4, with broadcast strides (0 where the operand has extent 1).
struct BroadcastPlan {
  std::int64_t out[4];
  std::int64_t sa[4];
  std::int64_t sb[4];
};

inline BroadcastPlan plan_broadcast(const Shape& a, const Shape& b, const Shape& out) {
  BroadcastPlan p{};
  auto fill = [&](const Shape& s, std::int64_t* st) {
    std::int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      const int k = s.rank() - 4 + i;
      const std::int64_t d = k >= 0 ? s[k] : 1;
      st[i] = d == 1 ? 0 : stride;
      stride *= d;
    }
  };
  for (int i = 0; i < 4; ++i) {
    const int k = out.rank() - 4 + i;
    p.out[i] = k >= 0 ? out[k] : 1;
  }
  fill(a, p.sa);
  fill(b, p.sb);
  return p;
}

}  // namespace detail

/// out = f(a, b) with NumPy broadcasting; `op` names the operation in shape errors.
template <class T, class F>
Tensor<T> binary(const Tensor<T>& a, const Tensor<T>& b, F f, const char* op) {
  if (a.shape() == b.shape()) {
    Tensor<T> y(a.shape());
    map2(a.data(), b.data(), y.data(), a.numel(), f);
    return y;
  }
  const Shape os = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> y(os);
  const auto p = detail::plan_broadcast(a.shape(), b.shape(), os);
  const std::int64_t inner = p.out[3];
  const std::int64_t outer = p.out[0] * p.out[1] * p.out[2];
  const T* A = a.data();
  const T* B = b.data();
  T* Y = y.data();
  constexpr std::int64_t W = simd::width<T>;
  parallel_for(outer, inner, [&](std::int64_t ob, std::int64_t oe) {
    for (std::int64_t o = ob; o < oe; ++o) {
      const std::int64_t i2 = o % p.out[2], i1 = (o / p.out[2]) % p.out[1], i0 = o / (p.out[2] * p.out[1]);
      const T* ra = A + i0 * p.sa[0] + i1 * p.sa[1] + i2 * p.sa[2];
      const T* rb = B + i0 * p.sb[0] + i1 * p.sb[1] + i2 * p.sb[2];
      T* ry = Y + o * inner;
      std::int64_t i = 0;
      if (p.sa[3] && p.sb[3]) {
        for (; i + W <= inner; i += W)
          f(xsimd::load_unaligned(ra + i), xsimd::load_unaligned(rb + i)).store_unaligned(ry + i);
        for (; i < inner; ++i) ry[i] = f(ra[i], rb[i]);
      } else if (p.sb[3]) {  // a is constant along the row
        const simd::Batch<T> va(ra[0]);
        for (; i + W <= inner; i += W) f(va, xsimd::load_unaligned(rb + i)).store_unaligned(ry + i);
        for (; i < inner; ++i) ry[i] = f(ra[0], rb[i]);
      } else if (p.sa[3]) {  // b is constant along the row
        const simd::Batch<T> vb(rb[0]);
        for (; i + W <= inner; i += W) f(xsimd::load_unaligned(ra + i), vb).store_unaligned(ry + i);
        for (; i < inner; ++i) ry[i] = f(ra[i], rb[0]);
      } else {
        const T v = f(ra[0], rb[0]);
        for (; i < inner; ++i) ry[i] = v;
      }
    }
  });
  return y;
}

/// x broadcast (copied) to `shape`, which x must broadcast to.
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape, const char* op = "broadcast_to") {
  if (!broadcastable_to(x.shape(), shape))
    throw ShapeError(std::string(op) + ": shape " + x.shape().to_string() + " cannot be broadcast to " +
                     shape.to_string());
  if (x.shape() == shape) return x.clone();
  Tensor<T> y(shape);
  const auto p = detail::plan_broadcast(x.shape(), x.shape(), shape);
  const std::int64_t inner = p.out[3];
  const std::int64_t outer = p.out[0] * p.out[1] * p.out[2];
  const T* X = x.data();
  T* Y = y.data();
  parallel_for(outer, inner, [&](std::int64_t ob, std::int64_t oe) {
    for (std::int64_t o = ob; o < oe; ++o) {
      const std::int64_t i2 = o % p.out[2], i1 = (o / p.out[2]) % p.out[1], i0 = o / (p.out[2] * p.out[1]);
      const T* r = X + i0 * p.sa[0] + i1 * p.sa[1] + i2 * p.sa[2];
      T* ry = Y + o * inner;
      if (p.sa[3])
        std::copy(r, r + inner, ry);
      else
        std::fill(ry, ry + inner, r[0]);
    }
  });
  return y;
}

/// Sums x over its broadcast dimensions so that the result has `shape` (the adjoint of
/// broadcast_to). x's shape must be a broadcast of `shape`.
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape, const char* op = "sum_to") {
  if (!broadcastable_to(shape, x.shape()))
    throw ShapeError(std::string(op) + ": shape " + x.shape().to_string() + " cannot be summed to " +
                     shape.to_string());
  if (x.shape() == shape) return x.clone();
  Tensor<T> y = zeros<T>(shape);
  const auto p = detail::plan_broadcast(shape, shape, x.shape());  // strides of y within x's index space
  const std::int64_t inner = p.out[3];
  const std::int64_t outer = p.out[0] * p.out[1] * p.out[2];
  const T* X = x.data();
  T* Y = y.data();
  constexpr std::int64_t W = simd::width<T>;
  // Serial over rows: different x rows may add into the same y row. Rows are SIMD-summed.
  for (std::int64_t o = 0; o < outer; ++o) {
    const std::int64_t i2 = o % p.out[2], i1 = (o / p.out[2]) % p.out[1], i0 = o / (p.out[2] * p.out[1]);
    T* ry = Y + i0 * p.sa[0] + i1 * p.sa[1] + i2 * p.sa[2];
    const T* rx = X + o * inner;
    std::int64_t i = 0;
    if (p.sa[3]) {
      for (; i + W <= inner; i += W)
        (xsimd::load_unaligned(ry + i) + xsimd::load_unaligned(rx + i)).store_unaligned(ry + i);
      for (; i < inner; ++i) ry[i] += rx[i];
    } else {
      simd::Batch<T> acc(T(0));
      for (; i + W <= inner; i += W) acc += xsimd::load_unaligned(rx + i);
      T s = simd::hsum(acc);
      for (; i < inner; ++i) s += rx[i];
      ry[0] += s;
    }
  }
  return y;
}

/// y += alpha * x (same number of elements).
template <class T>
void axpy(T alpha, const T* x, T* y, std::int64_t n) {
  const simd::Batch<T> va(alpha);
  constexpr std::int64_t W = simd::width<T>;
  parallel_for(n, 2, [&](std::int64_t b, std::int64_t e) {
    std::int64_t i = b;
    for (; i + W <= e; i += W)
      xsimd::fma(va, xsimd::load_unaligned(x + i), xsimd::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < e; ++i) y[i] += alpha * x[i];
  });
}

// ---------------------------------------------------------------------------------------------
// Functors. Each works on a simd batch and on a scalar. Derivatives live with the autodiff ops.

/// a + b, elementwise.
struct Add {
  /// a + b. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a, V b) const {
    return a + b;
  }
};
/// a - b, elementwise.
struct Sub {
  /// a - b. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a, V b) const {
    return a - b;
  }
};
/// a * b, elementwise.
struct Mul {
  /// a * b. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a, V b) const {
    return a * b;
  }
};
/// a / b, elementwise (IEEE: x / 0 is +-inf or NaN).
struct Div {
  /// a / b. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a, V b) const {
    return a / b;
  }
};
/// -a.
struct Neg {
  /// -a. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return -a;
  }
};
/// a + c for a scalar c.
template <class T>
struct AddScalar {
  /// The scalar added.
  T c;
  /// a + c. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return a + V(c);
  }
};
/// c * a for a scalar c.
template <class T>
struct MulScalar {
  /// The scalar factor.
  T c;
  /// c * a. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return a * V(c);
  }
};
/// e^a (xsimd's vectorized exp).
struct Exp {
  /// e^a. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::exp(a);
  }
};
/// Natural logarithm (NaN for a < 0, -inf at 0).
struct Log {
  /// log(a). Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::log(a);
  }
};
/// log(1 + a), accurate for small a.
struct Log1p {
  /// log1p(a). Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::log1p(a);
  }
};
/// Square root.
struct Sqrt {
  /// sqrt(a). Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::sqrt(a);
  }
};
/// Absolute value.
struct Abs {
  /// |a|. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::abs(a);
  }
};
/// a^2.
struct Square {
  /// a * a. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return a * a;
  }
};
/// sign(x) in {-1, 0, 1}.
struct Sign {
  /// -1, 0 or 1. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    const V zero(0), one(1);
    return simd::select(a > zero, one, simd::select(a < zero, -one, zero));
  }
};
/// a^p for a scalar exponent p (p = 1 and p = 2 take exact shortcuts).
template <class T>
struct PowScalar {
  /// The exponent.
  T p;
  /// a^p. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    if (p == T(2)) return a * a;
    if (p == T(1)) return a;
    return simd::pow(a, V(p));
  }
};
/// min(max(a, lo), hi).
template <class T>
struct Clamp {
  ///@{
  /// The interval's bounds, lo <= hi.
  T lo, hi;
  ///@}
  /// a limited to [lo, hi]. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::min(simd::max(a, V(lo)), V(hi));
  }
};
/// 1 where lo < x < hi, else 0: the derivative of clamp.
template <class T>
struct InsideOpen {
  ///@{
  /// The interval's bounds, lo <= hi.
  T lo, hi;
  ///@}
  /// 1 or 0. Per lane (V: T or an xsimd batch of T).
  template <class V>
  V operator()(V a) const {
    return simd::select((a > V(lo)) & (a < V(hi)), V(1), V(0));
  }
};

}  // namespace genmod::kernels
