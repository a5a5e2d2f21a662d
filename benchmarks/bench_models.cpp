// Whole training steps of the reference workloads (../shared/ref/README.md, models defined in
// ../shared/ref/common.py), timed the way ../shared/ref/bench_step.py times PyTorch: each step gets a
// fresh real Fashion-MNIST batch (sequential minibatches of a fixed random permutation, gathered
// before the timer), and the timer covers the uint8 -> float conversion, forward, backward and the
// optimizer step(s). Prints one JSON line per (workload, threads):
//
//   {"workload": "mlp_vae", "threads": 2, "median_s": ..., "gflops": ..., "allocs_per_step": ...,
//    "heap_calls_per_step": ..., "peak_rss_kib": ..., ...}
//
//   bench_models [--workload NAME] [--threads N] [--steps N] [--warmup N] [--data DIR] [--params]
//
// Without --threads, each workload runs at 1 and then 2 threads. gflops = the analytic FLOPs of
// common.py's flops_per_step (matmul / conv MACs only, x2) divided by the median step time (null
// for nice, realnvp, glow, gated_pixelcnn, row_lstm and diagonal_bilstm, which have no reference
// workload).
// allocs_per_step: growth of memory_stats().system_allocations (tensor blocks the caching pool had
// to get from the system) per timed step. heap_calls_per_step: calls to malloc / calloc / realloc /
// aligned_alloc / posix_memalign / memalign (operator new included, it calls malloc) per timed step,
// from every thread, counted by interposing glibc's allocator in this executable.
// --params lists the parameters each optimizer trains (name and shape), to check a refactor keeps them.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include "genmod/genmod.hpp"
#include "reference_vaes.hpp"

// ------------------------------------------------------------------------------------- heap counter
// glibc exports its allocator under __libc_* names; an executable that defines malloc & co. wins
// the symbol lookup for every shared library too (libstdc++'s operator new, libgomp, Eigen's
// aligned_malloc), so these count every heap call in the process.
#if defined(__GLIBC__) && !defined(GENMOD_ASAN) && !defined(__SANITIZE_ADDRESS__)
#define GENMOD_BENCH_COUNT_HEAP 1
namespace {
std::atomic<std::uint64_t> g_heap_calls{0};
}
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t s) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
void* memalign(std::size_t a, std::size_t n) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  g_heap_calls.fetch_add(1, std::memory_order_relaxed);
  void* p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}
#else
#define GENMOD_BENCH_COUNT_HEAP 0
#endif

using namespace genmod;

