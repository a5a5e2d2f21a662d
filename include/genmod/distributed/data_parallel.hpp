#pragma once
/// \file data_parallel.hpp
/// DataParallel: one model replicated on every rank, each rank training on its slice of every
/// global batch, the replicas kept identical by averaging the gradients before each optimizer step.
///
/// What one process computes on a global batch of M samples is the gradient of the mean loss,
///
///   g = (1/M) sum_i grad l_i = sum_r (B_r / M) g_r,     g_r = grad of rank r's mean loss over B_r,
///
/// so each rank seeds its backward pass with B_r / M instead of 1 (backward()), and the ranks sum
/// the results (allreduce): every rank then holds g, bit for bit the same on every rank, and the
/// optimizers (each rank runs its own, on identical parameters and gradients) take the same step.
/// Seeding rather than scaling afterwards keeps SyncBatchNorm exact: its statistics are an
/// allreduce inside the graph, whose backward sums the seeded upstream gradients of every rank.
/// The uneven last batch of an epoch (B_r differ) is handled by the same formula.
///
/// Gradients are reduced in buckets of about `bucket_bytes` (PyTorch's DDP uses 25 MiB): one
/// allreduce per bucket rather than one per parameter (latency) or one for the whole model (no
/// overlap). Parameters are bucketed in reverse visit order, the order in which a backward pass
/// usually finishes them; a bucket is packed into one flat buffer, reduced, and unpacked. With
/// `overlap` (the default), backward() asks the tape to report each parameter whose gradient is
/// final (Tape::set_gradient_ready_hook) and starts a bucket's allreduce as soon as all its
/// parameters are final, while the backward pass computes the rest; buckets are started in bucket
/// order on every rank (a collective's order must agree across ranks), and waited for at the end.
///
/// At construction the ranks check that they hold the same model (parameter and buffer names and
/// shapes; the first mismatch is named on every rank) and rank 0's parameters and buffers are
/// broadcast, so replicas start equal whatever their initialization. Every `check_every` steps a
/// checksum of every parameter is compared across ranks (a replica that drifted, e.g. through a
/// non-deterministic op or a rank that skipped a step, is named with its first differing parameter).
///
/// ```cpp
/// distributed::DataParallel<float> dp(model, comm);
/// data::Loader loader(train, {.batch_size = 64, .shuffle = true, .rank = comm.rank(),
///                             .world_size = comm.size()});
/// for (auto& batch : loader) {
///   distributed::SampleWindowGuard window(model.rng, batch);  // noise keyed by global sample index
///   Tape<float> tape;
///   Var<float> loss = model.loss(Var<float>(batch.x));
///   optimizer.zero_grad();
///   dp.backward(tape, loss, batch);  // backward + gradient allreduce
///   optimizer.step();
/// }
/// ```

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "genmod/autodiff/tape.hpp"
#include "genmod/autodiff/var.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/distributed/communicator.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::distributed {

/// Options of DataParallel.
struct DataParallelOptions {
  /// Gradient bytes per allreduce (a bucket closes once it reaches this size; a parameter larger
  /// than it gets a bucket of its own). PyTorch's DDP default: 25 MiB.
  std::int64_t bucket_bytes = std::int64_t{25} << 20;
  /// Steps between checks that every rank holds the same parameters (0: never).
  std::int64_t check_every = 0;
  /// Start each bucket's allreduce during the backward pass, once its gradients are final.
  bool overlap = true;
};

/// Sets a generator's SampleWindow from a batch for the lifetime of the guard (see random.hpp):
/// per-sample noise drawn from `g` during the step is this rank's rows of what one process would
/// draw for the whole global batch. Restores the previous window on destruction.
class SampleWindowGuard {
 public:
  /// Applies `batch.window` to `g`.
  SampleWindowGuard(Generator& g, const data::Batch& batch) : g_(g), previous_(g.sample_window()) {
    g.set_sample_window(batch.window);
  }
  SampleWindowGuard(const SampleWindowGuard&) = delete;
  SampleWindowGuard& operator=(const SampleWindowGuard&) = delete;
  ~SampleWindowGuard() { g_.set_sample_window(previous_); }

 private:
  Generator& g_;
  SampleWindow previous_;
};

