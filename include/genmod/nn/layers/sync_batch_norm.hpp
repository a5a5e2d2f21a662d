#pragma once
/// \file sync_batch_norm.hpp
/// Batch normalization whose batch is the union of the data-parallel ranks' local batches, the
/// statistics shared through one allreduce per forward: the op distributed::sync_batch_norm and
/// the layer nn::SyncBatchNorm.
///
/// Each rank r holds a slice of the global batch: n_r values per channel (N_r H W). In training
/// the layer computes, per channel, the statistics of all n = sum_r n_r values and normalizes its
/// own slice with them, so that the ranks together compute exactly what BatchNorm computes on the
/// whole batch, whatever the split (uneven slices, and empty ones, included).
///
/// Statistics. A one-collective version would sum [n_r, sum x, sum x^2] and take
/// var = E[x^2] - mean^2, which cancels catastrophically when |mean| >> std (float activations
/// after a ReLU, say: the error is about eps_machine (mean^2 + var) / var relative). A two-pass
/// version (allreduce the sums for the mean, then the centered squares) is exact but needs two
/// collectives. This layer keeps one collective and the two-pass accuracy with Chan et al.'s
/// merge of partial statistics: rank r computes its local count n_r, mean m_r and centered sum
/// of squares M2_r = sum (x - m_r)^2 (two passes over its own data), the ranks exchange the rows
/// [n_r, m_r, M2_r] (an all-gather, written as allreduce_sum of a [size, 1 + 2C] matrix in which
/// each rank fills its own row), and each rank merges them:
///   n = sum_r n_r,   mean = sum_r (n_r / n) m_r,
///   M2 = sum_r M2_r + sum_r n_r (m_r - mean)^2,   var = M2 / n   (biased, as BatchNorm).
/// Every term is a sum of non-negative numbers or a difference of nearby ones, so no cancellation.
/// The collective carries size (1 + 2C) values instead of 3C, which is negligible for the group
/// sizes data parallelism uses (PyTorch's SyncBatchNorm also all-gathers per-rank statistics).
/// Counts travel as T: exact up to 2^24 values per channel and rank in float.
///
/// Everything, the collective included (distributed/allreduce_op.hpp), is a differentiable op, so
/// the backward (the gradient of the sum of the ranks' losses) and double backward are those of
/// the composition: the backward makes one collective of the same size, and none when x needs no
/// gradient (a network's first layer: the statistics are then constants). The counts are
/// constants (they do not depend on x). Being composed, it makes about 7 passes over x forward
/// where the fused batch_norm makes 3; no communicator, or evaluation, takes batch_norm itself.
///
/// Rules (those of any collective): every rank calls forward, and runs its backward, in the same
/// order, on inputs with the same channels and the same need for a gradient; a rank whose slice
/// is empty still calls both (its count 0 contributes nothing; its output is empty). The global
/// count must be at least 2 (ValueError on every rank otherwise). The running statistics are
/// computed from the exchanged rows only, so they keep the same bits on every rank.

#include <array>
#include <cstdint>
#include <string>

#include "genmod/autodiff/ops/norm.hpp"
#include "genmod/core/check.hpp"
#include "genmod/distributed/allreduce_op.hpp"
#include "genmod/distributed/communicator.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/norm.hpp"