namespace {

std::uint64_t heap_calls() {
#if GENMOD_BENCH_COUNT_HEAP
  return g_heap_calls.load(std::memory_order_relaxed);
#else
  return 0;
#endif
}

using F = float;
using V = Var<F>;

// ----------------------------------------------------------------------------------- FLOP counts
// Exactly common.py's flops_per_step (1 multiply-add = 2 FLOPs; training = 3 x forward).
double lin(double b, double i, double o) {
  return 2 * b * i * o;
}
double conv(double b, double ci, double co, double k, double ho, double wo) {
  return 2 * b * ci * co * k * k * ho * wo;
}
double convT(double b, double ci, double co, double k, double hi, double wi) {
  return 2 * b * ci * co * k * k * hi * wi;
}

double flops_per_step(const std::string& name, double b) {
  if (name == "mlp_vae") {
    double f = 0;
    for (auto [i, o] : {std::pair{784, 512}, {512, 256}, {256, 32}, {256, 32}, {32, 256}, {256, 512}, {512, 784}})
      f += lin(b, i, o);
    return 3 * f;
  }
  if (name == "conv_vae")
    return 3 * (conv(b, 1, 32, 4, 14, 14) + conv(b, 32, 64, 4, 7, 7) + 2 * lin(b, 3136, 32) + lin(b, 32, 3136) +
                convT(b, 64, 32, 4, 7, 7) + convT(b, 32, 1, 4, 14, 14));
  if (name == "dcgan") {
    const double g = lin(b, 64, 6272) + convT(b, 128, 64, 4, 7, 7) + convT(b, 64, 1, 4, 14, 14);
    const double d = conv(b, 1, 64, 4, 14, 14) + conv(b, 64, 128, 4, 7, 7) + lin(b, 6272, 1);
    return 3 * g + 9 * d;
  }
  if (name == "realnvp_mlp" || name == "realnvp_mlp_composed")
    return 3 * 8 * (lin(b, 784, 1024) + lin(b, 1024, 1024) + lin(b, 1024, 1568));
  if (name == "pixelcnn")
    return 3 * (conv(b, 1, 64, 7, 28, 28) + 5 * conv(b, 64, 64, 3, 28, 28) + conv(b, 64, 64, 1, 28, 28) +
                conv(b, 64, 256, 1, 28, 28));
  return 0;
}

// The VAE workloads' models: reference_vaes.hpp (shared with bench_distributed).
using bench::ConvVae;
using bench::MlpVae;

// ----------------------------------------------------------------------------------- workloads
// Each model is one nn::Module (its sub-networks are members, listed by one `visit`); optimizers
// are built over a module's named_parameters(). Member order is construction order, which is the
// order the layers draw their initial weights from the default generator (manual_seed(0) per run).

// A workload: its batch size and one training step on a uint8 batch [B, 28, 28].
struct Workload {
  std::int64_t batch = 128;
  std::function<float(const Tensor<std::uint8_t>&)> step;
  std::shared_ptr<void> state;                         // keeps the model and optimizers alive
  std::vector<const optim::Optimizer<F>*> optimizers;  // for --params
};

Workload make_mlp_vae() {
  struct S {
    MlpVae model;
    optim::Adam<F> opt{model.named_parameters(), {.lr = 1e-3}};
    Generator noise{1234};
  };
  auto s = std::make_shared<S>();
  Workload w;
  w.batch = 128;
  w.state = s;
  w.optimizers = {&s->opt};
  w.step = [s](const Tensor<std::uint8_t>& u8) {
    const std::int64_t b = u8.dim(0);
    Tape<F> tape;
    V x(data::scale_pixels(u8, data::PixelRange::unit).reshape({b, 784}));
    V loss = s->model.loss(x, s->noise);
    s->opt.zero_grad();
    tape.backward(loss);
    s->opt.step();
    return loss.item();
  };
  return w;
}

Workload make_conv_vae() {
  struct S {
    ConvVae model;
    optim::Adam<F> opt{model.named_parameters(), {.lr = 1e-3}};
    Generator noise{1234};
  };
  auto s = std::make_shared<S>();
  Workload w;
  w.batch = 128;
  w.state = s;
  w.optimizers = {&s->opt};
  w.step = [s](const Tensor<std::uint8_t>& u8) {
    const std::int64_t b = u8.dim(0);
    Tape<F> tape;
    V x(data::scale_pixels(u8, data::PixelRange::unit).reshape({b, 1, 28, 28}));
    V loss = s->model.loss(x, s->noise);
    s->opt.zero_grad();
    tape.backward(loss);
    s->opt.step();
    return loss.item();
  };
  return w;
}

/// DCGAN generator: z [B, 64] -> linear to [128, 7, 7] -> two stride-2 transposed convs -> tanh
/// image [B, 1, 28, 28], BatchNorm + ReLU between.
class DcganGenerator : public nn::Layer<F> {
 public:
  nn::Linear<F> fc{64, 128 * 7 * 7};
  nn::BatchNorm1d<F> bn0{128 * 7 * 7};
  nn::ConvTranspose2d<F> t1{128, 64, 4, {.stride = 2, .padding = 1}};
  nn::BatchNorm2d<F> bn1{64};
  nn::ConvTranspose2d<F> t2{64, 1, 4, {.stride = 2, .padding = 1}};

  /// z [B, 64] -> images [B, 1, 28, 28] in (-1, 1).
  V forward(const V& z) override {
    V h = reshape(relu(bn0(fc(z))), Shape{z.dim(0), 128, 7, 7});
    h = relu(bn1(t1(h)));
    return tanh(t2(h));
  }
  /// Lists the five layers under their member names.
  void visit(nn::ModuleVisitor<F>& v) override {
    v.child("fc", fc), v.child("bn0", bn0), v.child("t1", t1), v.child("bn1", bn1), v.child("t2", t2);
  }
};

/// DCGAN discriminator: two stride-2 convs with LeakyReLU(0.2) (BatchNorm on the second) and a
/// linear layer to one logit per image.
class DcganDiscriminator : public nn::Layer<F> {
 public:
  nn::Conv2d<F> c1{1, 64, 4, {.stride = 2, .padding = 1}}, c2{64, 128, 4, {.stride = 2, .padding = 1}};
  nn::BatchNorm2d<F> bn2{128};
  nn::Linear<F> fc{6272, 1};

