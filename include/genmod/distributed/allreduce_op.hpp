#pragma once
/// \file allreduce_op.hpp
/// allreduce_sum as a differentiable op: the sum over the ranks of a Var, with a backward that
/// is itself a collective (the building block of statistics shared across data-parallel ranks,
/// e.g. SyncBatchNorm).
///
/// Math. Rank r holds x_r and gets y_r = sum_s x_s (the same value on every rank). The objective
/// being differentiated is the sum of the ranks' losses, L = sum_r L_r(y_r, ...), each rank
/// running its backward from its own L_r. Every y_r depends on every x_s with dy_r/dx_s = I, so
///   dL/dx_s = sum_r dL_r/dy_r = sum_r g_r,
/// the sum over the ranks of the gradients arriving at their outputs: again an allreduce_sum,
/// this time of the upstream gradient g_r. The backward calls allreduce_sum (this op) on g, so
/// when the backward is recorded (create_graph) its own backward is one more allreduce and
/// second derivatives come out right; the op is linear, so nothing else is needed.
///
/// Rule: the op is a collective, forward and backward. Every rank must call allreduce_sum with
/// tensors of the same shape in the same order (recording or not: the forward collective always
/// runs), and run its backward passes in the same order over graphs of the same structure, so
/// that the backward collectives meet. The backward runs where the op was recorded (x needs a
/// gradient) and a gradient reaches its output, so the ranks must agree on both: a rank whose
/// loss ignores the output, or that skips its backward, makes the others time out with
/// DistributedError (a gradient that is zero, e.g. from an empty slice, is fine). The
/// communicator must outlive the tape that recorded the op. With a single rank the op is the
/// identity.

#include <span>
#include <type_traits>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/distributed/communicator.hpp"

namespace genmod::distributed {

/// y = sum over the ranks of x (same shape; the same bits on every rank). Differentiable: the
/// gradient with respect to this rank's x is the sum over the ranks of the gradients reaching
/// their outputs (an allreduce_sum of the upstream gradient, recorded when the backward is, so
/// double backward works). A collective: see the file comment for the call-order rule.
template <class T>
Var<T> allreduce_sum(const Var<T>& x, Communicator& comm) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "allreduce_sum: the Communicator reduces float and double only");
  Tensor<T> y = x.value().clone();  // the collective works in place; x's value stays untouched
  comm.allreduce_sum(std::span<T>(y.data(), static_cast<std::size_t>(y.numel())));
  return record_op(
      "allreduce_sum", std::move(y),
      [c = &comm](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        // dL/dx_this = sum_r g_r. Called whenever the node runs, so the ranks' backward
        // collectives pair up (the single input is then always needed).
        sink.add(0, allreduce_sum(g, *c));
      },
      x);
}

}  // namespace genmod::distributed
