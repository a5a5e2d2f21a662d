#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "genmod/data/fashion_mnist.hpp"
#include "genmod/eval/feature_classifier.hpp"
#include "genmod/io/model_checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace eval_feature_classifier_test {

using namespace genmod;

namespace {

bool fashion_mnist_available() {
  const std::string dir = data::FashionMNIST::resolve_dir("");
  for (const char* f : {"/train-labels-idx1-ubyte", "/t10k-labels-idx1-ubyte"})
    if (!std::filesystem::exists(dir + f + std::string(".gz")) && !std::filesystem::exists(dir + f)) return false;
  return true;
}

/// n synthetic 28x28 images in [0, 1] whose class c is a bright horizontal band at rows
/// [2c + 4, 2c + 6) over faint uniform noise: learnable, and no data set needed.
struct Synthetic {
  Tensor<float> x;
  Tensor<std::int64_t> y;
};
Synthetic synthetic(std::int64_t n, std::uint64_t seed) {
  Generator g(seed);
  Synthetic s{rand<float>({n, 1, 28, 28}, g), Tensor<std::int64_t>(Shape{n})};
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = i % 10;
    s.y[i] = c;
    for (std::int64_t r = 0; r < 28; ++r)
      for (std::int64_t col = 0; col < 28; ++col) {
        float& p = s.x(i, 0, r, col);
        p = (r >= 2 * c + 4 && r < 2 * c + 6) ? 0.8f + 0.2f * p : 0.2f * p;
      }
  }
  return s;
}

bool same_weights(eval::FeatureClassifier& a, eval::FeatureClassifier& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t k = 0; k < pa.size(); ++k) {
    const Tensor<float>& ta = pa[k].parameter.value();
    const Tensor<float>& tb = pb[k].parameter.value();
    if (pa[k].name != pb[k].name || !(ta.shape() == tb.shape())) return false;
    for (std::int64_t i = 0; i < ta.numel(); ++i)
      if (ta.data()[i] != tb.data()[i]) return false;
  }
  return true;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("FeatureClassifier: layers, feature and logit shapes, batching", "[eval][feature_classifier]") {
  Generator init(3);
  eval::FeatureClassifier net(&init);
  // conv 1->32 (288 + 32), conv 32->64 (18432 + 64), linear 3136->128 (401408 + 128), linear 128->10 (1280 + 10).
  CHECK(net.num_parameters() == 288 + 32 + 18432 + 64 + 401408 + 128 + 1280 + 10);
  CHECK(net.named_parameters().front().name == "conv1.weight");
  CHECK(std::isnan(net.test_accuracy()));

  const Synthetic s = synthetic(7, 1);
  const Tensor<float> f = net.features(s.x);
  REQUIRE(f.shape() == (Shape{7, 128}));
  float min_feature = 1;
  for (float v : f) min_feature = std::min(min_feature, v);
  CHECK(min_feature == 0.f);  // ReLU outputs: none negative, some cut to 0
  // Blocks of 3 images (the last one of 1) give the features of the whole batch at once.
  const Tensor<float> f3 = net.features(s.x, 3);
  double batching_diff = 0;
  for (std::int64_t i = 0; i < f.numel(); ++i) batching_diff = std::max(batching_diff, std::abs(double(f3[i]) - f[i]));
  CHECK(batching_diff < 1e-6);

  // The logits are the last layer applied to the features; predict is their argmax.
  const Tensor<float> logits = net.logits(Var<float>(s.x)).value();
  REQUIRE(logits.shape() == (Shape{7, 10}));
  const Tensor<float> from_features = net.fc2(Var<float>(f)).value();
  double head_diff = 0;
  for (std::int64_t i = 0; i < logits.numel(); ++i)
    head_diff = std::max(head_diff, std::abs(double(from_features[i]) - logits[i]));
  CHECK(head_diff < 1e-5);
  const std::vector<std::int64_t> pred = net.predict(s.x);
  REQUIRE(pred.size() == 7);
  for (std::int64_t i = 0; i < 7; ++i) {
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < 10; ++c)
      if (logits(i, c) > logits(i, best)) best = c;
    CHECK(pred[static_cast<std::size_t>(i)] == best);
  }
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < 7; ++i) correct += pred[static_cast<std::size_t>(i)] == s.y[i];
  CHECK(net.accuracy(s.x, s.y) == static_cast<double>(correct) / 7);
  // features() switches to evaluation mode only while it runs.
  net.train();
  net.features(s.x);
  CHECK(net.is_training());
}

