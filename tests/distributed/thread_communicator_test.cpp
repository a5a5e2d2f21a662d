#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "genmod/distributed/thread_communicator.hpp"

namespace distributed_thread_communicator_test {

using namespace genmod;
using namespace genmod::distributed;

// Catch2's assertions are not thread-safe, so rank bodies only record what they saw, each in its
// own slot of a vector (std::vector<int>, not std::vector<bool>, whose bits share bytes), and the
// test checks the records after run_ranks has joined the threads.

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Rank r's value of element i: huge values of alternating sign (2^24 for float, 2^53 for double,
/// where the spacing of representable numbers exceeds 1) among small ones, so that rounding makes
/// the sum depend on the order of the ranks.
template <class T>
T contribution(int rank, std::size_t i) {
  const T big = std::ldexp(T(1), std::numeric_limits<T>::digits) * T(1 + i % 3);
  switch (rank % 4) {
    case 0:
      return big;
    case 1:
      return T(1) + T(0.5) * T(i % 4);
    case 2:
      return -big;
    default:
      return T(0.75) + T(0.25) * T(i % 5);
  }
}

/// contribution summed over ranks 0, 1, ..., n - 1 in that order (or the reverse), in T.
template <class T>
std::vector<T> ordered_sum(int n, std::size_t len, std::size_t shift, bool reverse = false) {
  std::vector<T> sum(len);
  for (std::size_t i = 0; i < len; ++i) {
    T s = contribution<T>(reverse ? n - 1 : 0, i + shift);
    for (int k = 1; k < n; ++k) s += contribution<T>(reverse ? n - 1 - k : k, i + shift);
    sum[i] = s;
  }
  return sum;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

/// `repeats` allreduces of `len` elements on n ranks: every rank must get the rank-order sum, bit
/// for bit, every time.
template <class T>
void check_allreduce(int n, std::size_t len, int repeats) {
  CAPTURE(n, len, sizeof(T));
  std::vector<int> wrong_sums(static_cast<std::size_t>(n), 0);
  std::vector<std::vector<T>> last(static_cast<std::size_t>(n));
  run_ranks(n, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    std::vector<T> buf(len);
    for (int rep = 0; rep < repeats; ++rep) {
      const auto shift = static_cast<std::size_t>(rep);
      for (std::size_t i = 0; i < len; ++i) buf[i] = contribution<T>(comm.rank(), i + shift);
      comm.allreduce_sum(std::span<T>(buf));
      if (!same_bits(buf, ordered_sum<T>(n, len, shift))) ++wrong_sums[r];
    }
    last[r] = buf;
  });
  for (int r = 0; r < n; ++r) {
    CAPTURE(r);
    CHECK(wrong_sums[static_cast<std::size_t>(r)] == 0);
    CHECK(same_bits(last[static_cast<std::size_t>(r)], last[0]));
  }
}

/// An exception that is not a genmod::Error (nor a std::runtime_error, as DistributedError is), so
/// that a test can tell it from the DistributedErrors it causes in the other ranks.
struct RankGaveUp : std::exception {
  const char* what() const noexcept override { return "rank 1 gave up"; }
};

}  // namespace

TEST_CASE("The test values make the order of the summands matter", "[distributed]") {
  // Otherwise the allreduce tests below could not tell a rank-order sum from another order.
  for (const int n : {3, 4}) {
    CAPTURE(n);
    CHECK_FALSE(same_bits(ordered_sum<float>(n, 12, 0), ordered_sum<float>(n, 12, 0, true)));
    CHECK_FALSE(same_bits(ordered_sum<double>(n, 12, 0), ordered_sum<double>(n, 12, 0, true)));
  }
}

TEST_CASE("allreduce_sum gives every rank the rank-order sum, bit for bit", "[distributed]") {
  for (const int n : {1, 2, 3, 4}) {
    for (const std::size_t len : {0, 1, 3, 37}) {
      check_allreduce<float>(n, len, 3);
      check_allreduce<double>(n, len, 3);
    }
    // Many collectives in a row exercise the reuse of the slots and of the barrier.
    check_allreduce<float>(n, 101, 50);
  }
}

