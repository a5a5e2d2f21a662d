#pragma once
/// \file thread_communicator.hpp
/// ThreadCommunicator: the Communicator contract (communicator.hpp) for ranks that are threads of
/// one process, for tests of data-parallel code and for machines without MPI. It is not a
/// substitute for MPI: the ranks share one process's cores, memory and memory bandwidth, so n
/// thread ranks do not train n times as fast as one; real multi-process and multi-machine runs use
/// MpiCommunicator.
///
/// ```cpp
/// genmod::distributed::run_ranks(4, [&](genmod::distributed::Communicator& comm) {
///   std::vector<float> grad = local_gradient(comm.rank());
///   comm.allreduce_sum(grad);  // every rank now holds the same sum, bit for bit
/// });
/// ```
///
/// Each rank body runs on its own std::thread, so it has its own genmod Tape and
/// default_generator (both are thread_local).
///
/// How a collective runs. The ranks of a ThreadGroup share one slot per rank, in which a rank
/// posts the buffers it brings, and a barrier counted by generations (std::mutex and
/// std::condition_variable):
///   1. post:    each rank posts (which collective, its buffers, their length, the root) and waits
///               until every rank has posted. The last to arrive checks that the posts agree (same
///               collective, same length, same root); if not, the group fails and every rank
///               throws DistributedError.
///   2. copy:    each rank reads the others' posted buffers in place (no staging copy) and writes
///               only memory it owns in this phase: its own buffer, or for allreduce its chunk of
///               every rank's buffer.
///   3. release: each rank waits until every rank is done copying, so that no rank returns (and
///               reuses or frees its buffer) while another still reads or writes it.
/// barrier() is phase 1 alone.
///
/// allreduce_sum: in phase 2, rank r owns elements [r * len / n, (r + 1) * len / n) of every
/// rank's buffer. It sums them in rank order, in the element type's own precision, accumulating in
/// rank 0's buffer,
///     acc = buf_0;  acc += buf_1;  ...;  acc += buf_{n-1}      i.e. ((b_0 + b_1) + b_2) + ...
/// and copies acc into the other ranks' buffers. Each element is one sum that every rank receives,
/// so all ranks hold the same bits, and the result depends neither on the chunking nor on timing.
/// A collective allocates nothing on the heap (the slots are allocated with the group); only
/// errors build strings.
///
/// Faults. Phase 1 waits at most ThreadGroupOptions::timeout_seconds; a rank that waits longer
/// throws DistributedError "<op>: rank r of n waited T s for the other ranks (...)" and fails the
/// group. A failed group (ThreadGroup::fail, a timeout, ranks that disagree) makes every rank that
/// waits in, or later enters, a collective throw DistributedError naming the reason, so a fault in
/// one rank stops all of them instead of leaving them hanging; a group stays failed. A rank marked
/// finished (ThreadGroup::mark_finished; run_ranks marks each rank whose body has returned) calls
/// no more collectives, so a collective that waits for it fails at once instead of at the timeout.
/// Phases 2 and 3 neither time out nor fail: every rank is past phase 1 and copying cannot block,
/// and a rank must not leave while others still touch its buffer.
/// Argument errors (ValueError: a bad root, a wrong allgather size) are thrown by the rank that
/// made them before it posts anything; its peers then wait until the group fails (run_ranks fails
/// it when a body throws) or until they time out.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/distributed/communicator.hpp"