TEST_CASE("FeatureClassifier: bad shapes, pixels, labels and options are refused",
          "[eval][feature_classifier][errors]") {
  eval::FeatureClassifier net;
  const Synthetic s = synthetic(4, 2);
  CHECK_THROWS_AS(net.features(Tensor<float>(Shape{4, 784})), ShapeError);
  CHECK_THROWS_AS(net.features(Tensor<float>(Shape{4, 3, 28, 28})), ShapeError);
  CHECK_THROWS_AS(net.features(Tensor<float>(Shape{4, 1, 28, 27})), ShapeError);
  CHECK_THROWS_AS(net.features(Tensor<float>(Shape{0, 1, 28, 28})), ShapeError);
  CHECK_THROWS_AS(net.features(Tensor<float>()), ShapeError);
  CHECK_THROWS_AS(net.logits(Var<float>(Tensor<float>(Shape{4, 1, 32, 32}))), ShapeError);
  CHECK_THROWS_AS(net.predict(Tensor<float>(Shape{28, 28})), ShapeError);
  CHECK_THROWS_WITH(net.features(Tensor<float>(Shape{2, 1, 28, 29})),
                    Catch::Contains("FeatureClassifier::features") && Catch::Contains("[2, 1, 28, 29]"));
  CHECK_THROWS_AS(net.features(s.x, 0), ValueError);

  // Pixels outside [0, 1] (a tanh generator's [-1, 1] output, fed unmapped) and NaN are refused.
  Tensor<float> tanh_like = s.x.clone();
  tanh_like[5] = -0.5f;
  CHECK_THROWS_WITH(net.features(tanh_like), Catch::Contains("expected pixels in [0, 1], got -0.5 at element 5"));
  Tensor<float> nan = s.x.clone();
  nan[9] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(net.predict(nan), ValueError);

  CHECK_THROWS_AS(net.accuracy(s.x, Tensor<std::int64_t>(Shape{3})), ShapeError);
  Tensor<std::int64_t> bad = s.y.clone();
  bad[2] = 10;
  CHECK_THROWS_WITH(net.accuracy(s.x, bad), Catch::Contains("expected labels in [0, 10), got 10 at position 2"));
  CHECK_THROWS_AS(eval::train_feature_classifier(s.x, bad, {.epochs = 1}), ValueError);
  CHECK_THROWS_AS(eval::train_feature_classifier(s.x, s.y.rows(0, 3), {.epochs = 1}), ShapeError);
  CHECK_THROWS_AS(eval::train_feature_classifier(tanh_like, s.y, {.epochs = 1}), ValueError);
  CHECK_THROWS_AS(eval::train_feature_classifier(s.x, s.y, {.epochs = 0}), ValueError);
  CHECK_THROWS_AS(eval::train_feature_classifier(s.x, s.y, {.batch_size = 0}), ValueError);
  CHECK_THROWS_AS(eval::train_feature_classifier(s.x, s.y, {.lr = -1e-3}), ValueError);
  CHECK_THROWS_AS(eval::train_feature_classifier(s.x, s.y, {.lr = std::numeric_limits<double>::infinity()}),
                  ValueError);
  CHECK_THROWS_AS(eval::load_or_train_feature_classifier("", "", {.train_limit = -1}), ValueError);
}

