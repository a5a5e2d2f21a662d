#pragma once
/// \file classification.hpp
/// Softmax cross-entropy from logits and integer labels, per sample (or per position, for
/// per-pixel class logits), and classification accuracy.

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/select.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/softmax.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/reduce.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::losses::detail {

/// Checks logits [N, C, d1..dk] (k >= 0, C >= 1) against labels [N, d1..dk] with values in
/// [0, C); `op` names the caller.
inline void check_class_labels(const Shape& logits, const Tensor<std::int64_t>& labels, const char* op) {
  if (logits.rank() < 2 || logits[1] == 0)
    throw ShapeError(std::string(op) + ": expected logits [N, C] or [N, C, d1, ...] with C >= 1, got shape " +
                     logits.to_string());
  std::array<std::int64_t, kMaxRank> dims{logits[0]};
  for (int a = 2; a < logits.rank(); ++a) dims[static_cast<std::size_t>(a - 1)] = logits[a];
  const Shape want(std::span<const std::int64_t>(dims.data(), static_cast<std::size_t>(logits.rank() - 1)));
  if (!(labels.shape() == want))
    throw ShapeError(std::string(op) + ": expected labels " + want.to_string() + " for logits " + logits.to_string() +
                     ", got shape " + labels.shape().to_string());
  const std::int64_t c = logits[1];
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (labels[i] < 0 || labels[i] >= c)
      throw ValueError(std::string(op) + ": label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
                       " is outside [0, " + std::to_string(c) + ")");
}

/// For logits [N, C, S] (S positions per sample, the class axis strided by S, as in an NCHW
/// image of per-pixel logits): lse[n, p] = log sum_c exp(x[n, c, p]), max-shifted. Vectorised
/// across positions, so each class is a contiguous row and no transpose is needed.
template <class T>
void positional_logsumexp(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, T* lse) {
  namespace simd = kernels::simd;
  parallel_for(n, c * s * 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const T* xi = x + i * c * s;
      auto at = [&]<class V>(std::int64_t p) {
        V m = simd::loadu<V>(xi + p);
        for (std::int64_t k = 1; k < c; ++k) m = simd::max(m, simd::loadu<V>(xi + k * s + p));
        V sum(T(0));
        for (std::int64_t k = 0; k < c; ++k) sum += simd::exp(simd::loadu<V>(xi + k * s + p) - m);
        simd::storeu(lse + i * s + p, m + simd::log(sum));
      };
      std::int64_t p = 0;
      for (; p + simd::width<T> <= s; p += simd::width<T>) at.template operator()<simd::Batch<T>>(p);
      for (; p < s; ++p) at.template operator()<T>(p);
    }
  });
}

/// d[n, c, p] = g[n, p] (softmax(x[n, :, p])_c - [c == y[n, p]]), with lse from the forward.
template <class T>
void positional_cross_entropy_grad(const T* x, const T* lse, const T* g, const std::int64_t* y, std::int64_t n,
                                   std::int64_t c, std::int64_t s, T* d) {
  namespace simd = kernels::simd;
  parallel_for(n, c * s * 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const T *li = lse + i * s, *gi = g + i * s;
      for (std::int64_t k = 0; k < c; ++k) {
        const T* xr = x + (i * c + k) * s;
        T* dr = d + (i * c + k) * s;
        auto at = [&]<class V>(std::int64_t p) {
          simd::storeu(dr + p, simd::loadu<V>(gi + p) * simd::exp(simd::loadu<V>(xr + p) - simd::loadu<V>(li + p)));
        };
        std::int64_t p = 0;
        for (; p + simd::width<T> <= s; p += simd::width<T>) at.template operator()<simd::Batch<T>>(p);
        for (; p < s; ++p) at.template operator()<T>(p);
      }
      for (std::int64_t p = 0; p < s; ++p) d[(i * c + y[i * s + p]) * s + p] -= gi[p];
    }
  });
}

/// cross_entropy for logits [N, C, d1, ...] seen as [N, C, S]: the log-sum-exp per position is
/// kept from the forward, so the backward is one pass writing softmax - one_hot.
template <class T>
Var<T> positional_cross_entropy(const Var<T>& logits, const Tensor<std::int64_t>& labels, std::int64_t n,
                                std::int64_t c, std::int64_t s) {
  Tensor<T> lse(Shape{n, s});
  const T* x = logits.value().data();
  positional_logsumexp(x, n, c, s, lse.data());
  Tensor<T> loss(labels.shape());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t p = 0; p < s; ++p) loss[i * s + p] = lse[i * s + p] - x[(i * c + labels[i * s + p]) * s + p];
  return record_op(
      "cross_entropy", std::move(loss),
      [logits, labels, lse, n, c, s](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!grad_enabled()) {
          Tensor<T> d(logits.shape());
          positional_cross_entropy_grad(logits.value().data(), lse.data(), g.value().data(), labels.data(), n, c, s,
                                        d.data());
          sink.add(0, Var<T>(std::move(d)));
        } else {
          Tensor<T> onehot = zeros<T>(logits.shape());
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t p = 0; p < s; ++p) onehot[(i * c + labels[i * s + p]) * s + p] = T(1);
          // g [N, d1, ...] seen as [N, 1, d1, ...], to broadcast over the classes.
          std::array<std::int64_t, kMaxRank> gd{};
          for (int a = 0; a < logits.rank(); ++a) gd[static_cast<std::size_t>(a)] = a == 1 ? 1 : logits.dim(a);
          const Shape gshape(std::span<const std::int64_t>(gd.data(), static_cast<std::size_t>(logits.rank())));
          sink.add(0, mul(reshape(g, gshape), sub(softmax(logits, 1), Var<T>(std::move(onehot)))));
        }
      },
      logits);
}

}  // namespace genmod::losses::detail

namespace genmod::losses {

/// Softmax cross-entropy in nats over the class axis 1, as torch.nn.functional.cross_entropy
/// with reduction "none":
///   logits [N, C] and labels [N] in [0, C):  loss_i = logsumexp_j logits[i, j] - logits[i, y_i],  [N];
///   logits [N, C, d1, ...] and labels [N, d1, ...]: the same at every position (per pixel for an
///   image of class logits, as PixelCNN's 256-way output), loss [N, d1, ...].
/// Stable for finite logits (the log-sum-exp is max-shifted). Reduce with mean() for a batch loss.
///   d loss / d logits[.., j, ..] = softmax_j - [j == y].
/// Fused: one pass forward, softmax - one_hot written once backward (with differentiable ops when
/// a double backward is being recorded). ShapeError on bad shapes; ValueError naming the position
/// and the label when a label is out of range.
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const Tensor<std::int64_t>& labels) {
  detail::check_class_labels(logits.shape(), labels, "cross_entropy");
  const std::int64_t n = logits.dim(0), c = logits.dim(1), s = labels.numel() / std::max<std::int64_t>(n, 1);
  if (logits.rank() > 2) return detail::positional_cross_entropy(logits, labels, n, c, s);
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
  check_rank("accuracy", "logits", logits.shape(), 2, "[N, C]");
  detail::check_class_labels(logits.shape(), labels, "accuracy");
  const std::int64_t n = logits.dim(0), c = logits.dim(1);
  check_dim_at_least("accuracy", "logits", logits.shape(), 0, 1, "rows");
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

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::cross_entropy, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::losses::cross_entropy, double)
#endif
