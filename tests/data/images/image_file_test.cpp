#include <catch2/catch.hpp>

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genmod/data/images/image_file.hpp"
#include "support/temp_dir.hpp"

namespace data_images_image_file_test {

using namespace genmod;
using namespace genmod::data;
using Bytes = std::vector<unsigned char>;

namespace {

using test::TempDir;

Tensor<std::uint8_t> random_image(std::int64_t c, std::int64_t h, std::int64_t w, unsigned seed) {
  std::mt19937 rng(seed);
  Tensor<std::uint8_t> t(Shape{c, h, w});
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<std::uint8_t>(rng() & 255);
  return t;
}

// Smooth content (a gradient plus a slow sine per channel): what JPEG is designed for.
Tensor<std::uint8_t> smooth_image(std::int64_t c, std::int64_t h, std::int64_t w) {
  Tensor<std::uint8_t> t(Shape{c, h, w});
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const double v = 40.0 + 120.0 * (static_cast<double>(x + y) / static_cast<double>(h + w)) +
                         40.0 * std::sin(0.08 * static_cast<double>(x) + 0.05 * static_cast<double>(y) + k);
        t(k, y, x) = static_cast<std::uint8_t>(std::lround(v));
      }
  return t;
}

bool same_pixels(const Tensor<std::uint8_t>& a, const Tensor<std::uint8_t>& b) {
  if (!(a.shape() == b.shape())) return false;
  return std::equal(a.data(), a.data() + a.numel(), b.data());
}

Bytes file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

void put_file(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void be32(Bytes& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

void chunk(Bytes& png, const char* type, const Bytes& data) {
  be32(png, static_cast<std::uint32_t>(data.size()));
  const std::size_t at = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  be32(png, static_cast<std::uint32_t>(::crc32(0, png.data() + at, static_cast<uInt>(4 + data.size()))));
}

// A grey PNG built by hand: `depth` bits per sample (8 or 16), samples big-endian, filter 0.
// With no IDAT (idat = false), only the header: enough for stbi_info.
Bytes handmade_grey_png(std::uint32_t w, std::uint32_t h, int depth, const std::vector<std::uint16_t>& samples,
                        bool idat = true) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  be32(ihdr, w);
  be32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<unsigned char>(depth), 0, 0, 0, 0});
  chunk(png, "IHDR", ihdr);
  if (idat) {
    Bytes raw;
    for (std::uint32_t y = 0; y < h; ++y) {
      raw.push_back(0);
      for (std::uint32_t x = 0; x < w; ++x) {
        const std::uint16_t v = samples[y * w + x];
        if (depth == 16) raw.push_back(static_cast<unsigned char>(v >> 8));
        raw.push_back(static_cast<unsigned char>(v & 255));
      }
    }
    uLongf n = compressBound(static_cast<uLong>(raw.size()));
    Bytes z(n);
    REQUIRE(compress(z.data(), &n, raw.data(), static_cast<uLong>(raw.size())) == Z_OK);
    z.resize(n);
    chunk(png, "IDAT", z);
  }
  chunk(png, "IEND", {});
  return png;
}

// Decoding must either succeed with a plausible image or throw IOError; anything else (another
// exception type, a crash under the sanitizers) fails the test.
bool decodes_or_io_error(const Bytes& bytes, ImageChannels channels = ImageChannels::keep) {
  try {
    const auto t = decode_image(bytes, channels, "mutated");
    CHECK(t.rank() == 3);
    CHECK(t.dim(0) >= 1);
    CHECK(t.dim(0) <= 4);
    CHECK(static_cast<std::uint64_t>(t.numel()) <= kMaxImageBytes);
    return true;
  } catch (const IOError& e) {
    CHECK(std::string(e.what()).rfind("mutated: ", 0) == 0);
    return false;
  }
}

}  // namespace

