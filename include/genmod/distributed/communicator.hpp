#pragma once
/// \file communicator.hpp
/// The Communicator contract: what data-parallel training needs of a group of processes (ranks).
///
/// A group has `size()` ranks numbered 0 ... size() - 1; every rank holds its own Communicator and
/// calls the same collectives in the same order with buffers of the same length (a collective
/// called by some ranks only, or with lengths that differ, is a usage error: implementations detect
/// what they can and throw DistributedError, never hang forever).
///
///   allreduce_sum(buf)       every rank's buf becomes the element-wise sum over the ranks.
///                            Implementations sum in a fixed order, so every rank holds the same
///                            bits afterwards (the parameters of data-parallel replicas must not
///                            drift apart by rounding).
///   start_allreduce_sum(buf) the same, started and left running; wait(request) completes it (buf
///                            must stay alive and untouched in between). Lets gradient buckets be
///                            reduced while the backward pass is still computing others.
///   broadcast(buf, root)     every rank's buf becomes root's.
///   allgather(mine, all)     all[r * n ... (r + 1) * n) = rank r's `mine` (n = mine.size()).
///   barrier()                returns once every rank has called it.
///
/// Faults: a collective that does not complete within the communicator's timeout (a rank died or
/// stopped calling) throws DistributedError naming the operation and the rank, so that a run stops
/// with an error instead of hanging.
///
/// Two implementations ship: `MpiCommunicator` (mpi_communicator.hpp, for real multi-process and
/// multi-machine runs; needs MPI and the `genmod::mpi` CMake target) and `ThreadCommunicator`
/// (thread_communicator.hpp: ranks as threads of one process, for tests and machines without MPI;
/// it is not a substitute for MPI: the ranks share one process's cores and memory).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "genmod/config.hpp"

namespace genmod::distributed {

/// A collective that failed: a peer that died or timed out, or ranks that disagree (different
/// buffer lengths, different models). The message names the operation and the rank.
class DistributedError : public Error {
 public:
  using Error::Error;
};

/// Handle of an allreduce started by Communicator::start_allreduce_sum.
using RequestId = std::int64_t;

/// One rank's view of a group of ranks (see the file comment for the contract of each call).
class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This rank, in [0, size()).
  virtual int rank() const noexcept = 0;
  /// Number of ranks in the group.
  virtual int size() const noexcept = 0;

  /// In place: buf = sum over the ranks of their buf (same bits on every rank).
  virtual void allreduce_sum(std::span<float> buf) = 0;
  /// In place: buf = sum over the ranks of their buf (same bits on every rank).
  virtual void allreduce_sum(std::span<double> buf) = 0;

  /// Starts allreduce_sum(buf) and returns; complete it with wait(). `buf` must stay alive and
  /// unread until then. Requests complete in any order of wait() calls. An implementation without
  /// background progress may complete the allreduce before returning, so errors may come from this
  /// call rather than from wait().
  virtual RequestId start_allreduce_sum(std::span<float> buf) = 0;
  /// As start_allreduce_sum for doubles.
  virtual RequestId start_allreduce_sum(std::span<double> buf) = 0;
  /// Completes a started allreduce (throws DistributedError on timeout or an unknown request).
  virtual void wait(RequestId request) = 0;
  /// Lets started allreduces advance without waiting for them (MPI moves a non-blocking collective
  /// forward only inside MPI calls; DataParallel calls this between gradients of the backward
  /// pass). Implementations with nothing to do keep this default, which does nothing.
  virtual void progress() {}

  /// In place: buf = root's buf (ValueError for a root outside [0, size())).
  virtual void broadcast(std::span<float> buf, int root) = 0;
  /// In place: buf = root's buf.
  virtual void broadcast(std::span<double> buf, int root) = 0;
  /// In place: buf = root's buf (raw bytes: names, metadata, counters).
  virtual void broadcast(std::span<std::byte> buf, int root) = 0;

  /// all = the concatenation of every rank's `mine`, in rank order; all.size() == size() *
  /// mine.size() (ValueError otherwise), and `mine` must not overlap `all`.
  virtual void allgather(std::span<const std::byte> mine, std::span<std::byte> all) = 0;

  /// Returns once every rank has called barrier().
  virtual void barrier() = 0;

  /// A short description for messages ("MPI rank 1 of 3", "thread rank 0 of 2").
  virtual std::string describe() const = 0;
};

}  // namespace genmod::distributed
