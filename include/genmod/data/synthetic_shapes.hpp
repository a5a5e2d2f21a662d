#pragma once
/// \file synthetic_shapes.hpp
/// Shapes: a procedurally generated data set of colour images with binary attributes, laid out as
/// CelebA is (images [N, 3, S, S] plus an attribute table [N, A] of 0/1), for attribute-conditional
/// models when no photographs with attributes are at hand. examples/shapes writes it to disk in
/// CelebA's layout (PNG files and list_attr_celeba.txt).
///
/// Each image is one shape on a plain background. Its 8 attributes are independent fair coins, so
/// switching any one of them while keeping the others always gives another valid image of the set
/// (render_shapes draws exactly that: the same image with other attributes):
///
///     column  name              1                                   0
///     0       Red               red channel of the shape on         off
///     1       Green             green channel of the shape on       off
///     2       Blue              blue channel of the shape on        off
///     3       Circle            a circle                            an axis-aligned square
///     4       Large             half-width in [0.21, 0.25] S        half-width in [0.12, 0.15] S
///     5       Right             centre x in [0.60, 0.72] S          centre x in [0.28, 0.40] S
///     6       Striped           horizontal stripes of background    solid
///     7       Light_Background  grey level in [0.58, 0.68]          grey level in [0.28, 0.38]
///
/// Definition, for an image of side S pixels (coordinates in pixels, y down, pixel (x, y) covering
/// [x, x + 1) x [y, y + 1)):
/// - Colour: each channel of the shape is "on" at a level uniform in [0.88, 1] or "off" uniform in
///   [0, 0.10], so the shape is one of 8 colours (black, red, green, blue, yellow, magenta, cyan,
///   white) with a little jitter.
/// - Size: the half-width r (a circle's radius, half a square's side) is uniform within its class,
///   with a clear gap between 0.15 S and 0.21 S. A square fills the circle's bounding box (4 / pi
///   times its area): its corners are what tells the two apart at 32 pixels.
/// - Position: centre x uniform within its half (ranges above), centre y uniform in [0.28, 0.72] S;
///   every shape lies inside the image.
/// - Stripes: horizontal bands of period S / 8; the band [phase + k P + 2 P / 3, phase + (k + 1) P)
///   of every period P shows the background through the shape (phase uniform in [0, P)).
/// - Background: grey at a level uniform in its class, each channel shifted by a tint uniform in
///   [-0.02, 0.02]. The shape's colour differs from the background by at least 0.16 in every channel
///   whatever the attributes, so every shape is visible.
/// - Edges are anti-aliased: a pixel's shape coverage is the fraction of its 4 x 4 sub-pixel
///   centres inside the shape (and outside a stripe gap); pixel = background + coverage (shape -
///   background).
/// - Noise: independent N(0, 0.02^2) per pixel and channel, then clamped to [0, 1] and rounded to
///   8 bits.
///
/// Reproducibility: image i depends only on (seed, i). Its random numbers come from Philox stream
/// kShapesStream + i of `seed` (Generator(seed, kShapesStream + i)): blocks 0-1 give the 8 coins
/// (top bit of each word), blocks 2-4 the jitters, blocks 8 on the noise. So make_shapes(o, a, n)
/// equals rows [a, a + n) of make_shapes(o), whatever the thread count, and images are rendered in
/// parallel.
///
/// ```cpp
/// data::ShapesSet set = data::make_shapes({.count = 4000, .size = 32, .seed = 1});
/// Tensor<float> x = set.float_images();           // [4000, 3, 32, 32] in [0, 1]
/// Tensor<float> a = set.attributes;               // [4000, 8] of 0/1; set.names[k] names column k
/// ```

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::data {

/// Number of Shapes attributes (columns of ShapesSet::attributes).
inline constexpr std::int64_t kShapesAttributes = 8;

/// Philox stream of image 0 ("shap" in the high word); image i draws from stream kShapesStream + i.
inline constexpr std::uint64_t kShapesStream = 0x7368617000000000ULL;

/// Column of each attribute in ShapesSet::attributes (see the file comment).
namespace shapes_column {
inline constexpr std::int64_t red = 0;               ///< Red: the shape's red channel is on
inline constexpr std::int64_t green = 1;             ///< Green: its green channel is on
inline constexpr std::int64_t blue = 2;              ///< Blue: its blue channel is on
inline constexpr std::int64_t circle = 3;            ///< Circle (else a square)
inline constexpr std::int64_t large = 4;             ///< Large (else small)
inline constexpr std::int64_t right = 5;             ///< Right: centre in the right half (else left)
inline constexpr std::int64_t striped = 6;           ///< Striped (else solid)
inline constexpr std::int64_t light_background = 7;  ///< Light_Background (else dark)
}  // namespace shapes_column

/// The attribute names in column order, CelebA style: Red Green Blue Circle Large Right Striped
/// Light_Background.
inline std::vector<std::string> shapes_attribute_names() {
  return {"Red", "Green", "Blue", "Circle", "Large", "Right", "Striped", "Light_Background"};
}

/// Which part of the Shapes set to generate.
struct ShapesOptions {
  std::int64_t count = 20000;  ///< images in the set, >= 1 (at most 2^31 - 1)
  std::int64_t size = 64;      ///< side S of the square images in pixels, in [16, 1024]
  std::uint64_t seed = 0;      ///< the set: another seed gives other images
};

/// Images with their attributes, as CelebA lays them out.
struct ShapesSet {
  Tensor<std::uint8_t> images = {};     ///< [N, 3, S, S] RGB, 0..255
  Tensor<float> attributes = {};        ///< [N, 8], each 0 or 1 (columns: shapes_column, names)
  std::vector<std::string> names = {};  ///< the 8 attribute names (shapes_attribute_names())

  /// Number of images.
  std::int64_t size() const { return images.defined() ? images.dim(0) : 0; }

  /// The images as floats in [0, 1] (x times 1 / 255, as data::scale_pixels), [N, 3, S, S].
  Tensor<float> float_images() const {
    Tensor<float> out(images.shape());
    const std::uint8_t* p = images.data();
    float* q = out.data();
    for (std::int64_t i = 0; i < out.numel(); ++i) q[i] = static_cast<float>(p[i]) * (1.f / 255.f);
    return out;
  }
};

/// Everything random about one image: its attributes and the uniforms in [0, 1) that place it
/// within their classes. render_shape maps it to pixels; changing `on` keeps the jitters, so the
/// same image can be drawn with other attributes.
struct ShapeSpec {
  std::array<bool, kShapesAttributes> on = {};  ///< attribute values, in shapes_column order
  std::array<float, 3> colour = {};             ///< per-channel level within the on or off range
  float radius = 0;                             ///< radius within the Large or small range
  float x = 0;                                  ///< centre x within the right or left range
  float y = 0;                                  ///< centre y within [0.28, 0.72] S
  float stripe_phase = 0;                       ///< offset of the stripes, in periods
  float background = 0;                         ///< grey level within the light or dark range
  std::array<float, 3> tint = {};               ///< per-channel shift of the background
  std::uint64_t seed = 0;                       ///< the set's seed: keys the noise
  std::int64_t index = 0;                       ///< the image's index: keys the noise
};

namespace detail {

/// The Philox generator of image `index` of the set `seed`.
inline Generator shapes_generator(std::uint64_t seed, std::int64_t index) noexcept {
  return Generator(seed, kShapesStream + static_cast<std::uint64_t>(index));
}

/// First Philox block of an image's pixel noise.
inline constexpr std::uint64_t kShapesNoiseBlock = 8;

/// Standard deviation of the pixel noise.
inline constexpr float kShapesNoise = 0.02f;

/// a + u (b - a): u in [0, 1) placed in [a, b).
inline float shapes_lerp(float a, float b, float u) noexcept {
  return a + u * (b - a);
}

/// ValueError unless count in [1, 2^31 - 1] and size in [16, 1024].
inline void check_shapes_options(std::string_view op, const ShapesOptions& o) {
  check_in_range(op, "count", o.count, 1, std::int64_t{2147483647});
  check_in_range(op, "size", o.size, 16, 1024);
}

/// ValueError unless [first, first + count) is a non-empty range of the set's images.
inline void check_shapes_range(std::string_view op, const ShapesOptions& o, std::int64_t first, std::int64_t count) {
  check_shapes_options(op, o);
  check_in_range(op, "first", first, 0, o.count - 1);
  check_in_range(op, "count", count, 1, o.count - first);
}

}  // namespace detail

/// The attributes and jitters of image `index` of the set `seed` (see the file comment).
inline ShapeSpec shape_spec(std::uint64_t seed, std::int64_t index) {
  check_non_negative("shape_spec", "index", index);
  const Generator g = detail::shapes_generator(seed, index);
  ShapeSpec s;
  s.seed = seed;
  s.index = index;
  for (std::size_t k = 0; k < s.on.size(); ++k) s.on[k] = (g.block(k / 4)[k % 4] >> 31) != 0;
  // The jitters from blocks 2, 3, 4, one 32-bit word each (the last word unused).
  std::array<float, 12> u{};
  for (std::size_t k = 0; k < u.size(); ++k) u[k] = genmod::detail::u32_to_unit_float(g.block(2 + k / 4)[k % 4]);
  s.colour = {u[0], u[1], u[2]};
  s.radius = u[3];
  s.x = u[4];
  s.y = u[5];
  s.stripe_phase = u[6];
  s.background = u[7];
  s.tint = {u[8], u[9], u[10]};
  return s;
}

/// Draws `spec` as an S x S RGB image into `chw` (3 S S bytes, channel-major: [3, S, S]). The
/// pixel noise is keyed by (spec.seed, spec.index) alone, so the same spec with other attributes
/// carries the same noise. ValueError unless size is in [16, 1024].
inline void render_shape(const ShapeSpec& spec, std::int64_t size, std::uint8_t* chw) {
  check_in_range("render_shape", "size", size, 16, 1024);
  using detail::shapes_lerp;
  namespace col = shapes_column;
  const auto on = [&spec](std::int64_t c) { return spec.on[static_cast<std::size_t>(c)]; };
  const float s = static_cast<float>(size);

  std::array<float, 3> shape_colour{}, background{};
  const float grey = on(col::light_background) ? shapes_lerp(0.58f, 0.68f, spec.background)
                                               : shapes_lerp(0.28f, 0.38f, spec.background);
  for (std::size_t c = 0; c < 3; ++c) {
    shape_colour[c] = on(static_cast<std::int64_t>(c)) ? shapes_lerp(0.88f, 1.f, spec.colour[c])
                                                       : shapes_lerp(0.f, 0.10f, spec.colour[c]);
    background[c] = grey + shapes_lerp(-0.02f, 0.02f, spec.tint[c]);
  }
  const float r =
      s * (on(col::large) ? shapes_lerp(0.21f, 0.25f, spec.radius) : shapes_lerp(0.12f, 0.15f, spec.radius));
  const float cx = s * (on(col::right) ? shapes_lerp(0.60f, 0.72f, spec.x) : shapes_lerp(0.28f, 0.40f, spec.x));
  const float cy = s * shapes_lerp(0.28f, 0.72f, spec.y);
  const bool circle = on(col::circle);
  const float half_side = r;  // the circle's bounding box: the corners stand out
  const float extent = r;
  const bool striped = on(col::striped);
  const float period = s / 8.f;
  const float phase = spec.stripe_phase * period;

  // Coverage of the shape's colour in each pixel: 4 x 4 sub-pixel centres.
  constexpr int kSub = 4;
  const auto covered = [&](float px, float py) {
    const float dx = px - cx, dy = py - cy;
    const bool inside = circle ? dx * dx + dy * dy < r * r : std::abs(dx) < half_side && std::abs(dy) < half_side;
    if (!inside || !striped) return inside;
    const float t = (py - phase) / period;
    return t - std::floor(t) < 2.f / 3.f;  // the last third of every period shows the background
  };
  const auto x0 = static_cast<std::int64_t>(std::max(0.f, std::floor(cx - extent - 1)));
  const auto x1 = static_cast<std::int64_t>(std::min(s, std::ceil(cx + extent + 1)));
  const auto y0 = static_cast<std::int64_t>(std::max(0.f, std::floor(cy - extent - 1)));
  const auto y1 = static_cast<std::int64_t>(std::min(s, std::ceil(cy + extent + 1)));

  const std::int64_t plane = size * size;
  std::vector<float> noise(static_cast<std::size_t>(3 * plane));
  genmod::detail::fill_normal_range<float>(detail::shapes_generator(spec.seed, spec.index), detail::kShapesNoiseBlock,
                                           noise.data(), 0, 3 * plane);
  for (std::int64_t y = 0; y < size; ++y)
    for (std::int64_t x = 0; x < size; ++x) {
      float coverage = 0;
      if (y >= y0 && y < y1 && x >= x0 && x < x1) {
        int hits = 0;
        for (int sy = 0; sy < kSub; ++sy)
          for (int sx = 0; sx < kSub; ++sx)
            hits += covered(static_cast<float>(x) + (static_cast<float>(sx) + 0.5f) / kSub,
                            static_cast<float>(y) + (static_cast<float>(sy) + 0.5f) / kSub);
        coverage = static_cast<float>(hits) / (kSub * kSub);
      }
      for (std::int64_t c = 0; c < 3; ++c) {
        const auto cc = static_cast<std::size_t>(c);
        const std::int64_t at = c * plane + y * size + x;
        const float v = background[cc] + coverage * (shape_colour[cc] - background[cc]) +
                        detail::kShapesNoise * noise[static_cast<std::size_t>(at)];
        chw[at] = static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f));
      }
    }
}

