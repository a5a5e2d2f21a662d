#pragma once
/// \file mpi_communicator.hpp
/// The Communicator over MPI: ranks as processes, on one machine or many.
///
/// Needs an MPI implementation (Open MPI, MPICH) and the `genmod::mpi` CMake target, which links
/// MPI and defines GENMOD_WITH_MPI=1. Programs are started by the MPI launcher, one process per
/// rank:
///
/// ```cpp
/// int main(int argc, char** argv) {
///   genmod::distributed::MpiSession mpi(&argc, &argv);   // MPI_Init_thread ... MPI_Finalize
///   genmod::distributed::MpiCommunicator comm;           // over MPI_COMM_WORLD
///   try {
///     ... train, calling comm.allreduce_sum(gradients) ...
///   } catch (const std::exception& e) {
///     genmod::distributed::abort_all(e.what());          // stops the other ranks too
///   }
/// }
/// ```
///
///     mpiexec -n 4 ./train
///
/// Faults. MPI's blocking collectives wait forever for a rank that died or stopped calling them.
/// Here every collective is started non-blocking (MPI_Iallreduce, MPI_Ibcast, MPI_Iallgather,
/// MPI_Ibarrier) and completed by polling MPI_Test against a deadline, so that such a rank makes
/// the others throw DistributedError after `MpiCommunicatorOptions::timeout_seconds` instead of
/// hanging. MPI cannot cancel a collective, so the one given up on stays pending inside MPI (and
/// may still write to its buffer should the missing rank call it late): from then on the
/// communicator refuses every call, and the program should end the job with abort_all(). Open MPI's
/// launcher ends the whole job by itself when a rank process exits with a nonzero status or a
/// signal; the timeout covers the ranks that hang or exit in ways it does not notice.
///
/// Ending a program whose ranks disagree: MPI_Finalize (MpiSession's destructor) waits for every
/// rank (Open MPI synchronises the ranks in it), so a rank that leaves main by an exception while
/// the others still compute waits there; abort_all() is the way out.
///
/// Threads: MPI is initialised at MPI_THREAD_FUNNELED: OpenMP threads may run the kernels, but
/// only the thread that created the MpiSession calls the communicator.

// Only MPI's C API is used: keep out the C++ bindings that mpi.h would otherwise pull in (deprecated
// since MPI-2.2, removed in MPI-3, and not -Wextra clean in Open MPI 4.1).
#ifndef OMPI_SKIP_MPICXX
/// Tells Open MPI's mpi.h to leave out its C++ bindings (genmod uses the C API only).
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
/// Tells MPICH's mpi.h to leave out its C++ bindings (genmod uses the C API only).
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/distributed/communicator.hpp"

namespace genmod::distributed {

namespace detail {

/// MPI's text for an error code ("MPI_ERR_TRUNCATE: message truncated").
inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error code " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(length));
}

/// "MPI rank r of n" for the process in `comm`; "MPI (not initialised)" before MPI_Init.
inline std::string mpi_rank_text(MPI_Comm comm) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return "MPI (not running)";
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  return "MPI rank " + std::to_string(rank) + " of " + std::to_string(size);
}

/// The predefined MPI datatype of T.
template <class T>
MPI_Datatype mpi_datatype() noexcept {
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else {
    static_assert(std::is_same_v<T, std::byte>, "mpi_datatype: float, double or std::byte");
    return MPI_BYTE;
  }
}

/// MPI_ERRORS_RETURN on MPI_COMM_WORLD for the object's lifetime, then the handler it had. Open
/// MPI 4.1 reports an error that MPI_Test finds in a non-blocking collective (a truncated message
/// when ranks passed different lengths) through MPI_COMM_WORLD's handler, not the collective's
/// communicator's, and that handler aborts the job by default; while a communicator polls, the
/// error comes back as a code instead, for a DistributedError naming the operation.
class WorldErrorsReturn {
 public:
  WorldErrorsReturn() {
    if (MPI_Comm_get_errhandler(MPI_COMM_WORLD, &saved_) != MPI_SUCCESS) saved_ = MPI_ERRHANDLER_NULL;
    if (saved_ != MPI_ERRHANDLER_NULL) MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  WorldErrorsReturn(const WorldErrorsReturn&) = delete;
  WorldErrorsReturn& operator=(const WorldErrorsReturn&) = delete;
  ~WorldErrorsReturn() {
    if (saved_ == MPI_ERRHANDLER_NULL) return;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, saved_);
    MPI_Errhandler_free(&saved_);  // MPI_Comm_get_errhandler handed out a reference
  }

