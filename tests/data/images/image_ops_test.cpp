#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "genmod/data/images/image_ops.hpp"
#include "support/temp_dir.hpp"

namespace data_images_image_ops_test {

using namespace genmod;
using namespace genmod::data;

namespace {

Tensor<std::uint8_t> random_image(std::int64_t c, std::int64_t h, std::int64_t w, unsigned seed) {
  std::mt19937 rng(seed);
  Tensor<std::uint8_t> t(Shape{c, h, w});
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<std::uint8_t>(rng() & 255);
  return t;
}

bool same_pixels(const Tensor<std::uint8_t>& a, const Tensor<std::uint8_t>& b) {
  if (!(a.shape() == b.shape())) return false;
  return std::equal(a.data(), a.data() + a.numel(), b.data());
}

// Direct references, written from the definitions pixel by pixel in double (no separability, no
// integer weights), to compare the library's exact integer implementation against.

// Area: the mean of the input weighted by the area of each input pixel under the output pixel's
// box [i in_h/out_h, (i + 1) in_h/out_h) x [j in_w/out_w, (j + 1) in_w/out_w).
double area_reference(const Tensor<std::uint8_t>& x, std::int64_t k, std::int64_t i, std::int64_t j, std::int64_t oh,
                      std::int64_t ow) {
  const auto h = static_cast<double>(x.dim(1)), w = static_cast<double>(x.dim(2));
  const double y0 = i * h / oh, y1 = (i + 1) * h / oh, x0 = j * w / ow, x1 = (j + 1) * w / ow;
  double sum = 0, weight = 0;
  for (std::int64_t y = 0; y < x.dim(1); ++y)
    for (std::int64_t xx = 0; xx < x.dim(2); ++xx) {
      const double cy = std::max(0.0, std::min<double>(y + 1, y1) - std::max<double>(y, y0));
      const double cx = std::max(0.0, std::min<double>(xx + 1, x1) - std::max<double>(xx, x0));
      sum += cy * cx * x(k, y, xx);
      weight += cy * cx;
    }
  return sum / weight;
}

// Bilinear as PyTorch's interpolate(mode="bilinear", align_corners=False): source coordinate
// (dst + 0.5) * in/out - 0.5, negative clamped to 0, the neighbour past the edge clamped to the edge.
double bilinear_reference(const Tensor<std::uint8_t>& x, std::int64_t k, std::int64_t i, std::int64_t j,
                          std::int64_t oh, std::int64_t ow) {
  const auto axis = [](std::int64_t d, std::int64_t in, std::int64_t out, std::int64_t& i0, std::int64_t& i1,
                       double& t) {
    const double src = std::max(0.0, (d + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5);
    i0 = std::min(static_cast<std::int64_t>(std::floor(src)), in - 1);
    i1 = std::min(i0 + 1, in - 1);
    t = src - static_cast<double>(i0);
  };
  std::int64_t y0, y1, x0, x1;
  double ty, tx;
  axis(i, x.dim(1), oh, y0, y1, ty);
  axis(j, x.dim(2), ow, x0, x1, tx);
  return (1 - ty) * ((1 - tx) * x(k, y0, x0) + tx * x(k, y0, x1)) + ty * ((1 - tx) * x(k, y1, x0) + tx * x(k, y1, x1));
}

// Compares a resize against a reference: exactly where the reference is not within 1e-6 of a
// rounding tie (where double rounding in the reference itself could go either way), within one
// level there.
template <class Reference>
void check_against(const Tensor<std::uint8_t>& x, std::int64_t oh, std::int64_t ow, ResizeFilter f, Reference ref) {
  const auto y = resize(x, oh, ow, f);
  REQUIRE(y.shape() == Shape{x.dim(0), oh, ow});
  for (std::int64_t k = 0; k < x.dim(0); ++k)
    for (std::int64_t i = 0; i < oh; ++i)
      for (std::int64_t j = 0; j < ow; ++j) {
        const double r = ref(x, k, i, j, oh, ow);
        const bool near_tie = std::abs(r - std::floor(r) - 0.5) < 1e-6;
        INFO(x.shape().to_string() << " -> " << oh << "x" << ow << " at " << k << "," << i << "," << j << ": ref "
                                   << r);
        if (near_tie)
          CHECK(std::abs(static_cast<double>(y(k, i, j)) - r) <= 0.5 + 1e-6);
        else
          CHECK(int{y(k, i, j)} == static_cast<int>(std::floor(r + 0.5)));
      }
}

}  // namespace

TEST_CASE("an integer-factor area shrink is the rounded block mean", "[images]") {
  const auto x = random_image(3, 12, 18, 1);
  for (const auto& [fy, fx] : std::vector<std::pair<int, int>>{{2, 2}, {3, 2}, {4, 6}, {1, 3}, {12, 18}}) {
    const std::int64_t oh = 12 / fy, ow = 18 / fx;
    const auto y = resize(x, oh, ow, ResizeFilter::area);
    REQUIRE(y.shape() == Shape{3, oh, ow});
    for (std::int64_t k = 0; k < 3; ++k)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          int sum = 0;
          for (int a = 0; a < fy; ++a)
            for (int b = 0; b < fx; ++b) sum += x(k, i * fy + a, j * fx + b);
          const int n = fy * fx;
          CHECK(int{y(k, i, j)} == (2 * sum + n) / (2 * n));  // round half up, in integers
        }
    // automatic picks area when both sides shrink (or stay).
    CHECK(same_pixels(resize(x, oh, ow), y));
  }
}

TEST_CASE("area and bilinear match direct references at arbitrary sizes", "[images]") {
  const auto x = random_image(2, 7, 10, 2);
  for (const auto& [oh, ow] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {5, 3}, {3, 7}, {7, 4}, {1, 1}, {6, 9}, {2, 10}, {11, 13}, {14, 20}, {7, 23}}) {
    check_against(x, oh, ow, ResizeFilter::area, area_reference);
    check_against(x, oh, ow, ResizeFilter::bilinear, bilinear_reference);
  }
}