TEST_CASE("start_allreduce_sum and wait complete in any order, and wait accepts a request once", "[distributed]") {
  const std::size_t len = 9;
  for (const int n : {1, 2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    std::vector<int> sums_right(un, 0), second_wait_threw(un, 0), unknown_wait_threw(un, 0);
    std::vector<std::string> unknown_message(un);
    run_ranks(n, [&](Communicator& comm) {
      const auto r = static_cast<std::size_t>(comm.rank());
      std::vector<float> f(len);
      std::vector<double> d(len);
      for (std::size_t i = 0; i < len; ++i) {
        f[i] = contribution<float>(comm.rank(), i);
        d[i] = contribution<double>(comm.rank(), i + 1);
      }
      const RequestId a = comm.start_allreduce_sum(std::span<float>(f));
      const RequestId b = comm.start_allreduce_sum(std::span<double>(d));
      comm.wait(b);
      comm.wait(a);
      sums_right[r] = same_bits(f, ordered_sum<float>(n, len, 0)) && same_bits(d, ordered_sum<double>(n, len, 1));
      try {
        comm.wait(a);
      } catch (const DistributedError&) {
        second_wait_threw[r] = 1;
      }
      try {
        comm.wait(a + b + 1000);
      } catch (const DistributedError& e) {
        unknown_wait_threw[r] = 1;
        unknown_message[r] = e.what();
      }
    });
    for (std::size_t r = 0; r < un; ++r) {
      CAPTURE(r);
      CHECK(sums_right[r] == 1);
      CHECK(second_wait_threw[r] == 1);
      CHECK(unknown_wait_threw[r] == 1);
      CHECK_THAT(unknown_message[r], Catch::StartsWith("wait: thread rank " + std::to_string(r) + " of " +
                                                       std::to_string(n) + " has no pending request"));
    }
  }
}

TEST_CASE("broadcast copies the root's floats, doubles and bytes to every rank, from every root", "[distributed]") {
  const std::size_t len = 6;
  for (const int n : {1, 2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    std::vector<int> wrong(un, 0);
    run_ranks(n, [&](Communicator& comm) {
      const int r = comm.rank();
      for (int root = 0; root < n; ++root) {
        std::vector<float> f(len);
        std::vector<double> d(len);
        std::vector<std::byte> b(len);
        for (std::size_t i = 0; i < len; ++i) {
          f[i] = contribution<float>(r, i) + static_cast<float>(r);
          d[i] = contribution<double>(r, i) - r;
          b[i] = static_cast<std::byte>(16 * r + static_cast<int>(i));
        }
        comm.broadcast(std::span<float>(f), root);
        comm.broadcast(std::span<double>(d), root);
        comm.broadcast(std::span<std::byte>(b), root);
        for (std::size_t i = 0; i < len; ++i) {
          const bool ok = f[i] == contribution<float>(root, i) + static_cast<float>(root) &&
                          d[i] == contribution<double>(root, i) - root &&
                          b[i] == static_cast<std::byte>(16 * root + static_cast<int>(i));
          if (!ok) ++wrong[static_cast<std::size_t>(r)];
        }
      }
      std::vector<double> empty;
      comm.broadcast(std::span<double>(empty), n - 1);  // zero elements: still a collective, no copy
    });
    for (std::size_t r = 0; r < un; ++r) {
      CAPTURE(r);
      CHECK(wrong[r] == 0);
    }
  }
}

TEST_CASE("allgather concatenates every rank's bytes in rank order", "[distributed]") {
  const std::size_t len = 5;
  for (const int n : {1, 2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    std::vector<std::vector<std::byte>> gathered(un);
    std::vector<int> empty_ok(un, 0);
    run_ranks(n, [&](Communicator& comm) {
      const auto r = static_cast<std::size_t>(comm.rank());
      std::vector<std::byte> mine(len);
      for (std::size_t k = 0; k < len; ++k) mine[k] = static_cast<std::byte>(16 * r + k);
      std::vector<std::byte> all(un * len);
      comm.allgather(mine, all);
      gathered[r] = all;
      std::vector<std::byte> none;
      comm.allgather(std::span<const std::byte>(), std::span<std::byte>(none));
      empty_ok[r] = 1;
    });
    for (std::size_t r = 0; r < un; ++r) {
      CAPTURE(r);
      REQUIRE(gathered[r].size() == un * len);
      for (std::size_t q = 0; q < un; ++q)
        for (std::size_t k = 0; k < len; ++k) CHECK(gathered[r][q * len + k] == static_cast<std::byte>(16 * q + k));
      CHECK(empty_ok[r] == 1);
    }
  }
}

TEST_CASE("barrier returns only once every rank has called it; ranks describe themselves", "[distributed]") {
  const int rounds = 20;
  for (const int n : {1, 2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    // round_of[r] is written by rank r only; between two barriers every rank reads all of them.
    std::vector<int> round_of(un, 0), missed(un, 0), size_seen(un, 0);
    std::vector<std::string> description(un);
    run_ranks(n, [&](Communicator& comm) {
      const auto r = static_cast<std::size_t>(comm.rank());
      for (int round = 1; round <= rounds; ++round) {
        round_of[r] = round;
        comm.barrier();
        for (std::size_t q = 0; q < un; ++q)
          if (round_of[q] != round) ++missed[r];
        comm.barrier();
      }
      size_seen[r] = comm.size();
      description[r] = comm.describe();
    });
    for (std::size_t r = 0; r < un; ++r) {
      CAPTURE(r);
      CHECK(missed[r] == 0);
      CHECK(size_seen[r] == n);
      CHECK(description[r] == "thread rank " + std::to_string(r) + " of " + std::to_string(n));
    }
  }
}

TEST_CASE("Ranks that disagree all get a DistributedError naming both ranks, and the group stays failed",
          "[distributed]") {
  for (const int n : {2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    const std::string last = std::to_string(n - 1);
    std::vector<std::string> length_error(un), later_error(un);
    run_ranks(n, [&](Communicator& comm) {
      const auto r = static_cast<std::size_t>(comm.rank());
      std::vector<float> buf(comm.rank() == n - 1 ? 5 : 4, 1.f);
      try {
        comm.allreduce_sum(std::span<float>(buf));
      } catch (const DistributedError& e) {
        length_error[r] = e.what();
      }
      try {
        comm.barrier();
      } catch (const DistributedError& e) {
        later_error[r] = e.what();
      }
    });
    for (std::size_t r = 0; r < un; ++r) {
      CAPTURE(r);
      CHECK_THAT(length_error[r],
                 Catch::StartsWith("allreduce_sum: ") &&
                     Catch::Contains("rank 0 passed 4 elements but rank " + last + " passed 5 elements"));
      CHECK_THAT(later_error[r], Catch::StartsWith("barrier: rank " + std::to_string(r)) &&
                                     Catch::Contains("the thread group failed") &&
                                     Catch::Contains("passed 5 elements"));
    }
  }

  // Different collectives, and different roots.
  std::vector<std::string> kind_error(2), root_error(2);
  run_ranks(2, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    std::vector<double> buf(3, 1.0);
    try {
      if (r == 0)
        comm.broadcast(std::span<double>(buf), 0);
      else
        comm.allreduce_sum(std::span<double>(buf));
    } catch (const DistributedError& e) {
      kind_error[r] = e.what();
    }
  });
  run_ranks(2, [&](Communicator& comm) {
    const auto r = static_cast<std::size_t>(comm.rank());
    std::vector<std::byte> buf(3);
    try {
      comm.broadcast(std::span<std::byte>(buf), comm.rank());
    } catch (const DistributedError& e) {
      root_error[r] = e.what();
    }
  });
  for (std::size_t r = 0; r < 2; ++r) {
    CAPTURE(r);
    CHECK_THAT(kind_error[r], Catch::Contains("rank 0 called broadcast(double), rank 1 called allreduce_sum(double)"));
    CHECK_THAT(root_error[r], Catch::Contains("rank 0 passed root 0 but rank 1 passed root 1"));
  }
}

TEST_CASE("A rank that throws stops the others' collectives, and run_ranks rethrows its exception", "[distributed]") {
  for (const int n : {2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    std::vector<std::string> seen(un);
    const ThreadGroupOptions patient{20.0};
    const auto start = Clock::now();
    // RankGaveUp, not one of the DistributedErrors that follow it in the other ranks.
    CHECK_THROWS_AS(run_ranks(
                        n,
                        [&](Communicator& comm) {
                          if (comm.rank() == 1) {
                            // Most likely the others are waiting in allreduce_sum by now.
                            std::this_thread::sleep_for(std::chrono::milliseconds(30));
                            throw RankGaveUp{};
                          }
                          std::vector<double> buf(3, 1.0);
                          try {
                            comm.allreduce_sum(std::span<double>(buf));
                          } catch (const DistributedError& e) {
                            seen[static_cast<std::size_t>(comm.rank())] = e.what();
                            throw;
                          }
                        },
                        patient),
                    RankGaveUp);
    CHECK(seconds_since(start) < 10.0);  // stopped by the failure, long before the 20 s timeout
    for (std::size_t r = 0; r < un; ++r) {
      if (r == 1) continue;
      CAPTURE(r);
      CHECK_THAT(seen[r], Catch::StartsWith("allreduce_sum: rank " + std::to_string(r)) &&
                              Catch::Contains("thread rank 1 of " + std::to_string(n) + " threw: rank 1 gave up"));
    }
  }
}

TEST_CASE("A rank that returns without calling the collective stops the others at once", "[distributed]") {
  for (const int n : {2, 3, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    std::vector<std::string> seen(un);
    const auto start = Clock::now();
    CHECK_THROWS_AS(run_ranks(
                        n,
                        [&](Communicator& comm) {
                          if (comm.rank() == 1) return;  // forgets the collective
                          try {
                            comm.barrier();
                          } catch (const DistributedError& e) {
                            seen[static_cast<std::size_t>(comm.rank())] = e.what();
                            throw;
                          }
                        },
                        ThreadGroupOptions{20.0}),
                    DistributedError);
    CHECK(seconds_since(start) < 10.0);  // run_ranks marked rank 1 finished: no need to wait 20 s
    for (std::size_t r = 0; r < un; ++r) {
      if (r == 1) continue;
      CAPTURE(r);
      CHECK_THAT(seen[r], Catch::StartsWith("barrier: rank " + std::to_string(r)) &&
                              Catch::Contains("waits for rank 1, which has finished"));
    }
  }
}

TEST_CASE("Ranks waiting for a rank that never comes time out with a DistributedError", "[distributed]") {
  // Threads of our own rather than run_ranks: the missing rank is never marked finished, as when a
  // thread hangs elsewhere, so only the timeout can end the wait.
  const double timeout = 0.5;
  for (const int n : {2, 4}) {
    CAPTURE(n);
    const auto un = static_cast<std::size_t>(n);
    ThreadGroup group(n, {timeout});
    std::vector<std::string> seen(un);
    std::vector<double> waited(un, 0.0);
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int r = 0; r + 1 < n; ++r) {  // rank n - 1 never calls
      threads.emplace_back([&, r] {
        const auto ur = static_cast<std::size_t>(r);
        std::vector<float> buf(4, 1.f);
        try {
          group.communicator(r).allreduce_sum(std::span<float>(buf));
        } catch (const DistributedError& e) {
          seen[ur] = e.what();
        }
        waited[ur] = seconds_since(start);
      });
    }
    for (std::thread& t : threads) t.join();
    int timed_out = 0;
    for (std::size_t r = 0; r + 1 < un; ++r) {
      CAPTURE(r);
      CHECK(waited[r] >= timeout);
      CHECK(waited[r] < timeout + 4.0);
      const std::string own = "allreduce_sum: rank " + std::to_string(r) + " of " + std::to_string(n) +
                              " waited 0.5 s for the other ranks (a rank died or stopped calling collectives?)";
      if (seen[r] == own) {
        ++timed_out;
      } else {  // stopped by the rank that timed out first
        CHECK_THAT(seen[r], Catch::Contains("the thread group failed: allreduce_sum: rank") &&
                                Catch::Contains("waited 0.5 s for the other ranks"));
      }
    }
    CHECK(timed_out >= 1);
    // The late rank finds the group failed and throws at once instead of waiting.
    const auto late = Clock::now();
    CHECK_THROWS_WITH(
        group.communicator(n - 1).barrier(),
        Catch::StartsWith("barrier: rank " + std::to_string(n - 1)) && Catch::Contains("the thread group failed"));
    CHECK(seconds_since(late) < timeout);
  }
}

TEST_CASE("ThreadGroup::fail stops a rank waiting in a collective and every later one", "[distributed]") {
  ThreadGroup group(2, {20.0});
  std::string seen;
  std::thread rank0([&] {
    try {
      group.communicator(0).barrier();
    } catch (const DistributedError& e) {
      seen = e.what();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  group.fail("the operator pulled the plug");
  rank0.join();
  CHECK_THAT(seen, Catch::StartsWith("barrier: rank 0 of 2") && Catch::EndsWith("the operator pulled the plug"));
  std::vector<double> buf(2, 1.0);
  CHECK_THROWS_WITH(group.communicator(1).broadcast(std::span<double>(buf), 0),
                    Catch::StartsWith("broadcast: rank 1 of 2") && Catch::EndsWith("the operator pulled the plug"));
  group.fail("a second reason");  // the first reason is kept
  CHECK_THROWS_WITH(group.communicator(0).barrier(), Catch::EndsWith("the operator pulled the plug"));
}

TEST_CASE("Bad arguments throw ValueError", "[distributed]") {
  CHECK_THROWS_WITH(ThreadGroup(0), "ThreadGroup: expected size >= 1, got 0");
  CHECK_THROWS_AS(ThreadGroup(-3), ValueError);
  CHECK_THROWS_WITH(ThreadGroup(2, {0.0}), "ThreadGroup: expected timeout_seconds > 0, got 0");
  CHECK_THROWS_AS(ThreadGroup(2, {-1.0}), ValueError);
  CHECK_THROWS_AS(ThreadGroup(2, {std::nan("")}), ValueError);
  int calls = 0;
  CHECK_THROWS_AS(run_ranks(0, [&](Communicator&) { ++calls; }), ValueError);
  CHECK(calls == 0);

  ThreadGroup pair(2);
  CHECK_THROWS_WITH(pair.communicator(2), "ThreadGroup::communicator: expected rank in [0, 1], got 2");
  CHECK_THROWS_AS(pair.communicator(-1), ValueError);
  CHECK_THROWS_AS(pair.mark_finished(2), ValueError);

  // One rank needs no threads: its argument errors come before anything is posted, so the group
  // still works afterwards.
  ThreadGroup single(1);
  Communicator& comm = single.communicator(0);
  std::vector<float> f(3, 1.f);
  CHECK_THROWS_WITH(comm.broadcast(std::span<float>(f), 1), "broadcast: expected root in [0, 0], got 1");
  CHECK_THROWS_AS(comm.broadcast(std::span<float>(f), -1), ValueError);
  std::vector<std::byte> mine(4), all(5);
  CHECK_THROWS_WITH(comm.allgather(mine, all),
                    "allgather: expected all.size() == size() * mine.size() = 1 * 4 = 4, got 5");
  std::vector<std::byte> both(4);
  CHECK_THROWS_WITH(comm.allgather(std::span<const std::byte>(both), std::span<std::byte>(both)),
                    "allgather: expected mine and all not to overlap, got overlapping buffers");
  comm.broadcast(std::span<float>(f), 0);
  comm.allgather(mine, std::span<std::byte>(all).first(4));
  CHECK(f == std::vector<float>(3, 1.f));

  // In a group, the rank with the bad argument throws ValueError (which run_ranks rethrows, being
  // first) and its peers are stopped by the failure.
  std::vector<std::string> peer_error(3);
  CHECK_THROWS_AS(run_ranks(
                      3,
                      [&](Communicator& c) {
                        std::vector<double> d(2, 1.0);
                        try {
                          c.broadcast(std::span<double>(d), c.rank() == 2 ? 3 : 0);
                        } catch (const DistributedError& e) {
                          peer_error[static_cast<std::size_t>(c.rank())] = e.what();
                        }
                      },
                      ThreadGroupOptions{20.0}),
                  ValueError);
  CHECK_THAT(peer_error[0], Catch::Contains("thread rank 2 of 3 threw: broadcast: expected root in [0, 2], got 3"));
  CHECK_THAT(peer_error[1], Catch::Contains("thread rank 2 of 3 threw: broadcast: expected root in [0, 2], got 3"));
}

TEST_CASE("An infinite timeout means waiting as long as it takes", "[distributed]") {
  std::vector<int> done(2, 0);
  run_ranks(
      2,
      [&](Communicator& comm) {
        comm.barrier();
        done[static_cast<std::size_t>(comm.rank())] = 1;
      },
      ThreadGroupOptions{std::numeric_limits<double>::infinity()});
  CHECK(done == std::vector<int>{1, 1});
}

}  // namespace distributed_thread_communicator_test
