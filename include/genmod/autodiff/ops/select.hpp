#pragma once
/// \file select.hpp
/// where (choice by a mask), gather / scatter_add along an axis (labels, per-pixel classes),
/// and one_hot.

#include <cstdint>
#include <string>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/index.hpp"

namespace genmod {

/// mask != 0 ? a : b elementwise; a and b broadcast to the mask's shape.  d/da = mask,
/// d/db = 1 - mask (the mask is a constant). Unlike a*m + b*(1-m), an Inf or NaN in the branch
/// not taken does not leak into the result.
template <class T>
Var<T> where(const Tensor<T>& mask, const Var<T>& a, const Var<T>& b) {
  const Shape s = mask.shape();
  if (!broadcastable_to(a.shape(), s) || !broadcastable_to(b.shape(), s))
    throw ShapeError("where: operands " + a.shape().to_string() + " and " + b.shape().to_string() +
                     " do not broadcast to the mask's shape " + s.to_string());
  const Tensor<T> av = a.shape() == s ? a.value() : kernels::broadcast_to(a.value(), s);
  const Tensor<T> bv = b.shape() == s ? b.value() : kernels::broadcast_to(b.value(), s);
  Tensor<T> y(s);
  kernels::map3(mask.data(), av.data(), bv.data(), y.data(), y.numel(), [](auto m, auto x, auto z) {
    using V = decltype(m);
    return kernels::simd::select(m != V(0), x, z);
  });
  return record_op(
      "where", std::move(y),
      [mask, as = a.shape(), bs = b.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, sum_to(mul(g, Var<T>(mask)), as));
        if (sink.needs(1)) {
          Tensor<T> inv = kernels::unary(mask, [](auto m) {
            using V = decltype(m);
            return kernels::simd::select(m != V(0), V(0), V(1));
          });
          sink.add(1, sum_to(mul(g, Var<T>(std::move(inv))), bs));
        }
      },
      a, b);
}

template <class T>
Var<T> scatter_add(const Var<T>& src, const Shape& shape, int axis, const Tensor<std::int64_t>& index);

/// result[o, j, i] = x[o, index[o, j, i], i] along `axis` (index has x's rank; its extent along
/// `axis` may differ). d/dx: the gradient scatter-added back to the gathered positions.
template <class T>
Var<T> gather(const Var<T>& x, int axis, const Tensor<std::int64_t>& index) {
  const int a = x.shape().normalize_axis(axis, "gather");
  kernels::check_gather_index(x.shape(), index, a, "gather");
  return record_op(
      "gather", kernels::gather_axis(x.value(), a, index),
      [a, index, xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, scatter_add(g, xs, a, index));
      },
      x);
}

/// Zeros of `shape` with src added at the positions index selects along `axis` (the adjoint of
/// gather).  d/dsrc: gather of the gradient.
template <class T>
Var<T> scatter_add(const Var<T>& src, const Shape& shape, int axis, const Tensor<std::int64_t>& index) {
  const int a = shape.normalize_axis(axis, "scatter_add");
  kernels::check_gather_index(shape, index, a, "scatter_add");
  check_same_shape("scatter_add", "source", src.shape(), "index", index.shape());
  return record_op(
      "scatter_add", kernels::scatter_add_axis(src.value(), shape, a, index),
      [a, index](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, gather(g, a, index)); }, src);
}

/// [N] integer labels in [0, classes) as [N, classes] one-hot rows (a constant).
template <class T = float>
Tensor<T> one_hot(const Tensor<std::int64_t>& labels, std::int64_t classes) {
  return kernels::one_hot<T>(labels, classes);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::gather, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::gather, double)
#endif
