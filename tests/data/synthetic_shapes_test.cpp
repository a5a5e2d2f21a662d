#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genmod/core/parallel.hpp"
#include "genmod/data/synthetic_shapes.hpp"

namespace data_synthetic_shapes_test {

using namespace genmod;
namespace col = data::shapes_column;

namespace {

bool same_bytes(const Tensor<std::uint8_t>& a, const Tensor<std::uint8_t>& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

/// Image i of `images` [N, 3, S, S] as floats in [0, 1], channel c, pixel (y, x).
float pixel(const Tensor<std::uint8_t>& images, std::int64_t i, std::int64_t c, std::int64_t y, std::int64_t x) {
  return static_cast<float>(images(i, c, y, x)) / 255.f;
}

/// Pixels of image i that differ from the background (the mean of the four corners, never covered)
/// by more than 0.25 summed over the channels: the shape's pixels. The shape differs from the
/// background by at least 0.16 in every channel (0.48 in all), the noise (sd 0.02 per channel,
/// about 0.04 for the sum) stays below 0.25 with 6 sd to spare.
std::vector<std::pair<std::int64_t, std::int64_t>> shape_pixels(const Tensor<std::uint8_t>& images, std::int64_t i) {
  const std::int64_t s = images.dim(2);
  float background[3] = {};
  for (std::int64_t c = 0; c < 3; ++c)
    background[c] = (pixel(images, i, c, 0, 0) + pixel(images, i, c, 0, s - 1) + pixel(images, i, c, s - 1, 0) +
                     pixel(images, i, c, s - 1, s - 1)) /
                    4;
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t y = 0; y < s; ++y)
    for (std::int64_t x = 0; x < s; ++x) {
      float d = 0;
      for (std::int64_t c = 0; c < 3; ++c) d += std::abs(pixel(images, i, c, y, x) - background[c]);
      if (d > 0.25f) out.emplace_back(y, x);
    }
  return out;
}

/// The attributes of images [first, first + n) with column k set to v.
Tensor<float> with_attribute(const data::ShapesSet& set, std::int64_t k, float v) {
  Tensor<float> a = set.attributes.clone();
  for (std::int64_t i = 0; i < a.dim(0); ++i) a(i, k) = v;
  return a;
}

}  // namespace

TEST_CASE("make_shapes: layout, names, values", "[data][shapes]") {
  const data::ShapesSet set = data::make_shapes({.count = 20, .size = 32, .seed = 3});
  REQUIRE(set.images.shape() == (Shape{20, 3, 32, 32}));
  REQUIRE(set.attributes.shape() == (Shape{20, 8}));
  CHECK(set.size() == 20);
  CHECK(set.names ==
        std::vector<std::string>{"Red", "Green", "Blue", "Circle", "Large", "Right", "Striped", "Light_Background"});
  CHECK(data::shapes_attribute_names() == set.names);
  for (float v : set.attributes) CHECK((v == 0.f || v == 1.f));
  const Tensor<float> f = set.float_images();
  REQUIRE(f.shape() == set.images.shape());
  for (std::int64_t i = 0; i < f.numel(); ++i) REQUIRE(f[i] == static_cast<float>(set.images[i]) * (1.f / 255.f));
  // The attributes are those of shape_spec.
  for (std::int64_t i = 0; i < 20; ++i) {
    const data::ShapeSpec spec = data::shape_spec(3, i);
    for (std::int64_t k = 0; k < 8; ++k)
      CHECK(set.attributes(i, k) == (spec.on[static_cast<std::size_t>(k)] ? 1.f : 0.f));
  }
}

TEST_CASE("make_shapes: deterministic, ranges equal slices, thread count irrelevant", "[data][shapes]") {
  const data::ShapesOptions o{.count = 60, .size = 24, .seed = 11};
  const data::ShapesSet all = data::make_shapes(o);
  const data::ShapesSet again = data::make_shapes(o);
  CHECK(same_bytes(all.images, again.images));
  const data::ShapesSet part = data::make_shapes(o, 17, 30);
  CHECK(same_bytes(part.images, all.images.rows(17, 30).clone()));
  for (std::int64_t i = 0; i < part.attributes.numel(); ++i) CHECK(part.attributes[i] == all.attributes[17 * 8 + i]);
  // A set of another count holds the same images at the same indices.
  const data::ShapesSet longer = data::make_shapes({.count = 80, .size = 24, .seed = 11});
  CHECK(same_bytes(longer.images.rows(0, 60).clone(), all.images));
  // One thread gives the same bytes as several.
  const int before = get_num_threads();
  set_num_threads(1);
  const data::ShapesSet one = data::make_shapes(o);
  set_num_threads(before);
  CHECK(same_bytes(one.images, all.images));
  // Another seed gives another set.
  const data::ShapesSet other = data::make_shapes({.count = 60, .size = 24, .seed = 12});
  CHECK_FALSE(same_bytes(other.images, all.images));
}

TEST_CASE("make_shapes: every attribute is a fair coin, independent of the others", "[data][shapes]") {
  const data::ShapesSet set = data::make_shapes({.count = 4000, .size = 16, .seed = 5});
  const std::int64_t n = 4000;
  for (std::int64_t k = 0; k < 8; ++k) {
    double on = 0;
    for (std::int64_t i = 0; i < n; ++i) on += set.attributes(i, k);
    // The standard deviation of the fraction is 0.5 / sqrt(4000) = 0.0079: 0.04 is 5 of them.
    CHECK(std::abs(on / n - 0.5) < 0.04);
    for (std::int64_t j = k + 1; j < 8; ++j) {
      double both = 0;
      for (std::int64_t i = 0; i < n; ++i) both += set.attributes(i, k) * set.attributes(i, j);
      CHECK(std::abs(both / n - 0.25) < 0.035);  // sd 0.0068
    }
  }
}

TEST_CASE("make_shapes: each attribute is visible in the pixels", "[data][shapes]") {
  // At 64 pixels a stripe gap (a third of S / 8) spans whole pixels.
  const data::ShapesOptions o{.count = 100, .size = 64, .seed = 9};
  const data::ShapesSet set = data::make_shapes(o);
  const std::int64_t n = 100, s = 64;

  SECTION("Red, Green, Blue: switching a channel on raises it on the shape and leaves the background") {
    for (const std::int64_t k : {col::red, col::green, col::blue}) {
      const Tensor<std::uint8_t> off = data::render_shapes(o, 0, with_attribute(set, k, 0.f));
      const Tensor<std::uint8_t> on = data::render_shapes(o, 0, with_attribute(set, k, 1.f));
      for (std::int64_t i = 0; i < n; ++i) {
        const auto px = shape_pixels(on, i);  // on or off, the shape differs from the background
        REQUIRE(!px.empty());
        double rise = 0;
        for (const auto& [y, x] : px) rise += pixel(on, i, k, y, x) - pixel(off, i, k, y, x);
        CHECK(rise / static_cast<double>(px.size()) > 0.3);
        CHECK(pixel(on, i, k, 0, 0) == pixel(off, i, k, 0, 0));
        for (std::int64_t c = 0; c < 3; ++c)
          if (c != k) CHECK(pixel(on, i, c, s / 2, s / 2) == pixel(off, i, c, s / 2, s / 2));
      }
    }
  }

  SECTION("Large: a large shape covers more pixels than any small one") {
    const Tensor<std::uint8_t> small = data::render_shapes(o, 0, with_attribute(set, col::large, 0.f));
    const Tensor<std::uint8_t> large = data::render_shapes(o, 0, with_attribute(set, col::large, 1.f));
    std::size_t most_small = 0, least_large = s * s;
    for (std::int64_t i = 0; i < n; ++i) {
      if (set.attributes(i, col::striped) != 0.f) continue;  // stripes hide a third of the shape
      most_small = std::max(most_small, shape_pixels(small, i).size());
      least_large = std::min(least_large, shape_pixels(large, i).size());
    }
    CHECK(most_small > 0);
    CHECK(least_large > most_small);
  }

  SECTION("Right: the shape's centre of mass is in the right half, else the left") {
    for (std::int64_t i = 0; i < n; ++i) {
      const auto px = shape_pixels(set.images, i);
      double cx = 0;
      for (const auto& [y, x] : px) cx += static_cast<double>(x) + 0.5;
      cx /= static_cast<double>(px.size());
      if (set.attributes(i, col::right) != 0.f)
        CHECK(cx > s / 2.0 + 2);
      else
        CHECK(cx < s / 2.0 - 2);
    }
  }

  SECTION("Light_Background: the corners are light, else dark") {
    for (std::int64_t i = 0; i < n; ++i)
      for (const auto& [y, x] : {std::pair<std::int64_t, std::int64_t>{0, 0}, {0, s - 1}, {s - 1, 0}, {s - 1, s - 1}}) {
        float grey = 0;
        for (std::int64_t c = 0; c < 3; ++c) grey += pixel(set.images, i, c, y, x) / 3;
        if (set.attributes(i, col::light_background) != 0.f)
          CHECK(grey > 0.5f);
        else
          CHECK(grey < 0.45f);
      }
  }

  SECTION("Striped: stripes cut the shape's rows into runs; a solid shape's middle column is one run") {
    const Tensor<std::uint8_t> solid = data::render_shapes(o, 0, with_attribute(set, col::striped, 0.f));
    const Tensor<std::uint8_t> striped = data::render_shapes(o, 0, with_attribute(set, col::striped, 1.f));
    const auto runs_in_column = [&](const Tensor<std::uint8_t>& img, std::int64_t i) {
      const auto px = shape_pixels(solid, i);  // the solid shape's extent
      double cx = 0;
      for (const auto& [y, x] : px) cx += static_cast<double>(x);
      const auto column = static_cast<std::int64_t>(cx / static_cast<double>(px.size()));
      const auto inside = shape_pixels(img, i);
      int runs = 0;
      bool prev = false;
      for (std::int64_t y = 0; y < s; ++y) {
        const bool now = std::find(inside.begin(), inside.end(), std::pair{y, column}) != inside.end();
        runs += now && !prev;
        prev = now;
      }
      return runs;
    };
    for (std::int64_t i = 0; i < n; ++i) {
      CHECK(runs_in_column(solid, i) == 1);
      CHECK(runs_in_column(striped, i) >= 2);
    }
  }

  SECTION("Circle: a square fills the corners of the circle's bounding box") {
    const Tensor<std::uint8_t> square = data::render_shapes(o, 0, with_attribute(set, col::circle, 0.f));
    const Tensor<std::uint8_t> circle = data::render_shapes(o, 0, with_attribute(set, col::circle, 1.f));
    for (std::int64_t i = 0; i < n; ++i) {
      if (set.attributes(i, col::striped) != 0.f) continue;
      const std::size_t sq = shape_pixels(square, i).size(), ci = shape_pixels(circle, i).size();
      // Area ratio 4 / pi = 1.27 for the same half-width; edge pixels blur it a little.
      CHECK(static_cast<double>(sq) > 1.12 * static_cast<double>(ci));
    }
  }
}

TEST_CASE("render_shapes: the set's own attributes give the set's images", "[data][shapes]") {
  const data::ShapesOptions o{.count = 30, .size = 20, .seed = 2};
  const data::ShapesSet set = data::make_shapes(o);
  CHECK(same_bytes(data::render_shapes(o, 0, set.attributes), set.images));
  CHECK(same_bytes(data::render_shapes(o, 10, set.attributes.rows(10, 5).clone()), set.images.rows(10, 5).clone()));
}

TEST_CASE("make_shapes, render_shapes: bad options are refused", "[data][shapes][errors]") {
  CHECK_THROWS_AS(data::make_shapes({.count = 0}), ValueError);
  CHECK_THROWS_AS(data::make_shapes({.count = -3}), ValueError);
  CHECK_THROWS_AS(data::make_shapes({.count = 4, .size = 15}), ValueError);
  CHECK_THROWS_WITH(data::make_shapes({.count = 4, .size = 8}),
                    Catch::Contains("make_shapes") && Catch::Contains("size") && Catch::Contains("got 8"));
  CHECK_THROWS_AS(data::make_shapes({.count = 4, .size = 4096}), ValueError);
  const data::ShapesOptions o{.count = 10, .size = 16};
  CHECK_THROWS_AS(data::make_shapes(o, -1, 2), ValueError);
  CHECK_THROWS_AS(data::make_shapes(o, 0, 0), ValueError);
  CHECK_THROWS_AS(data::make_shapes(o, 5, 6), ValueError);
  CHECK_THROWS_AS(data::make_shapes(o, 10, 1), ValueError);
  CHECK_NOTHROW(data::make_shapes(o, 5, 5));
  CHECK_THROWS_AS(data::render_shapes(o, 0, Tensor<float>(Shape{2, 7})), ShapeError);
  CHECK_THROWS_AS(data::render_shapes(o, 0, Tensor<float>(Shape{2, 8, 1})), ShapeError);
  CHECK_THROWS_AS(data::render_shapes(o, 0, Tensor<float>()), ShapeError);
  Tensor<float> half(Shape{2, 8});
  half.fill(0.5f);
  CHECK_THROWS_WITH(data::render_shapes(o, 0, half), Catch::Contains("expected attributes of 0 or 1, got 0.5"));
  Tensor<float> zeros(Shape{3, 8});
  zeros.fill(0.f);
  CHECK_THROWS_AS(data::render_shapes(o, 8, zeros), ValueError);
  CHECK_THROWS_AS(data::shape_spec(0, -1), ValueError);
}

}  // namespace data_synthetic_shapes_test
