#pragma once
/// \file image_ops.hpp
/// Transforms on decoded uint8 images [C, H, W]: channel conversion, center crop, resize (area or
/// bilinear), horizontal flip, and ImageTransform, the fixed pipeline an image dataset applies to
/// every file (channels, then center crop, then resize).
///
/// Why resize is written here rather than with stb_image_resize: stb filters in float and rounds
/// each pass, so an exact tie (the mean of 1 and 2 is 1.5) may round either way, and its box
/// filter evaluates a kernel at sample points rather than integrating coverage. The two filters
/// below are exact instead: every weight is an integer over a common denominator, the sums run
/// in int64, and the one rounding (half up) happens at the end. Both filters are separable: the
/// 2-D weight of input pixel (y, x) for output pixel (i, j) is wy(i, y) * wx(j, x).
///
/// Area (one axis, `in` input pixels to `out` output pixels): output pixel j covers the interval
/// [j * in/out, (j + 1) * in/out) of input coordinates, and its value is the mean of the input
/// pixels weighted by how much of each the interval covers. Scaling coordinates by `out` makes every
/// boundary an integer: input pixel i is [i * out, (i + 1) * out), output pixel j is
/// [j * in, (j + 1) * in), and the weight of i in j is overlap / in, with overlap an integer and
/// the overlaps summing to `in`. An integer-factor shrink is then exactly the block mean.
///
/// Bilinear (half-pixel centres, as OpenCV's INTER_LINEAR and PyTorch's align_corners=False):
/// output pixel j samples the input at src = (j + 1/2) * in/out - 1/2, which is
/// ((2j + 1) * in - out) / (2 out): an integer over 2 out. src < 0 is clamped to 0 and the pixel
/// past the last is the last (edge clamp); otherwise the value is
/// (1 - f) x[floor(src)] + f x[floor(src) + 1] with f = src - floor(src), both weights integers over
/// 2 out. At scale 1, src = j and the resize is the identity. Bilinear does not low-pass filter, so
/// shrinking with it aliases; ResizeFilter::automatic therefore picks area when both sides shrink.

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/images/image_file.hpp"

