// Tests of MpiCommunicator, run under mpiexec with 2 and 3 ranks (tests/distributed/mpi/CMakeLists.txt).
//
// A plain program rather than Catch2: every rank must run every check in the same order, because
// each check calls collectives that need all the ranks. A failed check prints
// "FAIL [MPI rank r of n] <check>: <detail>" and makes that rank exit with status 1, which makes
// mpiexec exit nonzero. An unexpected exception ends the whole job through abort_all, so that the
// other ranks do not wait for it in a collective.
//
// Order: the checks that leave the MPI state clean come first; the mismatched lengths and the
// timeouts, which leave collectives pending inside MPI on communicators of their own, come last.
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "genmod/distributed/mpi_communicator.hpp"

// Counts the C++ heap calls of this program (the communicator's vectors and strings are its only
// ones; MPI allocates with malloc) to check that collectives in steady state make none.
namespace {
std::atomic<bool> counting{false};
std::atomic<long> heap_calls{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) heap_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
// The matching deletes (a sanitizer's own operator delete would flag memory from malloc). Neither
// side is inlined: GCC 12 would see `malloc` paired with `operator delete`, or operator new with
// `free`, and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using genmod::ValueError;
using genmod::distributed::abort_all;
using genmod::distributed::Communicator;
using genmod::distributed::DistributedError;
using genmod::distributed::MpiCommunicator;
using genmod::distributed::MpiCommunicatorOptions;
using genmod::distributed::MpiSession;
using genmod::distributed::RequestId;
using clock_type = std::chrono::steady_clock;

/// The outcome of every check of this rank.
struct Checks {
  std::string who;  // "MPI rank r of n"
  int passed = 0;
  int failed = 0;

