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

#include "genmod/config.hpp"

// GCC 12 warns inside its own AVX-512 intrinsics (the self-initialised `__Y` of
// _mm512_undefined_ps in avx512fintrin.h; see GENMOD_GCC_BUG_105593) wherever they are inlined,
// once per inlined call in every user's translation unit. For a warning in inlined code GCC looks
// for a `#pragma GCC diagnostic` at each location of the inlining stack, innermost first, so a
// region around the code that inlines the intrinsics silences them: this file's helpers (every
// xsimd math function genmod calls goes through them) sit inside one.
GENMOD_GCC_BUG_105593_BEGIN

#if defined(__AVX512BW__)
namespace xsimd {
/// xsimd 8's avx512bw `select` on integer batches switches on sizeof(T) at run time, so its 8- and
/// 16-bit branches are compiled for every T; without optimisation (-O0, -fsyntax-only, so in
/// debug builds and in editors) GCC's avx512bwintrin.h defines the blends they call as macros
/// whose casts do not apply xsimd's conversion to __m512i ("invalid cast from batch<int> to
/// __v64qi"). The generic log() selects on such batches. This overload, more specialised than
/// xsimd's and found by argument-dependent lookup wherever xsimd's would be, issues the same
/// blend instruction per width on the registers themselves. Lanes where `cond` is set take
/// true_br.
template <class T>
requires std::is_integral_v<T>
inline batch<T, avx512bw> select(const batch_bool<T, avx512bw>& cond, const batch<T, avx512bw>& true_br,
                                 const batch<T, avx512bw>& false_br) noexcept {
  if constexpr (sizeof(T) == 1)
    return _mm512_mask_blend_epi8(cond.data, false_br.data, true_br.data);
  else if constexpr (sizeof(T) == 2)
    return _mm512_mask_blend_epi16(cond.data, false_br.data, true_br.data);
  else if constexpr (sizeof(T) == 4)
    return _mm512_mask_blend_epi32(cond.data, false_br.data, true_br.data);
  else
    return _mm512_mask_blend_epi64(cond.data, false_br.data, true_br.data);
}
}  // namespace xsimd
#endif

namespace genmod::kernels::simd {

/// The widest SIMD register of T this target compiles for (AVX-512: 16 floats).
template <class T>
using Batch = xsimd::batch<T>;

/// Lanes of Batch<T>: how many T one vector instruction processes.
template <class T>
inline constexpr std::int64_t width = static_cast<std::int64_t>(Batch<T>::size);

/// True when V is a plain arithmetic type (the loop tail), false for a batch.
template <class V>
inline constexpr bool is_scalar = std::is_arithmetic_v<V>;

/// Element type of V (V itself for a scalar).
template <class V>
struct elem {
  /// V itself (a scalar).
  using type = V;
};
/// A batch's element type is its T.
template <class T, class A>
struct elem<xsimd::batch<T, A>> {
  /// The lane type T.
  using type = T;
};
/// Element type of V: T for both T and xsimd::batch<T>.
template <class V>
using elem_t = typename elem<V>::type;

/// x in every lane of V (x itself for a scalar).
template <class V>
inline V broadcast(elem_t<V> x) {
  return V(x);
}

/// Loads V (a batch or a scalar) from p, which need not be aligned. (Not named load/store:
/// unqualified calls would find xsimd's aligned store by argument-dependent lookup.)
template <class V>
inline V loadu(const elem_t<V>* p) {
  if constexpr (is_scalar<V>)
    return *p;
  else
    return V::load_unaligned(p);
}

/// Stores v (a batch or a scalar) to p, which need not be aligned.
template <class V>
inline void storeu(elem_t<V>* p, const V& v) {
  if constexpr (is_scalar<V>)
    *p = v;
  else
    v.store_unaligned(p);
}

/// max(a, b) per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V max(V a, V b) {
  if constexpr (is_scalar<V>)
    return a > b ? a : b;
  else
    return xsimd::max(a, b);
}
/// min(a, b) per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V min(V a, V b) {
  if constexpr (is_scalar<V>)
    return a < b ? a : b;
  else
    return xsimd::min(a, b);
}
/// |a| per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
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
/// e^a per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V exp(V a) {
  if constexpr (is_scalar<V>)
    return std::exp(a);
  else
    return xsimd::exp(a);
}
/// log(a) per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V log(V a) {
  if constexpr (is_scalar<V>)
    return std::log(a);
  else
    return xsimd::log(a);
}
/// log(1 + a) per lane, accurate near 0; V is a scalar T or an xsimd batch of T (std:: or xsimd::).
template <class V>
inline V log1p(V a) {
  if constexpr (is_scalar<V>)
    return std::log1p(a);
  else
    return xsimd::log1p(a);
}
/// sqrt(a) per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V sqrt(V a) {
  if constexpr (is_scalar<V>)
    return std::sqrt(a);
  else
    return xsimd::sqrt(a);
}
/// tanh(a) per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V tanh(V a) {
  if constexpr (is_scalar<V>)
    return std::tanh(a);
  else
    return xsimd::tanh(a);
}
/// a^b per lane; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
template <class V>
inline V pow(V a, V b) {
  if constexpr (is_scalar<V>)
    return std::pow(a, b);
  else
    return xsimd::pow(a, b);
}
/// e^a - 1 per lane, accurate near 0; V is a scalar T or an xsimd batch of T (std:: for scalars, xsimd:: for batches).
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

