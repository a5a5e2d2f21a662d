// The machine's measured single-precision FMA peak, at 1 and 2 threads (or --threads N), as JSON:
//
//   {"what": "fma_peak", "threads": 1, "simd_bits": 512, "gflops": ..., "best_of": 5, ...}
//
// A register-only loop of fused multiply-adds on kAcc independent accumulators (enough to cover the
// FMA latency times the number of FMA ports), with xsimd's widest batch for the compile target
// (-march=native), and for comparison with 256-bit vectors when the target has AVX-512 (some cores
// lower their clock for 512-bit work, so GEMM kernels may see either figure). Each thread runs the
// same count; the figure is total FLOPs (2 per lane per FMA) over the wall time of the slowest
// thread, best of several repetitions (the machine is shared; the best run is the least disturbed).
//
//   fma_peak [--threads N] [--seconds S]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

constexpr int kAcc = 16;  // independent chains: >= latency (4) x FMA ports (2) on current x86 cores

template <class B>
float fma_loop(std::int64_t iters, float seed) {
  B acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = B(seed + 0.001f * static_cast<float>(k));
  const B a(0.999999f), b(1e-7f);
  for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < kAcc; ++k) acc[k] = xsimd::fma(acc[k], a, b);
  }
  B s = acc[0];
  for (int k = 1; k < kAcc; ++k) s += acc[k];
  return xsimd::hadd(s);
}

template <class B>
double flops_per_iter() {
  return 2.0 * kAcc * static_cast<double>(B::size);
}

// GFLOP/s of `threads` threads each running `iters` iterations; best of `reps`.
template <class B>
double measure(int threads, std::int64_t iters, int reps, float& sink) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    float local = 0;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) reduction(+ : local)
    local += fma_loop<B>(iters, 1.0f + static_cast<float>(omp_get_thread_num()));
#else
    for (int t = 0; t < threads; ++t) local += fma_loop<B>(iters, 1.0f + static_cast<float>(t));
#endif
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink += local;
    best = std::max(best, threads * static_cast<double>(iters) * flops_per_iter<B>() / s / 1e9);
  }
  return best;
}

template <class B>
void report(const char* isa, int threads, double seconds, float& sink) {
  // Calibrate the iteration count to about `seconds` per repetition on one thread.
  std::int64_t iters = 1 << 20;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink += fma_loop<B>(iters, 1.0f);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0.05) {
      iters = static_cast<std::int64_t>(static_cast<double>(iters) * seconds / s) + 1;
      break;
    }
    iters *= 4;
  }
  const int reps = 5;
  const double g = measure<B>(threads, iters, reps, sink);
  std::printf("{\"what\": \"fma_peak\", \"isa\": \"%s\", \"simd_bits\": %d, \"threads\": %d, \"gflops\": %.2f, "
              "\"best_of\": %d, \"accumulators\": %d}\n",
              isa, static_cast<int>(B::size * 32), threads, g, reps, kAcc);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  double seconds = 0.3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = {std::atoi(argv[++i])};
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: fma_peak [--threads N] [--seconds S]\n");
      return a == "--help" || a == "-h" ? 0 : 1;
    }
  }
  float sink = 0;
  using Native = xsimd::batch<float>;
  for (int t : threads) report<Native>(Native::arch_type::name(), t, seconds, sink);
#if XSIMD_WITH_AVX512F && XSIMD_WITH_AVX2 && XSIMD_WITH_FMA3_AVX2
  using B256 = xsimd::batch<float, xsimd::fma3<xsimd::avx2>>;
  for (int t : threads) report<B256>("fma3<avx2>", t, seconds, sink);
#endif
  if (sink == 12345.678f) std::printf("%f\n", static_cast<double>(sink));  // keep the loops alive
  return 0;
}
