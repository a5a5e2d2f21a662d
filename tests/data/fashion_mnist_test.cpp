#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "genmod/data/fashion_mnist.hpp"
#include "genmod/data/loader.hpp"

namespace data_fashion_mnist_test {

using namespace genmod;

namespace {

bool real_data_available() {
  const std::string dir = data::FashionMNIST::resolve_dir("");
  return std::filesystem::exists(dir + "/t10k-labels-idx1-ubyte.gz") ||
         std::filesystem::exists(dir + "/t10k-labels-idx1-ubyte");
}

}  // namespace

TEST_CASE("Fashion-MNIST t10k loads with the known first labels and pixels", "[data][fashion_mnist]") {
  // The project's scripts/install-deps.sh installs the data set; a missing one is a failure here.
  INFO("Fashion-MNIST must be installed (Debian package dataset-fashion-mnist, or GENMOD_DATA_DIR)");
  REQUIRE(real_data_available());
  const auto test = data::FashionMNIST::load(data::Split::test);
  REQUIRE(test.images.shape() == (Shape{10000, 28, 28}));
  REQUIRE(test.labels.shape() == (Shape{10000}));
  // The first t10k labels: ankle boot, pullover, trouser, trouser, shirt, trouser, coat, shirt.
  const std::int64_t first[] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (int i = 0; i < 10; ++i) CHECK(test.labels[i] == first[i]);
  CHECK(data::FashionMNIST::class_name(test.labels[0]) == "Ankle boot");
  // Recognized by its labels' fingerprint: the class names come with it, and the log line names the files.
  CHECK(test.is_fashion_mnist());
  REQUIRE(test.class_names.size() == 10);
  CHECK(test.class_names[9] == "Ankle boot");
  CHECK(test.class_label(5) == "5 (Sandal)");
  const std::string dir = data::FashionMNIST::resolve_dir("");
  CHECK(test.images_path.rfind(dir + "/t10k-images-idx3-ubyte", 0) == 0);
  CHECK(test.labels_path.rfind(dir + "/t10k-labels-idx1-ubyte", 0) == 0);
  CHECK(test.description() == "Fashion-MNIST test split (10000 images from " + dir + ")");
  const auto train = data::FashionMNIST::load(data::Split::train);
  CHECK(train.is_fashion_mnist());
  CHECK(train.description() == "Fashion-MNIST train split (60000 images from " + dir + ")");
  std::int64_t sum = 0;
  for (int i = 0; i < 784; ++i) sum += test.images[i];
  CHECK(sum == 33456);               // pixel sum of the first image
  CHECK(test.images(0, 0, 0) == 0);  // background is black

  const auto nchw = test.float_images();
  CHECK(nchw.shape() == (Shape{10000, 1, 28, 28}));
  CHECK(nchw[0] == 0.f);
  const auto flat = test.float_images(data::ImageLayout::flat);
  CHECK(flat.shape() == (Shape{10000, 784}));
  float mx = 0;
  for (std::int64_t i = 0; i < 784; ++i) mx = std::max(mx, flat[i]);
  CHECK(mx == 1.f);  // the first image has a white pixel, scaled to 1

  // The design's idiom: a Loader straight from the split.
  int batches = 0;
  for (auto& batch : data::Loader{test, {.batch_size = 2500, .shuffle = true, .seed = 0}}) {
    CHECK(batch.x.shape() == (Shape{2500, 1, 28, 28}));
    ++batches;
  }
  CHECK(batches == 4);
}

TEST_CASE("Fashion-MNIST names the Debian package and the path when files are missing", "[data][fashion_mnist]") {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("genmod_no_data_" + std::to_string(::getpid()))).string();
  CHECK_THROWS_WITH(data::FashionMNIST::load(data::Split::train, dir),
                    Catch::Contains("dataset-fashion-mnist") && Catch::Contains(dir + "/train-images-idx3-ubyte.gz"));
  // GENMOD_DATA_DIR is honoured when no directory is given.
  const char* old = std::getenv("GENMOD_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("GENMOD_DATA_DIR", dir.c_str(), 1);
  CHECK(data::FashionMNIST::resolve_dir("") == dir);
  CHECK_THROWS_WITH(data::FashionMNIST::load(data::Split::test), Catch::Contains(dir + "/t10k-images-idx3-ubyte"));
  if (old)
    ::setenv("GENMOD_DATA_DIR", saved.c_str(), 1);
  else
    ::unsetenv("GENMOD_DATA_DIR");
  CHECK(data::FashionMNIST::resolve_dir("/x") == "/x");
}

TEST_CASE("Fashion-MNIST checks the files agree", "[data][fashion_mnist]") {
  const auto dir = std::filesystem::temp_directory_path() / ("genmod_fm_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  data::write_idx((dir / "t10k-images-idx3-ubyte").string(), zeros<std::uint8_t>({3, 28, 28}));
  data::write_idx((dir / "t10k-labels-idx1-ubyte.gz").string(), zeros<std::uint8_t>({2}), {.gzip = true});
  CHECK_THROWS_WITH(data::FashionMNIST::load(data::Split::test, dir.string()),
                    Catch::Contains("t10k-labels-idx1-ubyte.gz") && Catch::Contains("expected labels of shape [3]"));
  data::write_idx((dir / "t10k-labels-idx1-ubyte.gz").string(), from_data<std::uint8_t>({3}, {1, 2, 10}),
                  {.gzip = true});
  CHECK_THROWS_WITH(data::FashionMNIST::load(data::Split::test, dir.string()), Catch::Contains("label 10"));
  data::write_idx((dir / "t10k-labels-idx1-ubyte.gz").string(), from_data<std::uint8_t>({3}, {1, 2, 3}),
                  {.gzip = true});
  const auto ok = data::FashionMNIST::load(data::Split::test, dir.string());
  CHECK(ok.size() == 3);
  CHECK(ok.labels[2] == 3);
  // Files in the same format but with other labels (MNIST's digits, here three made-up ones) are
  // not taken for Fashion-MNIST: no class names, bare indices, and the log line says so.
  CHECK_FALSE(ok.is_fashion_mnist());
  CHECK(ok.class_names.empty());
  CHECK(ok.class_label(3) == "3");
  CHECK_THROWS_AS(ok.class_label(10), ValueError);
  CHECK(ok.description() == "IDX data set, not Fashion-MNIST, test split (3 images from " + dir.string() + ")");
  CHECK(data::FashionMNIST::labels_fingerprint(from_data<std::uint8_t>({3}, {1, 2, 3})) !=
        data::FashionMNIST::kTestLabelsFingerprint);
  CHECK(data::FashionMNIST::labels_fingerprint(Tensor<std::uint8_t>(Shape{0})) == 0xcbf29ce484222325ULL);
  const data::Dataset ds = ok.to_dataset(data::ImageLayout::flat, data::PixelRange::symmetric);
  CHECK(ds.x().shape() == (Shape{3, 784}));
  CHECK(ds.x()[0] == -1.f);
  std::filesystem::remove_all(dir);
}

}  // namespace data_fashion_mnist_test
