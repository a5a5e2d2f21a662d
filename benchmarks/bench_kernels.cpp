// The kernels under the layers, one at a time, at the shapes of the reference workloads
// (../shared/ref/README.md): GEMM through genmod's path (kernels::gemm), every convolution shape's
// forward, backward-data and backward-weight kernels separately, and the memory-bound kernels
// (elementwise, activations, batch-norm passes, Adam's update), and the fused affine coupling
// against the generic ops it replaced.
//
//   build/benchmarks/bench_kernels --benchmark_counters_tabular=true [--benchmark_filter=conv/]
//
// Argument: threads (1 and 2). Counters: GFLOP/s (2 FLOPs per multiply-add; masked convolutions
// count the kept taps only, the work the kernel does) or GB/s (bytes each kernel must read and
// write at least once).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/autodiff/ops/conv.hpp"
#include "genmod/autodiff/ops/coupling.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/batch_norm.hpp"
#include "genmod/kernels/conv2d.hpp"
#include "genmod/kernels/coupling.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/optim/adam.hpp"
#include "reference_shapes.hpp"

using namespace genmod;

namespace {

Tensor<float> random_tensor(const Shape& s, std::uint64_t seed) {
  Generator g(seed);
  Tensor<float> t(s);
  fill_normal(t, g);
  return t;
}

// ------------------------------------------------------------------------------------------ GEMM
// C[m x n] (+)= op(A) op(B): the forward (x W^T), input-gradient (G W) and weight-gradient (G^T x)
// products of the workloads' large linear layers.
struct GemmShape {
  const char* name;
  bool ta, tb;
  std::int64_t m, n, k;
};

constexpr GemmShape kGemms[] = {
    {"mlp_vae.784x512.fwd", false, true, 128, 512, 784},     {"mlp_vae.784x512.dx", false, false, 128, 784, 512},
    {"mlp_vae.784x512.dw", true, false, 512, 784, 128},      {"realnvp.1024x1024.fwd", false, true, 128, 1024, 1024},
    {"realnvp.1024x1024.dx", false, false, 128, 1024, 1024}, {"realnvp.1024x1024.dw", true, false, 1024, 1024, 128},
    {"realnvp.1024x1568.fwd", false, true, 128, 1568, 1024}, {"realnvp.1024x1568.dw", true, false, 1568, 1024, 128},
};

void BM_Gemm(benchmark::State& state, GemmShape s) {
  set_num_threads(static_cast<int>(state.range(0)));
  const Tensor<float> a = random_tensor(s.ta ? Shape{s.k, s.m} : Shape{s.m, s.k}, 1);
  const Tensor<float> b = random_tensor(s.tb ? Shape{s.n, s.k} : Shape{s.k, s.n}, 2);
  Tensor<float> c(Shape{s.m, s.n});
  const std::int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  for (auto _ : state) {
    kernels::gemm<float>(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(s.m * s.n * s.k) * static_cast<double>(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
}

// ----------------------------------------------------------------------------------- convolution
using bench::Kind;
using ConvShape = bench::OpShape;

// The geometry of the ordinary convolution underneath: for a transposed convolution that is the
// convolution whose input gradient the transposed one computes, so its forward is our backward-data
// kernel and the other way round.
kernels::Conv2dGeometry geometry_of(const ConvShape& s) {
  const Shape x{s.batch, s.cin, s.h, s.h};
  if (s.kind == Kind::convT)
    return conv_transpose2d_geometry_for(x, Shape{s.cin, s.cout, s.k, s.k}, {.stride = s.stride, .padding = s.pad});
  kernels::Conv2dGeometry g =
      conv2d_geometry_for(x, Shape{s.cout, s.cin, s.k, s.k}, {.stride = s.stride, .padding = s.pad});
  if (s.kind == Kind::masked_a || s.kind == Kind::masked_b) {
    const auto keep = nn::MaskedConv2d<float>::mask(s.kind == Kind::masked_a ? nn::MaskType::A : nn::MaskType::B, s.k);
    g.set_mask(std::span<const bool>(keep.data(), static_cast<std::size_t>(s.k * s.k)));
  }
  return g;
}

enum class Pass { forward, backward_data, backward_weight };

void BM_Conv(benchmark::State& state, ConvShape s, Pass pass) {
  set_num_threads(static_cast<int>(state.range(0)));
  const kernels::Conv2dGeometry g = geometry_of(s);
  // In the underlying convolution's terms: input [n, cin, h, w], weight, output [n, cout, ho, wo].
  const Tensor<float> in = random_tensor(g.input_shape(), 1), w = random_tensor(Shape{g.cout, g.cin, g.kh, g.kw}, 2);
  const Tensor<float> out = random_tensor(Shape{g.n, g.cout, g.ho, g.wo}, 3);
  // The layer's pass -> the kernel that runs it.
  const bool transposed = s.kind == Kind::convT;
  const Pass kernel = !transposed                   ? pass
                      : pass == Pass::forward       ? Pass::backward_data
                      : pass == Pass::backward_data ? Pass::forward
                                                    : Pass::backward_weight;
  for (auto _ : state) {
    Tensor<float> r = kernel == Pass::forward         ? kernels::conv2d_forward(g, in, w, Tensor<float>())
                      : kernel == Pass::backward_data ? kernels::conv2d_input_grad(g, out, w)
                                                      : kernels::conv2d_weight_grad(g, in, out);
    benchmark::DoNotOptimize(r.data());
  }
  const double macs = static_cast<double>(g.n * g.cout * g.ho * g.wo * g.cin * g.num_taps());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2 * macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

// ------------------------------------------------------------------------------- memory-bound ops
constexpr std::int64_t kElems = 128 * 64 * 14 * 14;  // dcgan's G.up1 output, 6.4 MB

void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iteration * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

template <class F>
void BM_Map(benchmark::State& state, F f) {
  set_num_threads(static_cast<int>(state.range(0)));
  const Tensor<float> x = random_tensor(Shape{kElems}, 1);
  Tensor<float> y(Shape{kElems});
  for (auto _ : state) {
    kernels::map(x.data(), y.data(), kElems, f);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 8.0 * kElems);
}

template <class F>
void BM_Map2(benchmark::State& state, F f) {
  set_num_threads(static_cast<int>(state.range(0)));
  const Tensor<float> a = random_tensor(Shape{kElems}, 1), b = random_tensor(Shape{kElems}, 2);
  Tensor<float> y(Shape{kElems});
  for (auto _ : state) {
    kernels::map2(a.data(), b.data(), y.data(), kElems, f);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 12.0 * kElems);
}

void BM_Axpy(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  const Tensor<float> x = random_tensor(Shape{kElems}, 1);
  Tensor<float> y = random_tensor(Shape{kElems}, 2);
  for (auto _ : state) {
    kernels::axpy(1e-3f, x.data(), y.data(), kElems);
    benchmark::DoNotOptimize(y.data());
  }
  set_bytes(state, 12.0 * kElems);
}

// Batch norm of dcgan's G.up1 output [128, 64, 14, 14]: statistics (two reads), normalize (one
// read, one write), backward sums (g and x read twice) and dx (two reads, one write).
void BM_BatchNorm(benchmark::State& state, int which) {
  set_num_threads(static_cast<int>(state.range(0)));
  const kernels::ChannelLayout l{128, 64, 14 * 14};
  const Tensor<float> x = random_tensor(Shape{kElems}, 1), g = random_tensor(Shape{kElems}, 2);
  Tensor<float> y(Shape{kElems}), mean(Shape{64}), var(Shape{64}), invstd(Shape{64}), a(Shape{64}), b(Shape{64});
  kernels::batch_norm_statistics(l, x.data(), 1e-5f, mean.data(), var.data(), invstd.data());
  for (auto _ : state) {
    if (which == 0) kernels::batch_norm_statistics(l, x.data(), 1e-5f, mean.data(), var.data(), invstd.data());
    if (which == 1) kernels::channel_affine(l, x.data(), invstd.data(), mean.data(), y.data());
    if (which == 2) kernels::batch_norm_grad_sums(l, g.data(), x.data(), mean.data(), a.data(), b.data());
    if (which == 3) kernels::channel_affine(l, g.data(), invstd.data(), mean.data(), y.data(), x.data(), var.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(a.data());
  }
  const double bytes[] = {8.0 * kElems, 8.0 * kElems, 12.0 * kElems, 12.0 * kElems};
  set_bytes(state, bytes[which]);
}

// Adam's fused update over realnvp_mlp's largest weight (1568 x 1024): p, m, v read and written, g
// read: 28 bytes per parameter.
void BM_AdamUpdate(benchmark::State& state) {
  set_num_threads(static_cast<int>(state.range(0)));
  constexpr std::int64_t n = 1568 * 1024;
  Tensor<float> p = random_tensor(Shape{n}, 1), m = zeros<float>(Shape{n}), v = zeros<float>(Shape{n});
  const Tensor<float> g = random_tensor(Shape{n}, 2);
  std::int64_t t = 0;
  for (auto _ : state) {
    optim::detail::adam_update(p.data(), g.data(), m.data(), v.data(), static_cast<float*>(nullptr), n, ++t, 1e-4,
                               optim::Betas{}, 1e-8, 0.0, false);
    benchmark::DoNotOptimize(p.data());
  }
  set_bytes(state, 28.0 * n);
}

// ------------------------------------------------------------------------------ affine coupling
// RealNVP's affine coupling at the realnvp_mlp shape: x [128, 784], the conditioner's output rt
// [128, 1568], the tanh bound with a learned scale, a checkerboard transform mask. The kernels
// alone (forward: x, rt read, y, e, tanh r written, 24 bytes per element; backward: gy, x, e,
// tanh r read, gx, both halves of grt and gscale's terms written, 32 bytes; the terms' sum reads
// them again), then forward + backward through a tape, the fused op (autodiff/ops/coupling.hpp)
// against the generic ops it replaced in flows::AffineCoupling. The loss sum(y) + sum(logdet)
// around both is the same.
constexpr std::int64_t kCouplingN = 128, kCouplingD = 784;

Tensor<float> checkerboard_transform() {
  Tensor<float> m(Shape{kCouplingD});
  for (std::int64_t i = 0; i < kCouplingD; ++i) m[i] = static_cast<float>((i / 28 + i % 28) % 2);
  return m;
}

void BM_CouplingKernel(benchmark::State& state, bool backward) {
  set_num_threads(static_cast<int>(state.range(0)));
  const kernels::CouplingLayout l{kCouplingN, kCouplingD};
  const Shape xs{kCouplingN, kCouplingD}, rts{kCouplingN, 2 * kCouplingD};
  const Tensor<float> x = random_tensor(xs, 1), rt = random_tensor(rts, 2), gy = random_tensor(xs, 3);
  const Tensor<float> gl = random_tensor(Shape{kCouplingN}, 4), m = checkerboard_transform();
  const Tensor<float> scale = ones<float>(Shape{kCouplingD});
  Tensor<float> y(xs), ld(Shape{kCouplingN}), e(xs), th(xs), gx(xs), grt(rts), gscale = zeros<float>(Shape{kCouplingD});
  const kernels::CouplingForwardArgs<float> fwd{.x = x.data(),
                                                .rt = rt.data(),
                                                .scale = scale.data(),
                                                .transform = m.data(),
                                                .y = y.data(),
                                                .logdet = ld.data(),
                                                .e = e.data(),
                                                .th = th.data()};
  kernels::affine_coupling_forward(l, kernels::CouplingBound::tanh, fwd);
  for (auto _ : state) {
    if (backward)
      kernels::affine_coupling_backward<float>(l, kernels::CouplingBound::tanh,
                                               {.gy = gy.data(),
                                                .glogdet = gl.data(),
                                                .x = x.data(),
                                                .scale = scale.data(),
                                                .transform = m.data(),
                                                .e = e.data(),
                                                .th = th.data(),
                                                .gx = gx.data(),
                                                .grt = grt.data(),
                                                .gscale = gscale.data()});
    else
      kernels::affine_coupling_forward(l, kernels::CouplingBound::tanh, fwd);
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(grt.data());
  }
  set_bytes(state, (backward ? 32.0 : 24.0) * kCouplingN * kCouplingD);
}

void BM_CouplingOp(benchmark::State& state, bool fused) {
  set_num_threads(static_cast<int>(state.range(0)));
  const Tensor<float> x0 = random_tensor(Shape{kCouplingN, kCouplingD}, 1);
  const Tensor<float> rt0 = random_tensor(Shape{kCouplingN, 2 * kCouplingD}, 2), m = checkerboard_transform();
  Parameter<float> scale(ones<float>(Shape{kCouplingD}));
  for (auto _ : state) {
    Tape<float> tape;
    const Var<float> x = tape.leaf(x0), rt = tape.leaf(rt0);
    Var<float> y, logdet;
    if (fused) {
      y = affine_coupling(x, rt, scale.var(), m, CouplingBound::tanh, logdet);
    } else {  // flows::AffineCoupling before the fused op
      const Var<float> transformed(m);
      Var<float> s = mul(mul(tanh(slice(rt, 1, 0, kCouplingD)), scale.var()), transformed);
      Var<float> t = mul(slice(rt, 1, kCouplingD, kCouplingD), transformed);
      y = add(mul(x, exp(s)), t);
      logdet = sum(s, 1);
    }
    tape.backward(add(sum(y), sum(logdet)));
    benchmark::DoNotOptimize(tape.gradient(rt).data());
  }
}

int register_all() {
  auto reg = [](const std::string& name, auto fn, auto... args) {
    benchmark::RegisterBenchmark(name.c_str(), fn, args...)->Arg(1)->Arg(2)->UseRealTime();
  };
  for (const GemmShape& s : kGemms) reg(std::string("gemm/") + s.name, BM_Gemm, s);
  for (const ConvShape& s : bench::kConvShapes) {
    reg(std::string("conv/fwd/") + s.name, BM_Conv, s, Pass::forward);
    reg(std::string("conv/bwd_data/") + s.name, BM_Conv, s, Pass::backward_data);
    reg(std::string("conv/bwd_weight/") + s.name, BM_Conv, s, Pass::backward_weight);
  }
  reg("elementwise/relu", BM_Map<kernels::Relu>, kernels::Relu{});
  reg("elementwise/sigmoid", BM_Map<kernels::Sigmoid>, kernels::Sigmoid{});
  reg("elementwise/leaky_relu_backward", BM_Map2<kernels::LeakyReluBackward<float>>,
      kernels::LeakyReluBackward<float>{0.2f});
  reg("elementwise/relu_backward", BM_Map2<kernels::ReluBackward>, kernels::ReluBackward{});
  reg("elementwise/add", BM_Map2<kernels::Add>, kernels::Add{});
  reg("elementwise/axpy", BM_Axpy);
  reg("batch_norm/statistics", BM_BatchNorm, 0);
  reg("batch_norm/normalize", BM_BatchNorm, 1);
  reg("batch_norm/grad_sums", BM_BatchNorm, 2);
  reg("batch_norm/grad_input", BM_BatchNorm, 3);
  reg("optim/adam_update", BM_AdamUpdate);
  reg("coupling/kernel_forward", BM_CouplingKernel, false);
  reg("coupling/kernel_backward", BM_CouplingKernel, true);
  reg("coupling/fused_op", BM_CouplingOp, true);
  reg("coupling/composed_ops", BM_CouplingOp, false);
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
