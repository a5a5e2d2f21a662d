#pragma once
/// \file reconstruction.hpp
/// Reconstruction losses, elementwise (reduce them with sum_per_sample or mean):
/// binary cross-entropy with logits in its stable form, and squared error.

#include <cstdint>
#include <string>
#include <type_traits>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/elementwise.hpp"

namespace genmod::losses {

/// -[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))] = softplus(l) - t l, elementwise, for
/// logits l and targets t in [0, 1] (continuous targets are allowed, as for [0,1] pixels).
/// Stable for any l: softplus is computed as max(l, 0) + log1p(e^-|l|).
/// d/dl = sigmoid(l) - t,  d/dt = -l.
template <class T>
Var<T> bce_with_logits(const Var<T>& logits, const Var<T>& target) {
  check_same_shape("bce_with_logits", "logits", logits.shape(), "targets", target.shape());
  Tensor<T> y(logits.shape());
  kernels::map2(logits.value().data(), target.value().data(), y.data(), y.numel(), [](auto l, auto t) {
    return kernels::Softplus{}(l) - t * l;
  });
  return record_op(
      "bce_with_logits", std::move(y),
      [logits, target](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) {
          if (!grad_enabled()) {
            Tensor<T> d(logits.shape());
            kernels::map3(g.value().data(), logits.value().data(), target.value().data(), d.data(), d.numel(),
                          [](auto gg, auto l, auto t) { return gg * (kernels::Sigmoid{}(l) - t); });
            sink.add(0, Var<T>(std::move(d)));
          } else {
            sink.add(0, mul(g, sub(sigmoid(logits), target)));
          }
        }
        if (sink.needs(1)) sink.add(1, neg(mul(g, logits)));
      },
      logits, target);
}

/// bce_with_logits against the same target t for every element (a GAN's "real" = 1 and "fake" =
/// 0): softplus(l) - t l without a target tensor. d/dl = sigmoid(l) - t.
template <class T>
Var<T> bce_with_logits(const Var<T>& logits, std::type_identity_t<T> target) {
  Tensor<T> y(logits.shape());
  kernels::map(logits.value().data(), y.data(), y.numel(),
                [target](auto l) { return kernels::Softplus{}(l) - decltype(l)(target) * l; });
  return record_op(
      "bce_with_logits", std::move(y),
      [logits, target](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) {
          Tensor<T> d(logits.shape());
          kernels::map2(g.value().data(), logits.value().data(), d.data(), d.numel(), [target](auto gg, auto l) {
            return gg * (kernels::Sigmoid{}(l) - decltype(l)(target));
          });
          sink.add(0, Var<T>(std::move(d)));
        } else {
          sink.add(0, mul(g, add_scalar(sigmoid(logits), -target)));
        }
      },
      logits);
}

/// (a - b)^2 elementwise.
template <class T>
Var<T> squared_error(const Var<T>& a, const Var<T>& b) {
  return square(sub(a, b));
}

/// Sum over every dimension but the first: [N, ...] -> [N].
template <class T>
Var<T> sum_per_sample(const Var<T>& x) {
  if (x.rank() == 1) return x;
  return sum(reshape(x, Shape{x.dim(0), x.numel() / x.dim(0)}), 1);
}

}  // namespace genmod::losses

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::losses::bce_with_logits, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::squared_error, float)
GENMOD_DETAIL_INSTANTIATE_BINARY(genmod::losses::bce_with_logits, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::squared_error, double)
#endif