  /// x [B, 1, 28, 28] -> logits [B].
  V forward(const V& x) override {
    V h = leaky_relu(c1(x), 0.2f);
    h = leaky_relu(bn2(c2(h)), 0.2f);
    return reshape(fc(flatten(h, 1)), Shape{x.dim(0)});
  }
  /// Lists the four layers under their member names.
  void visit(nn::ModuleVisitor<F>& v) override {
    v.child("c1", c1), v.child("c2", c2), v.child("bn2", bn2), v.child("fc", fc);
  }
};

/// The GAN: generator and discriminator as two children "g" and "d" (each trained by its own
/// optimizer over that child's parameters).
class Dcgan : public nn::Module<F> {
 public:
  DcganGenerator g;
  DcganDiscriminator d;

  /// Lists the two networks.
  void visit(nn::ModuleVisitor<F>& v) override { v.child("g", g), v.child("d", d); }
};

Workload make_dcgan() {
  struct S {
    Dcgan gan;
    optim::Adam<F> og{gan.g.named_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}}};
    optim::Adam<F> od{gan.d.named_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}}};
    Generator noise{1234};
  };
  auto s = std::make_shared<S>();
  Workload w;
  w.batch = 128;
  w.state = s;
  w.optimizers = {&s->og, &s->od};
  // BCE with logits, mean over the batch: target 1 -> softplus(-l), target 0 -> softplus(l).
  w.step = [s](const Tensor<std::uint8_t>& u8) {
    const std::int64_t b = u8.dim(0);
    DcganGenerator& g = s->gan.g;
    DcganDiscriminator& d = s->gan.d;
    Tape<F> tape;
    V real(data::scale_pixels(u8, data::PixelRange::symmetric).reshape({b, 1, 28, 28}));
    Tensor<F> zt(Shape{b, 64});
    fill_normal(zt, s->noise);
    V fake = g(V(zt));
    // D update: real and detached fake, separate forwards (BatchNorm sees each half separately).
    s->od.zero_grad();
    V ld = mean(softplus(-d(real))) + mean(softplus(d(fake.detach())));
    tape.backward(ld);
    s->od.step();
    // G update, non-saturating: -log D(G(z)), reusing `fake`. D is deliberately not frozen: its
    // weight gradients are computed too (as in the PyTorch reference, where D's parameters require
    // grad) and zeroed before the next D step, so the work per step matches the reference.
    s->og.zero_grad();
    V lg = mean(softplus(-d(fake)));
    tape.backward(lg);
    s->og.step();
    return ld.item() + lg.item();
  };
  return w;
}

/// The same DCGAN through the library's classes: models::GAN over models::DCGANGenerator and
/// models::DCGANDiscriminator (the same layers and parameter count), non-saturating, one
/// train_step per batch: G's forward once, D frozen in the generator step (so D's weight
/// gradients are not computed there, which the reference does compute).
Workload make_dcgan_model() {
  using Gan = models::GAN<models::DCGANGenerator<F>, models::DCGANDiscriminator<F>>;
  struct S {
    Gan gan{models::DCGANGenerator<F>(), models::DCGANDiscriminator<F>(), {.noise_seed = 1234}};
    optim::Adam<F> og{gan.generator().named_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}}};
    optim::Adam<F> od{gan.discriminator().named_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}}};
  };
  auto s = std::make_shared<S>();
  Workload w;
  w.batch = 128;
  w.state = s;
  w.optimizers = {&s->og, &s->od};
  w.step = [s](const Tensor<std::uint8_t>& u8) {
    const std::int64_t b = u8.dim(0);
    const Tensor<F> real = data::scale_pixels(u8, data::PixelRange::symmetric).reshape({b, 1, 28, 28});
    const models::GanStepStats st = s->gan.train_step(real, s->od, s->og);
    return st.d_loss + st.g_loss;
  };
  return w;
}

