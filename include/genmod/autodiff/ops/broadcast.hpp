#pragma once
/// \file broadcast.hpp
/// broadcast_to and sum_to: each the other's adjoint, so the pair is closed under differentiation.

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/elementwise.hpp"

namespace genmod {

template <class T>
Var<T> sum_to(const Var<T>& x, const Shape& shape);

/// x repeated along its broadcast dimensions to `shape`.
/// d/dx: the incoming gradient summed back to x's shape.
template <class T>
Var<T> broadcast_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return record_op(
      "broadcast_to", kernels::broadcast_to(x.value(), shape),
      [xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, sum_to(g, xs)); }, x);
}

/// x summed over the dimensions in which it is a broadcast of `shape`.
/// d/dx: the incoming gradient broadcast back to x's shape.
template <class T>
Var<T> sum_to(const Var<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  return record_op(
      "sum_to", kernels::sum_to(x.value(), shape),
      [xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, broadcast_to(g, xs)); }, x);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::broadcast_to, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::broadcast_to, double)
#endif
