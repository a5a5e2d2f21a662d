#pragma once
/// \file simd.hpp
/// Thin helpers over xsimd so one functor serves both SIMD batches and scalar tails:
/// `f(batch)` on full registers, `f(scalar)` on the remainder.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace genmod::kernels::simd {

template <class T>
using Batch = xsimd::batch<T>;

template <class T>
inline constexpr std::int64_t width = static_cast<std::int64_t>(Batch<T>::size);

template <class V>
inline constexpr bool is_scalar = std::is_arithmetic_v<V>;

/// Element type of V (V itself for a scalar).
template <class V>
struct elem {
  using type = V;
};
template <class T, class A>
struct elem<xsimd::batch<T, A>> {
  using type = T;
};
template <class V>
using elem_t = typename elem<V>::type;

template <class V>
inline V broadcast(elem_t<V> x) {
  return V(x);
}

template <class V>
inline V max(V a, V b) {
  if constexpr (is_scalar<V>)
    return a > b ? a : b;
  else
    return xsimd::max(a, b);
}
template <class V>
inline V min(V a, V b) {
  if constexpr (is_scalar<V>)
    return a < b ? a : b;
  else
    return xsimd::min(a, b);
}
template <class V>
inline V abs(V a) {
  if constexpr (is_scalar<V>)
    return std::abs(a);
  else
    return xsimd::abs(a);
}
/// cond ? a : b, elementwise.
template <class C, class V>
inline V select(C cond, V a, V b) {
  if constexpr (is_scalar<V>)
    return cond ? a : b;
  else
    return xsimd::select(cond, a, b);
}
template <class V>
inline V exp(V a) {
  if constexpr (is_scalar<V>)
    return std::exp(a);
  else
    return xsimd::exp(a);
}
template <class V>
inline V log(V a) {
  if constexpr (is_scalar<V>)
    return std::log(a);
  else
    return xsimd::log(a);
}
template <class V>
inline V log1p(V a) {
  if constexpr (is_scalar<V>)
    return std::log1p(a);
  else
    return xsimd::log1p(a);
}
template <class V>
inline V sqrt(V a) {
  if constexpr (is_scalar<V>)
    return std::sqrt(a);
  else
    return xsimd::sqrt(a);
}
template <class V>
inline V tanh(V a) {
  if constexpr (is_scalar<V>)
    return std::tanh(a);
  else
    return xsimd::tanh(a);
}
template <class V>
inline V pow(V a, V b) {
  if constexpr (is_scalar<V>)
    return std::pow(a, b);
  else
    return xsimd::pow(a, b);
}
template <class V>
inline V expm1(V a) {
  if constexpr (is_scalar<V>)
    return std::expm1(a);
  else
    return xsimd::expm1(a);
}
/// Horizontal sum of a batch (identity for a scalar).
template <class V>
inline elem_t<V> hsum(V a) {
  if constexpr (is_scalar<V>) {
    return a;
  } else {
    // Through memory rather than xsimd::hadd: GCC 12 warns falsely inside the AVX-512 extract
    // intrinsics hadd uses (GCC bug 105593), and this runs once per reduction, not per element.
    alignas(64) elem_t<V> lanes[V::size];
    a.store_aligned(lanes);
    elem_t<V> s = lanes[0];
    for (std::size_t i = 1; i < V::size; ++i) s += lanes[i];
    return s;
  }
}

/// dst[i] = src[i] (Add: dst[i] += src[i]) for i < n, for the short rows of convolution images
/// (7 or 14 pixels): whole AVX-512 registers with a masked tail, whose masked-off lanes are
/// neither read nor written, so a row never touches its neighbours (xsimd 8 has no masked loads).
/// Elsewhere a plain loop.
template <bool Add, class T>
inline void short_row(const T* src, T* dst, std::int64_t n) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m512 v = _mm512_loadu_ps(src + i);
      if constexpr (Add) v = _mm512_add_ps(v, _mm512_loadu_ps(dst + i));
      _mm512_storeu_ps(dst + i, v);
    }
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
      __m512 v = _mm512_maskz_loadu_ps(m, src + i);
      if constexpr (Add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, dst + i));
      _mm512_mask_storeu_ps(dst + i, m, v);
    }
    return;
  } else if constexpr (std::is_same_v<T, double>) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m512d v = _mm512_loadu_pd(src + i);
      if constexpr (Add) v = _mm512_add_pd(v, _mm512_loadu_pd(dst + i));
      _mm512_storeu_pd(dst + i, v);
    }
    if (i < n) {
      const __mmask8 m = static_cast<__mmask8>((1u << (n - i)) - 1u);
      __m512d v = _mm512_maskz_loadu_pd(m, src + i);
      if constexpr (Add) v = _mm512_add_pd(v, _mm512_maskz_loadu_pd(m, dst + i));
      _mm512_mask_storeu_pd(dst + i, m, v);
    }
    return;
  }
#endif
  for (std::int64_t i = 0; i < n; ++i) {
    if constexpr (Add)
      dst[i] += src[i];
    else
      dst[i] = src[i];
  }
}

/// Lanes of the masked-register helpers below for T (0: not available on this target).
#if defined(__AVX512F__)
template <class T>
inline constexpr std::int64_t masked_lanes = std::is_same_v<T, float>    ? 16
                                             : std::is_same_v<T, double> ? 8
                                                                         : 0;
#else
template <class T>
inline constexpr std::int64_t masked_lanes = 0;
#endif

/// A register-wide running sum of partial rows: add(p, lo, hi) adds p[lo..hi) into lanes lo..hi
/// (the other lanes of p are not read, so p may point before a row's start), store(dst, n)
/// writes lanes 0..n. Only where masked_lanes<T> > 0; elsewhere its members do nothing.
template <class T>
struct MaskedSum {
  void add(const T*, std::int64_t, std::int64_t) {}
  void store(T*, std::int64_t) const {}
};
#if defined(__AVX512F__)
template <>
struct MaskedSum<float> {
  __m512 v = _mm512_setzero_ps();
  static __mmask16 mask(std::int64_t lo, std::int64_t hi) {
    return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
  }
  void add(const float* p, std::int64_t lo, std::int64_t hi) {
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask(lo, hi), p));
  }
  void store(float* dst, std::int64_t n) const { _mm512_mask_storeu_ps(dst, mask(0, n), v); }
};
template <>
struct MaskedSum<double> {
  __m512d v = _mm512_setzero_pd();
  static __mmask8 mask(std::int64_t lo, std::int64_t hi) {
    return static_cast<__mmask8>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
  }
  void add(const double* p, std::int64_t lo, std::int64_t hi) {
    v = _mm512_add_pd(v, _mm512_maskz_loadu_pd(mask(lo, hi), p));
  }
  void store(double* dst, std::int64_t n) const { _mm512_mask_storeu_pd(dst, mask(0, n), v); }
};
#endif

}  // namespace genmod::kernels::simd
