// The equivalence proof under MPI (run by CTest as `mpiexec -n 2` and `-n 3`): N ranks with batch B
// train the mlp VAE (epsilon per sample, by global sample index) and a conv net with SyncBatchNorm
// for 5 Adam steps, and every rank compares its parameters with what one process computes with
// batch N B (each rank computes that reference itself, on a one-rank thread group): relative
// difference <= 1e-10 in double, <= 1e-5 in float. Exit status 0 when every check holds.
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "genmod/distributed/mpi_communicator.hpp"
#include "genmod/distributed/thread_communicator.hpp"
#include "support/data_parallel_workloads.hpp"

using namespace genmod;

namespace {

int failures = 0;

std::string scientific(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

void expect(bool ok, const std::string& what, int rank) {
  std::printf("rank %d: %s: %s\n", rank, ok ? "ok" : "FAILED", what.c_str());
  if (!ok) ++failures;
}

// Trains with `train(comm, data, batch)` on N ranks x B and on one process x N B; every rank
// compares the two parameter lists.
template <class T, class Train>
void check(distributed::Communicator& comm, const std::string& what, const data::Dataset& data, std::int64_t b,
           Train train) {
  set_num_threads(1);
  const std::int64_t g = b * comm.size();
  std::vector<Tensor<T>> single;
  distributed::run_ranks(1, [&](distributed::Communicator& one) { single = train(one, data, g); });
  const std::vector<Tensor<T>> multi = train(comm, data, b);
  const double d = test::max_relative_difference(multi, single);
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-5;
  expect(d <= tolerance,
         what + ", " + (std::is_same_v<T, double> ? "double" : "float") + ": " + std::to_string(comm.size()) + " x " +
             std::to_string(b) + " against 1 x " + std::to_string(g) + ", relative difference " + scientific(d),
         comm.rank());
}

template <class T>
void check_both(distributed::Communicator& comm) {
  const std::int64_t b = 4, n = comm.size();
  check<T>(comm, "mlp VAE", test::make_data(4 * b * n + n + 1), b,  // 4 full batches and an uneven tail
           [](distributed::Communicator& c, const data::Dataset& d, std::int64_t batch) {
             return test::train_vae<T>(c, d, batch, 5);
           });
  Generator gen(12);
  check<T>(comm, "conv net with SyncBatchNorm", data::Dataset(rand<float>({5 * 3 * n, 1, 6, 6}, gen)), 3,
           [](distributed::Communicator& c, const data::Dataset& d, std::int64_t batch) {
             return test::train_conv<T>(c, d, batch);
           });
}

}  // namespace

int main(int argc, char** argv) {
  distributed::MpiSession session(&argc, &argv);
  distributed::MpiCommunicator comm({.timeout_seconds = 60});
  try {
    check_both<double>(comm);
    check_both<float>(comm);
  } catch (const std::exception& e) {
    distributed::abort_all("rank " + std::to_string(comm.rank()) + ": " + e.what());
  }
  return failures == 0 ? 0 : 1;
}