  void expect(bool ok, const std::string& check, const std::string& detail = "") {
    if (ok) {
      ++passed;
      return;
    }
    ++failed;
    std::fprintf(stderr, "FAIL [%s] %s%s%s\n", who.c_str(), check.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    std::fflush(stderr);
  }
};

/// Buffers handed to collectives that were given up on (timeouts, mismatched lengths): MPI may
/// still hold them, so they live until after MPI_Finalize (declared before the MpiSession).
std::deque<std::vector<std::byte>>* graveyard = nullptr;

template <class T>
std::span<T> long_lived(std::size_t n) {
  auto& bytes = graveyard->emplace_back(n * sizeof(T));
  return {reinterpret_cast<T*>(bytes.data()), n};
}

/// A reproducible 64-bit hash (splitmix64's finaliser) of a rank and an index.
std::uint64_t hash(int rank, std::size_t i) {
  std::uint64_t z = static_cast<std::uint64_t>(rank) * 0x9E3779B97F4A7C15ull + i + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Rank r's input i for the rounding checks: a sign, a mantissa in [1, 2) and an exponent in
/// [-20, 20], so that sums of several ranks' values round differently in different orders.
template <class T>
T mixed_value(int rank, std::size_t i) {
  const std::uint64_t h = hash(rank, i);
  const double mantissa = 1.0 + static_cast<double>(h >> 11) * 0x1.0p-53;
  const int exponent = static_cast<int>((h >> 3) % 41) - 20;
  return static_cast<T>(((h & 1) ? -1.0 : 1.0) * std::ldexp(mantissa, exponent));
}

/// Rank r's input i for the exact checks: small integers, whose sums every order gets exactly.
template <class T>
T exact_value(int rank, std::size_t i) {
  return static_cast<T>((rank + 1) * static_cast<int>(i % 97 + 1));
}

/// Whether `v` holds the same bytes on every rank (allgather and compare with rank 0's).
template <class T>
bool same_bits_on_every_rank(Communicator& comm, std::span<const T> v) {
  const auto mine = std::as_bytes(v);
  std::vector<std::byte> all(mine.size() * static_cast<std::size_t>(comm.size()));
  comm.allgather(mine, all);
  for (int r = 1; r < comm.size(); ++r)
    if (std::memcmp(all.data(), all.data() + mine.size() * static_cast<std::size_t>(r), mine.size()) != 0) return false;
  return true;
}

/// Runs `call`, which must throw E with a message containing `needle`; returns the message.
template <class E, class F>
std::string expect_throw(Checks& checks, const std::string& check, const std::string& needle, F&& call) {
  try {
    call();
  } catch (const E& e) {
    const std::string what = e.what();
    checks.expect(what.find(needle) != std::string::npos, check, "message \"" + what + "\" lacks \"" + needle + "\"");
    return what;
  } catch (const std::exception& e) {
    checks.expect(false, check, std::string("threw another exception: ") + e.what());
    return e.what();
  }
  checks.expect(false, check, "did not throw");
  return "";
}

/// rank(), size() and describe() agree with MPI_COMM_WORLD; a second MpiSession leaves MPI alone.
void check_identity(Checks& checks, const MpiSession& session, MpiCommunicator& comm) {
  checks.expect(comm.rank() == session.rank() && comm.size() == session.size(), "rank and size of MPI_COMM_WORLD",
                "communicator " + comm.describe() + ", session rank " + std::to_string(session.rank()) + " of " +
                    std::to_string(session.size()));
  checks.expect(
      comm.describe() == "MPI rank " + std::to_string(session.rank()) + " of " + std::to_string(session.size()),
      "describe()", comm.describe());
  checks.expect(session.owns_mpi(), "the first MpiSession initialises MPI");
  {
    const MpiSession nested;  // MPI is running: this one neither initialises nor finalises it
    checks.expect(!nested.owns_mpi() && nested.rank() == session.rank(), "a nested MpiSession leaves MPI alone");
  }
  comm.barrier();  // MPI still runs after the nested session's destructor
}

/// Bad options and MPI_COMM_NULL are ValueErrors, thrown before any communication.
void check_options(Checks& checks) {
  const auto bad = [&](MpiCommunicatorOptions options, const std::string& needle) {
    expect_throw<ValueError>(checks, "options: bad " + needle + " is a ValueError", needle,
                             [&] { const MpiCommunicator comm(options); });
  };
  bad({.timeout_seconds = 0}, "timeout_seconds");
  bad({.timeout_seconds = -1}, "timeout_seconds");
  bad({.timeout_seconds = std::numeric_limits<double>::quiet_NaN()}, "timeout_seconds");
  bad({.max_elements_per_call = 0}, "max_elements_per_call");
  bad({.max_elements_per_call = std::size_t{INT_MAX} + 1}, "max_elements_per_call");
  expect_throw<ValueError>(checks, "options: MPI_COMM_NULL is a ValueError", "MPI_COMM_NULL",
                           [&] { const MpiCommunicator comm(MPI_COMM_NULL); });
}

/// allreduce_sum of small integers: the exact sum on every rank, empty buffers included.
template <class T>
void check_allreduce_exact(Checks& checks, MpiCommunicator& comm, const std::string& label, std::size_t length) {
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, length}) {
    std::vector<T> buf(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = exact_value<T>(comm.rank(), i);
    comm.allreduce_sum(buf);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i) {
      T expected = 0;
      for (int r = 0; r < comm.size(); ++r) expected += exact_value<T>(r, i);
      wrong += buf[i] != expected;
    }
    checks.expect(wrong == 0, label + ": allreduce_sum of integers, n = " + std::to_string(n),
                  std::to_string(wrong) + " elements wrong");
  }
}

/// allreduce_sum of values whose sum depends on the order: the same bits on every rank, and the
/// sum within the rounding bound of any order, (size - 1) * eps * sum |x|, of the exact sum.
template <class T>
void check_allreduce_same_bits(Checks& checks, MpiCommunicator& comm, const std::string& label, std::size_t n) {
  std::vector<T> buf(n);
  for (std::size_t i = 0; i < n; ++i) buf[i] = mixed_value<T>(comm.rank(), i);
  comm.allreduce_sum(buf);
  checks.expect(same_bits_on_every_rank<T>(comm, buf), label + ": allreduce_sum gives the same bits on every rank");
  std::size_t off = 0;
  for (std::size_t i = 0; i < n; ++i) {
    long double exact = 0, magnitude = 0;
    for (int r = 0; r < comm.size(); ++r) {
      exact += static_cast<long double>(mixed_value<T>(r, i));
      magnitude += std::fabs(static_cast<long double>(mixed_value<T>(r, i)));
    }
    const long double bound =
        (comm.size() - 1) * static_cast<long double>(std::numeric_limits<T>::epsilon()) * magnitude;
    off += std::fabs(static_cast<long double>(buf[i]) - exact) > bound;
  }
  checks.expect(off == 0, label + ": allreduce_sum within the rounding bound of the exact sum",
                std::to_string(off) + " elements off");
}

/// start_allreduce_sum / wait: three reductions in flight, completed in another order, repeated so
/// that the request slots are reused; unknown requests are DistributedErrors that leave the
/// communicator usable.
void check_start_wait(Checks& checks, MpiCommunicator& comm, const std::string& label, std::size_t length) {
  std::vector<float> a(length / 3 + 1), c(7);
  std::vector<double> b(length);
  std::size_t wrong = 0;
  RequestId last = 0;
  for (int step = 0; step < 5; ++step) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = exact_value<float>(comm.rank(), i + step);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = exact_value<double>(comm.rank(), 2 * i + step);
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = exact_value<float>(comm.rank(), 3 * i + step);
    const RequestId ra = comm.start_allreduce_sum(std::span<float>(a));
    const RequestId rb = comm.start_allreduce_sum(std::span<double>(b));
    const RequestId rc = comm.start_allreduce_sum(std::span<float>(c));
    wrong += ra == rb || rb == rc || ra == rc;  // distinct handles
    comm.wait(rc);
    comm.wait(ra);
    comm.wait(rb);
    last = rb;
    const auto sum = [&](std::size_t i) {
      double s = 0;
      for (int r = 0; r < comm.size(); ++r) s += exact_value<double>(r, i);
      return s;
    };
    for (std::size_t i = 0; i < a.size(); ++i) wrong += a[i] != static_cast<float>(sum(i + step));
    for (std::size_t i = 0; i < b.size(); ++i) wrong += b[i] != sum(2 * i + step);
    for (std::size_t i = 0; i < c.size(); ++i) wrong += c[i] != static_cast<float>(sum(3 * i + step));
  }
  checks.expect(wrong == 0, label + ": start_allreduce_sum / wait in another order", std::to_string(wrong) + " wrong");
  expect_throw<DistributedError>(checks, label + ": wait on a request waited for already", "unknown request",
                                 [&] { comm.wait(last); });
  expect_throw<DistributedError>(checks, label + ": wait on a request never started", "unknown request",
                                 [&] { comm.wait(last + 1000); });
  std::vector<double> one{1.0};
  comm.allreduce_sum(one);
  checks.expect(one[0] == comm.size(), label + ": usable after an unknown request");
}

