// Counts heap allocations during steady-state training steps of a small MLP. This executable
// replaces the global allocation functions, so it lives apart from the other tests.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/distributed/data_parallel.hpp"
#include "genmod/distributed/thread_communicator.hpp"
#include "genmod/models/gated_pixel_cnn.hpp"
#include "genmod/models/glow.hpp"
#include "genmod/models/nice.hpp"
#include "genmod/models/pixel_cnn.hpp"
#include "genmod/models/pixel_rnn.hpp"
#include "genmod/models/real_nvp.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/adam.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> heap_calls{0};
inline void note() {
  if (counting.load(std::memory_order_relaxed)) heap_calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// Every operator new form funnels through malloc here, so the count covers all of them.
void* operator new(std::size_t n) {
  note();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  note();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  note();
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
// The nothrow forms too (Catch2 uses them): every allocation form must pair with the deletes below.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  note();
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  note();
  return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  note();
  const std::size_t al = static_cast<std::size_t>(a);
  return std::aligned_alloc(al, (n + al - 1) / al * al);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept { return operator new(n, a, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

#if !defined(__SANITIZE_ADDRESS__)
// Without a sanitizer, also interpose the C allocator (glibc's __libc_* entry points), so that
// allocations outside operator new (Eigen's aligned_malloc, our pool's aligned_alloc) count too.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  note();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t al, std::size_t n) {
  note();
  return __libc_memalign(al, n);
}
int posix_memalign(void** out, std::size_t al, std::size_t n) {
  note();
  *out = __libc_memalign(al, n);
  return *out ? 0 : ENOMEM;
}
void* memalign(std::size_t al, std::size_t n) {
  note();
  return __libc_memalign(al, n);
}
void free(void* p) { __libc_free(p); }
}
constexpr bool kCountsMalloc = true;
#else
constexpr bool kCountsMalloc = false;
#endif

using namespace genmod;

namespace {

struct Mlp {
  Parameter<float> W1, b1, W2, b2;
  explicit Mlp(Generator& g)
      : W1(randn<float>({64, 128}, g)), b1(zeros<float>({128})), W2(randn<float>({128, 10}, g)), b2(zeros<float>({10})) {
    for (auto* p : {&W1, &W2})
      for (auto& v : p->value()) v *= 0.1f;
  }
  Parameter<float>* params[4] = {&W1, &b1, &W2, &b2};
};

// One full training step: forward, cross-entropy, backward, SGD update, zero_grad.
float train_step(Mlp& m, const Tensor<float>& x, const Tensor<std::int64_t>& labels) {
  Tape<float> tape;
  Var<float> h = relu(add(matmul(Var<float>(x), m.W1.var()), m.b1.var()));
  Var<float> logits = add(matmul(h, m.W2.var()), m.b2.var());
  Var<float> nll = neg(mean(gather(log_softmax(logits, 1), 1, labels)));
  tape.backward(nll);
  for (auto* p : m.params) {
    kernels::axpy(-0.05f, p->grad().data(), p->value().data(), p->numel());
    p->zero_grad();
  }
  return nll.item();
}

// After three warm-up steps (the pool, the tape's arena and any optimizer state reach their
// sizes; data-dependent initialisations run on the first), five more calls of step() (a training
// step returning its loss) must neither call the heap nor grow the pool, and the loss must fall.
template <class Step>
void expect_allocation_free_steps(Step step) {
  const float first = step();
  for (int i = 0; i < 2; ++i) step();
  const auto pool_before = memory_stats().system_allocations;
  heap_calls = 0;
  counting = true;
  float last = 0;
  for (int i = 0; i < 5; ++i) last = step();
  counting = false;
  INFO("heap allocation calls during 5 steps: " << heap_calls.load());
  CHECK(heap_calls.load() == 0);
  CHECK(memory_stats().system_allocations == pool_before);
  CHECK(last < first);  // and it trains
}

}  // namespace

int* volatile sink_pointer = nullptr;

TEST_CASE("The allocation counter sees operator new and the tensor pool's system allocations", "[alloc]") {
  empty_cache();
  heap_calls = 0;
  counting = true;
  sink_pointer = new int[8];
  { auto t = empty<float>({1000}); }  // the emptied pool must go to the system allocator
  counting = false;
  delete[] sink_pointer;
  // operator new counts once, and once more for the malloc it calls when the C allocator is
  // counted; the pool's aligned_alloc is seen only then.
  CHECK(heap_calls.load() == (kCountsMalloc ? 3 : 1));
}

TEST_CASE("A steady-state MLP training step makes zero heap allocations", "[alloc]") {
  Generator g(0);
  Mlp m(g);
  // Batches sized 256: large enough for the threaded GEMM and elementwise paths.
  auto x = randn<float>({256, 64}, g);
  Tensor<std::int64_t> labels({256, 1});
  for (std::int64_t i = 0; i < 256; ++i) labels[i] = static_cast<std::int64_t>(g.uniform_int(10));
  float first = 0, last = 0;
  first = train_step(m, x, labels);
  for (int i = 0; i < 2; ++i) train_step(m, x, labels);  // warm-up: the pool and arena reach their sizes
  const auto pool_before = memory_stats().system_allocations;
  heap_calls = 0;
  counting = true;
  for (int i = 0; i < 10; ++i) last = train_step(m, x, labels);
  counting = false;
  INFO("heap allocation calls during 10 steps: " << heap_calls.load() << " (C allocator counted: " << kCountsMalloc
                                                  << ")");
  CHECK(heap_calls.load() == 0);
  CHECK(memory_stats().system_allocations == pool_before);
  CHECK(last < first);  // and it trains
}

TEST_CASE("A steady-state conv/transposed-conv/BatchNorm training step makes zero heap allocations", "[alloc]") {
  manual_seed(0);
  nn::Sequential enc{nn::Conv2d(1, 8, 4, {.stride = 2, .padding = 1}), nn::BatchNorm2d(8), nn::ReLU(),
                     nn::ConvTranspose2d(8, 1, 4, {.stride = 2, .padding = 1})};
  std::vector<Parameter<float>> params = enc.parameters();
  Generator g(1);
  auto x = rand<float>({32, 1, 28, 28}, g);
  auto step = [&] {
    Tape<float> tape;
    Var<float> y = enc(Var<float>(x));
    Var<float> loss = mean(square(y - Var<float>(x)));
    tape.backward(loss);
    for (auto& p : params) {
      kernels::axpy(-0.01f, p.grad().data(), p.value().data(), p.numel());
      p.zero_grad();
    }
    return loss.item();
  };
  expect_allocation_free_steps(step);
}

namespace {

// Adam steps of a flow model on 8-bit pixels k / 255 (NICE's and Glow's data-dependent
// initialisations run on the first), allocation-free once warm.
template <class Model>
void expect_allocation_free_flow_steps(Model& model, const Shape& batch_shape) {
  optim::Adam<float> opt(model.named_parameters(), {.lr = 1e-3});
  Generator g(3);
  Tensor<float> x(batch_shape);
  for (auto& v : x) v = static_cast<float>(g.uniform_int(256)) / 255.0f;
  auto step = [&] {
    Tape<float> tape;
    Var<float> loss = model.loss(Var<float>(x));
    opt.zero_grad();
    tape.backward(loss);
    opt.step();
    return loss.item();
  };
  expect_allocation_free_steps(step);
}

}  // namespace

TEST_CASE("A steady-state training step of each flow model makes zero heap allocations", "[alloc][flows]") {
  manual_seed(0);
  SECTION("RealNVPMLP, fused and composed couplings") {
    for (bool fused : {true, false}) {
      INFO("fused coupling: " << fused);
      models::RealNVPMLP<float> model(
          {.height = 8, .width = 8, .couplings = 4, .hidden = 64, .hidden_layers = 2, .fused_coupling = fused});
      expect_allocation_free_flow_steps(model, Shape{64, 64});
    }
  }
  SECTION("NICE") {
    models::NICE<float> model({.dim = 64, .couplings = 4, .hidden = 64, .hidden_layers = 2});
    expect_allocation_free_flow_steps(model, Shape{64, 64});
  }
  SECTION("multiscale RealNVP") {
    models::RealNVP<float> model({.height = 8, .width = 8, .scales = 1, .hidden = 8, .blocks = 1});
    expect_allocation_free_flow_steps(model, Shape{16, 1, 8, 8});
  }
  SECTION("Glow") {
    models::Glow<float> model({.height = 8, .width = 8, .scales = 2, .steps = 2, .hidden = 8});
    expect_allocation_free_flow_steps(model, Shape{16, 1, 8, 8});
  }
}

TEST_CASE("A steady-state training step of each autoregressive model makes zero heap allocations",
          "[alloc][autoregressive]") {
  manual_seed(0);
  SECTION("PixelCNN, 256-way output") {
    models::PixelCNN<float> model(
        {.height = 10, .width = 10, .channels = 16, .residual_blocks = 2, .head_channels = 16});
    expect_allocation_free_flow_steps(model, Shape{8, 1, 10, 10});
  }
  SECTION("PixelCNN, Bernoulli output") {
    models::PixelCNN<float> model({.height = 10,
                                   .width = 10,
                                   .channels = 16,
                                   .residual_blocks = 2,
                                   .head_channels = 16,
                                   .output = models::PixelOutput::bernoulli});
    Generator g(4);
    optim::Adam<float> opt(model.named_parameters(), {.lr = 1e-3});
    Tensor<float> x(Shape{8, 1, 10, 10});
    for (auto& v : x) v = static_cast<float>(g.uniform_int(2));
    expect_allocation_free_steps([&] {
      Tape<float> tape;
      Var<float> loss = model.loss(Var<float>(x));
      opt.zero_grad();
      tape.backward(loss);
      opt.step();
      return loss.item();
    });
  }
  SECTION("Gated PixelCNN, unconditional and class-conditional") {
    models::GatedPixelCNN<float> model({.height = 10, .width = 10, .channels = 8, .layers = 2});
    expect_allocation_free_flow_steps(model, Shape{8, 1, 10, 10});
    models::GatedPixelCNN<float> conditional({.height = 10, .width = 10, .channels = 8, .layers = 2, .classes = 3});
    optim::Adam<float> opt(conditional.named_parameters(), {.lr = 1e-3});
    Generator g(5);
    Tensor<float> x(Shape{8, 1, 10, 10});
    for (auto& v : x) v = static_cast<float>(g.uniform_int(256)) / 255.0f;
    Tensor<std::int64_t> labels(Shape{8});
    for (std::int64_t i = 0; i < 8; ++i) labels[i] = i % 3;
    expect_allocation_free_steps([&] {
      Tape<float> tape;
      Var<float> loss = conditional.loss(Var<float>(x), labels);
      opt.zero_grad();
      tape.backward(loss);
      opt.step();
      return loss.item();
    });
  }
  SECTION("PixelRNN (Row LSTM)") {
    models::PixelRNN<float> model({.height = 10, .width = 10, .channels = 8, .layers = 2, .head_channels = 16});
    expect_allocation_free_flow_steps(model, Shape{8, 1, 10, 10});
  }
  SECTION("PixelRNN (Diagonal BiLSTM)") {
    models::PixelRNN<float> model({.height = 10,
                                   .width = 10,
                                   .channels = 8,
                                   .layers = 2,
                                   .head_channels = 16,
                                   .layer = models::PixelRNNLayer::diagonal_bilstm});
    expect_allocation_free_flow_steps(model, Shape{8, 1, 10, 10});
  }
}

TEST_CASE("A steady-state data-parallel step (2 thread ranks, buckets overlapping backward, SyncBatchNorm) makes zero "
          "heap allocations",
          "[alloc][distributed]") {
  float first = 0, last = 0;
  distributed::run_ranks(2, [&](distributed::Communicator& c) {
    manual_seed(1);
    nn::Sequential net{nn::Linear(16, 32), nn::SyncBatchNorm(32, &c), nn::ReLU(), nn::Linear(32, 1)};
    distributed::DataParallel<float> dp(net, c, {.bucket_bytes = 256});  // several buckets
    optim::Adam opt(net.named_parameters(), {.lr = 1e-2});
    Generator g(5 + static_cast<std::uint64_t>(c.rank()));
    const Tensor<float> x = randn<float>({8, 16}, g), y = randn<float>({8, 1}, g);
    auto step = [&] {
      Tape<float> tape;
      Var<float> loss = mean(square(sub(net(Var<float>(x)), Var<float>(y))));
      opt.zero_grad();
      dp.backward(tape, loss, 8, 16);
      opt.step();
      return loss.item();
    };
    const float f = step();
    for (int i = 0; i < 2; ++i) step();
    c.barrier();
    if (c.rank() == 0) {
      heap_calls = 0;
      counting = true;
    }
    c.barrier();
    float l = 0;
    for (int i = 0; i < 5; ++i) l = step();
    c.barrier();
    if (c.rank() == 0) {
      counting = false;
      first = f;
      last = l;
    }
  });
  INFO("heap allocation calls during 5 steps of 2 ranks: " << heap_calls.load());
  CHECK(heap_calls.load() == 0);
  CHECK(last < first);
}