// A flow model trained on bits per dimension with Adam: each step reads the batch as k / 255 in the
// model's sample shape (its preprocessing dequantizes and logit-transforms it).
template <class Model, class Options>
Workload make_flow_workload(Options options, double lr, Shape sample) {
  struct S {
    S(Options o, double lr) : model(o), opt(model.named_parameters(), {.lr = lr}) {}
    Model model;
    optim::Adam<F> opt;
  };
  auto s = std::make_shared<S>(options, lr);
  Workload w;
  w.batch = 128;
  w.state = s;
  w.optimizers = {&s->opt};
  w.step = [s, sample](const Tensor<std::uint8_t>& u8) {
    Tape<F> tape;
    V x(data::scale_pixels(u8, data::PixelRange::unit).reshape(flows::batch_shape(u8.dim(0), sample)));
    V loss = s->model.loss(x);
    s->opt.zero_grad();
    tape.backward(loss);
    s->opt.step();
    return loss.item();
  };
  return w;
}

/// RealNVP on flattened images: the library's models::RealNVPMLP (8 affine couplings, the k-th
/// keeping the checkerboard (i + j even) when k is even and its complement when odd; conditioners
/// 784 -> 1024 -> 1024 -> 1568 with ReLU, the last layer zero; s = tanh(r) * scale with a learned
/// scale per dimension), trained on bits per dimension. Its preprocessing steps dequantize the
/// k / 255 pixels (x = (k + u) / 256, u ~ U[0, 1)) and logit-transform them (alpha = 0.05); their
/// log-determinants are part of the likelihood.
/// realnvp_mlp_composed: the same model with its couplings written as the generic ops the fused
/// coupling op replaces (AffineCouplingOptions::fused = false), to measure the fused op in the step.
Workload make_realnvp_mlp(bool fused = true) {
  return make_flow_workload<models::RealNVPMLP<F>>(
      models::RealNVPMLPOptions{.noise_seed = 1234, .fused_coupling = fused}, 1e-4, Shape{784});
}

// The flow model classes without a PyTorch reference workload (their step time and allocations
// only; the example's defaults, Adam 1e-3, batch 128): NICE (4 additive couplings, MLPs 1000 x 5),
// the multiscale RealNVP and Glow (2 scales, conditioners 64 channels wide).
Workload make_nice() {
  return make_flow_workload<models::NICE<F>>(models::NICEOptions{.noise_seed = 1234}, 1e-3, Shape{784});
}
Workload make_realnvp() {
  return make_flow_workload<models::RealNVP<F>>(models::RealNVPOptions{.noise_seed = 1234}, 1e-3, Shape{1, 28, 28});
}
Workload make_glow() {
  return make_flow_workload<models::Glow<F>>(models::GlowOptions{.noise_seed = 1234}, 1e-3, Shape{1, 28, 28});
}

/// An autoregressive model class at its defaults on 8-bit pixels k / 255, batch 32, Adam 1e-3;
/// the loss is the mean nats per pixel (for PixelCNN: F.cross_entropy's mean over pixels).
template <class Model, class... Options>
Workload make_pixel_workload(const Options&... options) {
  struct S {
    explicit S(const Options&... o) : model(o...) {}
    Model model;
    optim::Adam<F> opt{model.named_parameters(), {.lr = 1e-3}};
  };
  auto s = std::make_shared<S>(options...);
  Workload w;
  w.batch = 32;
  w.state = s;
  w.optimizers = {&s->opt};
  w.step = [s](const Tensor<std::uint8_t>& u8) {
    const std::int64_t b = u8.dim(0);
    Tape<F> tape;
    V loss = s->model.loss(V(data::scale_pixels(u8, data::PixelRange::unit).reshape({b, 1, 28, 28})));
    s->opt.zero_grad();
    tape.backward(loss);
    s->opt.step();
    return loss.item();
  };
  return w;
}

/// PixelCNN: models::PixelCNN at its defaults, the reference's pixelcnn workload (a 7x7 type-A
/// masked conv to 64 channels, 5 residual blocks h + conv3x3_B(relu(h)), two 1x1 convs to 256
/// logits per pixel).
Workload make_pixelcnn() {
  return make_pixel_workload<models::PixelCNN<F>>();
}