/// broadcast from every root, for floats, doubles and bytes; a root out of range is a ValueError.
void check_broadcast(Checks& checks, MpiCommunicator& comm, const std::string& label, std::size_t length) {
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<float> f(length / 3 + 1);
    std::vector<double> d(length);
    std::vector<std::byte> bytes(17);
    std::vector<float> empty;
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = mixed_value<float>(comm.rank(), i);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = mixed_value<double>(comm.rank(), i);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(hash(comm.rank(), i));
    comm.broadcast(std::span<float>(f), root);
    comm.broadcast(std::span<double>(d), root);
    comm.broadcast(std::span<std::byte>(bytes), root);
    comm.broadcast(std::span<float>(empty), root);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < f.size(); ++i) wrong += f[i] != mixed_value<float>(root, i);
    for (std::size_t i = 0; i < d.size(); ++i) wrong += d[i] != mixed_value<double>(root, i);
    for (std::size_t i = 0; i < bytes.size(); ++i) wrong += bytes[i] != static_cast<std::byte>(hash(root, i));
    checks.expect(wrong == 0, label + ": broadcast from root " + std::to_string(root),
                  std::to_string(wrong) + " wrong");
  }
  std::vector<double> d(3);
  expect_throw<ValueError>(checks, label + ": broadcast root -1", "root", [&] { comm.broadcast(std::span(d), -1); });
  expect_throw<ValueError>(checks, label + ": broadcast root size()", "root",
                           [&] { comm.broadcast(std::span(d), comm.size()); });
}

/// allgather: rank order, empty contributions; wrong sizes and overlapping buffers are ValueErrors.
void check_allgather(Checks& checks, MpiCommunicator& comm, const std::string& label, std::size_t length) {
  const auto size = static_cast<std::size_t>(comm.size());
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, length}) {
    std::vector<std::byte> mine(n), all(n * size, std::byte{0xEE});
    for (std::size_t i = 0; i < n; ++i) mine[i] = static_cast<std::byte>(hash(comm.rank(), i));
    comm.allgather(mine, all);
    std::size_t wrong = 0;
    for (int r = 0; r < comm.size(); ++r)
      for (std::size_t i = 0; i < n; ++i)
        wrong += all[static_cast<std::size_t>(r) * n + i] != static_cast<std::byte>(hash(r, i));
    checks.expect(wrong == 0, label + ": allgather, n = " + std::to_string(n), std::to_string(wrong) + " wrong");
  }
  std::vector<std::byte> mine(4), all(4 * size + 1);
  expect_throw<ValueError>(checks, label + ": allgather with all.size() != size() * mine.size()", "all.size()",
                           [&] { comm.allgather(mine, all); });
  std::vector<std::byte> buf(4 * size);
  const std::span<const std::byte> own_slot =
      std::span<const std::byte>(buf).subspan(4 * static_cast<std::size_t>(comm.rank()), 4);
  expect_throw<ValueError>(checks, label + ": allgather with `mine` in `all` (its own slot)", "overlap",
                           [&] { comm.allgather(own_slot, buf); });
  expect_throw<ValueError>(checks, label + ": allgather with `mine` overlapping `all`", "overlap",
                           [&] { comm.allgather(std::span<const std::byte>(buf).subspan(1, 4), buf); });
}