namespace genmod::data {

/// How resize computes output pixels (see the file comment for the exact definitions).
enum class ResizeFilter {
  automatic,  ///< area when shrinking in both dimensions, bilinear otherwise
  bilinear,   ///< linear interpolation between the two nearest pixel centres on each axis
  area,       ///< coverage-weighted mean of the input pixels under each output pixel
};

/// "automatic", "bilinear" or "area".
inline std::string_view filter_name(ResizeFilter f) noexcept {
  switch (f) {
    case ResizeFilter::automatic:
      return "automatic";
    case ResizeFilter::bilinear:
      return "bilinear";
    case ResizeFilter::area:
      return "area";
  }
  return "?";
}

namespace detail {

/// Checks an image argument: uint8 [C, H, W] with C in 1..4 and H, W >= 1.
inline void check_image(std::string_view op, const Tensor<std::uint8_t>& chw) {
  check_rank(op, "image", chw.defined() ? chw.shape() : Shape{}, 3, "[C, H, W]");
  check_shape_arg(chw.dim(0) >= 1 && chw.dim(0) <= 4 && chw.dim(1) >= 1 && chw.dim(2) >= 1, op,
                  "an image with 1 to 4 channels and at least one pixel", "", "shape " + chw.shape().to_string());
}

/// stb_image's integer luma, so that converting after decoding equals decoding to grey (PNG).
inline std::uint8_t luma(std::uint8_t r, std::uint8_t g, std::uint8_t b) noexcept {
  return static_cast<std::uint8_t>((r * 77 + g * 150 + b * 29) >> 8);
}

/// The resampling weights of one axis: output j takes taps [begin[j], begin[j + 1]) of `taps`,
/// each an input index and an integer weight; the weights of every output sum to `denominator`.
struct AxisWeights {
  struct Tap {
    std::int64_t index, weight;
  };
  std::vector<std::int64_t> begin;
  std::vector<Tap> taps;
  std::int64_t denominator = 1;
};

/// Area weights (file comment): overlap of [i out, (i + 1) out) and [j in, (j + 1) in), over in.
inline AxisWeights area_weights(std::int64_t in, std::int64_t out) {
  AxisWeights a;
  a.denominator = in;
  a.begin.reserve(static_cast<std::size_t>(out + 1));
  for (std::int64_t j = 0; j < out; ++j) {
    a.begin.push_back(static_cast<std::int64_t>(a.taps.size()));
    const std::int64_t lo = j * in, hi = (j + 1) * in;
    for (std::int64_t i = lo / out; i * out < hi; ++i) {
      const std::int64_t overlap = std::min((i + 1) * out, hi) - std::max(i * out, lo);
      if (overlap > 0) a.taps.push_back({i, overlap});
    }
  }
  a.begin.push_back(static_cast<std::int64_t>(a.taps.size()));
  return a;
}

/// Bilinear weights (file comment): src = ((2j + 1) in - out) / (2 out), edge clamped.
inline AxisWeights bilinear_weights(std::int64_t in, std::int64_t out) {
  AxisWeights a;
  const std::int64_t d = 2 * out;
  a.denominator = d;
  a.begin.reserve(static_cast<std::size_t>(out + 1));
  for (std::int64_t j = 0; j < out; ++j) {
    a.begin.push_back(static_cast<std::int64_t>(a.taps.size()));
    const std::int64_t src = (2 * j + 1) * in - out;  // in units of 1 / (2 out)
    if (src <= 0) {
      a.taps.push_back({0, d});
      continue;
    }
    const std::int64_t i0 = src / d, frac = src % d;
    if (i0 >= in - 1 || frac == 0) {
      a.taps.push_back({std::min(i0, in - 1), d});
    } else {
      a.taps.push_back({i0, d - frac});
      a.taps.push_back({i0 + 1, frac});
    }
  }
  a.begin.push_back(static_cast<std::int64_t>(a.taps.size()));
  return a;
}

}  // namespace detail

/// The image with `channels` (see ImageChannels), converted as stb_image converts on decoding:
/// grey is replicated into RGB, alpha is dropped (not composited) or added as 255, colour becomes
/// the integer luma (77 R + 150 G + 29 B) >> 8. keep returns the image itself (not a copy).
inline Tensor<std::uint8_t> convert_channels(const Tensor<std::uint8_t>& chw, ImageChannels channels) {
  detail::check_image("convert_channels", chw);
  const std::int64_t c = chw.dim(0), h = chw.dim(1), w = chw.dim(2), plane = h * w;
  const std::int64_t oc = channel_count(channels, c);
  if (oc == c) return chw;
  Tensor<std::uint8_t> out(Shape{oc, h, w});
  const std::uint8_t* s = chw.data();
  std::uint8_t* d = out.data();
  const bool colour = c >= 3, has_alpha = c == 2 || c == 4;
  for (std::int64_t p = 0; p < plane; ++p) {
    const std::uint8_t r = s[p], g = colour ? s[plane + p] : r, b = colour ? s[2 * plane + p] : r;
    const std::uint8_t a = has_alpha ? s[(c - 1) * plane + p] : 255;
    if (oc == 1) {
      d[p] = colour ? detail::luma(r, g, b) : r;
    } else {  // 3 or 4
      d[p] = r;
      d[plane + p] = g;
      d[2 * plane + p] = b;
      if (oc == 4) d[3 * plane + p] = a;
    }
  }
  return out;
}

/// The central height x width window of the image; when H - height (or W - width) is odd, the
/// extra row (column) is dropped from the bottom (right): top = floor((H - height) / 2).
/// ShapeError when the window is larger than the image (naming both).
inline Tensor<std::uint8_t> center_crop(const Tensor<std::uint8_t>& chw, std::int64_t height, std::int64_t width) {
  detail::check_image("center_crop", chw);
  check_positive("center_crop", "height", height);
  check_positive("center_crop", "width", width);
  const std::int64_t c = chw.dim(0), h = chw.dim(1), w = chw.dim(2);
  check_shape_arg(
      height <= h && width <= w, "center_crop",
      "a crop of " + std::to_string(height) + " x " + std::to_string(width) + " to fit in the image", "",
      "an image of " + std::to_string(h) + " x " + std::to_string(w) + " (shape " + chw.shape().to_string() + ")");
  const std::int64_t top = (h - height) / 2, left = (w - width) / 2;
  Tensor<std::uint8_t> out(Shape{c, height, width});
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t y = 0; y < height; ++y) {
      const std::uint8_t* src = chw.data() + (k * h + top + y) * w + left;
      std::copy(src, src + width, out.data() + (k * height + y) * width);
    }
  return out;
}

