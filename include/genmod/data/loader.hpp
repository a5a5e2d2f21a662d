#pragma once
/// \file loader.hpp
/// Loader: mini-batches over a Dataset, optionally shuffled, for a range-for loop.
///
/// ```cpp
/// for (auto& batch : data::Loader{train, {.batch_size = 128, .shuffle = true, .seed = 0}})
///   step(batch.x, batch.y);
/// ```
///
/// Each `begin()` starts a new epoch. The order of epoch e depends only on (seed, e): it is the
/// identity permuted by a Fisher-Yates shuffle drawing from Philox stream e, so a run resumed at
/// epoch e (`set_epoch(e)`) sees the same batches as an uninterrupted one.
///
/// For inner loops that draw batches at their own pace (a WGAN critic's n steps per generator
/// step), `next()` returns the next batch of an endless stream: the epochs' batches in order, a new
/// epoch (same orders as begin() would give) started whenever one runs out.
///
///   for (int it = 0; it < iterations; ++it) {
///     for (int k = 0; k < n_critic; ++k) critic_step(loader.next().x);
///     generator_step();
///   }
///
/// Data-parallel training shards every epoch across ranks (`.rank`, `.world_size`): every rank
/// computes the same order (same seed), global batch b is positions [b G, (b + 1) G) of it with
/// G = world_size * batch_size, and rank r takes the r-th contiguous slice of it, batch_size
/// samples. The last global batch, when it holds M < G samples, is split as evenly as possible
/// (the first M mod world_size ranks take one sample more than the others); when M < world_size
/// some rank would get none, so that tail is dropped (at most world_size - 1 samples per epoch).
/// Each batch carries its SampleWindow (random.hpp): where its samples sit in the global batch,
/// so that per-sample noise can be drawn as one process would have drawn it.
///
/// Steady state makes no heap allocation: the index order is one vector reused every epoch, and
/// each batch is gathered into the same tensors. If the caller still holds a copy of the previous
/// batch's tensor when the next one is produced, a fresh buffer is taken from the tensor pool
/// instead of overwriting data the caller kept.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/dataset.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

/// Options for Loader.
struct LoaderOptions {
  std::int64_t batch_size = 64;  ///< samples per batch (the last one may be smaller)
  bool shuffle = false;          ///< a new random order every epoch
  std::uint64_t seed = 0;        ///< seed of the shuffling generator
  bool drop_last = false;        ///< skip a final batch smaller than batch_size (the global batch when sharded)
  int rank = 0;                  ///< this rank, in [0, world_size) (data-parallel sharding)
  int world_size = 1;            ///< ranks sharing each epoch; batch_size is per rank
};

/// One mini-batch: samples x [B, ...], labels y [B] (undefined when the dataset has none) and
/// conditions c [B, ...] (the rows of an attribute table: filled by data::ImageLoader; undefined
/// from a Loader over a Dataset).
struct Batch {
  Tensor<float> x = {};         ///< samples
  Tensor<std::int64_t> y = {};  ///< labels, or undefined
  Tensor<float> c = {};         ///< conditions, or undefined
  std::int64_t index = 0;   ///< position of this batch within its epoch
  SampleWindow window = {};  ///< where these samples sit in the global batch (data-parallel runs)

  /// Number of samples in the batch.
  std::int64_t size() const { return x.dim(0); }
};

/// Iterates a Dataset in mini-batches. One iteration at a time: `begin()` restarts.
class Loader {
 public:
  /// Input iterator over the batches of one epoch; compare with `end()` (a sentinel).
  class Iterator {
   public:
    /// What dereferencing gives: the current Batch.
    using value_type = Batch;
    /// Required by std::input_iterator; iterators are not subtracted.
    using difference_type = std::ptrdiff_t;

