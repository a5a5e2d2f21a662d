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

template <class T>
void check_vae(distributed::Communicator& comm) {
  set_num_threads(1);
  const std::int64_t b = 4, g = b * comm.size();
  const data::Dataset data = test::make_data(4 * g + comm.size() + 1);  // 4 full batches and an uneven tail
  std::vector<Tensor<T>> single;
  distributed::run_ranks(1, [&](distributed::Communicator& one) { single = test::train_vae<T>(one, data, g, 5); });
  const std::vector<Tensor<T>> multi = test::train_vae<T>(comm, data, b, 5);
  const double d = test::max_relative_difference(multi, single);
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-5;
  expect(d <= tolerance,
         std::string("mlp VAE, ") + (std::is_same_v<T, double> ? "double" : "float") + ": " +
             std::to_string(comm.size()) + " x " + std::to_string(b) + " against 1 x " + std::to_string(g) +
             ", relative difference " + scientific(d),
         comm.rank());
}

template <class T>
void check_conv(distributed::Communicator& comm) {
  set_num_threads(1);
  const std::int64_t b = 3, g = b * comm.size();
  Generator gen(12);
  const data::Dataset data(rand<float>({5 * g, 1, 6, 6}, gen));
  std::vector<Tensor<T>> single;
  distributed::run_ranks(1, [&](distributed::Communicator& one) { single = test::train_conv<T>(one, data, g); });
  const std::vector<Tensor<T>> multi = test::train_conv<T>(comm, data, b);
  const double d = test::max_relative_difference(multi, single);
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-5;
  expect(d <= tolerance,
         std::string("conv net with SyncBatchNorm, ") + (std::is_same_v<T, double> ? "double" : "float") + ": " +
             std::to_string(comm.size()) + " x " + std::to_string(b) + " against 1 x " + std::to_string(g) +
             ", relative difference " + scientific(d),
         comm.rank());
}

}  // namespace

int main(int argc, char** argv) {
  distributed::MpiSession session(&argc, &argv);
  distributed::MpiCommunicator comm({.timeout_seconds = 60});
  try {
    check_vae<double>(comm);
    check_vae<float>(comm);
    check_conv<double>(comm);
    check_conv<float>(comm);
  } catch (const std::exception& e) {
    distributed::abort_all("rank " + std::to_string(comm.rank()) + ": " + e.what());
  }
  return failures == 0 ? 0 : 1;
}
