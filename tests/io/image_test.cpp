#include <catch2/catch.hpp>

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "genmod/io/image.hpp"

namespace io_image_test {

using namespace genmod;
using Bytes = std::vector<unsigned char>;

namespace {

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// An independent PNG reader for 8-bit non-interlaced images: checks every chunk CRC, inflates
// IDAT with zlib's uncompress, and undoes all five scanline filters as the PNG spec defines them.
struct Decoded {
  std::uint32_t width = 0, height = 0, channels = 0;
  Bytes pixels;
};

Decoded decode_png(const Bytes& png) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  REQUIRE(png.size() > 8);
  REQUIRE(std::equal(sig, sig + 8, png.begin()));
  Decoded d;
  Bytes idat;
  std::size_t at = 8;
  bool ended = false;
  while (at + 12 <= png.size()) {
    const std::uint32_t len = be32(&png[at]);
    const std::string type(png.begin() + static_cast<std::ptrdiff_t>(at + 4), png.begin() + static_cast<std::ptrdiff_t>(at + 8));
    REQUIRE(at + 12 + len <= png.size());
    const unsigned long crc = crc32(0, &png[at + 4], 4 + len);
    REQUIRE(crc == be32(&png[at + 8 + len]));
    const unsigned char* data = &png[at + 8];
    if (type == "IHDR") {
      d.width = be32(data);
      d.height = be32(data + 4);
      REQUIRE(data[8] == 8);
      d.channels = data[9] == 0 ? 1 : data[9] == 2 ? 3 : data[9] == 6 ? 4 : 0;
      REQUIRE(data[12] == 0);
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      ended = true;
    }
    at += 12 + len;
  }
  REQUIRE(ended);
  REQUIRE(at == png.size());
  const std::size_t stride = d.width * d.channels;
  Bytes raw((stride + 1) * d.height);
  uLongf raw_len = raw.size();
  REQUIRE(uncompress(raw.data(), &raw_len, idat.data(), idat.size()) == Z_OK);
  REQUIRE(raw_len == raw.size());
  d.pixels.resize(stride * d.height);
  const std::size_t bpp = d.channels;
  for (std::size_t y = 0; y < d.height; ++y) {
    const unsigned char filter = raw[y * (stride + 1)];
    const unsigned char* in = &raw[y * (stride + 1) + 1];
    unsigned char* out = &d.pixels[y * stride];
    const unsigned char* up = y ? &d.pixels[(y - 1) * stride] : nullptr;
    for (std::size_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? out[i - bpp] : 0, b = up ? up[i] : 0, c = (up && i >= bpp) ? up[i - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: FAIL("bad filter type " << int(filter));
      }
      out[i] = static_cast<unsigned char>(in[i] + pred);
    }
  }
  return d;
}

}  // namespace

TEST_CASE("encode_png writes grey and RGB images any PNG reader decodes", "[io][image]") {
  Tensor<std::uint8_t> grey(Shape{5, 7});
  for (std::int64_t i = 0; i < grey.numel(); ++i) grey[i] = static_cast<std::uint8_t>(i * 37 + 3);
  const auto d = decode_png(io::encode_png(grey));
  CHECK(d.width == 7);
  CHECK(d.height == 5);
  CHECK(d.channels == 1);
  CHECK(std::equal(d.pixels.begin(), d.pixels.end(), grey.data()));
  Tensor<std::uint8_t> rgb(Shape{4, 3, 3});
  for (std::int64_t i = 0; i < rgb.numel(); ++i) rgb[i] = static_cast<std::uint8_t>(255 - i * 5);
  const auto c = decode_png(io::encode_png(rgb));
  CHECK(c.channels == 3);
  CHECK(std::equal(c.pixels.begin(), c.pixels.end(), rgb.data()));
  CHECK_THROWS_AS(io::encode_png(zeros<std::uint8_t>({4, 4, 2})), ShapeError);
  CHECK_THROWS_AS(io::encode_png(zeros<std::uint8_t>({0, 4})), ShapeError);
}

TEST_CASE("make_image_grid tiles images with padding, clamping to the low..high range", "[io][image]") {
  // 5 grey 2x3 images, 2 per row, padding 1: 3 rows of (2 + 1) + 1 = 10 by 2 * (3 + 1) + 1 = 9.
  Tensor<float> x(Shape{5, 1, 2, 3});
  for (std::int64_t k = 0; k < 5; ++k)
    for (int i = 0; i < 6; ++i) x[k * 6 + i] = static_cast<float>(k) / 4.f;
  x[0] = -3.f;        // clamped to black
  x[1] = NAN;         // shown as black
  x[6 * 4 + 5] = 9.f;  // clamped to white
  const auto g = io::make_image_grid(x, {.columns = 2, .padding = 1, .pad_value = 1.f});
  REQUIRE(g.shape() == (Shape{10, 9, 1}));
  CHECK(g(0, 0, 0) == 255);  // padding
  CHECK(g(1, 1, 0) == 0);    // image 0, clamped
  CHECK(g(1, 2, 0) == 0);    // NaN
  CHECK(g(1, 5, 0) == 64);   // image 1 (value 0.25) starts at column 1 + 3 + 1 = 5
  CHECK(g(4, 1, 0) == 128);  // image 2 (0.5) in the second row
  CHECK(g(8, 3, 0) == 255);  // image 4's last pixel
  CHECK(g(7, 5, 0) == 255);  // the empty sixth cell is padding
  // RGB, and the [-1, 1] range of tanh generators.
  auto rgb = full<float>({1, 3, 2, 2}, 0.f);
  for (int i = 0; i < 4; ++i) rgb[i] = 1.f;  // red channel
  const auto c = io::make_image_grid(rgb, {.padding = 0, .low = -1.f, .high = 1.f});
  REQUIRE(c.shape() == (Shape{2, 2, 3}));
  CHECK(c(0, 0, 0) == 255);
  CHECK(c(0, 0, 1) == 128);
  // Rank-3 input is grey.
  CHECK(io::make_image_grid(zeros<float>({2, 4, 4}), {.columns = 8, .padding = 0}).shape() == (Shape{4, 8, 1}));
  CHECK_THROWS_WITH(io::make_image_grid(zeros<float>({1, 2, 4, 4})), Catch::Contains("[1, 2, 4, 4]"));
  CHECK_THROWS_AS(io::make_image_grid(zeros<float>({4, 16})), ShapeError);
  CHECK_THROWS_AS(io::make_image_grid(zeros<float>({1, 1, 2, 2}), {.columns = 0}), ValueError);
}

TEST_CASE("save_image_grid writes a PNG file", "[io][image]") {
  const auto path = (std::filesystem::temp_directory_path() / ("genmod_grid_" + std::to_string(::getpid()) + ".png")).string();
  auto x = full<float>({64, 1, 28, 28}, 0.5f);
  io::save_image_grid(path, x, {.columns = 8, .padding = 2});
  const Bytes bytes = genmod::detail::read_file_bytes(path, 1 << 20);
  const auto d = decode_png(bytes);
  CHECK(d.width == 8 * 30 + 2);
  CHECK(d.height == 8 * 30 + 2);
  CHECK(d.pixels[static_cast<std::size_t>(2 * d.width + 2)] == 128);
  std::filesystem::remove(path);
}

}  // namespace io_image_test
