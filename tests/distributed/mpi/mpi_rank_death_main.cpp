// A rank dies in the middle of training: rank 1 calls std::_Exit(3) after a few allreduces while
// the others go on reducing. The job must end with a nonzero status instead of hanging, in one of
// two ways: the launcher kills the survivors (Open MPI's mpiexec does when a process exits with a
// nonzero status), or, under a launcher that lets them run (Open MPI's --enable-recovery), their
// next allreduce times out with DistributedError and they end the job with abort_all.
// expect_job_failure.cmake runs it under mpiexec and checks the outcome and the time it took.
//
//     mpi_rank_death_main [timeout_seconds]     (default 5)
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "genmod/distributed/mpi_communicator.hpp"

int main(int argc, char** argv) {
  using namespace genmod::distributed;
  MpiSession session(&argc, &argv);
  const double timeout_seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  try {
    MpiCommunicator comm(MpiCommunicatorOptions{.timeout_seconds = timeout_seconds});
    if (comm.size() < 2) abort_all("mpi_rank_death_main needs at least 2 ranks");
    std::vector<float> gradient(4096);
    for (int step = 0; step < 100; ++step) {
      if (step == 3 && comm.rank() == 1) {
        std::fprintf(stderr, "[%s] dies at step %d (std::_Exit(3))\n", comm.describe().c_str(), step);
        std::fflush(stderr);
        std::_Exit(3);
      }
      for (std::size_t i = 0; i < gradient.size(); ++i) gradient[i] = static_cast<float>(comm.rank() + i % 7);
      comm.allreduce_sum(gradient);
      // The steps before the death must still reduce correctly: sum over r of (r + i % 7).
      const int n = comm.size();
      for (std::size_t i = 0; i < gradient.size(); ++i)
        if (gradient[i] != static_cast<float>(n * (n - 1) / 2 + n * static_cast<int>(i % 7)))
          abort_all("wrong sum at step " + std::to_string(step), 4);
    }
    std::printf("[%s] finished all steps, although rank 1 died\n", comm.describe().c_str());
  } catch (const DistributedError& e) {
    abort_all(e.what(), 2);
  }
  return 0;
}