namespace genmod::distributed {

/// Options of a ThreadGroup (and of run_ranks).
struct ThreadGroupOptions {
  /// How long a rank waits in a collective for the other ranks before it throws DistributedError,
  /// in seconds (> 0; values above 1e9 s, about 31 years, infinity included, count as 1e9 s).
  double timeout_seconds = 60;
};

namespace detail {

/// Which collective a rank called (ranks that called different ones are out of step).
enum class Collective : std::uint8_t {
  allreduce_float,
  allreduce_double,
  broadcast_float,
  broadcast_double,
  broadcast_bytes,
  allgather,
  barrier,
};

/// The collective as messages name it.
inline const char* collective_name(Collective c) noexcept {
  switch (c) {
    case Collective::allreduce_float:
      return "allreduce_sum(float)";
    case Collective::allreduce_double:
      return "allreduce_sum(double)";
    case Collective::broadcast_float:
      return "broadcast(float)";
    case Collective::broadcast_double:
      return "broadcast(double)";
    case Collective::broadcast_bytes:
      return "broadcast(bytes)";
    case Collective::allgather:
      return "allgather";
    case Collective::barrier:
      return "barrier";
  }
  return "unknown collective";
}

/// The unit of a collective's length in messages: the float and double ones count elements.
inline const char* collective_unit(Collective c) noexcept {
  return c == Collective::broadcast_bytes || c == Collective::allgather ? "bytes" : "elements";
}

/// What one rank brings to a collective (phase 1) for the others to read (phase 2).
struct CollectivePost {
  Collective collective = Collective::barrier;  ///< what the rank called
  void* out = nullptr;                          ///< the rank's result buffer (allreduce: = in)
  const void* in = nullptr;                     ///< what the other ranks read from this rank
  std::size_t length = 0;                       ///< elements of `in` (bytes for the byte collectives)
  int root = 0;                                 ///< broadcast's root; 0 for the others
};

/// The state the ranks of a ThreadGroup share: their posts, the generation-counted barrier and the
/// failure flag. ThreadGroup owns it; each ThreadCommunicator points to it.
class ThreadGroupState {
 public:
  /// A group of `size` >= 1 ranks whose collectives wait at most options.timeout_seconds > 0.
  ThreadGroupState(int size, ThreadGroupOptions options) : size_(size), options_(options) {
    check_at_least("ThreadGroup", "size", size, 1);
    check_positive("ThreadGroup", "timeout_seconds", options.timeout_seconds);
    // Clamped so that now() + limit cannot overflow the steady clock's 64-bit nanoseconds.
    const double seconds = std::min(options.timeout_seconds, 1e9);
    wait_limit_ = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds));
    posts_.resize(static_cast<std::size_t>(size));
  }

  ThreadGroupState(const ThreadGroupState&) = delete;
  ThreadGroupState& operator=(const ThreadGroupState&) = delete;

  /// Number of ranks.
  int size() const noexcept { return size_; }
  /// The options the group was made with.
  const ThreadGroupOptions& options() const noexcept { return options_; }

  /// Fails the group (the first reason is kept) and wakes every waiting rank.
  void fail(std::string why) {
    {
      const std::lock_guard lock(mutex_);
      fail_locked(std::move(why));
    }
    changed_.notify_all();
  }

  /// Marks `rank` as one that calls no more collectives and wakes every waiting rank.
  void mark_finished(int rank) {
    {
      const std::lock_guard lock(mutex_);
      if (finished_rank_ < 0) finished_rank_ = rank;
    }
    changed_.notify_all();
  }

  /// Phase 1: posts `post` as `rank`'s and returns once every rank has posted and the posts agree.
  /// Throws DistributedError (and fails the group) on a timeout, a failed group, a finished peer
  /// or posts that disagree.
  void post_and_wait(int rank, const char* op, const CollectivePost& post) {
    std::unique_lock lock(mutex_);
    if (failed_) throw_failed_locked(rank, op);
    if (finished_rank_ >= 0) throw_finished_locked(rank, op);
    posts_[static_cast<std::size_t>(rank)] = post;
    const std::uint64_t generation = generation_;
    if (++arrived_ == size_) {
      check_posts_agree_locked(op);
      arrived_ = 0;
      ++generation_;
      lock.unlock();
      changed_.notify_all();
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + wait_limit_;
    changed_.wait_until(lock, deadline, [&] { return generation_ != generation || failed_ || finished_rank_ >= 0; });
    if (generation_ != generation) return;  // completed, even if the group failed just after
    if (failed_) throw_failed_locked(rank, op);
    if (finished_rank_ >= 0) throw_finished_locked(rank, op);
    std::string why = std::string(op) + ": " + rank_of_size(rank) + " waited " +
                      genmod::detail::check_number(options_.timeout_seconds) +
                      " s for the other ranks (a rank died or stopped calling collectives?)";
    fail_locked(why);
    lock.unlock();
    changed_.notify_all();
    throw DistributedError(why);
  }

  /// `rank`'s post of the current collective; valid from the end of post_and_wait to release.
  const CollectivePost& post(int rank) const noexcept { return posts_[static_cast<std::size_t>(rank)]; }

  /// Phase 3: returns once every rank has called release for the current collective. Ignores
  /// failures and has no timeout: every rank is past phase 1, and none may return while another
  /// still reads or writes its buffer.
  void release() {
    std::unique_lock lock(mutex_);
    const std::uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      lock.unlock();
      changed_.notify_all();
      return;
    }
    changed_.wait(lock, [&] { return generation_ != generation; });
  }

