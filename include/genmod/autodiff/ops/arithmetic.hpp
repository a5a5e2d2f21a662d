#pragma once
/// \file arithmetic.hpp
/// add, sub, mul, div with NumPy broadcasting; neg; scalar forms; and the operators.
/// Gradients of a broadcast operand are summed back to its shape.

#include <type_traits>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/elementwise.hpp"

namespace genmod {

template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T>
Var<T> neg(const Var<T>& a);
template <class T>
Var<T> scale(const Var<T>& a, std::type_identity_t<T> c);

/// a + b.  d/da = 1, d/db = 1.
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return record_op(
      "add", kernels::binary(a.value(), b.value(), kernels::Add{}, "add"),
      [as = a.shape(), bs = b.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, sum_to(g, as));
        if (sink.needs(1)) sink.add(1, sum_to(g, bs));
      },
      a, b);
}

/// a - b.  d/da = 1, d/db = -1.
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return record_op(
      "sub", kernels::binary(a.value(), b.value(), kernels::Sub{}, "sub"),
      [as = a.shape(), bs = b.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, sum_to(g, as));
        if (sink.needs(1)) sink.add(1, neg(sum_to(g, bs)));
      },
      a, b);
}

/// a * b (elementwise).  d/da = b, d/db = a.
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return record_op(
      "mul", kernels::binary(a.value(), b.value(), kernels::Mul{}, "mul"),
      [a, b](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, sum_to(mul(g, b), a.shape()));
        if (sink.needs(1)) sink.add(1, sum_to(mul(g, a), b.shape()));
      },
      a, b);
}

/// a / b.  d/da = 1/b, d/db = -a/b^2 = -out/b.
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return record_op(
      "div", kernels::binary(a.value(), b.value(), kernels::Div{}, "div"),
      [a, b](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) {
        const Var<T> ga = div(g, b);
        if (sink.needs(0)) sink.add(0, sum_to(ga, a.shape()));
        if (sink.needs(1)) sink.add(1, neg(sum_to(mul(ga, out), b.shape())));
      },
      a, b);
}

/// -a.  d/da = -1.
template <class T>
Var<T> neg(const Var<T>& a) {
  return record_op(
      "neg", kernels::unary(a.value(), kernels::Neg{}),
      [](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, neg(g)); }, a);
}

/// c * a for a scalar c.  d/da = c.
template <class T>
Var<T> scale(const Var<T>& a, std::type_identity_t<T> c) {
  return record_op(
      "scale", kernels::unary(a.value(), kernels::MulScalar<T>{c}),
      [c](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, scale(g, c)); }, a);
}

/// a + c for a scalar c.  d/da = 1.
template <class T>
Var<T> add_scalar(const Var<T>& a, std::type_identity_t<T> c) {
  return record_op(
      "add_scalar", kernels::unary(a.value(), kernels::AddScalar<T>{c}),
      [](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, g); }, a);
}

/// c / a for a scalar c.  d/da = -c / a^2 = -out / a.
template <class T>
Var<T> rdiv_scalar(std::type_identity_t<T> c, const Var<T>& a) {
  Tensor<T> cs = full<T>(a.shape(), c);
  return div(Var<T>(std::move(cs)), a);
}

/// a + b: add(a, b), broadcasting b's shape against a's.
template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
/// a - b: sub(a, b), broadcasting.
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
/// a * b elementwise (not a matrix product; see matmul): mul(a, b), broadcasting.
template <class T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
/// a / b elementwise: div(a, b), broadcasting.
template <class T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
/// -a: neg(a).
template <class T>
Var<T> operator-(const Var<T>& a) { return neg(a); }
/// a + c for a scalar c: add_scalar(a, c).
template <class T>
Var<T> operator+(const Var<T>& a, std::type_identity_t<T> c) { return add_scalar(a, c); }
/// c + a for a scalar c: add_scalar(a, c).
template <class T>
Var<T> operator+(std::type_identity_t<T> c, const Var<T>& a) { return add_scalar(a, c); }
/// a - c for a scalar c: add_scalar(a, -c).
template <class T>
Var<T> operator-(const Var<T>& a, std::type_identity_t<T> c) { return add_scalar(a, -c); }
/// c - a for a scalar c: add_scalar(-a, c).
template <class T>
Var<T> operator-(std::type_identity_t<T> c, const Var<T>& a) { return add_scalar(neg(a), c); }
/// a * c for a scalar c: scale(a, c).
template <class T>
Var<T> operator*(const Var<T>& a, std::type_identity_t<T> c) { return scale(a, c); }
/// c * a for a scalar c: scale(a, c).
template <class T>
Var<T> operator*(std::type_identity_t<T> c, const Var<T>& a) { return scale(a, c); }
/// a / c for a scalar c: scale(a, 1 / c).
template <class T>
Var<T> operator/(const Var<T>& a, std::type_identity_t<T> c) { return scale(a, T(1) / c); }
/// c / a for a scalar c: rdiv_scalar(c, a).
template <class T>
Var<T> operator/(std::type_identity_t<T> c, const Var<T>& a) { return rdiv_scalar(c, a); }

// A Var with a Tensor: the Tensor is a constant (no gradient flows into it), as if wrapped in
// Var<T>(t). Written out because the Var templates above deduce T and so never convert a Tensor
// argument; Tensor with Tensor is plain arithmetic (kernels/tensor_math.hpp), with no overlap.
/// a + t for a constant tensor t.
template <class T>
Var<T> operator+(const Var<T>& a, const Tensor<T>& t) { return add(a, Var<T>(t)); }
/// t + a for a constant tensor t.
template <class T>
Var<T> operator+(const Tensor<T>& t, const Var<T>& a) { return add(Var<T>(t), a); }
/// a - t for a constant tensor t.
template <class T>
Var<T> operator-(const Var<T>& a, const Tensor<T>& t) { return sub(a, Var<T>(t)); }
/// t - a for a constant tensor t.
template <class T>
Var<T> operator-(const Tensor<T>& t, const Var<T>& a) { return sub(Var<T>(t), a); }
/// a * t for a constant tensor t.
template <class T>
Var<T> operator*(const Var<T>& a, const Tensor<T>& t) { return mul(a, Var<T>(t)); }
/// t * a for a constant tensor t.
template <class T>
Var<T> operator*(const Tensor<T>& t, const Var<T>& a) { return mul(Var<T>(t), a); }
/// a / t for a constant tensor t.
template <class T>
Var<T> operator/(const Var<T>& a, const Tensor<T>& t) { return div(a, Var<T>(t)); }
/// t / a for a constant tensor t.
template <class T>
Var<T> operator/(const Tensor<T>& t, const Var<T>& a) { return div(Var<T>(t), a); }

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::add, float)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::sub, float)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::mul, float)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::div, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::neg, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::scale, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::add_scalar, float)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::add, double)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::sub, double)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::mul, double)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::div, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::neg, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::scale, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::add_scalar, double)
#define GENMOD_DETAIL_ARITHMETIC_OPS(T) \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::rdiv_scalar<T>(std::type_identity_t<T>, const genmod::Var<T>&);
GENMOD_DETAIL_ARITHMETIC_OPS(float)
GENMOD_DETAIL_ARITHMETIC_OPS(double)
#undef GENMOD_DETAIL_ARITHMETIC_OPS
#endif
