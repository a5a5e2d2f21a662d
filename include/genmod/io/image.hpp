#pragma once
/// \file image.hpp
/// PNG output (8-bit grey, RGB or RGBA) and image grids of samples, with zlib as the only
/// dependency: PNG is a signature plus chunks (length, type, data, CRC-32), and the pixel data
/// is one zlib stream of filtered scanlines.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::io {

/// Layout of an image grid.
struct GridOptions {
  std::int64_t columns = 8;  ///< images per row (the last row may be partial)
  std::int64_t padding = 2;  ///< pixels between images and around the border
  float pad_value = 0.f;     ///< brightness of the padding, on the images' scale
  float low = 0.f;           ///< value shown as black (use -1 for tanh outputs)
  float high = 1.f;          ///< value shown as white
};

namespace detail {

inline void put_chunk(std::vector<unsigned char>& png, const char* type, const std::vector<unsigned char>& data) {
  genmod::detail::put_be32(png, static_cast<std::uint32_t>(data.size()));
  const std::size_t type_at = png.size();
  genmod::detail::put_raw(png, type, 4);
  genmod::detail::put_raw(png, data.data(), data.size());
  // The CRC covers the chunk type and data, not the length.
  genmod::detail::put_be32(png, genmod::detail::crc32_update(0, png.data() + type_at, 4 + data.size()));
}

/// One value mapped from [low, high] to 0..255, clamped (NaN shows as black).
inline std::uint8_t to_byte(float v, float low, float high) noexcept {
  const float t = (v - low) / (high - low);
  if (!(t > 0.f)) return 0;
  if (t >= 1.f) return 255;
  return static_cast<std::uint8_t>(std::lround(t * 255.f));
}

}  // namespace detail

/// The bytes of a PNG file for `image`: uint8 [H, W] (grey) or [H, W, C] with C = 1 (grey),
/// 3 (RGB) or 4 (RGBA).
GENMOD_DETAIL_NONTEMPLATE std::vector<unsigned char> encode_png(const Tensor<std::uint8_t>& image, int level = 6)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  const int rank = image.defined() ? image.rank() : 0;
  const std::int64_t channels = rank == 3 ? image.dim(2) : 1;
  if ((rank != 2 && rank != 3) || (channels != 1 && channels != 3 && channels != 4))
    throw ShapeError("encode_png: expected an image of shape [H, W] or [H, W, C] with C in {1, 3, 4}, got " +
                     (image.defined() ? image.shape().to_string() : std::string("an undefined tensor")));
  const std::int64_t h = image.dim(0), w = image.dim(1);
  if (h < 1 || w < 1 || h > 0x7fffffff || w > 0x7fffffff)
    throw ShapeError("encode_png: image extents must be in [1, 2^31), got " + image.shape().to_string());
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<unsigned char> png;
  genmod::detail::put_raw(png, kSignature, 8);
  std::vector<unsigned char> ihdr;
  genmod::detail::put_be32(ihdr, static_cast<std::uint32_t>(w));
  genmod::detail::put_be32(ihdr, static_cast<std::uint32_t>(h));
  const unsigned char format[5] = {
      8,                                                         // bits per sample
      static_cast<unsigned char>(channels == 1 ? 0 : channels == 3 ? 2 : 6),  // colour: grey, RGB, RGBA
      0,                                                         // deflate
      0,                                                         // adaptive filtering
      0};                                                        // no interlace
  genmod::detail::put_raw(ihdr, format, 5);
  detail::put_chunk(png, "IHDR", ihdr);
  // Each scanline is prefixed by its filter type; "Up" (2: difference with the row above)
  // compresses smooth images well at no cost, and the first row has none above, so uses 0.
  const auto stride = static_cast<std::size_t>(w * channels);
  genmod::detail::Deflater z(genmod::detail::Deflater::Format::zlib, level);
  std::vector<unsigned char> row(stride + 1);
  const std::uint8_t* px = image.data();
  for (std::int64_t y = 0; y < h; ++y) {
    const std::uint8_t* cur = px + static_cast<std::size_t>(y) * stride;
    row[0] = y == 0 ? 0 : 2;
    if (y == 0) {
      std::copy(cur, cur + stride, row.begin() + 1);
    } else {
      const std::uint8_t* up = cur - stride;
      for (std::size_t i = 0; i < stride; ++i) row[i + 1] = static_cast<unsigned char>(cur[i] - up[i]);
    }
    z.append(row.data(), row.size());
  }
  detail::put_chunk(png, "IDAT", z.finish());
  detail::put_chunk(png, "IEND", {});
  return png;
}
#else
    ;
#endif

/// Writes `image` (see encode_png) as a PNG file, atomically.
inline void write_png(const std::string& path, const Tensor<std::uint8_t>& image) {
  const auto bytes = encode_png(image);
  genmod::detail::write_file_atomic(path, bytes);
}

/// Tiles images [N, C, H, W] (C = 1 or 3; or [N, H, W] for grey) into one uint8 image
/// [rows * (H + pad) + pad, columns * (W + pad) + pad, C], ready for encode_png. Values are mapped
/// from [low, high] to 0..255 and clamped.
GENMOD_DETAIL_NONTEMPLATE Tensor<std::uint8_t> make_image_grid(const Tensor<float>& images,
                                                               const GridOptions& options = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  if (!images.defined() || (images.rank() != 3 && images.rank() != 4))
    throw ShapeError("make_image_grid: expected images of shape [N, C, H, W] or [N, H, W], got " +
                     (images.defined() ? images.shape().to_string() : std::string("an undefined tensor")));
  const bool has_c = images.rank() == 4;
  const std::int64_t n = images.dim(0), c = has_c ? images.dim(1) : 1;
  const std::int64_t h = images.dim(has_c ? 2 : 1), w = images.dim(has_c ? 3 : 2);
  if (c != 1 && c != 3)
    throw ShapeError("make_image_grid: expected 1 (grey) or 3 (RGB) channels, got shape " + images.shape().to_string());
  if (n < 1 || h < 1 || w < 1) throw ShapeError("make_image_grid: no pixels to draw in shape " + images.shape().to_string());
  check_at_least("make_image_grid", "columns", options.columns, 1);
  check_non_negative("make_image_grid", "padding", options.padding);
  if (!(options.high > options.low))
    throw ValueError("make_image_grid: high (" + std::to_string(options.high) + ") must exceed low (" +
                     std::to_string(options.low) + ")");
  const std::int64_t cols = std::min(options.columns, n), rows = (n + cols - 1) / cols, pad = options.padding;
  const std::int64_t gh = rows * (h + pad) + pad, gw = cols * (w + pad) + pad;
  Tensor<std::uint8_t> grid(Shape{gh, gw, c});
  grid.fill(detail::to_byte(options.pad_value, options.low, options.high));
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t y0 = pad + (k / cols) * (h + pad), x0 = pad + (k % cols) * (w + pad);
    const float* src = images.data() + k * c * h * w;
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x)
          grid(y0 + y, x0 + x, ch) = detail::to_byte(src[(ch * h + y) * w + x], options.low, options.high);
  }
  return grid;
}
#else
    ;
#endif

/// Saves images [N, C, H, W] in [low, high] (default [0, 1]) as one PNG grid, e.g.
/// `save_image_grid("samples.png", x, {.columns = 8, .padding = 2})`.
GENMOD_DETAIL_NONTEMPLATE void save_image_grid(const std::string& path, const Tensor<float>& images,
                                               const GridOptions& options = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  write_png(path, make_image_grid(images, options));
}
#else
    ;
#endif

}  // namespace genmod::io
