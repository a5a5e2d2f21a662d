// Forward and backward (input + weight gradients) of every convolution and large linear shape of
// the reference workloads (../shared/ref/bench_ops.py times the same shapes in PyTorch).
//
//   build/benchmarks/bench_ops --benchmark_counters_tabular=true [--benchmark_filter=conv_vae]
//
// Arguments: threads. Counters: GFLOP/s with FLOPs = 2 * MACs forward and 4 * MACs backward, as
// the PyTorch script counts them (masked convolutions: the dense MACs, so the figure compares
// directly with PyTorch's dense kernel; the kernel itself runs only the kept taps).
#include <benchmark/benchmark.h>

#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/nn/nn.hpp"
#include "reference_shapes.hpp"

using namespace genmod;

namespace {

using bench::Kind;
using bench::OpShape;

nn::AnyModule<float> make_layer(const OpShape& s) {
  switch (s.kind) {
    case Kind::conv:
      return nn::Conv2d<float>(s.cin, s.cout, s.k, {.stride = s.stride, .padding = s.pad});
    case Kind::convT:
      return nn::ConvTranspose2d<float>(s.cin, s.cout, s.k, {.stride = s.stride, .padding = s.pad});
    case Kind::masked_a:
      return nn::MaskedConv2d<float>(nn::MaskType::A, s.cin, s.cout, s.k, {.padding = s.pad});
    case Kind::masked_b:
      return nn::MaskedConv2d<float>(nn::MaskType::B, s.cin, s.cout, s.k, {.padding = s.pad});
    case Kind::linear:
      break;
  }
  return nn::Linear<float>(s.cin, s.cout);
}

Shape input_shape(const OpShape& s) {
  return s.kind == Kind::linear ? Shape{s.batch, s.cin} : Shape{s.batch, s.cin, s.h, s.h};
}

double macs(const OpShape& s, const Shape& out) {
  if (s.kind == Kind::linear) return static_cast<double>(s.batch * s.cin * s.cout);
  if (s.kind == Kind::convT) return static_cast<double>(s.batch * s.cin * s.h * s.h * s.cout * s.k * s.k);
  return static_cast<double>(out.numel()) * static_cast<double>(s.cin * s.k * s.k);
}

void BM_Forward(benchmark::State& state, OpShape s) {
  set_num_threads(static_cast<int>(state.range(0)));
  manual_seed(0);
  auto layer = make_layer(s);
  Generator g(1);
  Var<float> x(randn<float>(input_shape(s), g));
  Shape out;
  for (auto _ : state) {
    NoGradGuard no_grad;
    Var<float> y = layer(x);
    out = y.shape();
    benchmark::DoNotOptimize(y.value().data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2 * macs(s, out) * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_Backward(benchmark::State& state, OpShape s) {
  set_num_threads(static_cast<int>(state.range(0)));
  manual_seed(0);
  auto layer = make_layer(s);
  Generator g(1);
  Tensor<float> x0 = randn<float>(input_shape(s), g);
  Shape out;
  for (auto _ : state) {
    state.PauseTiming();
    Tape<float> tape;
    Var<float> x = tape.leaf(x0);
    Var<float> y = layer(x);
    out = y.shape();
    Tensor<float> seed = ones<float>(y.shape());
    state.ResumeTiming();
    tape.backward(y, seed);  // input and weight gradients, as PyTorch's y.backward(ones)
    benchmark::DoNotOptimize(tape.gradient(x).data());
    state.PauseTiming();
    layer.zero_grad();
    state.ResumeTiming();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(4 * macs(s, out) * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

int register_all() {
  auto reg = [](const OpShape& s) {
    benchmark::RegisterBenchmark((std::string("fwd/") + s.name).c_str(), BM_Forward, s)->Arg(1)->Arg(2)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("bwd/") + s.name).c_str(), BM_Backward, s)->Arg(1)->Arg(2)->UseRealTime();
  };
  for (const OpShape& s : bench::kConvShapes) reg(s);
  for (const OpShape& s : bench::kLinearShapes) reg(s);
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