namespace detail {

/// 64-bit checksum of a buffer's bits (a multiply-xorshift over 8-byte words): equal buffers give
/// equal sums; replicas that differ in any bit almost surely do not.
inline std::uint64_t checksum_bytes(const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 0x94D049BB133111EBULL;
  return h ^ (h >> 29);
}

/// Sends a string from `root` to every rank (length, then bytes).
inline std::string broadcast_string(Communicator& comm, std::string s, int root) {
  std::int64_t len = static_cast<std::int64_t>(s.size());
  comm.broadcast(std::as_writable_bytes(std::span<std::int64_t>(&len, 1)), root);
  s.resize(static_cast<std::size_t>(len));
  comm.broadcast(std::as_writable_bytes(std::span<char>(s.data(), s.size())), root);
  return s;
}

}  // namespace detail

/// Data-parallel training of one module over the ranks of a Communicator (see the file comment).
template <class T = float>
class DataParallel {
 public:
  /// Replicates `module` over `comm`'s ranks: checks that every rank holds the same model and
  /// copies rank 0's parameters and buffers to the others (collective: every rank constructs one).
  /// Throws DistributedError naming the first mismatch when the ranks disagree on the model, and
  /// ValueError for bad options.
  DataParallel(nn::Module<T>& module, Communicator& comm, DataParallelOptions options = {})
      : module_(module), comm_(comm), opt_(options) {
    check_positive("DataParallel", "bucket_bytes", opt_.bucket_bytes);
    check_non_negative("DataParallel", "check_every", opt_.check_every);
    params_ = module_.named_parameters();
    buffers_ = module_.named_buffers();
    check_same_model();
    broadcast_state();
    make_buckets();
  }

  /// The communicator.
  Communicator& communicator() noexcept { return comm_; }
  /// This rank.
  int rank() const noexcept { return comm_.rank(); }
  /// Number of ranks.
  int size() const noexcept { return comm_.size(); }
  /// Steps synchronized so far.
  std::int64_t steps() const noexcept { return steps_; }
  /// Number of gradient buckets (one allreduce each per step).
  std::size_t num_buckets() const noexcept { return buckets_.size(); }

  /// Backward of this rank's mean loss over its `local_count` samples, weighted by local_count /
  /// global_count (see the file comment), then the gradient allreduce: afterwards every rank holds
  /// the gradient of the mean loss over the global batch. Collective.
  void backward(Tape<T>& tape, const Var<T>& local_mean_loss, std::int64_t local_count, std::int64_t global_count) {
    if (local_count < 0 || global_count < 1 || local_count > global_count)
      throw ValueError("DataParallel::backward: expected 0 <= local_count <= global_count, global_count >= 1, got " +
                       std::to_string(local_count) + " of " + std::to_string(global_count));
    if (local_mean_loss.numel() != 1)
      throw ShapeError("DataParallel::backward: expected a scalar loss, got " + local_mean_loss.shape().to_string());
    if (!seed_.defined() || !(seed_.shape() == local_mean_loss.shape())) seed_ = Tensor<T>(local_mean_loss.shape());
    seed_.data()[0] = static_cast<T>(static_cast<double>(local_count) / static_cast<double>(global_count));
    begin_step();
    if (opt_.overlap) {
      struct Unhook {
        Tape<T>& tape;
        ~Unhook() { tape.set_gradient_ready_hook({}); }
      } unhook{tape};
      tape.set_gradient_ready_hook([this](Tensor<T>& g) { on_gradient_ready(g); });
      tape.backward(local_mean_loss, seed_);
    } else {
      tape.backward(local_mean_loss, seed_);
    }
    finish_step();
  }
  /// As backward(tape, loss, local, global) with the counts of a sharded Loader's batch.
  void backward(Tape<T>& tape, const Var<T>& local_mean_loss, const data::Batch& batch) {
    backward(tape, local_mean_loss, batch.window.count, std::max(batch.window.total, batch.window.count));
  }

  /// Sums every parameter's gradient over the ranks, in buckets (backward() calls it; call it
  /// yourself after a backward pass you seeded with local / global counts). Then, every
  /// check_every steps, checks that the replicas are equal. Collective.
  void synchronize_gradients() {
    begin_step();
    finish_step();
  }

  /// Buckets whose allreduce the last backward() started before its backward pass had ended (the
  /// overlap achieved).
  std::size_t buckets_started_early() const noexcept { return started_early_; }

  /// The mean over the global batch of a per-rank mean (a loss for logging): sum_r value_r B_r / M.
  /// Collective.
  double global_mean(double local_mean, std::int64_t local_count, std::int64_t global_count) {
    double v = local_mean * static_cast<double>(local_count) / static_cast<double>(global_count);
    comm_.allreduce_sum(std::span<double>(&v, 1));
    return v;
  }

