#pragma once
/// \file unary.hpp
/// Elementwise math: exp, log, log1p, sqrt, pow by a scalar, abs, square, clamp.

#include <type_traits>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/elementwise.hpp"

namespace genmod {

template <class T>
Var<T> pow(const Var<T>& a, std::type_identity_t<T> p);

/// e^a.  d/da = e^a = out.
template <class T>
Var<T> exp(const Var<T>& a) {
  return record_op(
      "exp", kernels::unary(a.value(), kernels::Exp{}),
      [](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) { sink.add(0, mul(g, out)); }, a);
}

/// Natural log.  d/da = 1/a.
template <class T>
Var<T> log(const Var<T>& a) {
  return record_op(
      "log", kernels::unary(a.value(), kernels::Log{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, div(g, a)); }, a);
}

/// log(1 + a), accurate for small a.  d/da = 1/(1 + a).
template <class T>
Var<T> log1p(const Var<T>& a) {
  return record_op(
      "log1p", kernels::unary(a.value(), kernels::Log1p{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, div(g, a + T(1))); }, a);
}

/// Square root.  d/da = 1/(2 sqrt(a)) = 0.5/out.
template <class T>
Var<T> sqrt(const Var<T>& a) {
  return record_op(
      "sqrt", kernels::unary(a.value(), kernels::Sqrt{}),
      [](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) { sink.add(0, div(scale(g, T(0.5)), out)); }, a);
}

/// a^p for a scalar exponent p.  d/da = p a^(p-1).
template <class T>
Var<T> pow(const Var<T>& a, std::type_identity_t<T> p) {
  return record_op(
      "pow", kernels::unary(a.value(), kernels::PowScalar<T>{p}),
      [a, p](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (p == T(1))
          sink.add(0, g);
        else
          sink.add(0, mul(g, scale(pow(a, p - T(1)), p)));
      },
      a);
}

/// a^2.  d/da = 2a.
template <class T>
Var<T> square(const Var<T>& a) {
  return record_op(
      "square", kernels::unary(a.value(), kernels::Square{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, mul(g, scale(a, T(2)))); }, a);
}

/// |a|.  d/da = sign(a) (0 at 0), a constant: the second derivative is 0 almost everywhere.
template <class T>
Var<T> abs(const Var<T>& a) {
  return record_op(
      "abs", kernels::unary(a.value(), kernels::Abs{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, mul(g, Var<T>(kernels::unary(a.value(), kernels::Sign{}))));
      },
      a);
}

/// a clamped to [lo, hi].  d/da = 1 strictly inside, 0 outside.
template <class T>
Var<T> clamp(const Var<T>& a, std::type_identity_t<T> lo, std::type_identity_t<T> hi) {
  if (!(lo <= hi))
    throw ValueError("clamp: expected lo <= hi, got lo = " + std::to_string(lo) + ", hi = " + std::to_string(hi));
  return record_op(
      "clamp", kernels::unary(a.value(), kernels::Clamp<T>{lo, hi}),
      [a, lo, hi](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, mul(g, Var<T>(kernels::unary(a.value(), kernels::InsideOpen<T>{lo, hi}))));
      },
      a);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::exp, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::log, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::sqrt, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::square, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::exp, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::log, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::sqrt, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::square, double)
#define GENMOD_DETAIL_UNARY_OPS(T)                                                                       \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::log1p<T>(const genmod::Var<T>&);                         \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::abs<T>(const genmod::Var<T>&);                           \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::pow<T>(const genmod::Var<T>&, std::type_identity_t<T>);  \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::clamp<T>(const genmod::Var<T>&, std::type_identity_t<T>, \
                                                         std::type_identity_t<T>);
GENMOD_DETAIL_UNARY_OPS(float)
GENMOD_DETAIL_UNARY_OPS(double)
#undef GENMOD_DETAIL_UNARY_OPS
#endif