 private:
  /// "rank r of n".
  std::string rank_of_size(int rank) const { return "rank " + std::to_string(rank) + " of " + std::to_string(size_); }

  /// fail() with the mutex held (the caller notifies).
  void fail_locked(std::string why) {
    if (failed_) return;
    failed_ = true;
    failure_ = std::move(why);
  }

  /// Throws the DistributedError of a rank that finds the group failed.
  [[noreturn]] void throw_failed_locked(int rank, const char* op) const {
    throw DistributedError(std::string(op) + ": " + rank_of_size(rank) +
                           " stopped: the thread group failed: " + failure_);
  }

  /// Fails the group because a peer has finished, and throws.
  [[noreturn]] void throw_finished_locked(int rank, const char* op) {
    std::string why = std::string(op) + ": " + rank_of_size(rank) + " waits for rank " +
                      std::to_string(finished_rank_) + ", which has finished (it calls no more collectives)";
    fail_locked(why);
    changed_.notify_all();
    throw DistributedError(why);
  }

  /// Called by the last rank to post: every post must match rank 0's.
  void check_posts_agree_locked(const char* op) {
    const CollectivePost& first = posts_[0];
    for (int q = 1; q < size_; ++q) {
      const CollectivePost& p = posts_[static_cast<std::size_t>(q)];
      std::string why;
      if (p.collective != first.collective) {
        why = std::string(op) + ": ranks called different collectives: rank 0 called " +
              collective_name(first.collective) + ", rank " + std::to_string(q) + " called " +
              collective_name(p.collective);
      } else if (p.length != first.length) {
        const char* unit = collective_unit(p.collective);
        why = std::string(op) + ": rank 0 passed " + std::to_string(first.length) + " " + unit + " but rank " +
              std::to_string(q) + " passed " + std::to_string(p.length) + " " + unit +
              " (every rank must pass the same length)";
      } else if (p.root != first.root) {
        why = std::string(op) + ": rank 0 passed root " + std::to_string(first.root) + " but rank " +
              std::to_string(q) + " passed root " + std::to_string(p.root) + " (every rank must pass the same root)";
      } else {
        continue;
      }
      fail_locked(why);
      changed_.notify_all();
      throw DistributedError(why);
    }
  }

  int size_;
  ThreadGroupOptions options_;
  std::chrono::nanoseconds wait_limit_{};
  std::mutex mutex_;
  std::condition_variable changed_;  // a barrier completed, the group failed or a rank finished
  std::vector<CollectivePost> posts_;
  int arrived_ = 0;               // ranks at the current barrier (phase 1 or 3)
  std::uint64_t generation_ = 0;  // barriers completed; a waiter leaves when it changes
  bool failed_ = false;
  std::string failure_;
  int finished_rank_ = -1;  // the first rank marked finished, -1 while none is
};

}  // namespace detail

class ThreadGroup;

