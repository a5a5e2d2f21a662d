#pragma once
/// \file softmax.hpp
/// softmax and log_softmax along an axis (max-shifted, stable).

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/reduce.hpp"

namespace genmod {

/// e^x / sum e^x along `axis`.  d/dx: y (g - sum(g y)), y = out.
template <class T>
Var<T> softmax(const Var<T>& x, int axis = -1) {
  const int a = x.shape().normalize_axis(axis, "softmax");
  return record_op(
      "softmax", kernels::softmax_axis(x.value(), a, false),
      [a](const Var<T>& y, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, mul(y, sub(g, sum(mul(g, y), a, true))));
      },
      x);
}

/// x - logsumexp(x) along `axis`.  d/dx: g - e^out sum(g).
template <class T>
Var<T> log_softmax(const Var<T>& x, int axis = -1) {
  const int a = x.shape().normalize_axis(axis, "log_softmax");
  return record_op(
      "log_softmax", kernels::softmax_axis(x.value(), a, true),
      [a](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, sub(g, mul(exp(out), sum(g, a, true))));
      },
      x);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::softmax, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::log_softmax, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::softmax, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::log_softmax, double)
#endif
