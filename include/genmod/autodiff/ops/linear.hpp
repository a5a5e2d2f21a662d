#pragma once
/// \file linear.hpp
/// linear(x, W, b) = x W^T + b as one fused op: the bias is written into the output first and the
/// GEMM accumulates onto it, so the layer costs one pass over its output instead of two.
/// W is [out, in] as in PyTorch, so weights and checkpoints line up with it.

#include <string>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/matmul.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/gemm.hpp"

namespace genmod {

/// x [N, in], W [out, in], b [out] (or undefined for no bias) -> [N, out].
/// d/dx = G W, d/dW = G^T x, d/db = sum of G over the batch.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  if (x.rank() != 2 || w.rank() != 2 || x.dim(1) != w.dim(1))
    throw ShapeError("linear: input " + x.shape().to_string() + " does not fit weight " + w.shape().to_string() +
                     " (expected [N, in] and [out, in])");
  const bool has_bias = b.defined();
  if (has_bias) check_shape("linear", "bias ([out])", b.shape(), Shape{w.dim(0)});
  const std::int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  Tensor<T> y(Shape{n, out});
  if (has_bias)
    for (std::int64_t i = 0; i < n; ++i) std::copy(b.value().data(), b.value().data() + out, y.data() + i * out);
  kernels::gemm<T>(false, true, n, out, in, T(1), x.value().data(), in, w.value().data(), in, has_bias ? T(1) : T(0),
                   y.data(), out);
  auto backward = [x, w, has_bias](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
    if (sink.needs(0)) sink.add(0, matmul_t(g, w, false, false));
    // The weight and bias gradients go straight into the parameters' gradient buffers when the
    // tape allows it: G^T x accumulated by the GEMM itself (beta = 1), no weight-sized temporary.
    const std::int64_t n = g.dim(0), out = g.dim(1), in = x.dim(1);
    if (Tensor<T>* gw = sink.parameter_gradient(1, w.shape()))
      kernels::gemm<T>(true, false, out, in, n, T(1), g.value().data(), out, x.value().data(), in, T(1), gw->data(),
                       in);
    else if (sink.needs(1))
      sink.add(1, matmul_t(g, x, true, false));
    if (!has_bias) return;
    if (Tensor<T>* gb = sink.parameter_gradient(2, Shape{out})) {
      const T* gv = g.value().data();
      T* acc = gb->data();
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < out; ++j) acc[j] += gv[i * out + j];
    } else if (sink.needs(2))
      sink.add(2, sum(g, 0));
  };
  return has_bias ? record_op("linear", std::move(y), backward, x, w, b)
                  : record_op("linear", std::move(y), backward, x, w);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::linear, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::linear, double)
#endif