/// Images [first, first + n) of the set `options` drawn with the given attributes instead of their
/// own (attributes [n, 8] of 0/1), everything else (jitters, noise) kept: e.g. an image with one
/// attribute switched, the ground truth of "add attribute X". Returns [n, 3, S, S].
/// ShapeError for attributes not [n, 8] (n >= 1); ValueError for values other than 0 and 1 or a
/// range outside [0, options.count).
inline Tensor<std::uint8_t> render_shapes(const ShapesOptions& options, std::int64_t first,
                                          const Tensor<float>& attributes) {
  constexpr std::string_view op = "render_shapes";
  if (!attributes.defined()) throw ShapeError("render_shapes: expected attributes [n, 8], got an undefined tensor");
  check_rank(op, "attributes", attributes.shape(), 2, "[n, 8]");
  check_dim_at_least(op, "attributes", attributes.shape(), 0, 1, "images");
  check_dim(op, "attributes", attributes.shape(), 1, kShapesAttributes, "attributes");
  const std::int64_t n = attributes.dim(0);
  detail::check_shapes_range(op, options, first, n);
  for (std::int64_t i = 0; i < attributes.numel(); ++i) {
    const float v = attributes.data()[i];
    if (v != 0.f && v != 1.f)
      throw ValueError("render_shapes: expected attributes of 0 or 1, got " + genmod::detail::check_number(v) +
                       " at element " + std::to_string(i));
  }
  const std::int64_t s = options.size, per_image = 3 * s * s;
  Tensor<std::uint8_t> images(Shape{n, 3, s, s});
  parallel_for(n, per_image * 16, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      ShapeSpec spec = shape_spec(options.seed, first + i);
      for (std::int64_t k = 0; k < kShapesAttributes; ++k)
        spec.on[static_cast<std::size_t>(k)] = attributes.data()[i * kShapesAttributes + k] != 0.f;
      render_shape(spec, s, images.data() + i * per_image);
    }
  });
  return images;
}

/// Images [first, first + count) of the Shapes set `options` (0 <= first, first + count <=
/// options.count), equal to those rows of make_shapes(options). ValueError for bad options or range.
inline ShapesSet make_shapes(const ShapesOptions& options, std::int64_t first, std::int64_t count) {
  detail::check_shapes_range("make_shapes", options, first, count);
  ShapesSet set;
  set.names = shapes_attribute_names();
  set.attributes = Tensor<float>(Shape{count, kShapesAttributes});
  for (std::int64_t i = 0; i < count; ++i) {
    const ShapeSpec spec = shape_spec(options.seed, first + i);
    for (std::int64_t k = 0; k < kShapesAttributes; ++k)
      set.attributes.data()[i * kShapesAttributes + k] = spec.on[static_cast<std::size_t>(k)] ? 1.f : 0.f;
  }
  set.images = render_shapes(options, first, set.attributes);
  return set;
}

/// The whole Shapes set `options`: options.count images of options.size pixels a side. ValueError
/// unless count >= 1 and size in [16, 1024].
inline ShapesSet make_shapes(const ShapesOptions& options = {}) {
  detail::check_shapes_options("make_shapes", options);
  return make_shapes(options, 0, options.count);
}

}  // namespace genmod::data
