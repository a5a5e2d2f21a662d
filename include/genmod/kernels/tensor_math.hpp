#pragma once
/// \file tensor_math.hpp
/// Plain arithmetic on Tensor<T>, outside any tape: `a + b`, `a * 2.f`, `a -= b`, `sqrt(a)`,
/// `sum(a)`, `mean(a, 0)`, ... with NumPy broadcasting for two tensors. Nothing is recorded and
/// no gradient flows: mixing two tensors needs neither a Var nor a NoGradGuard. To differentiate,
/// use the same expressions on Var (autodiff/ops), whose operators these do not compete with.
///
/// Where it sits: the functions are the kernels of kernels/elementwise.hpp and kernels/reduce.hpp
/// under familiar names, so the header lives in kernels/, the lowest layer allowed to include
/// those (core/ may not: kernels build on core). Every layer above, and a user, can include it.
/// The names are in namespace genmod, not genmod::kernels, so that argument-dependent lookup
/// finds the operators wherever a Tensor is.
///
/// Overloads: each function takes `const Tensor<T>&` with T deduced, and the Var forms take
/// `const Var<T>&` with T deduced, so deduction picks exactly one family. Tensor op Tensor gives
/// a Tensor; Var op Var a Var. (A Tensor converts to a constant Var implicitly, but deduction
/// never considers that conversion, so neither family ever sees the other's arguments.)
///
/// Element types: floating point (float, double); the maps are xsimd batches.
///
/// Results are fresh tensors. The compound forms (`a += b`) write into a's buffer, and copies of
/// a Tensor share their buffer (tensor.hpp), so they see the change, as in NumPy and PyTorch;
/// clone() first to keep the old values.

#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>

#include "genmod/config.hpp"
#include "genmod/core/shape.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/reduce.hpp"

namespace genmod {

namespace detail {

template <class T>
void check_tensor_math_operand(const Tensor<T>& t, const char* op) {
  static_assert(std::floating_point<T>, "genmod tensor arithmetic (tensor_math.hpp) needs float or double elements");
  if (!t.defined()) throw ValueError(std::string(op) + ": the tensor is undefined (default-constructed or moved from)");
}

/// c - a for a scalar c.
template <class T>
struct RSubScalar {
  T c;
  template <class V>
  V operator()(V a) const {
    return V(c) - a;
  }
};

/// a / c for a scalar c (a true division, not a product with 1/c, so it rounds as a / c does).
template <class T>
struct DivScalar {
  T c;
  template <class V>
  V operator()(V a) const {
    return a / V(c);
  }
};

/// c / a for a scalar c.
template <class T>
struct RDivScalar {
  T c;
  template <class V>
  V operator()(V a) const {
    return V(c) / a;
  }
};

/// f(a, b) with broadcasting, both operands checked.
template <class T, class F>
Tensor<T> tensor_binary(const Tensor<T>& a, const Tensor<T>& b, F f, const char* op) {
  check_tensor_math_operand(a, op);
  check_tensor_math_operand(b, op);
  return kernels::binary(a, b, f, op);
}

/// f(x) elementwise into a new tensor.
template <class T, class F>
Tensor<T> tensor_unary(const Tensor<T>& x, F f, const char* op) {
  check_tensor_math_operand(x, op);
  return kernels::unary(x, f);
}

/// a = f(a, b) in a's buffer; b must broadcast to a's shape (a's shape cannot change in place).
template <class T, class F>
Tensor<T>& tensor_binary_inplace(Tensor<T>& a, const Tensor<T>& b, F f, const char* op) {
  check_tensor_math_operand(a, op);
  check_tensor_math_operand(b, op);
  if (a.shape() == b.shape()) {
    // Element i is loaded before it is stored, so the output may alias an input.
    kernels::map2(a.data(), b.data(), a.data(), a.numel(), f);
    return a;
  }
  if (!broadcastable_to(b.shape(), a.shape()))
    throw ShapeError(std::string(op) + ": shape " + b.shape().to_string() + " cannot be broadcast to " +
                     a.shape().to_string() + ", the shape of the tensor updated in place");
  const Tensor<T> bb = kernels::broadcast_to(b, a.shape(), op);
  kernels::map2(a.data(), bb.data(), a.data(), a.numel(), f);
  return a;
}

/// a = f(a) in a's buffer.
template <class T, class F>
Tensor<T>& tensor_unary_inplace(Tensor<T>& a, F f, const char* op) {
  check_tensor_math_operand(a, op);
  kernels::map(a.data(), a.data(), a.numel(), f);
  return a;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Tensor with tensor (NumPy broadcasting: trailing extents equal or 1).

/// a + b elementwise, broadcast.
template <class T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary(a, b, kernels::Add{}, "operator+");
}
/// a - b elementwise, broadcast.
template <class T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary(a, b, kernels::Sub{}, "operator-");
}
/// a * b elementwise (not a matrix product), broadcast.
template <class T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary(a, b, kernels::Mul{}, "operator*");
}
/// a / b elementwise, broadcast.
template <class T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary(a, b, kernels::Div{}, "operator/");
}
/// -a.
template <class T>
Tensor<T> operator-(const Tensor<T>& a) {
  return detail::tensor_unary(a, kernels::Neg{}, "operator-");
}

// ---------------------------------------------------------------------------------------------
// Tensor with scalar. The scalar's type is not deduced (std::type_identity_t), so `t * 2` and
// `t * 0.5` work on a Tensor<float>.

