#pragma once
/// \file activation.hpp
/// relu, leaky_relu, elu, sigmoid, tanh, softplus, log_sigmoid.
///
/// First-order backward passes use fused kernels (one pass over memory); when the backward is
/// itself recorded (create_graph), the same derivative is composed from differentiable ops so
/// that second derivatives are right.

#include <type_traits>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/elementwise.hpp"

namespace genmod {

template <class T>
Var<T> sigmoid(const Var<T>& a);

namespace detail {
/// g (a Var) times a constant derived elementwise from x by f.
template <class T, class F>
Var<T> times_const(const Var<T>& g, const Tensor<T>& x, F f) {
  return mul(g, Var<T>(kernels::unary(x, f)));
}
/// f(g, x) computed in one fused pass, as a constant (valid when the backward is not recorded).
template <class T, class F>
Var<T> fused(const Var<T>& g, const Tensor<T>& x, F f) {
  Tensor<T> r(x.shape());
  kernels::map2(g.value().data(), x.data(), r.data(), r.numel(), f);
  return Var<T>(std::move(r));
}
}  // namespace detail

/// max(a, 0).  d/da = [a > 0].
template <class T>
Var<T> relu(const Var<T>& a) {
  return record_op(
      "relu", kernels::unary(a.value(), kernels::Relu{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) return sink.add(0, detail::fused(g, a.value(), kernels::ReluBackward{}));
        sink.add(0, detail::times_const(g, a.value(), kernels::Positive{}));
      },
      a);
}

/// a (a > 0) or slope * a.  d/da = 1 or slope.
template <class T>
Var<T> leaky_relu(const Var<T>& a, std::type_identity_t<T> slope = T(0.01)) {
  return record_op(
      "leaky_relu", kernels::unary(a.value(), kernels::LeakyRelu<T>{slope}),
      [a, slope](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) return sink.add(0, detail::fused(g, a.value(), kernels::LeakyReluBackward<T>{slope}));
        sink.add(0, detail::times_const(g, a.value(), kernels::LeakyReluSlope<T>{slope}));
      },
      a);
}

/// a (a > 0) or alpha (e^a - 1).  d/da = 1 or alpha e^a = out + alpha.
template <class T>
Var<T> elu(const Var<T>& a, std::type_identity_t<T> alpha = T(1)) {
  return record_op(
      "elu", kernels::unary(a.value(), kernels::Elu<T>{alpha}),
      [a, alpha](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) {
        // d = pos + (1 - pos) * (out + alpha), with pos = [a > 0] a constant mask.
        const Var<T> pos(kernels::unary(a.value(), kernels::Positive{}));
        const Var<T> neg_mask(kernels::unary(a.value(), [](auto x) {
          using V = decltype(x);
          return kernels::simd::select(x > V(0), V(0), V(1));
        }));
        sink.add(0, mul(g, add(pos, mul(neg_mask, out + alpha))));
      },
      a);
}

/// 1 / (1 + e^-a).  d/da = s (1 - s) with s = out.
template <class T>
Var<T> sigmoid(const Var<T>& a) {
  return record_op(
      "sigmoid", kernels::unary(a.value(), kernels::Sigmoid{}),
      [](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) return sink.add(0, detail::fused(g, out.value(), kernels::SigmoidBackward{}));
        sink.add(0, mul(g, mul(out, T(1) - out)));
      },
      a);
}

/// tanh(a).  d/da = 1 - t^2 with t = out.
template <class T>
Var<T> tanh(const Var<T>& a) {
  return record_op(
      "tanh", kernels::unary(a.value(), kernels::Tanh{}),
      [](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) return sink.add(0, detail::fused(g, out.value(), kernels::TanhBackward{}));
        sink.add(0, mul(g, T(1) - square(out)));
      },
      a);
}

/// log(1 + e^a), stable.  d/da = sigmoid(a).
template <class T>
Var<T> softplus(const Var<T>& a) {
  return record_op(
      "softplus", kernels::unary(a.value(), kernels::Softplus{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) return sink.add(0, detail::fused(g, a.value(), kernels::SoftplusBackward{}));
        sink.add(0, mul(g, sigmoid(a)));
      },
      a);
}

/// log sigmoid(a) = -softplus(-a), stable.  d/da = sigmoid(-a) = 1 - sigmoid(a).
template <class T>
Var<T> log_sigmoid(const Var<T>& a) {
  return record_op(
      "log_sigmoid", kernels::unary(a.value(), kernels::LogSigmoid{}),
      [a](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) return sink.add(0, detail::fused(g, a.value(), kernels::LogSigmoidBackward{}));
        sink.add(0, mul(g, sigmoid(neg(a))));
      },
      a);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::relu, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::leaky_relu, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::elu, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::sigmoid, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::tanh, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::softplus, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::log_sigmoid, float)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::relu, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::leaky_relu, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::elu, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::sigmoid, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::tanh, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::softplus, double)
GENMOD_DETAIL_INSTANTIATE_UNARY(genmod::log_sigmoid, double)
#endif