/// The image resampled to height x width with `filter` (exact definitions in the file comment;
/// automatic: area when neither side grows, bilinear otherwise). The result is rounded half up.
/// ValueError when the output would exceed kMaxImageBytes.
inline Tensor<std::uint8_t> resize(const Tensor<std::uint8_t>& chw, std::int64_t height, std::int64_t width,
                                   ResizeFilter filter = ResizeFilter::automatic) {
  detail::check_image("resize", chw);
  check_positive("resize", "height", height);
  check_positive("resize", "width", width);
  check_arg(filter == ResizeFilter::automatic || filter == ResizeFilter::bilinear || filter == ResizeFilter::area,
            "resize", "filter", "automatic, bilinear or area", std::to_string(static_cast<int>(filter)));
  const std::int64_t c = chw.dim(0), h = chw.dim(1), w = chw.dim(2);
  std::uint64_t out_bytes = 0;
  const bool fits = genmod::detail::checked_mul(static_cast<std::uint64_t>(c) * static_cast<std::uint64_t>(height),
                                                static_cast<std::uint64_t>(width), out_bytes);
  check_arg(fits && out_bytes <= kMaxImageBytes, "resize", "an output of at most " + std::to_string(kMaxImageBytes),
            "bytes", std::to_string(c) + " x " + std::to_string(height) + " x " + std::to_string(width));
  if (height == h && width == w) return chw.clone();  // both filters are the identity at scale 1
  if (filter == ResizeFilter::automatic)
    filter = height <= h && width <= w ? ResizeFilter::area : ResizeFilter::bilinear;
  const auto weights = [filter](std::int64_t in, std::int64_t out) {
    return filter == ResizeFilter::area ? detail::area_weights(in, out) : detail::bilinear_weights(in, out);
  };
  const detail::AxisWeights wy = weights(h, height), wx = weights(w, width);
  // Bounds: area denominators are h * w <= 2^28; bilinear ones 4 * height * width <= 2^30; a sum
  // is at most 255 times that, far inside int64.
  const std::int64_t denominator = wy.denominator * wx.denominator;
  // The x pass keeps one channel of h x width sums: bounded like the output (a [1, 4096, 1] image
  // widened to 2^28 columns would ask for 8 TiB).
  check_arg(static_cast<std::uint64_t>(h) * static_cast<std::uint64_t>(width) <= kMaxImageBytes, "resize",
            "an intermediate of at most " + std::to_string(kMaxImageBytes), "values",
            std::to_string(h) + " x " + std::to_string(width));
  Tensor<std::uint8_t> out(Shape{c, height, width});
  std::vector<std::int64_t> rows(static_cast<std::size_t>(h * width));  // one channel after the x pass
  for (std::int64_t k = 0; k < c; ++k) {
    const std::uint8_t* src = chw.data() + k * h * w;
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t j = 0; j < width; ++j) {
        std::int64_t acc = 0;
        for (auto t = wx.begin[j]; t < wx.begin[j + 1]; ++t) acc += wx.taps[t].weight * src[y * w + wx.taps[t].index];
        rows[y * width + j] = acc;
      }
    std::uint8_t* dst = out.data() + k * height * width;
    for (std::int64_t i = 0; i < height; ++i)
      for (std::int64_t j = 0; j < width; ++j) {
        std::int64_t acc = 0;
        for (auto t = wy.begin[i]; t < wy.begin[i + 1]; ++t)
          acc += wy.taps[t].weight * rows[wy.taps[t].index * width + j];
        // round(acc / denominator), half up, in integers: floor((2 acc + d) / (2 d)).
        dst[i * width + j] = static_cast<std::uint8_t>((2 * acc + denominator) / (2 * denominator));
      }
  }
  return out;
}