  /// Copies rank 0's parameters and buffers to every rank (construction does it; call it again
  /// after loading a checkpoint on rank 0 only). Collective.
  void broadcast_state() {
    for (auto& p : params_) broadcast_tensor(p.parameter.value());
    for (auto& b : buffers_) broadcast_tensor(b.tensor);
  }

  /// Compares a checksum of every parameter across the ranks; throws DistributedError naming the
  /// first parameter that differs and the ranks that hold another value than rank 0. Collective.
  void check_replicas_equal() {
    const std::size_t n = params_.size();
    sums_.resize(n);
    all_sums_.resize(n * static_cast<std::size_t>(size()));
    for (std::size_t k = 0; k < n; ++k) {
      const Tensor<T>& v = params_[k].parameter.value();
      sums_[k] = detail::checksum_bytes(v.data(), static_cast<std::size_t>(v.numel()) * sizeof(T));
    }
    comm_.allgather(std::as_bytes(std::span<const std::uint64_t>(sums_)),
                    std::as_writable_bytes(std::span<std::uint64_t>(all_sums_)));
    for (std::size_t k = 0; k < n; ++k) {
      std::string ranks;
      for (int r = 1; r < size(); ++r)
        if (all_sums_[static_cast<std::size_t>(r) * n + k] != all_sums_[k])
          ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
      if (!ranks.empty())
        throw DistributedError("DataParallel: after step " + std::to_string(steps_) +
                               " the replicas differ: parameter '" + params_[k].name + "' on rank(s) " + ranks +
                               " is not rank 0's (" + comm_.describe() + ")");
    }
  }

 private:
  struct Bucket {
    std::vector<std::size_t> params;  // indices into params_
    std::vector<T> flat;              // packed gradients
    std::size_t pending = 0;          // parameters not final yet in this step
    RequestId request = 0;
  };

  void begin_step() {
    solo_ = size() == 1;  // one rank: the seeded gradients are already the global ones
    for (auto& b : buckets_) b.pending = b.params.size();
    next_start_ = 0;
    started_early_ = 0;
  }

  // The tape reports a final gradient: count it in its bucket, and start every bucket, in order,
  // whose gradients are all final.
  void on_gradient_ready(Tensor<T>& g) {
    if (solo_) return;
    const std::pair<const T*, std::size_t> key(g.data(), 0);
    const auto it = std::lower_bound(by_pointer_.begin(), by_pointer_.end(), key);
    if (it == by_pointer_.end() || it->first != g.data()) return;  // a parameter not synchronized (frozen)
    const std::size_t b = bucket_of_[it->second];
    if (b < buckets_.size() && buckets_[b].pending > 0) --buckets_[b].pending;
    while (next_start_ < buckets_.size() && buckets_[next_start_].pending == 0) {
      start_bucket(buckets_[next_start_++]);
      ++started_early_;
    }
    if (next_start_ > 0) comm_.progress();  // move the started allreduces on while backward goes on
  }

  void start_bucket(Bucket& b) {
    std::size_t at = 0;
    for (std::size_t k : b.params) {
      const Tensor<T>& g = params_[k].parameter.grad();
      std::memcpy(b.flat.data() + at, g.data(), static_cast<std::size_t>(g.numel()) * sizeof(T));
      at += static_cast<std::size_t>(g.numel());
    }
    b.request = comm_.start_allreduce_sum(std::span<T>(b.flat));
  }

  // Starts the buckets the backward pass did not (all of them without overlap), waits for every
  // allreduce and unpacks the sums into the gradient buffers.
  void finish_step() {
    // One rank has nothing to pack, reduce or unpack (0.6 ms per step of mlp_vae otherwise).
    while (!solo_ && next_start_ < buckets_.size()) start_bucket(buckets_[next_start_++]);
    for (auto& b : buckets_) {
      if (solo_) break;
      comm_.wait(b.request);
      std::size_t at = 0;
      for (std::size_t k : b.params) {
        Tensor<T>& g = params_[k].parameter.grad();
        std::memcpy(g.data(), b.flat.data() + at, static_cast<std::size_t>(g.numel()) * sizeof(T));
        at += static_cast<std::size_t>(g.numel());
      }
    }
    ++steps_;
    if (opt_.check_every > 0 && steps_ % opt_.check_every == 0) check_replicas_equal();
  }
  void broadcast_tensor(Tensor<T>& t) {
    if (t.numel() > 0) comm_.broadcast(std::span<T>(t.data(), static_cast<std::size_t>(t.numel())), 0);
  }