/// One rank of a ThreadGroup (see the file comment for how the collectives run). Obtained from
/// ThreadGroup::communicator or passed to run_ranks' body; used by one thread at a time.
class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(const ThreadCommunicator&) = delete;
  ThreadCommunicator& operator=(const ThreadCommunicator&) = delete;

  /// This rank, in [0, size()).
  int rank() const noexcept override { return rank_; }
  /// Number of ranks in the group.
  int size() const noexcept override { return group_->size(); }

  /// In place: buf = buf_0 + buf_1 + ... + buf_{n-1}, summed in rank order (same bits everywhere).
  void allreduce_sum(std::span<float> buf) override { allreduce(buf, detail::Collective::allreduce_float); }
  /// In place: buf = buf_0 + buf_1 + ... + buf_{n-1}, summed in rank order (same bits everywhere).
  void allreduce_sum(std::span<double> buf) override { allreduce(buf, detail::Collective::allreduce_double); }

  /// Runs allreduce_sum(buf) to completion before returning (a thread group has no background
  /// progress, so nothing overlaps) and returns a request that wait() accepts once; errors are
  /// thrown here, not by wait().
  RequestId start_allreduce_sum(std::span<float> buf) override {
    allreduce(buf, detail::Collective::allreduce_float);
    return remember_request();
  }
  /// As start_allreduce_sum for floats: completes before returning.
  RequestId start_allreduce_sum(std::span<double> buf) override {
    allreduce(buf, detail::Collective::allreduce_double);
    return remember_request();
  }
  /// Retires a request of start_allreduce_sum (already complete); DistributedError for a request
  /// this rank never started or has already waited for.
  void wait(RequestId request) override {
    const auto it = std::find(pending_.begin(), pending_.end(), request);
    if (it == pending_.end())
      throw DistributedError("wait: " + describe() + " has no pending request " + std::to_string(request) +
                             " (never started on this rank, or already waited for)");
    *it = pending_.back();
    pending_.pop_back();
  }

  /// In place: buf = root's buf (ValueError for a root outside [0, size())).
  void broadcast(std::span<float> buf, int root) override {
    broadcast_raw(buf.data(), buf.size(), sizeof(float), root, detail::Collective::broadcast_float);
  }
  /// In place: buf = root's buf (ValueError for a root outside [0, size())).
  void broadcast(std::span<double> buf, int root) override {
    broadcast_raw(buf.data(), buf.size(), sizeof(double), root, detail::Collective::broadcast_double);
  }
  /// In place: buf = root's buf (ValueError for a root outside [0, size())).
  void broadcast(std::span<std::byte> buf, int root) override {
    broadcast_raw(buf.data(), buf.size(), 1, root, detail::Collective::broadcast_bytes);
  }

  /// all = every rank's `mine`, in rank order. ValueError unless all.size() == size() *
  /// mine.size() and the two buffers do not overlap.
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    const std::size_t n = static_cast<std::size_t>(size());
    const std::size_t len = mine.size();
    if (all.size() != n * len)  // (not check_arg, whose message would be built on every call)
      throw ValueError("allgather: expected all.size() == size() * mine.size() = " + std::to_string(n) + " * " +
                       std::to_string(len) + " = " + std::to_string(n * len) + ", got " + std::to_string(all.size()));
    const std::less<const std::byte*> before;
    const bool overlap =
        len > 0 && before(mine.data(), all.data() + all.size()) && before(all.data(), mine.data() + mine.size());
    check_arg(!overlap, "allgather", "mine and all", "not to overlap", "overlapping buffers");
    group_->post_and_wait(rank_, "allgather", {detail::Collective::allgather, all.data(), mine.data(), len, 0});
    if (len > 0) {
      for (std::size_t q = 0; q < n; ++q) std::memcpy(all.data() + q * len, group_->post(static_cast<int>(q)).in, len);
    }
    group_->release();
  }

  /// Returns once every rank has called barrier().
  void barrier() override { group_->post_and_wait(rank_, "barrier", {}); }

  /// "thread rank r of n".
  std::string describe() const override {
    return "thread rank " + std::to_string(rank_) + " of " + std::to_string(size());
  }

 private:
  friend class ThreadGroup;

  ThreadCommunicator(detail::ThreadGroupState& group, int rank) : group_(&group), rank_(rank) {}

  /// The three phases of allreduce_sum (file comment): rank r sums its chunk of every buffer into
  /// rank 0's buffer in rank order, then copies the sums into the other ranks' buffers.
  template <class T>
  void allreduce(std::span<T> buf, detail::Collective collective) {
    group_->post_and_wait(rank_, "allreduce_sum", {collective, buf.data(), buf.data(), buf.size(), 0});
    const std::size_t n = static_cast<std::size_t>(size());
    const std::size_t r = static_cast<std::size_t>(rank_);
    const std::size_t begin = buf.size() * r / n;
    const std::size_t end = buf.size() * (r + 1) / n;
    if (begin < end) {
      T* acc = static_cast<T*>(group_->post(0).out);
      for (std::size_t q = 1; q < n; ++q) {
        const T* x = static_cast<const T*>(group_->post(static_cast<int>(q)).in);
        for (std::size_t i = begin; i < end; ++i) acc[i] += x[i];
      }
      for (std::size_t q = 1; q < n; ++q)
        std::memcpy(static_cast<T*>(group_->post(static_cast<int>(q)).out) + begin, acc + begin,
                    (end - begin) * sizeof(T));
    }
    group_->release();
  }

  /// The three phases of broadcast on `count` elements of `element_size` bytes at `data`.
  void broadcast_raw(void* data, std::size_t count, std::size_t element_size, int root, detail::Collective collective) {
    check_in_range("broadcast", "root", root, 0, size() - 1);
    group_->post_and_wait(rank_, "broadcast", {collective, data, data, count, root});
    if (rank_ != root && count > 0) std::memcpy(data, group_->post(root).in, count * element_size);
    group_->release();
  }

  /// A new request id, pending until wait().
  RequestId remember_request() {
    const RequestId id = next_request_++;
    pending_.push_back(id);
    return id;
  }

  detail::ThreadGroupState* group_;
  int rank_;
  RequestId next_request_ = 1;
  std::vector<RequestId> pending_;  // started allreduces not yet waited for (all complete)
};

