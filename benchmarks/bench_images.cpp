// Does decoding keep up with training? Images per second through data::ImageLoader (PNG decode +
// resize + batch, from the files; and batching alone, from the decoded cache) against the images
// per second the cvae example's attribute-mode training step consumes at the same size, at 1 and
// 2 threads, alternating in one run. Prints one JSON line per measurement.
//
//   bench_images [--data DIR | --source-size S0 --source-format png|jpg] [--size S] [--batch B]
//                [--batches N] [--rounds R]
//
// --data: a folder of images (every PNG/JPEG under it); default: 2048 Shapes images of side
// --source-size (64) (data/synthetic_shapes.hpp) written as --source-format (png) files to a
// temporary directory first (256 and jpg stand in for CelebA's 218 x 178 JPEGs). --size: the side
// images are resized to (default 32; the model needs 16, 32, 64, ...).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <genmod/data/images.hpp>
#include <genmod/genmod.hpp>

#include "../examples/cvae/attribute_nets.hpp"

using namespace genmod;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Writes n Shapes images of side `size` as PNG or JPEG files (`ext`) under dir/images; returns the folder.
std::string write_shapes(const fs::path& dir, std::int64_t n, std::int64_t size, const std::string& ext) {
  const data::ShapesSet set = data::make_shapes({.count = n, .size = size, .seed = 0});
  fs::create_directories(dir / "images");
  const std::int64_t per = 3 * size * size;
  parallel_for(n, kParallelGrain, [&](std::int64_t lo, std::int64_t hi) {  // one PNG each: always worth a thread
    for (std::int64_t i = lo; i < hi; ++i) {
      Tensor<std::uint8_t> chw(Shape{3, size, size});
      std::copy(set.images.data() + i * per, set.images.data() + (i + 1) * per, chw.data());
      char name[32];
      std::snprintf(name, sizeof name, "%06lld.%s", static_cast<long long>(i + 1), ext.c_str());
      data::write_image((dir / "images" / name).string(), chw);
    }
  });
  return (dir / "images").string();
}

// Images per second over `batches` batches of `loader` (a new epoch when one runs out).
double loader_rate(data::ImageLoader& loader, std::int64_t batches) {
  std::int64_t images = 0;
  const auto t0 = Clock::now();
  for (std::int64_t b = 0; b < batches; ++b) images += loader.next().size();
  return static_cast<double>(images) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string data_dir, source_format = "png";
  std::int64_t size = 32, batch = 128, batches = 20, rounds = 3, source_size = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError(a + ": expected a value");
      return argv[++i];
    };
    if (a == "--data")
      data_dir = value();
    else if (a == "--size")
      size = std::stoll(value());
    else if (a == "--batch")
      batch = std::stoll(value());
    else if (a == "--batches")
      batches = std::stoll(value());
    else if (a == "--rounds")
      rounds = std::stoll(value());
    else if (a == "--source-size")
      source_size = std::stoll(value());
    else if (a == "--source-format")
      source_format = value();
    else {
      std::fprintf(stderr,
                   "usage: bench_images [--data DIR | --source-size S0 --source-format png|jpg] [--size S] [--batch B] "
                   "[--batches N] [--rounds R]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  // The generated set's directory, removed on every way out of main.
  struct Scratch {
    fs::path path;
    ~Scratch() {
      std::error_code ec;
      if (!path.empty()) fs::remove_all(path, ec);
    }
  } scratch;
  if (data_dir.empty()) {
    scratch.path = fs::temp_directory_path() / ("genmod_bench_images_" + std::to_string(::getpid()));
    if (source_format != "png" && source_format != "jpg")
      throw ValueError("--source-format: expected png or jpg, got '" + source_format + "'");
    data_dir = write_shapes(scratch.path, 2048, source_size, source_format);
  }
  const data::ImageFolder folder(data_dir);
  const data::ImageTransform transform{.channels = data::ImageChannels::rgb, .height = size, .width = size};
  const Tensor<std::uint8_t> decoded = data::decode_images(folder, transform);
  const std::int64_t n = folder.size(), attrs = 8;
  Tensor<float> conditions(Shape{n, attrs});
  Generator cg(5);
  fill_uniform(conditions, cg);
  for (auto& v : conditions) v = v < 0.5f ? 0.f : 1.f;
  const data::LoaderOptions lo{.batch_size = batch, .shuffle = true, .seed = 1};
  data::ImageLoader from_files(folder, transform, conditions, {.loader = lo});
  data::ImageLoader from_cache(decoded, conditions, {}, {.loader = lo});

  manual_seed(0);
  cvae_attributes::CVAE cvae(cvae_attributes::make_encoder(size, attrs, 16),
                             cvae_attributes::make_decoder(size, attrs, 16), dist::Bernoulli{}, {.latent_dim = 16},
                             {.condition_dim = attrs});
  optim::Adam adam{cvae.named_parameters(), {.lr = 1e-3}};
  auto train_rate = [&](std::int64_t steps) {
    std::int64_t images = 0;
    const auto t0 = Clock::now();
    for (std::int64_t s = 0; s < steps; ++s) {
      const data::Batch& b = from_cache.next();
      Tape<float> tape;
      Var<float> loss = cvae.loss(Var<float>(b.x), Var<float>(b.c)).loss;
      adam.zero_grad();
      tape.backward(loss);
      adam.step();
      images += b.size();
    }
    return static_cast<double>(images) / seconds_since(t0);
  };
  train_rate(2);  // warm-up: pools, first-touch pages
  std::printf("# %lld images under %s, resized to %lldx%lld, batch %lld\n", static_cast<long long>(n), data_dir.c_str(),
              static_cast<long long>(size), static_cast<long long>(size), static_cast<long long>(batch));
  for (std::int64_t r = 0; r < rounds; ++r)
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      const double files = loader_rate(from_files, batches);
      const double cache = loader_rate(from_cache, batches);
      const double train = train_rate(std::max<std::int64_t>(2, batches / 4));
      std::printf(
          "{\"round\": %lld, \"threads\": %d, \"size\": %lld, \"files_images_per_s\": %.0f, \"cache_images_per_s\": "
          "%.0f, "
          "\"train_images_per_s\": %.0f, \"files_over_train\": %.2f}\n",
          static_cast<long long>(r), threads, static_cast<long long>(size), files, cache, train, files / train);
      std::fflush(stdout);
    }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_images: %s\n", e.what());
  return 1;
}
