#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "genmod/core/parallel.hpp"
#include "genmod/data/images/image_file.hpp"
#include "genmod/data/images/image_folder.hpp"
#include "genmod/data/images/image_loader.hpp"
#include "genmod/data/images/image_ops.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/trainer.hpp"
#include "support/temp_dir.hpp"

namespace data_images_image_loader_test {

using namespace genmod;
using Catch::Matchers::Contains;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// N images [1, 2, 3] whose every pixel holds the image's index (N <= 256): the id survives /255.
// Conditions [N, 2] are (i, 2 i), labels 100 + i.
struct Numbered {
  Tensor<std::uint8_t> images;
  Tensor<float> conditions;
  Tensor<std::int64_t> labels;
  explicit Numbered(std::int64_t n) : images(Shape{n, 1, 2, 3}), conditions(Shape{n, 2}), labels(Shape{n}) {
    for (std::int64_t i = 0; i < n; ++i) {
      for (int k = 0; k < 6; ++k) images[i * 6 + k] = static_cast<std::uint8_t>(i);
      conditions[2 * i] = static_cast<float>(i);
      conditions[2 * i + 1] = static_cast<float>(2 * i);
      labels[i] = 100 + i;
    }
  }
};

std::int64_t id_of(const data::ImageBatch& b, std::int64_t i) {
  return static_cast<std::int64_t>(b.x(i, 0, 1, 1) * 255.f + 0.5f);
}

// What one batch says: its ids (checking that conditions and labels follow them), index and window.
struct Seen {
  std::vector<std::int64_t> ids;
  std::int64_t index;
  SampleWindow window;
};

Seen seen(const data::ImageBatch& b) {
  Seen s{{}, b.index, b.window};
  for (std::int64_t i = 0; i < b.size(); ++i) {
    const std::int64_t id = id_of(b, i);
    CHECK(b.c(i, 0) == static_cast<float>(id));
    CHECK(b.c(i, 1) == static_cast<float>(2 * id));
    CHECK(b.y[i] == 100 + id);
    s.ids.push_back(id);
  }
  return s;
}

// A batch of the reference Loader over the indices (its labels are the sample indices).
Seen seen_indices(const data::Batch& b) {
  Seen s{{}, b.index, b.window};
  for (std::int64_t i = 0; i < b.size(); ++i) s.ids.push_back(b.y[i]);
  return s;
}

bool operator==(const Seen& a, const Seen& b) {
  return a.ids == b.ids && a.index == b.index && a.window.first == b.window.first && a.window.count == b.window.count &&
         a.window.total == b.window.total;
}

bool equal(const Tensor<float>& a, const Tensor<float>& b) {
  return a.defined() == b.defined() && a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

// A Loader over N samples whose labels are their indices: the reference order.
data::Loader reference(std::int64_t n, const data::LoaderOptions& o) {
  Tensor<std::int64_t> ids(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) ids[i] = i;
  return data::Loader(data::Dataset(zeros<float>(Shape{n, 1}), ids), o);
}

void put(const TempDir& dir, const std::string& rel, const Tensor<std::uint8_t>& chw) {
  const fs::path p = dir.path / rel;
  fs::create_directories(p.parent_path());
  data::write_image(p.string(), chw);
}

Tensor<std::uint8_t> pattern(std::int64_t c, std::int64_t h, std::int64_t w, int seed) {
  Tensor<std::uint8_t> t(Shape{c, h, w});
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<std::uint8_t>((i * 37 + seed * 101) % 251);
  return t;
}

}  // namespace

TEST_CASE("ImageLoader orders and shards batches exactly as data::Loader", "[images]") {
  const Numbered d(23);
  const std::vector<data::LoaderOptions> cases = {
      {.batch_size = 4},
      {.batch_size = 4, .shuffle = true, .seed = 9},
      {.batch_size = 5, .shuffle = true, .seed = 3, .drop_last = true},
      {.batch_size = 3, .shuffle = true, .seed = 1, .rank = 1, .world_size = 3},
      {.batch_size = 2, .shuffle = true, .seed = 1, .rank = 2, .world_size = 4},
  };
  for (const auto& o : cases) {
    INFO("batch_size " << o.batch_size << " shuffle " << o.shuffle << " drop_last " << o.drop_last << " rank " << o.rank
                       << "/" << o.world_size);
    data::ImageLoader images(d.images, d.conditions, d.labels, {.loader = o});
    data::Loader ref = reference(23, o);
    CHECK(images.size() == ref.num_batches());
    CHECK(images.batches_per_epoch() == ref.num_batches());
    for (int epoch = 0; epoch < 3; ++epoch) {
      std::vector<Seen> a, b;
      for (auto& batch : images) a.push_back(seen(batch));
      for (auto& batch : ref) b.push_back(seen_indices(batch));
      CHECK(a == b);
      CHECK(images.order() == ref.order());
    }
    // The endless stream and set_epoch follow the Loader too.
    images.set_epoch(1);
    ref.set_epoch(1);
    for (int k = 0; k < 3 * images.size() + 1; ++k) CHECK(seen(images.next()) == seen_indices(ref.next()));
    CHECK(images.epoch() == ref.epoch());
  }
}

TEST_CASE("ImageLoader's rank shards cover each epoch once", "[images]") {
  const Numbered d(29);
  for (const bool drop_last : {false, true}) {
    std::vector<std::int64_t> all;
    std::vector<std::int64_t> order;
    for (int rank = 0; rank < 3; ++rank) {
      data::ImageLoader loader(
          d.images, d.conditions, d.labels,
          {.loader = {
               .batch_size = 4, .shuffle = true, .seed = 5, .drop_last = drop_last, .rank = rank, .world_size = 3}});
      loader.set_epoch(2);
      for (auto& batch : loader) {
        const auto s = seen(batch);
        CHECK(s.window.count == batch.size());
        all.insert(all.end(), s.ids.begin(), s.ids.end());
      }
      order = loader.order();
    }
    // 29 = 2 x 12 + 5: the tail of 5 is split 2/2/1 unless drop_last.
    const std::size_t expected = drop_last ? 24 : 29;
    REQUIRE(all.size() == expected);
    std::sort(all.begin(), all.end());
    std::vector<std::int64_t> want(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(expected));
    std::sort(want.begin(), want.end());
    CHECK(all == want);  // disjoint, and together the epoch's first `expected` samples
  }
}

TEST_CASE("ImageLoader flips reproducibly, about the given fraction, independently of threads", "[images]") {
  // Image i is [1, 1, 2]: (i mod 100, 200): flipped, it reads (200, i mod 100).
  const std::int64_t n = 3000;
  Tensor<std::uint8_t> images(Shape{n, 1, 1, 2});
  for (std::int64_t i = 0; i < n; ++i) {
    images[2 * i] = static_cast<std::uint8_t>(i % 100);
    images[2 * i + 1] = 200;
  }
  Tensor<std::int64_t> ids(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) ids[i] = i;
  const auto flips = [&](std::int64_t batch_size, int threads, std::int64_t epoch) {
    const int saved = get_num_threads();
    set_num_threads(threads);
    data::ImageLoader loader(
        images, {}, ids, {.loader = {.batch_size = batch_size, .shuffle = true, .seed = 11}, .flip_probability = 0.3f});
    loader.set_epoch(epoch);
    std::vector<int> out(static_cast<std::size_t>(n), -1);
    for (auto& b : loader) {
      for (std::int64_t i = 0; i < b.size(); ++i) {
        const std::int64_t id = b.y[i];
        const bool flipped = b.x(i, 0, 0, 0) == 200.f * (1.f / 255.f);
        CHECK(b.x(i, 0, 0, flipped ? 1 : 0) == static_cast<float>(id % 100) * (1.f / 255.f));
        CHECK(flipped == loader.flipped(epoch, id));
        out[static_cast<std::size_t>(id)] = flipped;
      }
    }
    set_num_threads(saved);
    return out;
  };
  const auto a = flips(64, 2, 0);
  CHECK(std::count(a.begin(), a.end(), -1) == 0);
  const double fraction = static_cast<double>(std::count(a.begin(), a.end(), 1)) / static_cast<double>(n);
  CHECK(std::abs(fraction - 0.3) < 0.05);  // 6 standard deviations of a binomial(3000, 0.3) fraction
  CHECK(flips(64, 2, 0) == a);             // reproducible
  CHECK(flips(7, 1, 0) == a);              // whatever the batch size and thread count
  const auto b = flips(64, 2, 1);
  CHECK(b != a);  // a new draw every epoch
  const double same =
      static_cast<double>(std::inner_product(a.begin(), a.end(), b.begin(), 0, std::plus<>(), std::equal_to<>())) /
      static_cast<double>(n);
  CHECK(std::abs(same - 0.58) < 0.05);  // independent draws agree with chance 0.3^2 + 0.7^2

  // Probability 0 and 1, and a flip of a real image is flip_horizontal's.
  Tensor<std::uint8_t> one(Shape{1, 3, 4, 5});
  const auto p = pattern(3, 4, 5, 1);
  std::copy(p.begin(), p.end(), one.begin());
  const auto mirrored = data::flip_horizontal(p);
  for (const float prob : {0.f, 1.f}) {
    data::ImageLoader loader(one, {}, {}, {.flip_probability = prob});
    const auto& x = loader.next().x;
    const auto& want = prob == 1.f ? mirrored : p;
    for (std::int64_t k = 0; k < want.numel(); ++k) CHECK(x[k] == static_cast<float>(want[k]) * (1.f / 255.f));
  }
}

TEST_CASE("ImageLoader gives the same batches from files as from their decoded tensor", "[images]") {
  TempDir dir;
  for (int i = 0; i < 11; ++i)
    put(dir, (i % 3 == 0 ? "cat/" : "dog/") + std::to_string(i) + ".png", pattern(3, 6 + i % 2, 8, i));
  put(dir, "dog/x.jpg", pattern(3, 9, 9, 20));
  const data::ImageFolder folder(dir.path.string(), {.labels_from_subfolders = true});
  REQUIRE(folder.size() == 12);
  const data::ImageTransform t{.height = 5, .width = 5};
  Tensor<float> conditions(Shape{12, 3});
  for (std::int64_t i = 0; i < conditions.numel(); ++i) conditions[i] = static_cast<float>(i);
  const data::ImageLoaderOptions o{.loader = {.batch_size = 5, .shuffle = true, .seed = 2}, .flip_probability = 0.5f};

  data::ImageLoader from_files(folder, t, conditions, o);
  data::ImageLoader from_tensor(data::decode_images(folder, t), conditions, folder.labels(), o);
  CHECK(from_files.image_shape() == (Shape{3, 5, 5}));
  CHECK(from_files.num_images() == 12);
  for (int epoch = 0; epoch < 2; ++epoch) {
    auto a = from_files.begin();
    auto b = from_tensor.begin();
    int batches = 0;
    for (; a != from_files.end() && b != from_tensor.end(); ++a, ++b, ++batches) {
      CHECK(equal(a->x, b->x));
      CHECK(equal(a->c, b->c));
      REQUIRE(a->y.defined());
      CHECK(std::equal(a->y.begin(), a->y.end(), b->y.begin(), b->y.end()));
      CHECK(a->index == b->index);
      for (std::int64_t i = 0; i < a->size(); ++i) {
        const std::int64_t img = from_files.order()[static_cast<std::size_t>(a->index * 5 + i)];
        CHECK(a->c(i, 0) == static_cast<float>(3 * img));  // conditions follow their image
        CHECK(a->y[i] == folder.labels()[img]);            // and so do labels
        CHECK(a->y[i] == (folder.files()[static_cast<std::size_t>(img)][0] == 'c' ? 0 : 1));
      }
    }
    CHECK(a == from_files.end());
    CHECK(b == from_tensor.end());
    CHECK(batches == 3);
  }

  // A corrupt file fails the batch that holds it, naming the file.
  {
    std::ofstream f(folder.path(4), std::ios::binary | std::ios::trunc);
    f << "garbage";
  }
  data::ImageLoader broken(folder, t, {}, {.loader = {.batch_size = 12}});
  try {
    broken.next();
    FAIL("expected an IOError");
  } catch (const IOError& e) {
    CHECK_THAT(std::string(e.what()), Contains(folder.files()[4]));
  }
}

TEST_CASE("ImageLoader checks its inputs and reuses its batch tensors", "[images]") {
  const Numbered d(10);
  CHECK_THROWS_AS(data::ImageLoader(d.images, Tensor<float>(Shape{9, 2})), ShapeError);
  CHECK_THROWS_AS(data::ImageLoader(d.images, d.conditions, Tensor<std::int64_t>(Shape{10, 1})), ShapeError);
  CHECK_THROWS_AS(data::ImageLoader(Tensor<std::uint8_t>(Shape{10, 2, 3})), ShapeError);
  CHECK_THROWS_AS(data::ImageLoader(d.images, {}, {}, {.flip_probability = 1.5f}), ValueError);
  CHECK_THROWS_AS(data::ImageLoader(d.images, {}, {}, {.loader = {.batch_size = 0}}), ValueError);

  // Without conditions or labels those stay undefined.
  data::ImageLoader plain(d.images, {}, {}, {.loader = {.batch_size = 4}});
  for (auto& b : plain) {
    CHECK_FALSE(b.c.defined());
    CHECK_FALSE(b.y.defined());
  }

  // Steady state: the same buffers batch after batch, unless the caller keeps one.
  data::ImageLoader loader(d.images, d.conditions, d.labels, {.loader = {.batch_size = 2}});  // 5 batches of 2
  const float* x0 = loader.next().x.data();
  const float* c0 = loader.next().c.data();
  CHECK(loader.next().x.data() == x0);
  CHECK(loader.next().c.data() == c0);
  const Tensor<float> kept = loader.next().x;
  CHECK(loader.next().x.data() != kept.data());  // the next epoch's first batch
}

TEST_CASE("Trainer fits from an ImageLoader, and a resumed run sees the same batches and flips", "[images][train]") {
  // A linear model of [pixels, conditions] trained on the Numbered set with random flips:
  // 2 epochs straight equal 1 epoch, a checkpoint, and 1 more epoch in fresh objects.
  const int threads = get_num_threads();
  set_num_threads(1);
  const Numbered d(23);
  struct Setup {
    nn::Linear<float> net;
    optim::Adam<float> opt;
    data::ImageLoader loader;
    explicit Setup(const Numbered& d)
        : net((manual_seed(4), nn::Linear<float>(6 + 2, 1))),
          opt(net.named_parameters(), {.lr = 1e-2}),
          loader(d.images, d.conditions, d.labels,
                 {.loader = {.batch_size = 5, .shuffle = true, .seed = 2}, .flip_probability = 0.5f}) {}
    Var<float> loss(const data::Batch& b) {
      // Pixels differ between flipped and unflipped images only through their position: weight them.
      Var<float> x = flatten(Var<float>(b.x), 1) * Var<float>(from_data<float>({1, 6}, {1, 2, 3, 4, 5, 6}));
      return mean(square(net(concat({x, Var<float>(b.c) * 0.01f}, 1)) - 1.0f));
    }
    std::vector<float> weights() {
      std::vector<float> out;
      for (auto& p : net.parameters()) out.insert(out.end(), p.value().begin(), p.value().end());
      return out;
    }
  };
  TempDir a_dir, b_dir;
  Setup a(d);
  train::Trainer ta({.epochs = 2, .out_dir = a_dir.path.string(), .progress = train::Progress::off});
  ta.add_model("model", a.net, &a.opt);
  const auto ra = ta.fit(
      a.loader, [&](const data::Batch& b) { return a.loss(b); }, a.opt);
  CHECK(ra.step == 2 * 5);
  {
    Setup b1(d);
    train::Trainer tb({.epochs = 1, .out_dir = b_dir.path.string(), .progress = train::Progress::off});
    tb.add_model("model", b1.net, &b1.opt);
    tb.fit(
        b1.loader, [&](const data::Batch& b) { return b1.loss(b); }, b1.opt);
  }
  Setup b2(d);
  train::Trainer tb({.epochs = 2,
                     .out_dir = b_dir.path.string(),
                     .resume = (b_dir.path / "checkpoint.npz").string(),
                     .progress = train::Progress::off});
  tb.add_model("model", b2.net, &b2.opt);
  const auto rb = tb.fit(
      b2.loader, [&](const data::Batch& b) { return b2.loss(b); }, b2.opt);
  CHECK(rb.step == 2 * 5);
  CHECK(b2.weights() == a.weights());
  set_num_threads(threads);
}

}  // namespace data_images_image_loader_test