TEST_CASE("train_feature_classifier: the same seed gives the same weights, another seed others",
          "[eval][feature_classifier]") {
  const Synthetic s = synthetic(200, 4);
  const eval::FeatureClassifierOptions o{.epochs = 1, .batch_size = 50, .lr = 2e-3, .seed = 7};
  std::vector<eval::FeatureClassifierEpoch> epochs;
  eval::FeatureClassifier a = eval::train_feature_classifier(
      s.x, s.y, o, [&](eval::FeatureClassifier&, const eval::FeatureClassifierEpoch& e) { epochs.push_back(e); });
  eval::FeatureClassifier b = eval::train_feature_classifier(s.x, s.y, o);
  CHECK(same_weights(a, b));
  eval::FeatureClassifierOptions other = o;
  other.seed = 8;
  eval::FeatureClassifier c = eval::train_feature_classifier(s.x, s.y, other);
  CHECK_FALSE(same_weights(a, c));

  REQUIRE(epochs.size() == 1);
  CHECK(epochs[0].epoch == 1);
  CHECK(epochs[0].epochs == 1);
  CHECK(std::isfinite(epochs[0].loss));
  CHECK(epochs[0].loss > 0);
  CHECK(epochs[0].train_accuracy >= 0);
  CHECK(epochs[0].train_accuracy <= 1);
  CHECK_FALSE(a.is_training());
  CHECK(a.record().train_images == 200);
  CHECK(a.record().options.seed == 7);
  CHECK(a.record().threads == get_num_threads());
}

TEST_CASE("Feature classifier checkpoints: exact round trip, corrupt files are IOErrors",
          "[eval][feature_classifier][io]") {
  test::TempDir dir("genmod_feature_classifier");
  const Synthetic s = synthetic(100, 5);
  eval::FeatureClassifier net =
      eval::train_feature_classifier(s.x, s.y, {.epochs = 1, .batch_size = 25, .lr = 1e-3, .seed = 11});
  const std::string path = dir.file("features.npz");
  // No measured test accuracy: nothing to print with the scores, so no cache.
  CHECK_THROWS_AS(eval::save_feature_classifier(path, net), ValueError);
  CHECK_FALSE(std::filesystem::exists(path));

  const Synthetic held_out = synthetic(30, 6);
  const double acc = net.measure_test_accuracy(held_out.x, held_out.y);
  CHECK(net.test_accuracy() == acc);
  CHECK(net.record().test_images == 30);
  eval::save_feature_classifier(path, net);

  eval::FeatureClassifier loaded = eval::load_feature_classifier(path);
  CHECK(same_weights(net, loaded));
  CHECK(loaded.predict(held_out.x) == net.predict(held_out.x));
  const Tensor<float> fa = net.features(held_out.x), fb = loaded.features(held_out.x);
  std::int64_t differing = 0;
  for (std::int64_t i = 0; i < fa.numel(); ++i) differing += fa[i] != fb[i];
  CHECK(differing == 0);
  const eval::FeatureClassifierRecord& r = loaded.record();
  CHECK(r.test_accuracy == acc);  // written in the shortest form that reads back exactly
  CHECK(r.test_images == 30);
  CHECK(r.train_images == 100);
  CHECK(r.threads == net.record().threads);
  CHECK(r.options.epochs == 1);
  CHECK(r.options.batch_size == 25);
  CHECK(r.options.lr == 1e-3);
  CHECK(r.options.seed == 11);
  CHECK(r.options.train_limit == 0);
  CHECK(loaded.summary() == net.summary());
  CHECK_THAT(loaded.summary(), Catch::Contains("test accuracy (30 images; 1 epochs, batch 25, lr 0.001, seed 11"));

  // Truncated, garbage, missing: IOError naming the file, never a crash.
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 1000);
  for (const std::size_t keep : {bytes.size() / 2, std::size_t{100}, std::size_t{0}}) {
    const std::string truncated = dir.file("truncated.npz");
    write_bytes(truncated, bytes.substr(0, keep));
    INFO("kept " << keep << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(eval::load_feature_classifier(truncated), IOError);
  }
  std::string flipped = bytes;
  for (std::size_t i = 64; i < flipped.size(); i += 97) flipped[i] = static_cast<char>(~flipped[i]);
  write_bytes(dir.file("flipped.npz"), flipped);
  CHECK_THROWS_AS(eval::load_feature_classifier(dir.file("flipped.npz")), IOError);
  CHECK_THROWS_WITH(eval::load_feature_classifier(dir.file("absent.npz")), Catch::Contains("absent.npz"));

  // A checkpoint of something else: no feature classifier metadata.
  eval::FeatureClassifier plain;
  io::save_checkpoint(dir.file("plain.npz"), plain);
  CHECK_THROWS_WITH(eval::load_feature_classifier(dir.file("plain.npz")),
                    Catch::Contains("is not a feature classifier checkpoint"));
}