/// The few AVX-512 operations with per-lane masks that the convolution row helpers need (xsimd 8
/// has no masked loads or stores): one register of T, lanes [lo, hi) selected by a bit mask.
/// Masked-off lanes are neither read nor written, so a partial row never touches its neighbours.
/// `lanes` is 0 where the target or T has none (the helpers then take plain loops).
template <class T>
struct MaskedRegister {
  /// Lanes per masked register; 0: no masked operations for T on this target.
  static constexpr std::int64_t lanes = 0;
};
#if defined(__AVX512F__)
template <>
struct MaskedRegister<float> {
  static constexpr std::int64_t lanes = 16;
  using reg = __m512;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg load(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(__mmask16 m, float* p, reg v) { _mm512_mask_storeu_ps(p, m, v); }
};
template <>
struct MaskedRegister<double> {
  static constexpr std::int64_t lanes = 8;
  using reg = __m512d;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  static reg load(__mmask8 m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(__mmask8 m, double* p, reg v) { _mm512_mask_storeu_pd(p, m, v); }
};
#endif

/// Lanes of the masked helpers below for T (0: not available on this target).
template <class T>
inline constexpr std::int64_t masked_lanes = MaskedRegister<T>::lanes;

/// The mask of lanes [lo, hi), 0 <= lo <= hi <= 16.
inline unsigned lane_mask(std::int64_t lo, std::int64_t hi) {
  return ((1u << hi) - 1u) & ~((1u << lo) - 1u);
}

/// dst[i] = src[i] (Add: dst[i] += src[i]) for i < n, for the short rows of convolution images
/// (7 or 14 pixels): whole registers and a masked tail where masked_lanes<T> > 0, else a loop.
template <bool Add, class T>
inline void short_row(const T* src, T* dst, std::int64_t n) {
  using R = MaskedRegister<T>;
  if constexpr (R::lanes > 0) {
    for (std::int64_t i = 0; i < n; i += R::lanes) {
      const auto m = lane_mask(0, std::min(R::lanes, n - i));
      auto v = R::load(m, src + i);
      if constexpr (Add) v = R::add(v, R::load(m, dst + i));
      R::store(m, dst + i, v);
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) {
      if constexpr (Add)
        dst[i] += src[i];
      else
        dst[i] = src[i];
    }
  }
}

/// A register-wide running sum of partial rows: add(p, lo, hi) adds p[lo..hi) into lanes lo..hi
/// (the other lanes of p are not read, so p may point before a row's start), store(dst, n)
/// writes lanes 0..n. Only where masked_lanes<T> > 0; elsewhere its members do nothing.
template <class T, bool = (masked_lanes<T> > 0)>
struct MaskedSum {
  /// Does nothing where masked registers are unavailable (callers take their loop path).
  void add(const T*, std::int64_t, std::int64_t) {}
  /// Does nothing where masked registers are unavailable.
  void store(T*, std::int64_t) const {}
};
/// The masked running sum where the target has masked registers for T.
template <class T>
struct MaskedSum<T, true> {
  /// The target's masked register operations for T.
  using R = MaskedRegister<T>;
  /// The running sum, one partial sum per lane.
  typename R::reg v = R::zero();
  /// Adds p[lo..hi) into lanes lo..hi; other lanes of p are not read.
  void add(const T* p, std::int64_t lo, std::int64_t hi) { v = R::add(v, R::load(lane_mask(lo, hi), p)); }
  /// Writes lanes 0..n to dst[0..n).
  void store(T* dst, std::int64_t n) const { R::store(lane_mask(0, n), dst, v); }
};

}  // namespace genmod::kernels::simd

GENMOD_GCC_BUG_105593_END
