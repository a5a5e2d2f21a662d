// Tape overhead per node, and matrix products through the tape against raw Eigen.
//
//   build/benchmarks/bench_tape --benchmark_counters_tabular=true
//
// Counters: ns_per_node (recording + backward cost of one node on a 1-element tensor, where the
// arithmetic itself is negligible) and GFLOP/s for the products.
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "genmod/autodiff/autodiff.hpp"

using namespace genmod;

namespace {

constexpr int kChain = 1000;

// Forward only, recording off: the cost of the ops without the tape.
void BM_ChainNoTape(benchmark::State& state) {
  Var<float> x(ones<float>({1}));
  for (auto _ : state) {
    Var<float> y = x;
    for (int i = 0; i < kChain; ++i) y = y * 1.0001f;
    benchmark::DoNotOptimize(y.value().data());
  }
  state.counters["ns_per_op"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kChain, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Forward with recording, then one backward sweep: the full per-node cost of autodiff.
void BM_ChainTapeForwardBackward(benchmark::State& state) {
  Tensor<float> x0 = ones<float>({1});
  for (auto _ : state) {
    Tape<float> tape;
    Var<float> x = tape.leaf(x0);
    Var<float> y = x;
    for (int i = 0; i < kChain; ++i) y = y * 1.0001f;
    tape.backward(sum(y));
    benchmark::DoNotOptimize(tape.gradient(x).data());
  }
  state.counters["ns_per_node"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kChain, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The linear layer's products at the reference MLP's first layer: X[128x784] W[784x512].
constexpr std::int64_t M = 128, K = 784, N = 512;

void set_flops(benchmark::State& state, double per_iter) {
  state.counters["GFLOP/s"] = benchmark::Counter(per_iter * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void BM_EigenForward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat a = Mat::Random(M, K), b = Mat::Random(K, N), c(M, N);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 2.0 * M * N * K);
}

void BM_GenmodForward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  Generator g(0);
  Var<float> a(randn<float>({M, K}, g)), b(randn<float>({K, N}, g));
  for (auto _ : state) {
    Var<float> c = matmul(a, b);
    benchmark::DoNotOptimize(c.value().data());
  }
  set_flops(state, 2.0 * M * N * K);
}

// Forward + backward (dA = G B^T, dB = A^T G): three products.
void BM_EigenForwardBackward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  Eigen::setNbThreads(static_cast<int>(state.range(0)));
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat a = Mat::Random(M, K), b = Mat::Random(K, N), c(M, N), da(M, K), db(K, N);
  Mat gc = Mat::Ones(M, N);
  for (auto _ : state) {
    c.noalias() = a * b;
    da.noalias() = gc * b.transpose();
    db.noalias() = a.transpose() * gc;
    benchmark::DoNotOptimize(db.data());
  }
  set_flops(state, 3 * 2.0 * M * N * K);
}

void BM_GenmodForwardBackward(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  Generator g(0);
  Tensor<float> a0 = randn<float>({M, K}, g);
  Parameter<float> w(randn<float>({K, N}, g));
  for (auto _ : state) {
    Tape<float> tape;
    Var<float> a = tape.leaf(a0);
    Var<float> c = matmul(a, w.var());
    tape.backward(c, ones<float>({M, N}));
    benchmark::DoNotOptimize(w.grad().data());
  }
  set_flops(state, 3 * 2.0 * M * N * K);
}

}  // namespace

BENCHMARK(BM_ChainNoTape);
BENCHMARK(BM_ChainTapeForwardBackward);
BENCHMARK(BM_EigenForward)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_GenmodForward)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_EigenForwardBackward)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_GenmodForwardBackward)->Arg(1)->Arg(2)->UseRealTime();

BENCHMARK_MAIN();
