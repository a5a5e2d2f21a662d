#pragma once
/// \file simd.hpp
/// Thin helpers over xsimd so one functor serves both SIMD batches and scalar tails:
/// `f(batch)` on full registers, `f(scalar)` on the remainder.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

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
  if constexpr (is_scalar<V>) return a > b ? a : b;
  else return xsimd::max(a, b);
}
template <class V>
inline V min(V a, V b) {
  if constexpr (is_scalar<V>) return a < b ? a : b;
  else return xsimd::min(a, b);
}
template <class V>
inline V abs(V a) {
  if constexpr (is_scalar<V>) return std::abs(a);
  else return xsimd::abs(a);
}
/// cond ? a : b, elementwise.
template <class C, class V>
inline V select(C cond, V a, V b) {
  if constexpr (is_scalar<V>) return cond ? a : b;
  else return xsimd::select(cond, a, b);
}
template <class V>
inline V exp(V a) {
  if constexpr (is_scalar<V>) return std::exp(a);
  else return xsimd::exp(a);
}
template <class V>
inline V log(V a) {
  if constexpr (is_scalar<V>) return std::log(a);
  else return xsimd::log(a);
}
template <class V>
inline V log1p(V a) {
  if constexpr (is_scalar<V>) return std::log1p(a);
  else return xsimd::log1p(a);
}
template <class V>
inline V sqrt(V a) {
  if constexpr (is_scalar<V>) return std::sqrt(a);
  else return xsimd::sqrt(a);
}
template <class V>
inline V tanh(V a) {
  if constexpr (is_scalar<V>) return std::tanh(a);
  else return xsimd::tanh(a);
}
template <class V>
inline V pow(V a, V b) {
  if constexpr (is_scalar<V>) return std::pow(a, b);
  else return xsimd::pow(a, b);
}
template <class V>
inline V expm1(V a) {
  if constexpr (is_scalar<V>) return std::expm1(a);
  else return xsimd::expm1(a);
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

}  // namespace genmod::kernels::simd