const char* const kWorkloads[] = {
    "mlp_vae", "conv_vae", "dcgan", "dcgan_model",    "realnvp_mlp", "realnvp_mlp_composed", "pixelcnn",
    "nice",    "realnvp",  "glow",  "gated_pixelcnn", "row_lstm",    "diagonal_bilstm"};

Workload make(const std::string& name) {
  if (name == "mlp_vae") return make_mlp_vae();
  if (name == "conv_vae") return make_conv_vae();
  if (name == "dcgan") return make_dcgan();
  if (name == "dcgan_model") return make_dcgan_model();
  if (name == "realnvp_mlp") return make_realnvp_mlp();
  if (name == "realnvp_mlp_composed") return make_realnvp_mlp(false);
  if (name == "pixelcnn") return make_pixelcnn();
  if (name == "gated_pixelcnn") return make_pixel_workload<models::GatedPixelCNN<F>>();
  if (name == "row_lstm") return make_pixel_workload<models::PixelRNN<F>>();
  if (name == "diagonal_bilstm")
    return make_pixel_workload<models::PixelRNN<F>>(
        models::PixelRNNOptions{.layer = models::PixelRNNLayer::diagonal_bilstm});
  if (name == "nice") return make_nice();
  if (name == "realnvp") return make_realnvp();
  if (name == "glow") return make_glow();
  throw ValueError("unknown workload " + name);
}

// ----------------------------------------------------------------------------------- driver
struct Options {
  std::string workload;  // empty: all
  int threads = 0;       // 0: 1 and 2
  int steps = 30;
  int warmup = 5;
  std::string data_dir;
  bool params = false;  // list the trained parameters instead of timing
};