/// The image mirrored left to right.
inline Tensor<std::uint8_t> flip_horizontal(const Tensor<std::uint8_t>& chw) {
  detail::check_image("flip_horizontal", chw);
  const std::int64_t rows = chw.dim(0) * chw.dim(1), w = chw.dim(2);
  Tensor<std::uint8_t> out(chw.shape());
  for (std::int64_t r = 0; r < rows; ++r)
    std::reverse_copy(chw.data() + r * w, chw.data() + (r + 1) * w, out.data() + r * w);
  return out;
}

/// What ImageFolder/ImageLoader apply to every decoded image: channels, then center crop, then
/// resize. E.g. CelebA's aligned 178 x 218 faces to 64 x 64 RGB:
/// `{.channels = ImageChannels::rgb, .crop_height = 178, .crop_width = 178, .height = 64, .width = 64}`.
struct ImageTransform {
  ImageChannels channels = ImageChannels::rgb;    ///< channel layout of the result
  std::int64_t crop_height = 0;                   ///< center crop rows; 0 (with crop_width 0): no crop
  std::int64_t crop_width = 0;                    ///< center crop columns; 0 (with crop_height 0): no crop
  std::int64_t height = 0;                        ///< rows after the resize; 0 (with width 0): keep the size
  std::int64_t width = 0;                         ///< columns after the resize; 0 (with height 0): keep the size
  ResizeFilter filter = ResizeFilter::automatic;  ///< resize filter
};

/// Throws ValueError for an invalid transform: an unknown enum value, a negative size, or a crop
/// or resize that gives one side only (both are 0 or both positive).
inline void check_transform(const ImageTransform& t) {
  const auto ch = static_cast<int>(t.channels), f = static_cast<int>(t.filter);
  check_arg(ch >= 0 && ch <= 3, "ImageTransform", "channels", "keep, grey, rgb or rgba", std::to_string(ch));
  check_arg(f >= 0 && f <= 2, "ImageTransform", "filter", "automatic, bilinear or area", std::to_string(f));
  check_non_negative("ImageTransform", "crop_height", t.crop_height);
  check_non_negative("ImageTransform", "crop_width", t.crop_width);
  check_non_negative("ImageTransform", "height", t.height);
  check_non_negative("ImageTransform", "width", t.width);
  const auto pair = [](std::int64_t a, std::int64_t b) { return std::to_string(a) + " x " + std::to_string(b); };
  check_arg((t.crop_height == 0) == (t.crop_width == 0), "ImageTransform", "crop_height and crop_width",
            "both 0 (no crop) or both positive", pair(t.crop_height, t.crop_width));
  check_arg((t.height == 0) == (t.width == 0), "ImageTransform", "height and width",
            "both 0 (no resize) or both positive", pair(t.height, t.width));
}

/// `chw` after the transform: channels, center crop, resize. ShapeError when the crop is larger
/// than the image (the message names both).
inline Tensor<std::uint8_t> apply_transform(const ImageTransform& t, const Tensor<std::uint8_t>& chw) {
  check_transform(t);
  Tensor<std::uint8_t> x = convert_channels(chw, t.channels);
  if (t.crop_height > 0) x = center_crop(x, t.crop_height, t.crop_width);
  if (t.height > 0) x = resize(x, t.height, t.width, t.filter);
  return x;
}

/// Stable text for a transform, used as a cache key: "rgb crop 178x178 resize 64x64 area"
/// (parts without effect are left out: "grey", "rgb resize 32x32 automatic").
inline std::string describe(const ImageTransform& t) {
  std::string s(channels_name(t.channels));
  if (t.crop_height > 0) s += " crop " + std::to_string(t.crop_height) + "x" + std::to_string(t.crop_width);
  if (t.height > 0)
    s += " resize " + std::to_string(t.height) + "x" + std::to_string(t.width) + " " +
         std::string(filter_name(t.filter));
  return s;
}

}  // namespace genmod::data