TEST_CASE("PNG files round-trip exactly for grey, RGB and RGBA", "[images]") {
  TempDir dir;
  for (const std::int64_t c : {1, 3, 4}) {
    const auto image = random_image(c, 13, 17, static_cast<unsigned>(c));
    const std::string path = dir.file("im" + std::to_string(c) + ".png");
    write_image(path, image);
    const auto back = read_image(path);
    CHECK(same_pixels(back, image));
    const ImageInfo info = read_image_info(path);
    CHECK(info.height == 13);
    CHECK(info.width == 17);
    CHECK(info.channels == c);
    CHECK(info.format == ImageFormat::png);
    // The same through memory, and with an explicit channel count equal to the stored one.
    const Bytes bytes = file_bytes(path);
    CHECK(same_pixels(decode_image(bytes), image));
    const ImageChannels same = c == 1 ? ImageChannels::grey : c == 3 ? ImageChannels::rgb : ImageChannels::rgba;
    CHECK(same_pixels(decode_image(bytes, same), image));
    CHECK(image_info(bytes).channels == c);
  }
  // Upper-case extensions are recognised.
  const auto image = random_image(3, 4, 5, 9);
  write_image(dir.file("UPPER.PNG"), image);
  CHECK(same_pixels(read_image(dir.file("UPPER.PNG")), image));
}

TEST_CASE("JPEG files round-trip within the loss of quality 95", "[images]") {
  TempDir dir;
  // At quality 95 the quantisation step of every DCT coefficient is 1 to 3 levels (the standard
  // tables scaled by 0.1), so on a smooth image (energy in the lowest frequencies, where the steps
  // are smallest, and chroma that survives 2x2 subsampling) each pixel moves by about one level:
  // a mean absolute error below 3 leaves room for the chroma subsampling while catching any
  // channel swap, transpose or offset (those give errors of tens of levels).
  for (const std::int64_t c : {1, 3}) {
    const auto image = smooth_image(c, 40, 56);
    const std::string path = dir.file("im" + std::to_string(c) + ".jpg");
    write_image(path, image, 95);
    // stb_image_write stores every JPEG with three components (grey replicated into YCbCr, whose
    // chroma is then constant), so a grey image is read back with ImageChannels::grey.
    const auto back = read_image(path, c == 1 ? ImageChannels::grey : ImageChannels::keep);
    REQUIRE(back.shape() == image.shape());
    double err = 0;
    for (std::int64_t i = 0; i < image.numel(); ++i) err += std::abs(int{back.data()[i]} - int{image.data()[i]});
    err /= static_cast<double>(image.numel());
    INFO("channels " << c << ", mean abs error " << err);
    CHECK(err < 3.0);
    const ImageInfo info = read_image_info(path);
    CHECK(info.format == ImageFormat::jpeg);
    CHECK(info.channels == 3);
    CHECK(info.height == 40);
    CHECK(info.width == 56);
  }
  // Lower quality gives a smaller file: the quality argument reaches the encoder.
  const auto image = smooth_image(3, 64, 64);
  write_image(dir.file("q95.jpeg"), image, 95);
  write_image(dir.file("q20.jpeg"), image, 20);
  CHECK(file_bytes(dir.file("q20.jpeg")).size() < file_bytes(dir.file("q95.jpeg")).size());
}

