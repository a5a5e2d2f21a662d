#pragma once
/// \file classification.hpp
/// Softmax cross-entropy from logits and integer labels, per sample, and classification accuracy.

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/select.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/softmax.hpp"
#include "genmod/kernels/reduce.hpp"

namespace genmod::losses::detail {

/// Checks logits [N, C] with C >= 1 and labels [N] in [0, C); `op` names the caller.
inline void check_class_labels(const Shape& logits, const Tensor<std::int64_t>& labels, const char* op) {
  if (logits.rank() != 2 || logits[1] == 0)
    throw ShapeError(std::string(op) + ": expected logits [N, C] with C >= 1, got shape " + logits.to_string());
  if (labels.rank() != 1 || labels.dim(0) != logits[0])
    throw ShapeError(std::string(op) + ": expected labels [" + std::to_string(logits[0]) + "] for logits " +
                     logits.to_string() + ", got shape " + labels.shape().to_string());
  const std::int64_t c = logits[1];
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (labels[i] < 0 || labels[i] >= c)
      throw ValueError(std::string(op) + ": label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
                       " is outside [0, " + std::to_string(c) + ")");
}

}  // namespace genmod::losses::detail

namespace genmod::losses {

/// Per-sample softmax cross-entropy in nats: for logits [N, C] and labels [N] in [0, C),
///   loss_i = -log softmax(logits_i)[y_i] = logsumexp_j logits[i, j] - logits[i, y_i],   [N].
/// Stable for any logits (the log-sum-exp is max-shifted). Reduce with mean() for a batch loss.
///   d loss_i / d logits[i, j] = softmax(logits_i)_j - [j == y_i].
/// Fused: one pass forward, softmax - one_hot backward (written with differentiable ops when a
/// double backward is being recorded). ShapeError on bad shapes; ValueError naming the position
/// and the label when a label is out of range.
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const Tensor<std::int64_t>& labels) {
  detail::check_class_labels(logits.shape(), labels, "cross_entropy");
  const std::int64_t n = logits.dim(0), c = logits.dim(1);
  Tensor<T> y = kernels::logsumexp_axis(logits.value(), 1, false);  // [N]
  const T* x = logits.value().data();
  for (std::int64_t i = 0; i < n; ++i) y[i] -= x[i * c + labels[i]];
  return record_op(
      "cross_entropy", std::move(y),
      [logits, labels, n, c](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) {
          // d[i, j] = g_i (softmax_ij - [j == y_i])
          Tensor<T> d = kernels::softmax_axis(logits.value(), 1, false);
          const T* gg = g.value().data();
          for (std::int64_t i = 0; i < n; ++i) {
            T* row = d.data() + i * c;
            row[labels[i]] -= T(1);
            for (std::int64_t j = 0; j < c; ++j) row[j] *= gg[i];
          }
          sink.add(0, Var<T>(std::move(d)));
        } else {
          const Var<T> onehot(one_hot<T>(labels, c));
          sink.add(0, mul(reshape(g, Shape{n, 1}), sub(softmax(logits, 1), onehot)));
        }
      },
      logits);
}

/// Fraction of the rows of logits [N, C] (N >= 1) whose argmax equals the label in labels [N]
/// (the first maximal class wins a tie). A value only: no autodiff.
template <class T>
double accuracy(const Tensor<T>& logits, const Tensor<std::int64_t>& labels) {
  detail::check_class_labels(logits.shape(), labels, "accuracy");
  const std::int64_t n = logits.dim(0), c = logits.dim(1);
  if (n == 0) throw ShapeError("accuracy: expected at least one row, got logits " + logits.shape().to_string());
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = logits.data() + i * c;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < c; ++j)
      if (row[j] > row[best]) best = j;
    correct += best == labels[i] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace genmod::losses