TEST_CASE("bilinear at scale 1 is the identity, per axis too", "[images]") {
  const auto x = random_image(3, 6, 9, 3);
  CHECK(same_pixels(resize(x, 6, 9, ResizeFilter::bilinear), x));
  CHECK(same_pixels(resize(x, 6, 9, ResizeFilter::area), x));
  // Height kept, width changed: every row is resampled on its own, rows are not mixed.
  const auto y = resize(x, 6, 4, ResizeFilter::bilinear);
  for (std::int64_t k = 0; k < 3; ++k)
    for (std::int64_t i = 0; i < 6; ++i) {
      Tensor<std::uint8_t> row(Shape{1, 1, 9});
      for (std::int64_t j = 0; j < 9; ++j) row(0, 0, j) = x(k, i, j);
      const auto r = resize(row, 1, 4, ResizeFilter::bilinear);
      for (std::int64_t j = 0; j < 4; ++j) CHECK(y(k, i, j) == r(0, 0, j));
    }
}

TEST_CASE("a constant image stays constant under every resize", "[images]") {
  for (const int v : {0, 1, 128, 254, 255}) {
    Tensor<std::uint8_t> x(Shape{2, 5, 7});
    x.fill(static_cast<std::uint8_t>(v));
    for (const auto f : {ResizeFilter::automatic, ResizeFilter::bilinear, ResizeFilter::area})
      for (const auto& [oh, ow] :
           std::vector<std::pair<std::int64_t, std::int64_t>>{{3, 2}, {13, 17}, {5, 20}, {1, 1}}) {
        const auto y = resize(x, oh, ow, f);
        for (std::int64_t i = 0; i < y.numel(); ++i) CHECK(int{y.data()[i]} == v);
      }
  }
}