TEST_CASE("channel conversions on decoding follow stb_image", "[images]") {
  TempDir dir;
  const auto grey = random_image(1, 6, 7, 1), rgb = random_image(3, 6, 7, 2), rgba = random_image(4, 6, 7, 3);
  write_image(dir.file("g.png"), grey);
  write_image(dir.file("c.png"), rgb);
  write_image(dir.file("a.png"), rgba);

  SECTION("grey to RGB replicates, to RGBA adds an opaque alpha") {
    const auto as_rgb = read_image(dir.file("g.png"), ImageChannels::rgb);
    const auto as_rgba = read_image(dir.file("g.png"), ImageChannels::rgba);
    REQUIRE(as_rgb.shape() == Shape{3, 6, 7});
    REQUIRE(as_rgba.shape() == Shape{4, 6, 7});
    for (std::int64_t k = 0; k < 3; ++k)
      for (std::int64_t y = 0; y < 6; ++y)
        for (std::int64_t x = 0; x < 7; ++x) {
          CHECK(as_rgb(k, y, x) == grey(0, y, x));
          CHECK(as_rgba(k, y, x) == grey(0, y, x));
          CHECK(as_rgba(3, y, x) == 255);
        }
  }
  SECTION("RGBA to RGB drops the alpha channel without compositing") {
    const auto as_rgb = read_image(dir.file("a.png"), ImageChannels::rgb);
    REQUIRE(as_rgb.shape() == Shape{3, 6, 7});
    for (std::int64_t k = 0; k < 3; ++k)
      for (std::int64_t y = 0; y < 6; ++y)
        for (std::int64_t x = 0; x < 7; ++x) CHECK(as_rgb(k, y, x) == rgba(k, y, x));
  }
  SECTION("colour to grey is stb's integer luma (77 R + 150 G + 29 B) / 256") {
    for (const auto* src : {&rgb, &rgba}) {
      const auto as_grey = read_image(dir.file(src == &rgb ? "c.png" : "a.png"), ImageChannels::grey);
      REQUIRE(as_grey.shape() == Shape{1, 6, 7});
      for (std::int64_t y = 0; y < 6; ++y)
        for (std::int64_t x = 0; x < 7; ++x) {
          const int r = (*src)(0, y, x), g = (*src)(1, y, x), b = (*src)(2, y, x);
          CHECK(int{as_grey(0, y, x)} == (77 * r + 150 * g + 29 * b) / 256);
        }
    }
  }
  SECTION("RGB to RGBA adds an opaque alpha") {
    const auto as_rgba = read_image(dir.file("c.png"), ImageChannels::rgba);
    REQUIRE(as_rgba.shape() == Shape{4, 6, 7});
    for (std::int64_t y = 0; y < 6; ++y)
      for (std::int64_t x = 0; x < 7; ++x) {
        for (std::int64_t k = 0; k < 3; ++k) CHECK(as_rgba(k, y, x) == rgb(k, y, x));
        CHECK(as_rgba(3, y, x) == 255);
      }
  }
  SECTION("channel_count") {
    CHECK(channel_count(ImageChannels::keep, 2) == 2);
    CHECK(channel_count(ImageChannels::grey, 4) == 1);
    CHECK(channel_count(ImageChannels::rgb, 1) == 3);
    CHECK(channel_count(ImageChannels::rgba, 3) == 4);
    CHECK_THROWS_AS(channel_count(static_cast<ImageChannels>(7), 3), ValueError);
  }
}

TEST_CASE("16-bit PNGs decode to their high bytes", "[images]") {
  std::vector<std::uint16_t> samples;
  for (std::uint16_t i = 0; i < 12; ++i) samples.push_back(static_cast<std::uint16_t>(i * 5471 + 17));
  const Bytes png = handmade_grey_png(4, 3, 16, samples);
  const auto t = decode_image(png);
  REQUIRE(t.shape() == Shape{1, 3, 4});
  for (std::int64_t i = 0; i < 12; ++i) CHECK(int{t.data()[i]} == samples[static_cast<std::size_t>(i)] >> 8);
  // The hand-made 8-bit variant decodes exactly, which checks the builder itself.
  std::vector<std::uint16_t> bytes8;
  for (const auto s : samples) bytes8.push_back(static_cast<std::uint16_t>(s & 255));
  const auto t8 = decode_image(handmade_grey_png(4, 3, 8, bytes8));
  for (std::int64_t i = 0; i < 12; ++i) CHECK(int{t8.data()[i]} == bytes8[static_cast<std::size_t>(i)]);
}

TEST_CASE("read_image_info finds the header of a JPEG larger than its 64 KiB prefix", "[images]") {
  TempDir dir;
  const auto noise = random_image(3, 200, 240, 5);  // noise compresses badly: well over 64 KiB
  write_image(dir.file("big.jpg"), noise, 100);
  REQUIRE(file_bytes(dir.file("big.jpg")).size() > (std::size_t{1} << 16));
  const ImageInfo info = read_image_info(dir.file("big.jpg"));
  CHECK(info.height == 200);
  CHECK(info.width == 240);
  CHECK(info.channels == 3);
  CHECK(info.format == ImageFormat::jpeg);
}

