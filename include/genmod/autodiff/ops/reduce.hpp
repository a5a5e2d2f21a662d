#pragma once
/// \file reduce.hpp
/// sum, mean, max and logsumexp, over all elements or along one axis (keepdim keeps the axis
/// with extent 1). A full reduction returns a scalar (rank 0).

#include <cstdint>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/reduce.hpp"

namespace genmod {

/// Sum of all elements (a scalar).  d/dx: the gradient broadcast to x's shape.
template <class T>
Var<T> sum(const Var<T>& x) {
  return record_op(
      "sum", scalar<T>(kernels::sum_all(x.value())),
      [xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, broadcast_to(g, xs)); }, x);
}

/// Sum along `axis`.  d/dx: the gradient (with the axis restored) broadcast along it.
template <class T>
Var<T> sum(const Var<T>& x, int axis, bool keepdim = false) {
  const int a = x.shape().normalize_axis(axis, "sum");
  return record_op(
      "sum_axis", kernels::sum_axis(x.value(), a, keepdim),
      [a, xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, broadcast_to(reshape(g, kernels::reduced_shape(xs, a, true)), xs));
      },
      x);
}

/// Mean of all elements.
template <class T>
Var<T> mean(const Var<T>& x) {
  return scale(sum(x), T(1) / static_cast<T>(x.numel()));
}

/// Mean along `axis`.
template <class T>
Var<T> mean(const Var<T>& x, int axis, bool keepdim = false) {
  const int a = x.shape().normalize_axis(axis, "mean");
  return scale(sum(x, a, keepdim), T(1) / static_cast<T>(x.dim(a)));
}

/// Maximum along `axis`. The gradient goes to the first maximal entry (as PyTorch's max(dim)).
template <class T>
Var<T> max(const Var<T>& x, int axis, bool keepdim = false) {
  const int a = x.shape().normalize_axis(axis, "max");
  Tensor<T> values;
  Tensor<std::int64_t> idx;
  kernels::max_axis(x.value(), a, true, values, idx);
  Tensor<T> out = keepdim ? values : values.reshape(kernels::reduced_shape(x.shape(), a, false));
  return record_op(
      "max_axis", std::move(out),
      [a, idx, xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        // mask[o, k, i] = [k == argmax(o, i)]
        Tensor<T> mask = zeros<T>(xs);
        const kernels::AxisView v = kernels::axis_view(xs, a);
        for (std::int64_t o = 0; o < v.outer; ++o)
          for (std::int64_t i = 0; i < v.inner; ++i)
            mask[(o * v.n + idx[o * v.inner + i]) * v.inner + i] = T(1);
        sink.add(0, mul(broadcast_to(reshape(g, kernels::reduced_shape(xs, a, true)), xs), Var<T>(std::move(mask))));
      },
      x);
}

/// Maximum of all elements. The gradient goes to the first maximal entry.
template <class T>
Var<T> max(const Var<T>& x) {
  return reshape(max(reshape(x, Shape{x.numel()}), 0, false), Shape{});
}

/// log sum exp along `axis`, stable.  d/dx = softmax(x) along the axis.
template <class T>
Var<T> logsumexp(const Var<T>& x, int axis, bool keepdim = false) {
  const int a = x.shape().normalize_axis(axis, "logsumexp");
  return record_op(
      "logsumexp", kernels::logsumexp_axis(x.value(), a, keepdim),
      [x, a](const Var<T>& out, const Var<T>& g, GradSink<T>& sink) {
        const Shape keep = kernels::reduced_shape(x.shape(), a, true);
        const Var<T> p = exp(sub(x, reshape(out, keep)));
        sink.add(0, mul(reshape(g, keep), p));
      },
      x);
}

/// log sum exp of all elements (a scalar).
template <class T>
Var<T> logsumexp(const Var<T>& x) {
  return reshape(logsumexp(reshape(x, Shape{x.numel()}), 0, false), Shape{});
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
#define GENMOD_DETAIL_REDUCE_OPS(T)                                                        \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::sum<T>(const genmod::Var<T>&);             \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::sum<T>(const genmod::Var<T>&, int, bool);  \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::mean<T>(const genmod::Var<T>&);            \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::mean<T>(const genmod::Var<T>&, int, bool); \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::max<T>(const genmod::Var<T>&);             \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::max<T>(const genmod::Var<T>&, int, bool);  \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::logsumexp<T>(const genmod::Var<T>&);       \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::logsumexp<T>(const genmod::Var<T>&, int, bool);
GENMOD_DETAIL_REDUCE_OPS(float)
GENMOD_DETAIL_REDUCE_OPS(double)
#undef GENMOD_DETAIL_REDUCE_OPS
#endif