void usage() {
  std::printf(
      "usage: bench_models [--workload NAME] [--threads N] [--steps N] [--warmup N] [--data DIR] [--params]\n"
      "Median seconds per full training step of the reference workloads (../shared/ref), as JSON lines.\n"
      "  --workload NAME  mlp_vae, conv_vae, dcgan, dcgan_model (the same through models::GAN), realnvp_mlp,\n"
      "                   realnvp_mlp_composed (its couplings by generic ops), pixelcnn, and without a\n"
      "                   PyTorch reference: nice, realnvp (multiscale), glow, gated_pixelcnn, row_lstm,\n"
      "                   diagonal_bilstm\n"
      "                   (default: all)\n"
      "  --threads N      threads (default: 1, then 2)\n"
      "  --steps N        timed steps (default 30)\n"
      "  --warmup N       untimed steps first (default 5)\n"
      "  --data DIR       Fashion-MNIST IDX directory (default: $GENMOD_DATA_DIR or the Debian path)\n"
      "  --params         print each optimizer's parameters (name, shape) and the totals, then exit\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError("missing value after " + a);
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else if (a == "--workload") {
      o.workload = value();
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--steps") {
      o.steps = std::stoi(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(value());
    } else if (a == "--data") {
      o.data_dir = value();
    } else if (a == "--params") {
      o.params = true;
    } else {
      throw ValueError("unknown option " + a + " (see --help)");
    }
  }
  if (o.steps < 1 || o.warmup < 0 || o.threads < 0)
    throw ValueError("expected --steps >= 1, --warmup >= 0, --threads >= 1");
  if (!o.workload.empty() &&
      std::find(std::begin(kWorkloads), std::end(kWorkloads), o.workload) == std::end(kWorkloads))
    throw ValueError("unknown workload " + o.workload +
                     " (mlp_vae, conv_vae, dcgan, dcgan_model, realnvp_mlp, realnvp_mlp_composed, pixelcnn, nice, "
                     "realnvp, glow, gated_pixelcnn, row_lstm, diagonal_bilstm)");
  return o;
}

// One line per trained parameter, "<workload> opt<k> <name> <shape>", then
// "<workload> total: <tensors> tensors, <scalars> scalars".
void list_params(const std::string& name) {
  manual_seed(0);
  const Workload w = make(name);
  std::size_t tensors = 0;
  std::int64_t scalars = 0;
  for (std::size_t k = 0; k < w.optimizers.size(); ++k)
    for (const auto& np : w.optimizers[k]->parameters()) {
      std::printf("%s opt%zu %s %s\n", name.c_str(), k, np.name.c_str(), np.parameter.shape().to_string().c_str());
      ++tensors;
      scalars += np.parameter.numel();
    }
  std::printf("%s total: %zu tensors, %lld scalars\n", name.c_str(), tensors, static_cast<long long>(scalars));
}

void run(const std::string& name, int threads, const Options& o, const data::FashionMNIST& train,
         const std::vector<std::int64_t>& perm) {
  set_num_threads(threads);
  manual_seed(0);
  Workload w;
  try {
    w = make(name);
  } catch (const std::exception& e) {
    std::printf("{\"workload\": \"%s\", \"threads\": %d, \"skipped\": \"%s\"}\n", name.c_str(), threads, e.what());
    return;
  }
  const std::int64_t b = w.batch, n = train.size();
  Tensor<std::uint8_t> u8(Shape{b, 28, 28});
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(o.steps));  // no growth inside the heap-counted steps
  float first_loss = 0, last_loss = 0;
  std::uint64_t sys0 = 0, heap0 = 0;
  const int total = o.warmup + o.steps;
  for (int i = 0; i < total; ++i) {
    // The batch (as bench_step.py: perm[(i*b) % (N-b):][:b]), gathered before the timer.
    const std::int64_t start = (static_cast<std::int64_t>(i) * b) % (n - b);
    for (std::int64_t k = 0; k < b; ++k)
      std::memcpy(u8.data() + k * 784, train.images.data() + perm[static_cast<std::size_t>(start + k)] * 784, 784);
    if (i == o.warmup) {
      sys0 = memory_stats().system_allocations;
      heap0 = heap_calls();
    }
    const auto t0 = std::chrono::steady_clock::now();
    const float loss = w.step(u8);
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= o.warmup) {
      times.push_back(std::chrono::duration<double>(t1 - t0).count());
      if (i == o.warmup) first_loss = loss;
      last_loss = loss;
    }
  }
  const double allocs = static_cast<double>(memory_stats().system_allocations - sys0) / o.steps;
  const double heap = static_cast<double>(heap_calls() - heap0) / o.steps;
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t m = sorted.size();
  const double median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  double mean = 0;
  for (double t : times) mean += t;
  mean /= static_cast<double>(m);
  const double flops = flops_per_step(name, static_cast<double>(b));
  // The process's peak resident set so far (KiB on Linux): with one workload per process, as
  // compare.sh runs it, the workload's peak memory (data set, weights, tape, pool), comparable
  // to bench_step.py's peak_rss_kib.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "{\"workload\": \"%s\", \"threads\": %d, \"median_s\": %.6g, \"gflops\": %s, \"allocs_per_step\": %.4g, "
      "\"heap_calls_per_step\": %s, \"min_s\": %.6g, \"max_s\": %.6g, \"mean_s\": %.6g, \"batch\": %lld, "
      "\"warmup\": %d, \"steps\": %d, \"flops_per_step\": %.6g, \"first_loss\": %.6g, \"last_loss\": %.6g, "
      "\"peak_rss_kib\": %ld}\n",
      name.c_str(), threads, median, flops > 0 ? std::to_string(flops / median / 1e9).c_str() : "null", allocs,
      GENMOD_BENCH_COUNT_HEAP ? std::to_string(heap).c_str() : "null", sorted.front(), sorted.back(), mean,
      static_cast<long long>(b), o.warmup, o.steps, flops, static_cast<double>(first_loss),
      static_cast<double>(last_loss), usage.ru_maxrss);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (o.params) {
    for (const char* name : kWorkloads)
      if (o.workload.empty() || o.workload == name) list_params(name);
    return 0;
  }
  const auto train = data::FashionMNIST::load(data::Split::train, o.data_dir);
  // A fixed random permutation of the training set (Fisher-Yates with a genmod Generator).
  Generator g(0);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(train.size()));
  for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<std::int64_t>(i);
  for (std::size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[g.uniform_int(i)]);
  for (const char* name : kWorkloads) {
    if (!o.workload.empty() && o.workload != name) continue;
    if (o.threads > 0) {
      run(name, o.threads, o, train, perm);
    } else {
      run(name, 1, o, train, perm);
      run(name, 2, o, train, perm);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_models: %s\n", e.what());
  return 1;
}