TEST_CASE("truncated images are IOErrors at every length", "[images]") {
  TempDir dir;
  SECTION("PNG, every length") {
    write_image(dir.file("t.png"), random_image(3, 9, 11, 4));
    const Bytes full = file_bytes(dir.file("t.png"));
    int decoded = 0;
    for (std::size_t n = 0; n < full.size(); ++n) decoded += decodes_or_io_error(Bytes(full.begin(), full.begin() + n));
    // The pixel data is most of the file, so most prefixes must fail.
    CHECK(decoded < static_cast<int>(full.size()) / 4);
  }
  SECTION("JPEG, every 7th length") {
    write_image(dir.file("t.jpg"), smooth_image(3, 24, 32));
    const Bytes full = file_bytes(dir.file("t.jpg"));
    for (std::size_t n = 0; n < full.size(); n += 7)
      for (const auto ch : {ImageChannels::keep, ImageChannels::grey})
        (void)decodes_or_io_error(Bytes(full.begin(), full.begin() + n), ch);
    // Cut before the frame header, the size cannot even be read.
    CHECK_THROWS_AS(image_info(Bytes(full.begin(), full.begin() + 20)), IOError);
  }
}

TEST_CASE("a PNG chunk longer than the file is refused before stb allocates for it", "[images]") {
  // Found by the fuzzer: a valid 4 x 4 RGBA PNG followed by a second IDAT declaring 0x60600000
  // bytes, of which the file holds 8. stb_image would grow its IDAT buffer to 2 GiB first.
  Bytes png = handmade_grey_png(4, 4, 8, std::vector<std::uint16_t>(16, 7));
  REQUIRE(decode_image(png).dim(2) == 4);
  png.resize(png.size() - 12);  // drop IEND
  const std::size_t at = png.size();
  be32(png, 0x60600000u);
  png.insert(png.end(), {'I', 'D', 'A', 'T', 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK_THROWS_WITH(decode_image(png, ImageChannels::keep, "x.png"),
                    Catch::Contains("x.png: truncated or corrupt PNG chunk 'IDAT' at byte " + std::to_string(at) +
                                    " declares 1616904192 bytes but only 8 remain in the file"));
  // The header alone is still readable: image_info does not need the chunks.
  CHECK(image_info(png).width == 4);
  // Lengths of 2^31 and above are corrupt whatever the file size.
  png.resize(at);
  be32(png, 0x80000000u);
  png.insert(png.end(), {'I', 'D', 'A', 'T'});
  CHECK_THROWS_WITH(decode_image(png), Catch::Contains("more than the PNG limit of 2^31 - 1"));
  // A well-formed file whose last CRC is cut off still reaches stb (which decodes it).
  Bytes cut = handmade_grey_png(4, 4, 8, std::vector<std::uint16_t>(16, 7));
  cut.resize(cut.size() - 4);
  CHECK(decodes_or_io_error(cut));
}

TEST_CASE("a JPEG too short for the image its frame announces is refused", "[images]") {
  TempDir dir;
  // The most compressible JPEG there is (uniform black at quality 1) passes the bound: stb spends
  // about 8 bits on each luma block (with the chroma), the bound asks for 1.
  write_image(dir.file("black.jpg"), Tensor<std::uint8_t>(Shape{3, 1024, 1536}), 1);
  const Bytes black = file_bytes(dir.file("black.jpg"));
  CHECK(decode_image(black).dim(2) == 1536);
  // The bound for this file is (1024 / 8) x (1536 / 8) / 8 = 3072 bytes: stb's encoder spends 8 bits
  // per luma block (with the chroma), so the real file is 8 times over it.
  CHECK(black.size() > 8 * 3072);
  // The same file announcing 16 times the rows: 2048 x 192 luma blocks need 49152 bytes.
  Bytes tall = black;
  std::size_t sof = 2;
  while (!(tall[sof] == 0xff && tall[sof + 1] == 0xc0)) ++sof;
  REQUIRE(((tall[sof + 5] << 8) | tall[sof + 6]) == 1024);
  tall[sof + 5] = 0x40;  // 16384 rows
  tall[sof + 6] = 0x00;
  REQUIRE(black.size() < 49152);
  CHECK_THROWS_WITH(decode_image(tall, ImageChannels::keep, "t.jpg"),
                    Catch::Contains("t.jpg: truncated or corrupt JPEG: a 16384 x 1536 image of 393216 coded 8 x 8 "
                                    "blocks needs at least one bit per block, 49152 bytes, but the file has " +
                                    std::to_string(black.size())));
  // Found by the fuzzer: 560 bytes announcing 4102 x 20744 x 3, which stb pads into 255 MB.
  Bytes tiny = file_bytes(dir.file("black.jpg"));
  tiny.resize(std::min<std::size_t>(tiny.size(), sof + 600));
  tiny[sof + 5] = 0x10;
  tiny[sof + 6] = 0x06;
  tiny[sof + 7] = 0x51;
  tiny[sof + 8] = 0x08;
  CHECK_THROWS_WITH(decode_image(tiny), Catch::Contains("truncated or corrupt JPEG: a 4102 x 20744 image"));
  CHECK(image_info(tiny).height == 4102);  // the header alone is still readable
}

TEST_CASE("byte flips give an image or an IOError, never a crash", "[images]") {
  TempDir dir;
  write_image(dir.file("f.png"), random_image(4, 5, 6, 6));
  write_image(dir.file("f.jpg"), smooth_image(3, 16, 16));
  for (const char* name : {"f.png", "f.jpg"}) {
    const Bytes full = file_bytes(dir.file(name));
    for (std::size_t i = 0; i < full.size(); ++i)
      for (const unsigned char mask : {0xffu, 0x01u, 0x80u}) {
        Bytes b = full;
        b[i] ^= mask;
        (void)decodes_or_io_error(b, ImageChannels::rgb);
      }
  }
}

TEST_CASE("only PNG and JPEG are accepted", "[images]") {
  TempDir dir;
  const auto image = random_image(3, 4, 4, 8);
  const auto hwc = hwc_from_chw(image);
  const auto capture = [](void* ctx, void* data, int size) {
    auto* out = static_cast<Bytes*>(ctx);
    out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
  };
  // Valid BMP and TGA files (which stb_image itself would decode) are refused before stb sees them.
  Bytes bmp, tga;
  REQUIRE(stbi_write_bmp_to_func(capture, &bmp, 4, 4, 3, hwc.data()));
  REQUIRE(stbi_write_tga_to_func(capture, &tga, 4, 4, 3, hwc.data()));
  const auto message = [](const Bytes& b) {
    try {
      (void)decode_image(b, ImageChannels::keep, "x.img");
    } catch (const IOError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message(bmp), Catch::Contains("x.img: expected a PNG or JPEG image, found a BMP image"));
  CHECK_THAT(message(tga), Catch::Contains("x.img: expected a PNG or JPEG image, found neither signature"));
  CHECK_THAT(message(Bytes{'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0}), Catch::Contains("a GIF image"));
  CHECK_THAT(message(Bytes{'8', 'B', 'P', 'S', 0, 1}), Catch::Contains("a PSD image"));
  CHECK_THAT(message(Bytes{}), Catch::Contains("found an empty file"));
  // A PNG signature alone, or a JPEG SOI alone: the right format, but no header.
  CHECK_THAT(message(Bytes{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}), Catch::Contains("corrupt or truncated PNG"));
  CHECK_THAT(message(Bytes{0xff, 0xd8, 0xff}), Catch::Contains("corrupt or truncated JPEG"));
  CHECK_THROWS_AS(image_info(bmp), IOError);

  put_file(dir.file("empty.png"), {});
  CHECK_THROWS_WITH(read_image(dir.file("empty.png")), Catch::Contains("empty.png: expected a PNG or JPEG image"));
  CHECK_THROWS_AS(read_image_info(dir.file("empty.png")), IOError);
}

TEST_CASE("missing files and oversized headers are IOErrors", "[images]") {
  TempDir dir;
  const std::string missing = dir.file("no_such_image.png");
  CHECK_THROWS_WITH(read_image(missing), Catch::Contains(missing));
  CHECK_THROWS_AS(read_image(missing), IOError);
  CHECK_THROWS_WITH(read_image_info(missing), Catch::Contains(missing));
  CHECK_THROWS_AS(read_image(dir.path.string()), IOError);  // a directory
  // A header claiming 30000 x 30000 pixels (900 MB of grey) is refused from the header alone, before
  // any allocation; as RGB too.
  const Bytes huge = handmade_grey_png(30000, 30000, 8, {}, false);
  CHECK_THROWS_WITH(image_info(huge), Catch::Contains("more than the limit"));
  CHECK_THROWS_WITH(decode_image(huge, ImageChannels::rgb), Catch::Contains("more than the limit"));
  // 16000 x 16000 grey (256e6 bytes) is under the limit as grey, over it as RGB.
  const Bytes big = handmade_grey_png(16000, 16000, 8, {}, false);
  CHECK(image_info(big).width == 16000);
  CHECK_THROWS_WITH(decode_image(big, ImageChannels::rgb), Catch::Contains("more than the limit"));
  // Zero extents.
  CHECK_THROWS_AS(image_info(handmade_grey_png(0, 5, 8, {}, false)), IOError);
  CHECK_THROWS_AS(image_info(handmade_grey_png(5, 0, 8, {}, false)), IOError);
}

TEST_CASE("write_image refuses bad arguments", "[images]") {
  TempDir dir;
  const auto rgb = random_image(3, 4, 4, 1);
  CHECK_THROWS_AS(write_image(dir.file("x.bmp"), rgb), ValueError);
  CHECK_THROWS_AS(write_image(dir.file("noextension"), rgb), ValueError);
  CHECK_THROWS_AS(write_image(dir.file("x.png"), random_image(2, 4, 4, 1)), ShapeError);
  CHECK_THROWS_AS(write_image(dir.file("x.png"), random_image(5, 4, 4, 1)), ShapeError);
  CHECK_THROWS_AS(write_image(dir.file("x.jpg"), random_image(4, 4, 4, 1)), ShapeError);
  CHECK_THROWS_AS(write_image(dir.file("x.png"), Tensor<std::uint8_t>(Shape{4, 4})), ShapeError);
  CHECK_THROWS_AS(write_image(dir.file("x.png"), Tensor<std::uint8_t>()), ShapeError);
  CHECK_THROWS_AS(write_image(dir.file("x.png"), Tensor<std::uint8_t>(Shape{3, 0, 4})), ShapeError);
  CHECK_THROWS_AS(write_image(dir.file("x.jpg"), rgb, 0), ValueError);
  CHECK_THROWS_AS(write_image(dir.file("x.jpg"), rgb, 101), ValueError);
  CHECK_THROWS_AS(write_image(dir.file("no_dir/x.png"), rgb), IOError);
  CHECK_THROWS_AS(chw_from_hwc(Tensor<std::uint8_t>(Shape{4, 4})), ShapeError);
  CHECK_THROWS_AS(hwc_from_chw(Tensor<std::uint8_t>()), ShapeError);
}

TEST_CASE("chw_from_hwc and hwc_from_chw are inverse transposes", "[images]") {
  const auto chw = random_image(3, 5, 7, 11);
  const auto hwc = hwc_from_chw(chw);
  REQUIRE(hwc.shape() == Shape{5, 7, 3});
  for (std::int64_t k = 0; k < 3; ++k)
    for (std::int64_t y = 0; y < 5; ++y)
      for (std::int64_t x = 0; x < 7; ++x) CHECK(hwc(y, x, k) == chw(k, y, x));
  CHECK(same_pixels(chw_from_hwc(hwc), chw));
}

TEST_CASE("decoding is thread-safe, failure reasons included", "[images]") {
  TempDir dir;
  const auto image = random_image(3, 20, 20, 12);
  write_image(dir.file("ok.png"), image);
  const Bytes good = file_bytes(dir.file("ok.png"));
  // A corrupt zlib header in the first IDAT (signature 8 + IHDR 25 + IDAT length and type 8 bytes):
  // the chunks are sound, so the failure comes from stb (which does not check CRCs).
  Bytes bad = good;
  REQUIRE(std::string(bad.begin() + 37, bad.begin() + 41) == "IDAT");
  bad[41] = 0;
  std::vector<int> ok(4, 0), failed(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (same_pixels(decode_image(good), image)) ++ok[static_cast<std::size_t>(t)];
        try {
          (void)decode_image(bad, ImageChannels::keep, "bad.png");
        } catch (const IOError& e) {
          // The reason is this thread's own: stb's failure string, never an empty one.
          if (std::string(e.what()).find("corrupt or truncated PNG image: ") != std::string::npos &&
              std::string(e.what()).find("unknown error") == std::string::npos)
            ++failed[static_cast<std::size_t>(t)];
        }
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    CHECK(ok[static_cast<std::size_t>(t)] == 50);
    CHECK(failed[static_cast<std::size_t>(t)] == 50);
  }
}

}  // namespace data_images_image_file_test
