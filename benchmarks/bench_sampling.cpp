// Sampling speed of the autoregressive models: the cached sampler against the naive loop (the whole
// network once per pixel), on a batch of 28 x 28 images, one JSON line per model.
//
//   bench_sampling [--models "pixelcnn gated row-lstm diagonal-bilstm"] [--batch 64] [--naive-rows R]
//                  [--repeats K] [--threads N]
//
// The cached sampler draws the whole batch (median of K runs). The naive loop's cost is the same
// for every position (one full forward pass), so it is timed over the first R rows (a completion
// whose other rows are known) and scaled by 28 / R; R = 28 times all of it. Both start from the same
// untrained weights (the samplers' cost does not depend on the values). Output fields: model,
// batch, threads, cached_s, naive_s (for all 784 pixels), naive_rows_timed, speedup.
// PyTorch's naive loop on the same network: benchmarks/pixelcnn_sampling_torch.py.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "genmod/genmod.hpp"

using namespace genmod;

namespace {

double seconds(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Model>
void bench(const std::string& name, Model& model, std::int64_t batch, std::int64_t naive_rows, int repeats) {
  std::vector<double> cached;
  for (int r = 0; r < repeats; ++r) {
    Generator g(1, static_cast<std::uint64_t>(r));
    cached.push_back(seconds([&] { (void)model.sample(batch, {.cached = true}, g); }));
  }
  // The naive loop over the first naive_rows rows: every later pixel known.
  Tensor<float> images = zeros<float>(Shape{batch, 1, 28, 28});
  Tensor<float> known = ones<float>(images.shape());
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t p = 0; p < naive_rows * 28; ++p) known[b * 784 + p] = 0;
  Generator g(2);
  const double naive_part = seconds([&] { (void)model.complete(images, known, {.cached = false}, g); });
  const double naive = naive_part * 28.0 / static_cast<double>(naive_rows);
  const double c = median(cached);
  std::printf(
      "{\"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"cached_s\": %.4f, \"naive_s\": %.3f, "
      "\"naive_rows_timed\": %lld, \"speedup\": %.1f}\n",
      name.c_str(), static_cast<long long>(batch), get_num_threads(), c, naive, static_cast<long long>(naive_rows),
      naive / c);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string models = "pixelcnn gated row-lstm diagonal-bilstm";
  std::int64_t batch = 64, naive_rows = 28;
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError(a + ": expected a value");
      return argv[++i];
    };
    if (a == "--models") models = value();
    else if (a == "--batch") batch = std::stoll(value());
    else if (a == "--naive-rows") naive_rows = std::stoll(value());
    else if (a == "--repeats") repeats = std::stoi(value());
    else if (a == "--threads") set_num_threads(std::stoi(value()));
    else {
      std::fprintf(stderr,
                   "usage: bench_sampling [--models \"pixelcnn gated row-lstm diagonal-bilstm\"] [--batch 64] "
                   "[--naive-rows R] [--repeats K] [--threads N]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (batch < 1 || naive_rows < 1 || naive_rows > 28 || repeats < 1)
    throw ValueError("expected --batch >= 1, --naive-rows in 1..28 and --repeats >= 1");
  std::istringstream names(models);
  for (std::string name; names >> name;) {
    manual_seed(0);
    if (name == "pixelcnn") {
      models::PixelCNN<float> m;
      bench(name, m, batch, naive_rows, repeats);
    } else if (name == "gated") {
      models::GatedPixelCNN<float> m;
      bench(name, m, batch, naive_rows, repeats);
    } else if (name == "row-lstm") {
      models::PixelRNN<float> m;
      bench(name, m, batch, naive_rows, repeats);
    } else if (name == "diagonal-bilstm") {
      models::PixelRNN<float> m({.layer = models::PixelRNNLayer::diagonal_bilstm});
      bench(name, m, batch, naive_rows, repeats);
    } else {
      throw ValueError("--models: expected pixelcnn, gated, row-lstm or diagonal-bilstm, got '" + name + "'");
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_sampling: %s\n", e.what());
  return 1;
}