namespace genmod::distributed {

/// Batch norm of x [N, C] or [N, C, H, W] whose training statistics are those of the batch over
/// all of `comm`'s ranks (one allreduce_sum per call; see the file comment for the math and the
/// rules). Training updates running_mean and running_var with the global mean and unbiased
/// variance as batch_norm does; evaluation (o.training false) is batch_norm's, with no collective.
/// gamma and beta [C] may be undefined (no affine transform). Differentiable to any order.
template <class T>
Var<T> sync_batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                       Tensor<T>& running_var, Communicator& comm, const BatchNormOptions& o = {}) {
  if (!o.training) return batch_norm(x, gamma, beta, running_mean, running_var, o);
  check_rank("sync_batch_norm", "input", x.shape(), {2, 4}, "[N, C] or [N, C, H, W]");
  const std::int64_t c = x.dim(1), width = 1 + 2 * c;
  if (c == 0) throw ShapeError("sync_batch_norm: expected at least one channel, got input " + x.shape().to_string());
  check_shape("sync_batch_norm", "running_mean ([C])", running_mean.shape(), Shape{c});
  check_shape("sync_batch_norm", "running_var ([C])", running_var.shape(), Shape{c});
  if (gamma.defined()) check_shape("sync_batch_norm", "gamma ([C])", gamma.shape(), Shape{c});
  if (beta.defined()) check_shape("sync_batch_norm", "beta ([C])", beta.shape(), Shape{c});
  const std::int64_t ranks = comm.size(), me = comm.rank();
  const Shape stat = x.rank() == 2 ? Shape{1, c} : Shape{1, c, 1, 1};
  const Shape row_shape{1, c};

  // This rank's row [n_r, m_r, M2_r]; an empty slice gives n_r = 0, m_r = 0, M2_r = 0.
  const std::int64_t local_count = x.numel() / c;
  const T inv_local = local_count > 0 ? T(1) / static_cast<T>(local_count) : T(0);
  Var<T> local_mean = scale(sum_to(x, stat), inv_local);
  Var<T> local_m2 = sum_to(square(sub(x, local_mean)), stat);
  Tensor<T> count_cell(Shape{1, 1});
  count_cell[0] = static_cast<T>(local_count);
  Var<T> row = concat({Var<T>(count_cell), reshape(local_mean, row_shape), reshape(local_m2, row_shape)}, 1);

  // All-gather as a sum: zeros above and below this rank's row.
  std::array<Var<T>, 3> blocks;  // on the stack: a training step makes no heap call
  std::size_t n_blocks = 0;
  if (me > 0) blocks[n_blocks++] = Var<T>(zeros<T>(Shape{me, width}));
  blocks[n_blocks++] = row;
  if (ranks - me - 1 > 0) blocks[n_blocks++] = Var<T>(zeros<T>(Shape{ranks - me - 1, width}));
  const Var<T> rows = allreduce_sum(concat(std::span<const Var<T>>(blocks.data(), n_blocks), 0), comm);

  // Counts are exact small integers, constants of the merge.
  Tensor<T> counts(Shape{ranks, 1}), weights(Shape{ranks, 1});
  T total = 0;
  for (std::int64_t r = 0; r < ranks; ++r) {
    counts[r] = rows.value()[r * width];
    total += counts[r];
  }
  if (!(total >= T(2)))
    throw ValueError("sync_batch_norm: training needs more than one value per channel over all ranks, got " +
                     std::to_string(static_cast<std::int64_t>(total)) + " (this rank's input " + x.shape().to_string() +
                     ")");
  for (std::int64_t r = 0; r < ranks; ++r) weights[r] = counts[r] / total;

  // Merge: mean = sum_r (n_r / n) m_r, M2 = sum_r M2_r + sum_r n_r (m_r - mean)^2, var = M2 / n.
  Var<T> means = slice(rows, 1, 1, c), m2s = slice(rows, 1, 1 + c, c);
  Var<T> mean = sum(mul(means, Var<T>(weights)), 0, true);
  Var<T> between = sum(mul(square(sub(means, mean)), Var<T>(counts)), 0, true);
  Var<T> var = scale(add(sum(m2s, 0, true), between), T(1) / total);

  // Running statistics, as batch_norm updates them (unbiased variance: times n / (n - 1)).
  const T m = static_cast<T>(o.momentum), unbias = total / (total - T(1));
  for (std::int64_t i = 0; i < c; ++i) {
    running_mean[i] = (T(1) - m) * running_mean[i] + m * mean.value()[i];
    running_var[i] = (T(1) - m) * running_var[i] + m * var.value()[i] * unbias;
  }

  // y = (x - mean) k + beta with k = gamma / sqrt(var + eps) per channel (the centered form keeps
  // the precision that x k + (beta - mean k) loses when |mean| >> std).
  Var<T> k = rdiv_scalar(T(1), sqrt(add_scalar(var, static_cast<T>(o.eps))));
  if (gamma.defined()) k = mul(k, reshape(gamma, row_shape));
  Var<T> y = mul(sub(x, reshape(mean, stat)), reshape(k, stat));
  if (beta.defined()) y = add(y, reshape(beta, stat));
  return y;
}

}  // namespace genmod::distributed

namespace genmod::nn {

/// Batch normalization over channel dimension 1 of [N, C] or [N, C, H, W] inputs, with the
/// training statistics taken over every rank's batch (distributed::sync_batch_norm). Without a
/// communicator it is BatchNorm (the fused batch_norm op); with one (of any size, 1 included) the
/// synchronized composition, whose values equal BatchNorm's on the concatenated batch up to
/// rounding. Evaluation uses the running statistics and no collective.
template <class T = float>
class SyncBatchNorm : public BatchNormBase<T> {
 public:
  /// `channels` channels, no communicator yet (plain batch norm until set_communicator).
  explicit SyncBatchNorm(std::int64_t channels, BatchNormLayerOptions o = {}) : SyncBatchNorm(channels, nullptr, o) {}

  /// `channels` channels whose statistics are shared over `comm`'s ranks (nullptr: none). The
  /// communicator is not owned and must outlive the layer's forward and backward passes.
  SyncBatchNorm(std::int64_t channels, distributed::Communicator* comm, BatchNormLayerOptions o = {})
      : BatchNormBase<T>("SyncBatchNorm", channels, o), comm_(comm) {}

  /// Shares the statistics over `comm`'s ranks from the next forward on (nullptr: plain batch norm).
  void set_communicator(distributed::Communicator* comm) noexcept { comm_ = comm; }
  /// The communicator the statistics are shared over (nullptr when none).
  distributed::Communicator* communicator() const noexcept { return comm_; }

  /// Same shape as x. Training: the statistics of the batch over all ranks (biased variance),
  /// updating the running ones with the unbiased variance; evaluation: the running statistics.
  Var<T> forward(const Var<T>& x) override {
    const std::int64_t c = this->running_mean.numel();
    if ((x.rank() != 2 && x.rank() != 4) || x.dim(1) != c)
      throw ShapeError("SyncBatchNorm(" + std::to_string(c) + "): expected input [N, C] or [N, C, H, W] with C = " +
                       std::to_string(c) + ", got " + x.shape().to_string());
    if (comm_ == nullptr)
      return batch_norm(x, this->gamma(), this->beta(), this->running_mean, this->running_var, this->op_options());
    return distributed::sync_batch_norm(x, this->gamma(), this->beta(), this->running_mean, this->running_var, *comm_,
                                        this->op_options());
  }

 private:
  distributed::Communicator* comm_ = nullptr;
};

}  // namespace genmod::nn