/// barrier: no rank leaves before the last one (rank 0, which arrives 300 ms late) came.
void check_barrier(Checks& checks, MpiCommunicator& comm) {
  comm.barrier();
  const auto start = clock_type::now();
  if (comm.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  comm.barrier();
  const double waited = std::chrono::duration<double>(clock_type::now() - start).count();
  // 200 ms, not 300: the ranks leave the first barrier at slightly different times.
  if (comm.rank() != 0)
    checks.expect(waited >= 0.2, "barrier waits for the last rank", "left after " + std::to_string(waited) + " s");
}

/// The collectives in steady state (after a first round that sized the communicator's request
/// vectors) make no C++ heap call.
void check_no_heap_calls(Checks& checks, MpiCommunicator& comm) {
  std::vector<float> f(1000, 1.0f);
  std::vector<double> d(100, 1.0);
  std::vector<std::byte> mine(8), all(8 * static_cast<std::size_t>(comm.size()));
  const auto round = [&] {
    comm.allreduce_sum(f);
    const RequestId a = comm.start_allreduce_sum(std::span<float>(f));
    const RequestId b = comm.start_allreduce_sum(std::span<double>(d));
    comm.wait(a);
    comm.wait(b);
    comm.broadcast(std::span<double>(d), 0);
    comm.allgather(mine, all);
    comm.barrier();
  };
  round();
  heap_calls = 0;
  counting = true;
  for (int i = 0; i < 3; ++i) round();
  counting = false;
  checks.expect(heap_calls == 0, "no heap call per collective in steady state",
                std::to_string(heap_calls.load()) + " calls");
}

/// Ranks that pass different lengths: MPI reports a message that does not fit the receiving
/// rank's buffer (MPI_ERR_TRUNCATE), which the communicator throws as DistributedError, and the
/// ranks that see no error time out (their peer abandoned the collective). A shorter message
/// fits a longer buffer, so MPI can only catch the direction in which some rank receives more
/// than it expects: a broadcast whose root has the shorter buffer goes unnoticed and is not
/// checked. Each case gets a communicator of its own, given up on after it.
void check_mismatched_lengths(Checks& checks, MpiCommunicator& comm) {
  const MpiCommunicatorOptions options{.timeout_seconds = 2};
  const bool zero = comm.rank() == 0;
  const auto detected_somewhere = [&](const std::string& check, const std::string& op, auto&& call) {
    // Per rank: whether it threw, and whether MPI found the error (rather than this rank timing
    // out because a peer had abandoned the collective).
    std::byte outcome[2] = {std::byte{0}, std::byte{0}};
    try {
      MpiCommunicator mismatched(options);
      call(mismatched);
    } catch (const DistributedError& e) {
      const std::string what = e.what();
      outcome[0] = std::byte{1};
      outcome[1] = std::byte{what.find("no completion within") == std::string::npos};
      checks.expect(what.rfind(op + ": " + comm.describe() + ": ", 0) == 0, check + ": the message names op and rank",
                    what);
    }
    std::vector<std::byte> outcomes(2 * static_cast<std::size_t>(comm.size()));
    comm.allgather(outcome, outcomes);
    bool mpi_found_it = false;
    for (std::size_t r = 0; r < outcomes.size(); r += 2) mpi_found_it = mpi_found_it || outcomes[r + 1] != std::byte{0};
    checks.expect(mpi_found_it, check + ": some rank throws DistributedError with MPI's error");
  };
  detected_somewhere("allreduce_sum, rank 0 shorter", "allreduce_sum",
                     [&](MpiCommunicator& c) { c.allreduce_sum(long_lived<float>(zero ? 4 : 8)); });
  detected_somewhere("allreduce_sum, rank 0 longer", "allreduce_sum",
                     [&](MpiCommunicator& c) { c.allreduce_sum(long_lived<double>(zero ? 8 : 4)); });
  detected_somewhere("broadcast, root longer", "broadcast",
                     [&](MpiCommunicator& c) { c.broadcast(long_lived<float>(zero ? 8 : 4), 0); });
  detected_somewhere("allgather, rank 0 shorter", "allgather", [&](MpiCommunicator& c) {
    const std::size_t n = zero ? 4 : 8;
    c.allgather(long_lived<const std::byte>(n), long_lived<std::byte>(n * static_cast<std::size_t>(c.size())));
  });
}

/// Rank 1 skips a collective: every other rank throws DistributedError after the 1 s timeout (not
/// before, not much later), naming the operation and the rank, and refuses the next call. Rank 1
/// goes on to the next communicator, whose construction waits for the others.
void check_timeouts(Checks& checks, MpiCommunicator& world) {
  const MpiCommunicatorOptions options{.timeout_seconds = 1};
  const auto skipped_by_rank_1 = [&](const std::string& op, auto&& call) {
    MpiCommunicator comm(options);
    if (comm.rank() == 1) return;
    const auto start = clock_type::now();
    const std::string what = expect_throw<DistributedError>(
        checks, op + " skipped by rank 1: DistributedError",
        op + ": " + world.describe() + ": no completion within 1 s (a rank died or stopped calling collectives?)",
        [&] { call(comm); });
    const double waited = std::chrono::duration<double>(clock_type::now() - start).count();
    checks.expect(waited >= 1.0 && waited < 10.0, op + " skipped by rank 1: thrown after the 1 s timeout",
                  "after " + std::to_string(waited) + " s");
    expect_throw<DistributedError>(checks, op + " skipped by rank 1: the communicator refuses the next call",
                                   "unusable after an earlier failure", [&] { comm.barrier(); });
  };
  skipped_by_rank_1("barrier", [](MpiCommunicator& c) { c.barrier(); });
  skipped_by_rank_1("allreduce_sum", [](MpiCommunicator& c) { c.allreduce_sum(long_lived<double>(10)); });
  skipped_by_rank_1("wait", [](MpiCommunicator& c) { c.wait(c.start_allreduce_sum(long_lived<float>(10))); });
  skipped_by_rank_1("broadcast", [](MpiCommunicator& c) { c.broadcast(long_lived<std::byte>(10), 1); });
  skipped_by_rank_1("allgather", [](MpiCommunicator& c) {
    c.allgather(long_lived<const std::byte>(2), long_lived<std::byte>(2 * static_cast<std::size_t>(c.size())));
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::deque<std::vector<std::byte>> buffers_mpi_may_hold;  // outlives the session (see graveyard)
  graveyard = &buffers_mpi_may_hold;
  MpiSession session(&argc, &argv);
  Checks checks;
  try {
    // 30 s: the checks here take milliseconds; a bug that loses a collective fails in 30 s.
    MpiCommunicator comm(MpiCommunicatorOptions{.timeout_seconds = 30});
    checks.who = comm.describe();
    if (comm.size() < 2) {
      std::fprintf(stderr, "mpi_communicator_main: run it under mpiexec with at least 2 ranks\n");
      return 1;
    }
    // Split into calls of at most 3 elements: the splitting a buffer beyond INT_MAX elements gets.
    MpiCommunicator pieces(MpiCommunicatorOptions{.timeout_seconds = 30, .max_elements_per_call = 3});

    check_identity(checks, session, comm);
    check_options(checks);
    // The larger buffers: 1001 elements, 11 for the split communicator (whose every piece is a
    // collective of its own, all in flight together: thousands of them crawl on an oversubscribed
    // machine, and a real split has a handful).
    for (MpiCommunicator* c : {&comm, &pieces}) {
      const std::string label = c == &comm ? "whole" : "in pieces of 3";
      const std::size_t length = c == &comm ? 1001 : 11;
      check_allreduce_exact<float>(checks, *c, label + ", float", length);
      check_allreduce_exact<double>(checks, *c, label + ", double", length);
      check_allreduce_same_bits<float>(checks, *c, label + ", float", length);
      check_allreduce_same_bits<double>(checks, *c, label + ", double", length);
      check_start_wait(checks, *c, label, length);
      check_broadcast(checks, *c, label, length);
      check_allgather(checks, *c, label, length);
    }
    check_barrier(checks, comm);
    check_no_heap_calls(checks, comm);
    check_mismatched_lengths(checks, comm);
    check_timeouts(checks, comm);
  } catch (const std::exception& e) {
    abort_all(std::string("unexpected exception: ") + e.what());
  }
  std::printf("[%s] %d checks passed, %d failed\n", checks.who.c_str(), checks.passed, checks.failed);
  // No barrier: after the timeout checks the ranks leave through MPI_Finalize (the session's
  // destructor), which Open MPI completes although collectives were abandoned.
  return checks.failed == 0 ? 0 : 1;
}
