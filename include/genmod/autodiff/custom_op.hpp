#pragma once
/// \file custom_op.hpp
/// record_op: the one helper every differentiable op (built-in or a user's fused op) goes through.
///
///   Var<T> y = record_op("my_op", std::move(value),
///       [x](const Var<T>& out, const Var<T>& gout, GradSink<T>& sink) {
///         if (sink.needs(0)) sink.add(0, /* d loss / d x, written with differentiable ops */);
///       }, x);
///
/// The value is computed by the caller (with kernels). When no input requires a gradient, or
/// recording is off, nothing is recorded and the result is a constant. The backward callable gets
/// the op's output, the gradient flowing into it, and a sink for its inputs' gradients, in the
/// order the inputs were passed; it must give each input a gradient of that input's shape.

#include <array>
#include <span>
#include <type_traits>
#include <utility>

#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/tape.hpp"

namespace genmod {

/// Records a differentiable op with a fixed number of Var inputs (see the file comment).
template <class T, class F, class... Vs>
Var<T> record_op(const char* name, Tensor<T> value, F&& backward, const Vs&... inputs) {
  static_assert((std::is_same_v<Vs, Var<T>> && ...), "record_op: every input must be a Var<T> of the op's type");
  Tape<T>* tape = Tape<T>::current();
  if (!tape || !grad_enabled() || !(inputs.requires_grad() || ...)) return Var<T>(std::move(value));
  const std::array<const Var<T>*, sizeof...(Vs)> in{&inputs...};
  return tape->add_node(name, std::move(value), std::forward<F>(backward), in);
}

/// Records a differentiable op with a run-time number of inputs (e.g. concat).
template <class T, class F>
Var<T> record_op_n(const char* name, Tensor<T> value, F&& backward, std::span<const Var<T>> inputs) {
  Tape<T>* tape = Tape<T>::current();
  bool any = false;
  for (const Var<T>& v : inputs) any = any || v.requires_grad();
  if (!tape || !grad_enabled() || !any) return Var<T>(std::move(value));
  return tape->add_node(name, std::move(value), std::forward<F>(backward), inputs);
}

}  // namespace genmod