TEST_CASE("load_or_train_feature_classifier: trains once, then loads; other options are refused or retrained",
          "[eval][feature_classifier][fashion_mnist]") {
  if (!fashion_mnist_available()) {
    WARN("Fashion-MNIST not found (Debian package dataset-fashion-mnist, or GENMOD_DATA_DIR): test skipped");
    return;
  }
  test::TempDir dir("genmod_feature_classifier");
  const std::string cache = dir.file("cache.npz");
  const eval::FeatureClassifierOptions o{.epochs = 1, .batch_size = 100, .lr = 2e-3, .seed = 1, .train_limit = 500};
  std::ostringstream log;
  eval::FeatureClassifier trained = eval::load_or_train_feature_classifier(cache, "", o, &log);
  CHECK(std::filesystem::exists(cache));
  CHECK(trained.record().train_images == 500);
  CHECK(trained.record().test_images == 10000);
  CHECK_THAT(log.str(), Catch::Contains("training on 500 images") && Catch::Contains("epoch 1/1") &&
                            Catch::Contains("saved to " + cache));

  const auto test = data::FashionMNIST::load(data::Split::test);
  const Tensor<float> probe = test.float_images().rows(0, 200);
  std::ostringstream log2;
  eval::FeatureClassifier cached = eval::load_or_train_feature_classifier(cache, "", o, &log2);
  CHECK_THAT(log2.str(), Catch::Contains("loaded " + cache));
  CHECK(cached.predict(probe) == trained.predict(probe));
  CHECK(cached.test_accuracy() == trained.test_accuracy());

  // Another seed: refused, naming the difference, unless retraining is asked for.
  eval::FeatureClassifierOptions other = o;
  other.seed = 2;
  CHECK_THROWS_WITH(eval::load_or_train_feature_classifier(cache, "", other),
                    Catch::Contains(cache) && Catch::Contains("seed: 1 in the cache, 2 requested"));
  eval::FeatureClassifier retrained =
      eval::load_or_train_feature_classifier(cache, "", other, nullptr, eval::CacheMismatch::retrain);
  CHECK(retrained.record().options.seed == 2);
  CHECK(eval::load_feature_classifier(cache).record().options.seed == 2);

  // A corrupt cache is an IOError even when retraining is allowed: it is never silently replaced.
  const std::string bytes = read_bytes(cache);
  write_bytes(cache, bytes.substr(0, bytes.size() / 3));
  CHECK_THROWS_AS(eval::load_or_train_feature_classifier(cache, "", other, nullptr, eval::CacheMismatch::retrain),
                  IOError);
  // A data directory without the files: IOError naming the package.
  CHECK_THROWS_WITH(eval::load_or_train_feature_classifier("", dir.file("no-data"), o),
                    Catch::Contains("dataset-fashion-mnist"));
}

TEST_CASE("FeatureClassifier learns Fashion-MNIST from 6000 images in 3 epochs",
          "[eval][feature_classifier][fashion_mnist][slow]") {
  if (!fashion_mnist_available()) {
    WARN("Fashion-MNIST not found (Debian package dataset-fashion-mnist, or GENMOD_DATA_DIR): test skipped");
    return;
  }
  const auto train = data::FashionMNIST::load(data::Split::train);
  const auto test = data::FashionMNIST::load(data::Split::test);
  const Tensor<float> tx = test.float_images().rows(0, 2000);
  const Tensor<std::int64_t> ty = test.labels.rows(0, 2000);
  eval::FeatureClassifier net =
      eval::train_feature_classifier(train.float_images().rows(0, 6000), train.labels.rows(0, 6000),
                                     {.epochs = 3, .batch_size = 64, .lr = 2e-3, .seed = 0});
  const double acc = net.accuracy(tx, ty);
  INFO("test accuracy on 2000 images: " << acc);
  // Chance is 10 %. This recipe gave 85.0 % on these 2000 images at 2 threads (on all 10000: 83.9 %
  // with seed 0, 84.2 % with seed 1); the bar leaves room for other seeds and machines' rounding,
  // not for a network that does not learn. 25 s at -O1 on a busy machine: [slow]. The full recipe
  // (the default options on 60000 images) reaches 91.78 % (feature_classifier.hpp).
  CHECK(acc >= 0.80);
}

}  // namespace eval_feature_classifier_test
