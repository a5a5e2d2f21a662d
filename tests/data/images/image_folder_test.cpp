#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "genmod/data/images/image_file.hpp"
#include "genmod/data/images/image_folder.hpp"
#include "genmod/data/images/image_ops.hpp"
#include "genmod/data/npy.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace data_images_image_folder_test {

using namespace genmod;
using Catch::Matchers::Contains;
using test::error_of;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// A [c, h, w] image whose pixels depend on (seed, channel, row, column).
Tensor<std::uint8_t> pattern(std::int64_t c, std::int64_t h, std::int64_t w, int seed) {
  Tensor<std::uint8_t> t(Shape{c, h, w});
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<std::uint8_t>((i * 37 + seed * 101) % 251);
  return t;
}

// Writes an image, creating its folder.
void put(const TempDir& dir, const std::string& rel, const Tensor<std::uint8_t>& chw) {
  const fs::path p = dir.path / rel;
  fs::create_directories(p.parent_path());
  data::write_image(p.string(), chw);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool same(const Tensor<std::uint8_t>& a, const Tensor<std::uint8_t>& b) {
  return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

TEST_CASE("ImageFolder lists images recursively in byte order, filtered by extension", "[images]") {
  TempDir dir;
  put(dir, "b.png", pattern(3, 4, 5, 1));
  put(dir, "a.PNG", pattern(3, 4, 5, 2));
  put(dir, "sub/c.jpg", pattern(3, 4, 5, 3));
  put(dir, "Z.jpeg", pattern(3, 4, 5, 4));
  put(dir, ".hidden.png", pattern(3, 4, 5, 5));
  put(dir, ".cache/d.png", pattern(3, 4, 5, 6));
  write_bytes(dir.file("notes.txt"), "not an image");
  write_bytes(dir.file("x.gif"), "GIF89a");

  const data::ImageFolder folder(dir.path.string());
  CHECK(folder.size() == 4);
  CHECK(folder.files() == std::vector<std::string>{"Z.jpeg", "a.PNG", "b.png", "sub/c.jpg"});  // 'Z' < 'a'
  CHECK(folder.file_names() == std::vector<std::string>{"Z.jpeg", "a.PNG", "b.png", "c.jpg"});
  CHECK(fs::equivalent(folder.path(3), dir.path / "sub" / "c.jpg"));
  CHECK(folder.root() == dir.path.string());
  CHECK(folder.class_names().empty());
  CHECK_FALSE(folder.labels().defined());
  CHECK(folder.file_sizes()[2] == fs::file_size(dir.path / "b.png"));
  CHECK_THROWS_AS(folder.path(4), ValueError);

  const data::ImageFolder pngs(dir.path.string(), {.extensions = {".png"}});
  CHECK(pngs.files() == std::vector<std::string>{"a.PNG", "b.png"});
  const data::ImageFolder jpgs(dir.path.string(), {.extensions = {"JPG"}});  // no dot, upper case
  CHECK(jpgs.files() == std::vector<std::string>{"sub/c.jpg"});

  CHECK_THAT(error_of([&] {
               data::ImageFolder(dir.path.string(), {.extensions = {".bmp", ".tif"}});
             }),
             Contains("no image") && Contains(".bmp, .tif"));
  CHECK_THROWS_AS(data::ImageFolder(dir.path.string(), {.extensions = {}}), ValueError);
  CHECK_THAT(error_of([&] { data::ImageFolder(dir.file("absent")); }), Contains(dir.file("absent")));
  CHECK_THROWS_AS(data::ImageFolder(dir.file("absent")), IOError);
  CHECK_THROWS_AS(data::ImageFolder(dir.file("notes.txt")), IOError);
}

TEST_CASE("ImageFolder labels images by their top-level sub-folder", "[images]") {
  TempDir dir;
  put(dir, "dog/2.png", pattern(3, 4, 4, 1));
  put(dir, "cat/1.png", pattern(3, 4, 4, 2));
  put(dir, "cat/deep/3.png", pattern(3, 4, 4, 3));
  put(dir, "ant/4.png", pattern(3, 4, 4, 4));
  const data::ImageFolder folder(dir.path.string(), {.labels_from_subfolders = true});
  CHECK(folder.class_names() == std::vector<std::string>{"ant", "cat", "dog"});
  CHECK(folder.files() == std::vector<std::string>{"ant/4.png", "cat/1.png", "cat/deep/3.png", "dog/2.png"});
  const auto y = folder.labels();
  REQUIRE(y.shape() == (Shape{4}));
  CHECK(std::vector<std::int64_t>(y.begin(), y.end()) == std::vector<std::int64_t>{0, 1, 1, 2});

  put(dir, "stray.png", pattern(3, 4, 4, 5));
  CHECK_THAT(error_of([&] { data::ImageFolder(dir.path.string(), {.labels_from_subfolders = true}); }),
             Contains("'stray.png'") && Contains("sub-folder"));
}

TEST_CASE("decode_images decodes and transforms every image into [N, C, H, W]", "[images]") {
  TempDir dir;
  std::vector<Tensor<std::uint8_t>> written;
  for (int i = 0; i < 5; ++i) {
    written.push_back(pattern(3, 6, 8, i));
    put(dir, "img" + std::to_string(i) + ".png", written.back());
  }
  put(dir, "img5.jpg", pattern(3, 6, 8, 5));  // lossy: compared with its own decode
  const data::ImageFolder folder(dir.path.string());
  REQUIRE(folder.size() == 6);

  const auto all = data::decode_images(folder, {});
  REQUIRE(all.shape() == (Shape{6, 3, 6, 8}));
  for (int i = 0; i < 5; ++i) {
    INFO("image " << i);
    CHECK(std::equal(written[static_cast<std::size_t>(i)].begin(), written[static_cast<std::size_t>(i)].end(),
                     all.data() + i * 144));
  }
  const auto jpeg = data::read_image(folder.path(5), data::ImageChannels::rgb);
  CHECK(std::equal(jpeg.begin(), jpeg.end(), all.data() + 5 * 144));

  // With a transform: each image is what apply_transform makes of it.
  const data::ImageTransform t{
      .channels = data::ImageChannels::grey, .crop_height = 6, .crop_width = 6, .height = 3, .width = 3};
  const auto small = data::decode_images(folder, t);
  REQUIRE(small.shape() == (Shape{6, 1, 3, 3}));
  for (std::int64_t i = 0; i < 6; ++i) {
    const auto one = data::apply_transform(t, data::read_image(folder.path(i), t.channels));
    CHECK(std::equal(one.begin(), one.end(), small.data() + i * 9));
  }
}

TEST_CASE("decode_images names the image that differs in shape or cannot be read", "[images]") {
  TempDir dir;
  for (int i = 0; i < 4; ++i) put(dir, "img" + std::to_string(i) + ".png", pattern(3, 6, 8, i));
  put(dir, "img2.png", pattern(3, 5, 8, 2));  // one image of another size
  put(dir, "img3.png", pattern(3, 7, 8, 3));  // and a second: the first one is named
  const data::ImageFolder folder(dir.path.string());
  CHECK_THAT(error_of([&] { data::decode_images(folder, {}); }),
             Contains("'img2.png'") && Contains("[3, 5, 8]") && Contains("'img0.png'") && Contains("[3, 6, 8]"));
  CHECK_THROWS_AS(data::decode_images(folder, {}), ShapeError);
  // A resize gives them one shape.
  CHECK(data::decode_images(folder, {.height = 4, .width = 4}).shape() == (Shape{4, 3, 4, 4}));
  // A crop larger than an image names the image.
  CHECK_THAT(error_of([&] { data::decode_images(folder, {.crop_height = 6, .crop_width = 6}); }), Contains("img2.png"));

  // A truncated PNG and a file of garbage: IOError naming the file.
  const std::string bytes = read_bytes(dir.file("img1.png"));
  write_bytes(dir.file("img1.png"), bytes.substr(0, bytes.size() / 2));
  CHECK_THAT(error_of([&] { data::decode_images(folder, {.height = 4, .width = 4}); }), Contains("img1.png"));
  CHECK_THROWS_AS(data::decode_images(folder, {.height = 4, .width = 4}), IOError);
  write_bytes(dir.file("img1.png"), "this is not a PNG at all");
  CHECK_THAT(error_of([&] { data::decode_images(folder, {.height = 4, .width = 4}); }), Contains("img1.png"));
}

TEST_CASE("load_images_cached hits without decoding, rebuilds when stale or corrupt", "[images]") {
  TempDir images, cache_dir;
  for (int i = 0; i < 6; ++i) put(images, "face" + std::to_string(i) + ".png", pattern(3, 8, 8, i));
  const std::string cache = cache_dir.file("faces.npy");
  const data::ImageTransform t{.height = 4, .width = 4};

  // Miss: decodes, writes the pixels and the key.
  const auto first = data::load_images_cached(data::ImageFolder(images.path.string()), t, cache);
  CHECK(same(first, data::decode_images(data::ImageFolder(images.path.string()), t)));
  REQUIRE(fs::exists(cache));
  REQUIRE(fs::exists(cache + ".key"));
  CHECK(same(data::read_npy(cache).get<std::uint8_t>(), first));
  const std::string key = read_bytes(cache + ".key");
  CHECK_THAT(key, Contains(data::describe(t)) && Contains("\"files\": 6") && Contains("[6, 3, 4, 4]"));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(cache_dir.path)) ++entries;
  CHECK(entries == 2);  // no temporary file left behind

  // Hit: corrupt an image, keeping its size; a decode would throw, the cache does not decode.
  const std::string face2 = read_bytes(images.file("face2.png"));
  write_bytes(images.file("face2.png"), std::string(face2.size(), 'x'));
  CHECK(same(data::load_images_cached(data::ImageFolder(images.path.string()), t, cache), first));
  // A hit also survives the image's deletion once the folder was listed.
  const data::ImageFolder listed(images.path.string());
  fs::remove(images.file("face2.png"));
  CHECK(same(data::load_images_cached(listed, t, cache), first));

  // Another transform is a miss: it decodes, and so meets the corrupt image.
  write_bytes(images.file("face2.png"), std::string(face2.size(), 'x'));
  CHECK_THAT(error_of([&] { data::load_images_cached(data::ImageFolder(images.path.string()), {}, cache); }),
             Contains("face2.png"));
  CHECK_FALSE(fs::exists(cache + ".key"));  // removed before the rebuild began
  write_bytes(images.file("face2.png"), face2);
  const auto full = data::load_images_cached(data::ImageFolder(images.path.string()), {}, cache);
  CHECK(full.shape() == (Shape{6, 3, 8, 8}));
  CHECK(same(full, data::decode_images(data::ImageFolder(images.path.string()), {})));
  CHECK(same(data::load_images_cached(data::ImageFolder(images.path.string()), t, cache), first));  // and back

  // Stale: a new image changes the listing.
  put(images, "face6.png", pattern(3, 8, 8, 6));
  const data::ImageFolder seven(images.path.string());
  const auto grown = data::load_images_cached(seven, t, cache);
  CHECK(grown.shape() == (Shape{7, 3, 4, 4}));
  CHECK(same(grown, data::decode_images(seven, t)));
  // Stale: an image of another size (same name) changes the listing's hash.
  put(images, "face6.png", pattern(3, 16, 16, 6));
  const data::ImageFolder resized(images.path.string());
  CHECK(same(data::load_images_cached(resized, t, cache), data::decode_images(resized, t)));

  // Corrupt caches are rebuilt: a truncated array, a flipped pixel byte, a garbage key.
  const auto expected = data::decode_images(resized, t);
  const std::string npy = read_bytes(cache);
  write_bytes(cache, npy.substr(0, npy.size() - 10));
  CHECK(same(data::load_images_cached(resized, t, cache), expected));
  std::string flipped = read_bytes(cache);
  flipped[flipped.size() - 5] = static_cast<char>(flipped[flipped.size() - 5] ^ 0x40);
  write_bytes(cache, flipped);
  CHECK(same(data::load_images_cached(resized, t, cache), expected));
  CHECK(read_bytes(cache) == npy);  // rewritten
  write_bytes(cache + ".key", "{\"format\": ");
  CHECK(same(data::load_images_cached(resized, t, cache), expected));
  CHECK(read_bytes(cache + ".key") != "{\"format\": ");
  // A key without its array.
  fs::remove(cache);
  CHECK(same(data::load_images_cached(resized, t, cache), expected));
  CHECK(fs::exists(cache));
}

}  // namespace data_images_image_folder_test