 private:
  MPI_Errhandler saved_ = MPI_ERRHANDLER_NULL;
};

}  // namespace detail

/// MPI for the lifetime of the object: MPI_Init_thread (MPI_THREAD_FUNNELED) unless MPI is already
/// initialised, and MPI_Finalize at the end when this object initialised it. One per program,
/// created at the top of main before any communicator.
class MpiSession {
 public:
  /// Initialises MPI without the command line (MPI-2 allows null argc/argv).
  MpiSession() : MpiSession(nullptr, nullptr) {}

  /// Initialises MPI with main's arguments (some launchers pass their settings there).
  MpiSession(int* argc, char*** argv) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized) throw DistributedError("MpiSession: MPI was finalised already and cannot start again");
    if (!initialized) {
      // FUNNELED: OpenMP threads compute, only the main thread calls MPI. Open MPI and MPICH
      // provide it; `provided` is not checked because MPI_THREAD_SINGLE implementations also
      // allow threads that never call MPI in practice.
      int provided = 0;
      const int code = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
      if (code != MPI_SUCCESS) throw DistributedError("MpiSession: MPI_Init_thread: " + detail::mpi_error_text(code));
      owns_mpi_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }

  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  /// MPI_Finalize, if this session initialised MPI (and nobody finalised it since).
  ~MpiSession() {
    if (!owns_mpi_) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  /// This process's rank in MPI_COMM_WORLD.
  int rank() const noexcept { return rank_; }
  /// Number of processes in MPI_COMM_WORLD.
  int size() const noexcept { return size_; }
  /// Whether this session called MPI_Init_thread (and so will call MPI_Finalize).
  bool owns_mpi() const noexcept { return owns_mpi_; }

 private:
  int rank_ = 0;
  int size_ = 1;
  bool owns_mpi_ = false;
};

/// Settings of an MpiCommunicator.
struct MpiCommunicatorOptions {
  /// A collective not completed after this many seconds throws DistributedError (a rank died or
  /// stopped calling). Must be > 0; infinity waits forever. Generous by default: the first
  /// collective also waits for the slowest rank to load its data and build its model.
  double timeout_seconds = 300;
  /// Most elements handed to one MPI call: MPI counts are `int`, so longer buffers are split into
  /// calls of at most this many elements. In [1, INT_MAX]; lowered only by tests, to exercise the
  /// splitting on small buffers.
  std::size_t max_elements_per_call = INT_MAX;
};

