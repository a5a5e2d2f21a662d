#pragma once
/// \file parallel.hpp
/// Thread control and a parallel-for that stays serial for small work (a parallel region costs
/// microseconds, more than a 100-element loop). Built on OpenMP when available, serial otherwise.

#include <algorithm>
#include <cstdint>

#include "genmod/config.hpp"

#if GENMOD_HAS_OPENMP
#include <omp.h>
#endif

namespace genmod {

/// Number of threads genmod's kernels use (OpenMP's setting, which OMP_NUM_THREADS initialises).
inline int get_num_threads() noexcept {
#if GENMOD_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the number of threads for genmod's kernels (and for OpenMP in this process). n >= 1.
inline void set_num_threads(int n) {
  if (n < 1) throw ValueError("set_num_threads: expected at least 1 thread, got " + std::to_string(n));
#if GENMOD_HAS_OPENMP
  omp_set_num_threads(n);
#endif
}

/// True inside a parallel region (nested kernels then run serially).
inline bool in_parallel_region() noexcept {
#if GENMOD_HAS_OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

/// Elements of elementwise work below which a kernel stays on one thread.
inline constexpr std::int64_t kParallelGrain = 1 << 15;

/// Calls f(begin, end) on disjoint chunks covering [0, n). Runs on one thread when the total work
/// (n * cost_per_item) is below kParallelGrain, when only one thread is allowed, or when already
/// inside a parallel region. f must not throw.
template <class F>
void parallel_for(std::int64_t n, std::int64_t cost_per_item, F&& f) {
  if (n <= 0) return;
#if GENMOD_HAS_OPENMP
  const int threads = get_num_threads();
  if (threads > 1 && n > 1 && n * cost_per_item >= kParallelGrain && !in_parallel_region()) {
    const std::int64_t chunks = std::min<std::int64_t>(threads, n);
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::int64_t b = n * c / chunks;
      const std::int64_t e = n * (c + 1) / chunks;
      f(b, e);
    }
    return;
  }
#endif
  (void)cost_per_item;
  f(std::int64_t{0}, n);
}

}  // namespace genmod