TEST_CASE("upscaling a 2x2 image gives the hand-computed bilinear values", "[images]") {
  // Input [[0, 100], [200, 40]] to 4 x 4. Along each axis src = (j + 0.5) / 2 - 0.5:
  // j = 0: -0.25 -> clamped to 0 (weights 1, 0); j = 1: 0.25 (0.75, 0.25); j = 2: 0.75 (0.25, 0.75);
  // j = 3: 1.25 -> last pixel (0, 1). Row 0 (y = 0 only): 0, 25, 75, 100. Row 3: 200, 160, 80, 40.
  // Row 1 = 0.75 row0 + 0.25 row3: 50, 58.75, 76.25, 85 -> 50, 59, 76, 85.
  // Row 2 = 0.25 row0 + 0.75 row3: 150, 126.25, 78.75, 55 -> 150, 126, 79, 55.
  Tensor<std::uint8_t> x(Shape{1, 2, 2});
  x(0, 0, 0) = 0;
  x(0, 0, 1) = 100;
  x(0, 1, 0) = 200;
  x(0, 1, 1) = 40;
  const int expected[4][4] = {{0, 25, 75, 100}, {50, 59, 76, 85}, {150, 126, 79, 55}, {200, 160, 80, 40}};
  for (const auto f : {ResizeFilter::bilinear, ResizeFilter::automatic}) {
    const auto y = resize(x, 4, 4, f);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) CHECK(int{y(0, i, j)} == expected[i][j]);
  }
  // automatic uses bilinear as soon as one side grows.
  const auto z = random_image(1, 8, 8, 4);
  CHECK(same_pixels(resize(z, 4, 12), resize(z, 4, 12, ResizeFilter::bilinear)));
  CHECK(same_pixels(resize(z, 4, 6), resize(z, 4, 6, ResizeFilter::area)));
}

TEST_CASE("center_crop and flip_horizontal", "[images]") {
  const auto x = random_image(2, 7, 10, 5);
  const auto c = center_crop(x, 4, 5);
  REQUIRE(c.shape() == Shape{2, 4, 5});
  // top = floor((7 - 4) / 2) = 1, left = floor((10 - 5) / 2) = 2.
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t y = 0; y < 4; ++y)
      for (std::int64_t xx = 0; xx < 5; ++xx) CHECK(c(k, y, xx) == x(k, y + 1, xx + 2));
  CHECK(same_pixels(center_crop(x, 7, 10), x));
  CHECK_THROWS_AS(center_crop(x, 8, 10), ShapeError);
  CHECK_THROWS_WITH(center_crop(x, 5, 11), Catch::Contains("5 x 11") && Catch::Contains("7 x 10"));
  CHECK_THROWS_AS(center_crop(x, 0, 3), ValueError);

  const auto f = flip_horizontal(x);
  REQUIRE(f.shape() == x.shape());
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t y = 0; y < 7; ++y)
      for (std::int64_t xx = 0; xx < 10; ++xx) CHECK(f(k, y, xx) == x(k, y, 9 - xx));
  CHECK(same_pixels(flip_horizontal(f), x));
}