  // One line per parameter and buffer: what must agree across ranks.
  std::vector<std::string> signature() const {
    std::vector<std::string> lines;
    for (const auto& p : params_) lines.push_back("parameter '" + p.name + "' " + p.parameter.shape().to_string());
    for (const auto& b : buffers_) lines.push_back("buffer '" + b.name + "' " + b.tensor.shape().to_string());
    return lines;
  }

  // Every rank compares its signature's digest with the others'; on a mismatch the lowest rank
  // that differs from rank 0 finds the first differing line and every rank throws its message.
  void check_same_model() {
    const std::vector<std::string> mine = signature();
    std::string joined;
    for (const auto& l : mine) joined += l + "\n";
    const std::uint64_t digest = detail::checksum_bytes(joined.data(), joined.size());
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size()));
    comm_.allgather(std::as_bytes(std::span<const std::uint64_t>(&digest, 1)),
                    std::as_writable_bytes(std::span<std::uint64_t>(all)));
    int differing = -1;
    for (int r = 1; r < size() && differing < 0; ++r)
      if (all[static_cast<std::size_t>(r)] != all[0]) differing = r;
    if (differing < 0) return;
    const std::string reference = detail::broadcast_string(comm_, joined, 0);
    std::string message;
    if (rank() == differing) {
      std::vector<std::string> ref_lines;
      for (std::size_t at = 0, nl; (nl = reference.find('\n', at)) != std::string::npos; at = nl + 1)
        ref_lines.push_back(reference.substr(at, nl - at));
      std::size_t i = 0;
      while (i < mine.size() && i < ref_lines.size() && mine[i] == ref_lines[i]) ++i;
      if (i < mine.size() && i < ref_lines.size())
        message = "entry " + std::to_string(i) + " is " + ref_lines[i] + " on rank 0 but " + mine[i] + " on rank " +
                  std::to_string(differing);
      else
        message = "rank 0 lists " + std::to_string(ref_lines.size()) + " parameters and buffers, rank " +
                  std::to_string(differing) + " " + std::to_string(mine.size()) +
                  (i < ref_lines.size() ? " (rank 0 has also " + ref_lines[i] + ")"
                                        : " (rank " + std::to_string(differing) + " has also " + mine[i] + ")");
    }
    message = detail::broadcast_string(comm_, message, differing);
    throw DistributedError("DataParallel: the ranks hold different models: " + message + " (" + comm_.describe() + ")");
  }

  void make_buckets() {
    const auto limit = static_cast<std::size_t>(opt_.bucket_bytes);
    Bucket current;
    std::size_t bytes = 0;
    for (std::size_t k = params_.size(); k-- > 0;) {
      const Parameter<T>& p = params_[k].parameter;
      if (!p.requires_grad() || !p.grad().defined() || p.numel() == 0) continue;
      current.params.push_back(k);
      bytes += static_cast<std::size_t>(p.numel()) * sizeof(T);
      if (bytes >= limit) {
        buckets_.push_back(std::move(current));
        current = Bucket{};
        bytes = 0;
      }
    }
    if (!current.params.empty()) buckets_.push_back(std::move(current));
    bucket_of_.assign(params_.size(), buckets_.size());
    for (std::size_t j = 0; j < buckets_.size(); ++j) {
      std::size_t n = 0;
      for (std::size_t k : buckets_[j].params) {
        n += static_cast<std::size_t>(params_[k].parameter.numel());
        bucket_of_[k] = j;
        by_pointer_.emplace_back(params_[k].parameter.grad().data(), k);
      }
      buckets_[j].flat.resize(n);
    }
    std::sort(by_pointer_.begin(), by_pointer_.end());
  }

  nn::Module<T>& module_;
  Communicator& comm_;
  DataParallelOptions opt_;
  std::vector<nn::NamedParameter<T>> params_;
  std::vector<nn::NamedBuffer<T>> buffers_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;                        // per parameter: its bucket (or size(): none)
  std::vector<std::pair<const T*, std::size_t>> by_pointer_;  // gradient buffer -> parameter, sorted
  std::size_t next_start_ = 0, started_early_ = 0;
  bool solo_ = false;  // this step runs on one rank: no communication
  std::vector<std::uint64_t> sums_, all_sums_;
  Tensor<T> seed_;
  std::int64_t steps_ = 0;
};

}  // namespace genmod::distributed

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::distributed::DataParallel, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::distributed::DataParallel, double)
#endif