/// The Communicator contract over an MPI communicator (MPI_COMM_WORLD by default), which it
/// duplicates so that its collectives never match the application's own MPI calls.
class MpiCommunicator final : public Communicator {
 public:
  /// Over `comm` (duplicated with MPI_Comm_dup, a collective call: every rank of `comm` constructs
  /// its MpiCommunicator together). MPI must be initialised (MpiSession).
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD, MpiCommunicatorOptions options = {}) : options_(options) {
    check_positive("MpiCommunicator", "timeout_seconds", options.timeout_seconds);
    check_in_range("MpiCommunicator", "max_elements_per_call", options.max_elements_per_call, 1, INT_MAX);
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
      throw DistributedError("MpiCommunicator: MPI is not running (create an MpiSession first)");
    if (comm == MPI_COMM_NULL) throw ValueError("MpiCommunicator: expected a communicator, got MPI_COMM_NULL");
    int code = MPI_Comm_dup(comm, &comm_);
    if (code != MPI_SUCCESS) throw DistributedError("MpiCommunicator: MPI_Comm_dup: " + detail::mpi_error_text(code));
    // Errors come back as codes (thrown as DistributedError below) instead of MPI's default of
    // aborting the job on the spot, so the message can name the operation and the rank.
    code = MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    if (code == MPI_SUCCESS) code = MPI_Comm_rank(comm_, &rank_);
    if (code == MPI_SUCCESS) code = MPI_Comm_size(comm_, &size_);
    if (code != MPI_SUCCESS) {
      MPI_Comm_free(&comm_);
      throw DistributedError("MpiCommunicator: " + detail::mpi_error_text(code));
    }
    has_deadline_ = std::isfinite(options.timeout_seconds);
    if (has_deadline_)
      timeout_ = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(options.timeout_seconds));
  }

  /// Over MPI_COMM_WORLD with the given options.
  explicit MpiCommunicator(MpiCommunicatorOptions options) : MpiCommunicator(MPI_COMM_WORLD, options) {}

  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  /// Frees the duplicated communicator (MPI_Comm_free lets operations still pending on it, such as
  /// one given up on after a timeout, finish first; after MPI_Finalize there is nothing to free).
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  /// This rank, in [0, size()).
  int rank() const noexcept override { return rank_; }
  /// Number of ranks in the communicator.
  int size() const noexcept override { return size_; }
  /// The duplicated MPI communicator the collectives run on.
  MPI_Comm native_handle() const noexcept { return comm_; }
  /// The options it was built with.
  const MpiCommunicatorOptions& options() const noexcept { return options_; }

  // Sum order. MPI lets each rank compute its own rounding of the sum; Open MPI 4.1 does not: its
  // MPI_Iallreduce (coll/libnbc) with MPI_IN_PLACE runs the binomial schedule, in which rank 0
  // sums along a binomial tree (a fixed order for a given number of ranks) and broadcasts its
  // bytes, so every rank holds the same bits. Its other schedules, chosen by the MCA parameter
  // coll_libnbc_iallreduce_algorithm, keep that property: ring and reduce-scatter + allgather
  // compute each element on one rank and copy it to the others, and in recursive doubling two
  // partners add the same two partial sums in either order (IEEE addition commutes exactly). The
  // test (tests/distributed/mpi) allgathers the results and compares the bits, so an MPI that
  // rounds differently per rank is caught there; the fix would then be MPI_Ireduce to rank 0 and
  // MPI_Ibcast, at about twice the traffic.

  /// In place: buf = sum over the ranks of their buf (same bits on every rank).
  void allreduce_sum(std::span<float> buf) override { blocking_allreduce(buf); }
  /// In place: buf = sum over the ranks of their buf (same bits on every rank).
  void allreduce_sum(std::span<double> buf) override { blocking_allreduce(buf); }

  /// Starts allreduce_sum(buf) (MPI_Iallreduce) and returns at once; wait() completes it. Open MPI
  /// moves a started collective forward only inside MPI calls, so most of the work happens in
  /// wait() (or in the polling of other collectives).
  RequestId start_allreduce_sum(std::span<float> buf) override { return start_allreduce(buf); }
  /// As start_allreduce_sum for doubles.
  RequestId start_allreduce_sum(std::span<double> buf) override { return start_allreduce(buf); }

  /// Completes a started allreduce (DistributedError on timeout, an MPI error or an unknown request).
  void wait(RequestId request) override {
    ensure_usable("wait");
    const auto pending =
        std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.id == request; });
    if (request <= 0 || pending == pending_.end())
      throw DistributedError("wait: " + describe() + ": unknown request " + std::to_string(request) +
                             " (not started here, or waited for already)");
    complete(pending->requests, "wait");
    pending->id = 0;  // the slot (and its requests' capacity) serves the next start
  }

  /// Tests every started allreduce once (MPI_Test runs Open MPI's schedules forward), so that they
  /// advance while the caller computes; returns at once.
  void progress() override {
    ensure_usable("progress");
    const detail::WorldErrorsReturn errors_return;
    for (Pending& p : pending_) {
      if (p.id == 0) continue;
      for (MPI_Request& request : p.requests) {
        if (request == MPI_REQUEST_NULL) continue;
        int flag = 0;
        check(MPI_Test(&request, &flag, MPI_STATUS_IGNORE), "progress");
        if (!flag) break;  // the pieces of one allreduce complete in order
      }
    }
  }

  /// In place: buf = root's buf (ValueError for a root outside [0, size())).
  void broadcast(std::span<float> buf, int root) override { blocking_broadcast(buf, root); }
  /// In place: buf = root's buf (ValueError for a root outside [0, size())).
  void broadcast(std::span<double> buf, int root) override { blocking_broadcast(buf, root); }
  /// In place: buf = root's buf, raw bytes (ValueError for a root outside [0, size())).
  void broadcast(std::span<std::byte> buf, int root) override { blocking_broadcast(buf, root); }

  /// all = every rank's `mine`, in rank order. ValueError unless all.size() == size() *
  /// mine.size() and the two buffers do not overlap.
  void allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    const std::size_t ranks = static_cast<std::size_t>(size_);
    const std::size_t n = mine.size();
    if (all.size() != ranks * n)
      throw ValueError("allgather: expected all.size() == size() * mine.size() = " + std::to_string(ranks) + " * " +
                       std::to_string(n) + " = " + std::to_string(ranks * n) + ", got " + std::to_string(all.size()));
    const std::less<const std::byte*> before;
    const bool overlap = n > 0 && before(mine.data(), all.data() + all.size()) && before(all.data(), mine.data() + n);
    check_arg(!overlap, "allgather", "mine and all", "not to overlap", "overlapping buffers");
    ensure_usable("allgather");
    scratch_.clear();
    const std::size_t chunk = options_.max_elements_per_call;
    std::size_t offset = 0;
    do {  // one call even for n == 0, so that every rank makes the same calls
      const std::size_t len = std::min(chunk, n - offset);
      std::byte* dest = all.data() + offset;
      const std::byte* send = mine.data() + offset;
      if (len == n) {
        check(MPI_Iallgather(send, static_cast<int>(len), MPI_BYTE, dest, static_cast<int>(len), MPI_BYTE, comm_,
                             &push(scratch_)),
              "allgather");
      } else {
        // A piece of each rank's block: rank r's bytes [offset, offset + len) go to
        // all[r * n + offset ...), so the receive type is `len` bytes with an extent of n bytes
        // (the stride between ranks' blocks), received once per rank.
        MPI_Datatype piece = MPI_DATATYPE_NULL, strided = MPI_DATATYPE_NULL;
        check(MPI_Type_contiguous(static_cast<int>(len), MPI_BYTE, &piece), "allgather");
        const int code = MPI_Type_create_resized(piece, 0, static_cast<MPI_Aint>(n), &strided);
        MPI_Type_free(&piece);
        check(code, "allgather");
        const int commit = MPI_Type_commit(&strided);
        const int start = commit == MPI_SUCCESS ? MPI_Iallgather(send, static_cast<int>(len), MPI_BYTE, dest, 1,
                                                                 strided, comm_, &push(scratch_))
                                                : commit;
        // Freeing a type in use by a pending operation is allowed: MPI keeps it until completion.
        MPI_Type_free(&strided);
        check(start, "allgather");
      }
      offset += len;
    } while (offset < n);
    complete(scratch_, "allgather");
  }

  /// Returns once every rank has called barrier().
  void barrier() override {
    ensure_usable("barrier");
    scratch_.clear();
    check(MPI_Ibarrier(comm_, &push(scratch_)), "barrier");
    complete(scratch_, "barrier");
  }

  /// "MPI rank r of n".
  std::string describe() const override { return "MPI rank " + std::to_string(rank_) + " of " + std::to_string(size_); }

 private:
  /// A started allreduce: its id (0 when the slot is free) and the MPI requests of its pieces.
  struct Pending {
    RequestId id = 0;
    std::vector<MPI_Request> requests;
  };

  /// Appends a null request to `requests` and returns it, for an MPI call to fill in.
  static MPI_Request& push(std::vector<MPI_Request>& requests) { return requests.emplace_back(MPI_REQUEST_NULL); }

  /// Throws DistributedError if an earlier collective failed (see the file comment: a collective
  /// given up on may still be pending inside MPI).
  void ensure_usable(std::string_view op) const {
    if (!failure_.empty())
      throw DistributedError(std::string(op) + ": " + describe() +
                             ": the communicator is unusable after an earlier failure (" + failure_ + ")");
  }

  /// Records the failure (the communicator refuses further calls) and throws it.
  [[noreturn]] void fail(std::string_view op, const std::string& what) {
    std::string message = std::string(op) + ": " + describe() + ": " + what;
    failure_ = message;
    throw DistributedError(message);
  }

  /// Throws DistributedError unless an MPI call returned MPI_SUCCESS.
  void check(int code, std::string_view op) {
    if (code != MPI_SUCCESS) fail(op, detail::mpi_error_text(code));
  }

  /// Polls `requests` (MPI_Test, which also moves Open MPI's non-blocking schedules forward) until
  /// all completed or the deadline passed. Yields the core for the first millisecond, then sleeps
  /// 20 us doubling to 1 ms: short collectives finish at once, while a long wait neither burns a
  /// core the OpenMP threads of this or another rank could use, nor oversleeps by more than 1 ms.
  void complete(std::vector<MPI_Request>& requests, std::string_view op) {
    const detail::WorldErrorsReturn errors_return;
    using clock = std::chrono::steady_clock;
    const clock::time_point start = clock::now();
    std::chrono::microseconds pause{0};
    for (;;) {
      bool done = true;
      for (MPI_Request& request : requests) {
        if (request == MPI_REQUEST_NULL) continue;  // completed in an earlier round
        int flag = 0;
        check(MPI_Test(&request, &flag, MPI_STATUS_IGNORE), op);
        if (!flag) {
          done = false;
          break;
        }
      }
      if (done) {
        requests.clear();  // keeps the capacity: no heap call in the next collective
        return;
      }
      const clock::duration waited = clock::now() - start;
      if (has_deadline_ && waited >= timeout_)
        fail(op, "no completion within " + genmod::detail::check_number(options_.timeout_seconds) +
                     " s (a rank died or stopped calling collectives?)");
      if (waited < std::chrono::milliseconds(1)) {
        std::this_thread::yield();
      } else {
        pause = std::clamp(pause * 2, std::chrono::microseconds(20), std::chrono::microseconds(1000));
        std::this_thread::sleep_for(pause);
      }
    }
  }

  /// Starts the MPI_Iallreduce calls of buf (in place, pieces of at most max_elements_per_call),
  /// appending their requests to `requests`.
  template <class T>
  void start_allreduce_pieces(std::span<T> buf, std::vector<MPI_Request>& requests, std::string_view op) {
    const std::size_t chunk = options_.max_elements_per_call;
    std::size_t offset = 0;
    do {  // one call even for an empty buffer, so that every rank makes the same calls
      const std::size_t len = std::min(chunk, buf.size() - offset);
      check(MPI_Iallreduce(MPI_IN_PLACE, buf.data() + offset, static_cast<int>(len), detail::mpi_datatype<T>(), MPI_SUM,
                           comm_, &push(requests)),
            op);
      offset += len;
    } while (offset < buf.size());
  }

  /// allreduce_sum: start, then complete.
  template <class T>
  void blocking_allreduce(std::span<T> buf) {
    ensure_usable("allreduce_sum");
    scratch_.clear();
    start_allreduce_pieces(buf, scratch_, "allreduce_sum");
    complete(scratch_, "allreduce_sum");
  }

  /// start_allreduce_sum: the pieces' requests go to a free slot of pending_.
  template <class T>
  RequestId start_allreduce(std::span<T> buf) {
    ensure_usable("start_allreduce_sum");
    auto slot = std::find_if(pending_.begin(), pending_.end(), [](const Pending& p) { return p.id == 0; });
    if (slot == pending_.end()) slot = pending_.insert(pending_.end(), Pending{});
    slot->requests.clear();
    start_allreduce_pieces(buf, slot->requests, "start_allreduce_sum");
    slot->id = next_request_++;
    return slot->id;
  }

  /// broadcast: MPI_Ibcast in pieces of at most max_elements_per_call, then complete.
  template <class T>
  void blocking_broadcast(std::span<T> buf, int root) {
    check_in_range("broadcast", "root", root, 0, size_ - 1);
    ensure_usable("broadcast");
    scratch_.clear();
    const std::size_t chunk = options_.max_elements_per_call;
    std::size_t offset = 0;
    do {  // one call even for an empty buffer, so that every rank makes the same calls
      const std::size_t len = std::min(chunk, buf.size() - offset);
      check(MPI_Ibcast(buf.data() + offset, static_cast<int>(len), detail::mpi_datatype<T>(), root, comm_,
                       &push(scratch_)),
            "broadcast");
      offset += len;
    } while (offset < buf.size());
    complete(scratch_, "broadcast");
  }

  MpiCommunicatorOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  bool has_deadline_ = true;
  std::chrono::steady_clock::duration timeout_{};
  std::vector<MPI_Request> scratch_;  // the blocking collectives' requests (capacity kept)
  std::vector<Pending> pending_;      // started allreduces, slots reused once waited for
  RequestId next_request_ = 1;
  std::string failure_;  // the first failure's message; non-empty = unusable
};

/// Ends every rank of the job: prints `why` on stderr, then MPI_Abort(MPI_COMM_WORLD, code). For a
/// rank that failed while the others may be waiting in a collective (or in MPI_Finalize). Without
/// a running MPI it just exits with `code`.
[[noreturn]] inline void abort_all(const std::string& why, int code = 1) {
  std::fprintf(stderr, "genmod: %s aborts the job: %s\n", detail::mpi_rank_text(MPI_COMM_WORLD).c_str(), why.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort is not declared noreturn (and MPI may be down)
}

}  // namespace genmod::distributed