TEST_CASE("convert_channels equals converting while decoding a PNG", "[images]") {
  test::TempDir dir;
  for (const std::int64_t c : {1, 3, 4}) {
    const auto x = random_image(c, 5, 6, static_cast<unsigned>(10 + c));
    // Appended rather than "c" + std::to_string(c): GCC 12 at -O3 reports a false -Wrestrict
    // overlap in operator+(const char*, std::string&&) here (GCC bug 105329).
    std::string name = "c";
    name += std::to_string(c);
    name += ".png";
    const std::string path = dir.file(name);
    write_image(path, x);
    for (const auto ch : {ImageChannels::keep, ImageChannels::grey, ImageChannels::rgb, ImageChannels::rgba}) {
      INFO("stored " << c << ", wanted " << channels_name(ch));
      CHECK(same_pixels(convert_channels(x, ch), read_image(path, ch)));
    }
  }
  // Grey + alpha (which write_image cannot store) by the same rules.
  Tensor<std::uint8_t> ga(Shape{2, 1, 2});
  ga(0, 0, 0) = 10, ga(0, 0, 1) = 20, ga(1, 0, 0) = 30, ga(1, 0, 1) = 40;
  const auto rgba = convert_channels(ga, ImageChannels::rgba);
  CHECK((rgba(0, 0, 1) == 20 && rgba(1, 0, 1) == 20 && rgba(2, 0, 1) == 20 && rgba(3, 0, 1) == 40));
  const auto g = convert_channels(ga, ImageChannels::grey);
  CHECK((g.shape() == Shape{1, 1, 2} && g(0, 0, 0) == 10 && g(0, 0, 1) == 20));
}

TEST_CASE("ImageTransform: checks, pipeline and description", "[images]") {
  CHECK_NOTHROW(check_transform({}));
  CHECK_THROWS_AS(check_transform({.crop_height = 10}), ValueError);
  CHECK_THROWS_AS(check_transform({.crop_height = -1, .crop_width = -1}), ValueError);
  CHECK_THROWS_AS(check_transform({.height = 0, .width = 5}), ValueError);
  CHECK_THROWS_AS(check_transform({.height = -2, .width = -2}), ValueError);
  CHECK_THROWS_AS(check_transform({.channels = static_cast<ImageChannels>(9)}), ValueError);
  CHECK_THROWS_AS(check_transform({.filter = static_cast<ResizeFilter>(9)}), ValueError);

  const ImageTransform t{.channels = ImageChannels::rgb,
                         .crop_height = 8,
                         .crop_width = 8,
                         .height = 4,
                         .width = 4,
                         .filter = ResizeFilter::area};
  const auto x = random_image(4, 10, 12, 6);
  const auto y = apply_transform(t, x);
  CHECK(same_pixels(y, resize(center_crop(convert_channels(x, ImageChannels::rgb), 8, 8), 4, 4, ResizeFilter::area)));
  CHECK(y.shape() == Shape{3, 4, 4});
  CHECK(same_pixels(apply_transform({.channels = ImageChannels::keep}, x), x));
  CHECK_THROWS_AS(apply_transform({.crop_height = 11, .crop_width = 4}, x), ShapeError);

  CHECK(describe(t) == "rgb crop 8x8 resize 4x4 area");
  CHECK(describe({.channels = ImageChannels::grey}) == "grey");
  CHECK(describe({.height = 32, .width = 16}) == "rgb resize 32x16 automatic");
}

TEST_CASE("image ops refuse bad arguments", "[images]") {
  const auto x = random_image(3, 4, 4, 7);
  CHECK_THROWS_AS(resize(x, 0, 4), ValueError);
  CHECK_THROWS_AS(resize(x, 4, -1), ValueError);
  CHECK_THROWS_AS(resize(x, 4, 4, static_cast<ResizeFilter>(5)), ValueError);
  CHECK_THROWS_AS(resize(x, 20000, 20000), ValueError);  // 1.2e9 output bytes, over kMaxImageBytes
  CHECK_THROWS_AS(resize(Tensor<std::uint8_t>(Shape{4, 4}), 2, 2), ShapeError);
  CHECK_THROWS_AS(resize(Tensor<std::uint8_t>(), 2, 2), ShapeError);
  CHECK_THROWS_AS(resize(Tensor<std::uint8_t>(Shape{5, 4, 4}), 2, 2), ShapeError);
  CHECK_THROWS_AS(flip_horizontal(Tensor<std::uint8_t>(Shape{3, 0, 4})), ShapeError);
  CHECK_THROWS_AS(convert_channels(Tensor<std::uint8_t>(Shape{4}), ImageChannels::rgb), ShapeError);
}

}  // namespace data_images_image_ops_test