/// a + c.
template <class T>
Tensor<T> operator+(const Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary(a, kernels::AddScalar<T>{c}, "operator+");
}
/// c + a.
template <class T>
Tensor<T> operator+(std::type_identity_t<T> c, const Tensor<T>& a) {
  return detail::tensor_unary(a, kernels::AddScalar<T>{c}, "operator+");
}
/// a - c.
template <class T>
Tensor<T> operator-(const Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary(a, kernels::AddScalar<T>{-c}, "operator-");
}
/// c - a.
template <class T>
Tensor<T> operator-(std::type_identity_t<T> c, const Tensor<T>& a) {
  return detail::tensor_unary(a, detail::RSubScalar<T>{c}, "operator-");
}
/// a * c.
template <class T>
Tensor<T> operator*(const Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary(a, kernels::MulScalar<T>{c}, "operator*");
}
/// c * a.
template <class T>
Tensor<T> operator*(std::type_identity_t<T> c, const Tensor<T>& a) {
  return detail::tensor_unary(a, kernels::MulScalar<T>{c}, "operator*");
}
/// a / c.
template <class T>
Tensor<T> operator/(const Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary(a, detail::DivScalar<T>{c}, "operator/");
}
/// c / a.
template <class T>
Tensor<T> operator/(std::type_identity_t<T> c, const Tensor<T>& a) {
  return detail::tensor_unary(a, detail::RDivScalar<T>{c}, "operator/");
}

// ---------------------------------------------------------------------------------------------
// Compound assignment: in place, into the left operand's buffer (shared with its copies).

/// a += b; b broadcasts to a's shape.
template <class T>
Tensor<T>& operator+=(Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary_inplace(a, b, kernels::Add{}, "operator+=");
}
/// a -= b; b broadcasts to a's shape.
template <class T>
Tensor<T>& operator-=(Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary_inplace(a, b, kernels::Sub{}, "operator-=");
}
/// a *= b elementwise; b broadcasts to a's shape.
template <class T>
Tensor<T>& operator*=(Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary_inplace(a, b, kernels::Mul{}, "operator*=");
}
/// a /= b elementwise; b broadcasts to a's shape.
template <class T>
Tensor<T>& operator/=(Tensor<T>& a, const Tensor<T>& b) {
  return detail::tensor_binary_inplace(a, b, kernels::Div{}, "operator/=");
}
/// a += c.
template <class T>
Tensor<T>& operator+=(Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary_inplace(a, kernels::AddScalar<T>{c}, "operator+=");
}
/// a -= c.
template <class T>
Tensor<T>& operator-=(Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary_inplace(a, kernels::AddScalar<T>{-c}, "operator-=");
}
/// a *= c.
template <class T>
Tensor<T>& operator*=(Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary_inplace(a, kernels::MulScalar<T>{c}, "operator*=");
}
/// a /= c.
template <class T>
Tensor<T>& operator/=(Tensor<T>& a, std::type_identity_t<T> c) {
  return detail::tensor_unary_inplace(a, detail::DivScalar<T>{c}, "operator/=");
}

// ---------------------------------------------------------------------------------------------
// Elementwise functions (the Var forms of the same names are in autodiff/ops/unary.hpp).

/// |x|.
template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  return detail::tensor_unary(x, kernels::Abs{}, "abs");
}
/// sqrt(x) (NaN for x < 0).
template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  return detail::tensor_unary(x, kernels::Sqrt{}, "sqrt");
}
/// x^2.
template <class T>
Tensor<T> square(const Tensor<T>& x) {
  return detail::tensor_unary(x, kernels::Square{}, "square");
}
/// x^p for a scalar p.
template <class T>
Tensor<T> pow(const Tensor<T>& x, std::type_identity_t<T> p) {
  return detail::tensor_unary(x, kernels::PowScalar<T>{p}, "pow");
}
/// e^x.
template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  return detail::tensor_unary(x, kernels::Exp{}, "exp");
}
/// Natural logarithm (-inf at 0, NaN below).
template <class T>
Tensor<T> log(const Tensor<T>& x) {
  return detail::tensor_unary(x, kernels::Log{}, "log");
}

// ---------------------------------------------------------------------------------------------
// Reductions. Over all elements they return the number itself (as NumPy does), so
// `float mse = mean(square(a - b));` reads as it should; along an axis they return a tensor.

/// Sum of all elements (0 for an empty tensor).
template <class T>
T sum(const Tensor<T>& x) {
  detail::check_tensor_math_operand(x, "sum");
  return kernels::sum_all(x);
}
/// Sum along `axis` (negative counts from the end); keepdim keeps it with extent 1.
template <class T>
Tensor<T> sum(const Tensor<T>& x, int axis, bool keepdim = false) {
  detail::check_tensor_math_operand(x, "sum");
  return kernels::sum_axis(x, x.shape().normalize_axis(axis, "sum"), keepdim);
}
/// Mean of all elements; an empty tensor has none, which is an error.
template <class T>
T mean(const Tensor<T>& x) {
  detail::check_tensor_math_operand(x, "mean");
  if (x.numel() == 0) throw ValueError("mean: the tensor " + x.shape().to_string() + " has no elements");
  return kernels::sum_all(x) / static_cast<T>(x.numel());
}
/// Mean along `axis` (negative counts from the end); keepdim keeps it with extent 1.
template <class T>
Tensor<T> mean(const Tensor<T>& x, int axis, bool keepdim = false) {
  detail::check_tensor_math_operand(x, "mean");
  const int a = x.shape().normalize_axis(axis, "mean");
  if (x.dim(a) == 0)
    throw ValueError("mean: axis " + std::to_string(axis) + " of " + x.shape().to_string() + " has no elements");
  Tensor<T> s = kernels::sum_axis(x, a, keepdim);
  return detail::tensor_unary_inplace(s, detail::DivScalar<T>{static_cast<T>(x.dim(a))}, "mean");
}

}  // namespace genmod