    Iterator() = default;
    /// The current batch (owned by the Loader; valid until the next increment).
    Batch& operator*() const noexcept { return loader_->batch_; }
    /// Member access to the current batch (`it->x`).
    Batch* operator->() const noexcept { return &loader_->batch_; }
    /// Produces the next batch.
    Iterator& operator++() {
      ++index_;
      if (index_ < loader_->num_batches()) loader_->gather(index_);
      return *this;
    }
    /// Post-increment, as input iterators allow: advances, returns nothing.
    void operator++(int) { ++*this; }
    /// True once every batch of the epoch has been produced.
    friend bool operator==(const Iterator& it, std::default_sentinel_t) noexcept {
      return !it.loader_ || it.index_ >= it.loader_->num_batches();
    }

   private:
    friend class Loader;
    Iterator(Loader* loader, std::int64_t index) : loader_(loader), index_(index) {}
    Loader* loader_ = nullptr;
    std::int64_t index_ = 0;
  };

  /// A loader over `dataset` (shared, not copied).
  explicit Loader(Dataset dataset, LoaderOptions options = {});

  /// Starts the next epoch (reshuffling when asked) and returns an iterator at its first batch.
  /// A stream of next() calls after it starts with a new epoch too.
  Iterator begin() {
    start_epoch();
    stream_index_ = -1;
    if (num_batches() > 0) gather(0);
    return Iterator(this, 0);
  }

  /// The next batch of an endless stream over the epochs (see the file comment): batch i + 1 of
  /// the current epoch, or batch 0 of a new one (reshuffled when asked) once the epoch is
  /// exhausted. The reference is valid until the next call. Throws ValueError when an epoch has
  /// no batch (an empty data set, or fewer samples than batch_size with drop_last).
  Batch& next() {
    if (stream_index_ < 0 || stream_index_ >= num_batches()) {
      if (num_batches() == 0)
        throw ValueError("Loader::next: an epoch has no batch (" + std::to_string(ds_.size()) + " samples, batch_size " +
                         std::to_string(opt_.batch_size) + (opt_.drop_last ? ", drop_last" : "") + ")");
      start_epoch();
      stream_index_ = 0;
    }
    gather(stream_index_++);
    return batch_;
  }
  /// The end-of-epoch sentinel.
  std::default_sentinel_t end() const noexcept { return {}; }

  /// Batches per epoch (global batches when sharded: every rank takes the same number).
  std::int64_t num_batches() const noexcept {
    const std::int64_t n = ds_.size(), g = global_batch_size();
    if (opt_.drop_last || n % g == 0) return n / g;
    return n / g + (n % g >= opt_.world_size ? 1 : 0);  // a tail too short for every rank is dropped
  }
  /// Samples per global batch: batch_size * world_size.
  std::int64_t global_batch_size() const noexcept { return opt_.batch_size * opt_.world_size; }
  /// Batches per epoch (same as num_batches()).
  std::int64_t size() const noexcept { return num_batches(); }
  /// Number of epochs started so far; the next begin() uses this epoch's order.
  std::int64_t epoch() const noexcept { return epoch_; }
  /// Makes the next begin() produce epoch e's order (to resume a run).
  void set_epoch(std::int64_t e) {
    check_non_negative("Loader::set_epoch", "epoch", e);
    epoch_ = e;
    stream_index_ = -1;
  }
  /// The dataset being iterated.
  const Dataset& dataset() const noexcept { return ds_; }
  /// The options given at construction.
  const LoaderOptions& options() const noexcept { return opt_; }
  /// This rank (LoaderOptions::rank).
  int rank() const noexcept { return opt_.rank; }
  /// Ranks sharing each epoch (LoaderOptions::world_size).
  int world_size() const noexcept { return opt_.world_size; }
  /// Sample indices of the current epoch, in batch order.
  const std::vector<std::int64_t>& order() const noexcept { return order_; }

 private:
  // The order of epoch epoch_ (a shuffle when asked), then counts it as started.
  void start_epoch() {
    if (opt_.shuffle) shuffle(epoch_);
    ++epoch_;
  }

  // Fisher-Yates from the identity, so the order depends on (seed, epoch) only.
  void shuffle(std::int64_t epoch) {
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
    Generator g(opt_.seed, static_cast<std::uint64_t>(epoch));
    for (std::size_t i = order_.size(); i > 1; --i) {
      const auto j = static_cast<std::size_t>(g.uniform_int(i));
      std::swap(order_[i - 1], order_[j]);
    }
  }