/// The shared state of `size` thread ranks and their communicators. Must outlive every thread that
/// uses one of its communicators; not copyable or movable (the communicators point into it).
class ThreadGroup {
 public:
  /// A group of `size` ranks (ValueError unless size >= 1 and options.timeout_seconds > 0).
  explicit ThreadGroup(int size, ThreadGroupOptions options = {}) : state_(size, options) {
    communicators_.reserve(static_cast<std::size_t>(size));
    for (int rank = 0; rank < size; ++rank)
      communicators_.push_back(std::unique_ptr<ThreadCommunicator>(new ThreadCommunicator(state_, rank)));
  }

  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;

  /// Number of ranks.
  int size() const noexcept { return state_.size(); }
  /// The options the group was made with.
  const ThreadGroupOptions& options() const noexcept { return state_.options(); }

  /// Rank `rank`'s communicator (ValueError unless 0 <= rank < size()); hand it to that rank's
  /// thread.
  ThreadCommunicator& communicator(int rank) {
    check_in_range("ThreadGroup::communicator", "rank", rank, 0, size() - 1);
    return *communicators_[static_cast<std::size_t>(rank)];
  }

  /// Fails the group: every rank waiting in, or later entering, a collective throws
  /// DistributedError naming `why` instead of waiting. The first reason given is kept.
  void fail(std::string why) { state_.fail(std::move(why)); }

  /// Declares that `rank` calls no more collectives (its thread is done), so that a collective
  /// waiting for it throws DistributedError at once instead of at the timeout. run_ranks calls it
  /// when a rank's body returns or throws.
  void mark_finished(int rank) {
    check_in_range("ThreadGroup::mark_finished", "rank", rank, 0, size() - 1);
    state_.mark_finished(rank);
  }

 private:
  detail::ThreadGroupState state_;
  std::vector<std::unique_ptr<ThreadCommunicator>> communicators_;
};

/// Runs `size` ranks as threads: thread r calls body(Communicator&) with rank r's communicator of
/// a new ThreadGroup(size, options), and run_ranks returns once every thread has finished. If a
/// body throws, the group fails (so the other ranks' collectives throw DistributedError instead of
/// waiting for it) and, after all threads are joined, the first exception thrown (by time) is
/// rethrown here. `body` is called concurrently from every thread (it is shared, not copied).
/// ValueError for size < 1 or timeout_seconds <= 0.
template <class F>
void run_ranks(int size, F&& body, ThreadGroupOptions options = {}) {
  ThreadGroup group(size, options);
  std::mutex first_error_mutex;
  std::exception_ptr first_error;
  const auto record = [&](std::exception_ptr error) {
    const std::lock_guard lock(first_error_mutex);
    if (!first_error) first_error = std::move(error);
  };
  const auto run_rank = [&](int rank) {
    Communicator& comm = group.communicator(rank);
    // The exception is recorded before the group fails, so a peer's DistributedError, which the
    // failure causes, can never come first.
    try {
      body(comm);
    } catch (const std::exception& e) {
      record(std::current_exception());
      group.fail(comm.describe() + " threw: " + e.what());
    } catch (...) {
      record(std::current_exception());
      group.fail(comm.describe() + " threw an exception that is not a std::exception");
    }
    group.mark_finished(rank);
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(size));
  try {
    for (int rank = 0; rank < size; ++rank) threads.emplace_back(run_rank, rank);
  } catch (...) {
    group.fail("run_ranks: could not start a thread for every rank");
    for (std::thread& t : threads) t.join();
    throw;
  }
  for (std::thread& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace genmod::distributed