  // This rank's slice of global batch b: {first position in the epoch's order, count, global count}.
  struct Slice {
    std::int64_t start, count, total;
  };
  Slice slice_of(std::int64_t b) const noexcept {
    const std::int64_t g = global_batch_size(), begin = b * g;
    const std::int64_t total = std::min(g, ds_.size() - begin);
    const std::int64_t ranks = opt_.world_size, r = opt_.rank;
    if (total == g) return {begin + r * opt_.batch_size, opt_.batch_size, total};
    const std::int64_t q = total / ranks, extra = total % ranks;  // the tail: as even as possible
    return {begin + r * q + std::min(r, extra), q + (r < extra ? 1 : 0), total};
  }

  // Copies the samples of batch b into the batch tensors, reusing them when nobody else holds them.
  void gather(std::int64_t b);

  Dataset ds_;
  LoaderOptions opt_;
  std::vector<std::int64_t> order_;
  std::int64_t row_ = 0;
  std::int64_t epoch_ = 0;
  std::int64_t stream_index_ = -1;  // next() position in the current epoch; -1: start a new one
  Batch batch_;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// Loader's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE Loader::Loader(Dataset dataset, LoaderOptions options)
    : ds_(std::move(dataset)), opt_(options) {
  check_positive("Loader", "batch_size", opt_.batch_size);
  check_positive("Loader", "world_size", opt_.world_size);
  if (opt_.rank < 0 || opt_.rank >= opt_.world_size)
    throw ValueError("Loader: expected rank in [0, world_size = " + std::to_string(opt_.world_size) + "), got " +
                     std::to_string(opt_.rank));
  order_.resize(static_cast<std::size_t>(ds_.size()));
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
  row_ = ds_.size() > 0 ? ds_.x().numel() / ds_.size() : 0;
}

GENMOD_DETAIL_NONTEMPLATE void Loader::gather(std::int64_t b) {
  const Slice sl = slice_of(b);
  const std::int64_t start = sl.start;
  const std::int64_t n = sl.count;
  const Shape xs = ds_.x().shape().with_dim(0, n);
  if (!batch_.x.defined() || !(batch_.x.shape() == xs) || !batch_.x.is_unique()) batch_.x = Tensor<float>(xs);
  const std::int64_t* idx = order_.data() + start;
  const float* src = ds_.x().data();
  float* dst = batch_.x.data();
  const std::int64_t row = row_;
  parallel_for(n, row, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i)
      std::memcpy(dst + i * row, src + idx[i] * row, static_cast<std::size_t>(row) * sizeof(float));
  });
  if (ds_.has_labels()) {
    const Shape ys{n};
    if (!batch_.y.defined() || !(batch_.y.shape() == ys) || !batch_.y.is_unique()) batch_.y = Tensor<std::int64_t>(ys);
    for (std::int64_t i = 0; i < n; ++i) batch_.y[i] = ds_.y()[idx[i]];
  }
  batch_.index = b;
  batch_.window = {start - b * global_batch_size(), n, sl.total};
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

/// What train::Trainer needs of a source of batches: data::Loader, data::ImageLoader. One epoch
/// per begin()..end() of data::Batch, set_epoch(e) to resume, epoch() (epochs started),
/// num_batches() and global_batch_size() per epoch, and the sharding (rank(), world_size()).
template <class L>
concept BatchLoader = requires(L& loader, const L& cloader, std::int64_t e) {
  { *loader.begin() } -> std::convertible_to<const Batch&>;
  loader.begin() == loader.end();
  loader.set_epoch(e);
  { cloader.epoch() } -> std::convertible_to<std::int64_t>;
  { cloader.num_batches() } -> std::convertible_to<std::int64_t>;
  { cloader.global_batch_size() } -> std::convertible_to<std::int64_t>;
  { cloader.rank() } -> std::convertible_to<int>;
  { cloader.world_size() } -> std::convertible_to<int>;
};

static_assert(BatchLoader<Loader>);

}  // namespace genmod::data
