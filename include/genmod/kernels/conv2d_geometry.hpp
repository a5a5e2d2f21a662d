#pragma once
/// \file conv2d_geometry.hpp
/// The shape of one 2-D convolution (NCHW): extents, stride, padding, dilation and, for masked
/// convolutions, the kernel taps kept.

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "genmod/config.hpp"
#include "genmod/core/shape.hpp"

namespace genmod::kernels {

/// Shapes and hyperparameters of one convolution C: input [N, Cin, H, W] -> output [N, Cout, Ho, Wo]
/// with weight [Cout, Cin, KH, KW].
struct Conv2dGeometry {
  std::int64_t n = 0;         ///< images N
  std::int64_t cin = 0;       ///< input channels
  std::int64_t h = 0;         ///< input height
  std::int64_t w = 0;         ///< input width
  std::int64_t cout = 0;      ///< output channels
  std::int64_t kh = 0;        ///< kernel height
  std::int64_t kw = 0;        ///< kernel width
  std::int64_t stride_h = 1;  ///< vertical stride
  std::int64_t stride_w = 1;  ///< horizontal stride
  std::int64_t pad_h = 0;     ///< zero rows added above and below
  std::int64_t pad_w = 0;     ///< zero columns added left and right
  std::int64_t dil_h = 1;     ///< vertical dilation (tap spacing)
  std::int64_t dil_w = 1;     ///< horizontal dilation
  std::int64_t ho = 0;        ///< output height
  std::int64_t wo = 0;        ///< output width

  /// Largest kernel (kh * kw) a masked convolution may have.
  static constexpr int kMaxMaskedTaps = 64;
  /// Kept taps as ky * kw + kx, ascending, when masked (a fixed array: geometries are captured
  /// by tape nodes, which must not allocate).
  std::array<std::int16_t, kMaxMaskedTaps> kept{};
  std::int32_t n_kept = 0;  ///< 0: dense, every tap kept

  /// True when some taps are masked out.
  bool masked() const { return n_kept > 0; }
  /// Number of kept taps (kh * kw when dense).
  std::int64_t num_taps() const { return masked() ? n_kept : kh * kw; }
  /// The t-th kept tap as ky * kw + kx.
  std::int64_t tap(std::int64_t t) const { return masked() ? kept[static_cast<std::size_t>(t)] : t; }

  /// Keeps only the taps where keep[ky * kw + kx] is true (at least one).
  void set_mask(std::span<const bool> keep) {
    if (static_cast<std::int64_t>(keep.size()) != kh * kw)
      throw ShapeError("Conv2dGeometry::set_mask: " + std::to_string(keep.size()) + " mask entries for a " +
                       std::to_string(kh) + "x" + std::to_string(kw) + " kernel");
    if (kh * kw > kMaxMaskedTaps)
      throw ValueError("Conv2dGeometry::set_mask: masked kernels may have at most " + std::to_string(kMaxMaskedTaps) +
                       " taps, got " + std::to_string(kh * kw));
    n_kept = 0;
    for (std::size_t t = 0; t < keep.size(); ++t)
      if (keep[t]) kept[static_cast<std::size_t>(n_kept++)] = static_cast<std::int16_t>(t);
    if (n_kept == 0) throw ValueError("Conv2dGeometry::set_mask: the mask keeps no tap");
    if (n_kept == kh * kw) n_kept = 0;  // nothing masked: the dense path
  }
  /// Rows of the column matrix: Cin x kept taps.
  std::int64_t k() const { return cin * num_taps(); }
  /// Output pixels per image and channel, Ho * Wo.
  std::int64_t hw_out() const { return ho * wo; }
  /// A 1x1, stride-1, unpadded convolution needs no im2col: the image is its own column matrix.
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0 && !masked();
  }
  /// [N, Cin, H, W].
  Shape input_shape() const { return Shape{n, cin, h, w}; }
  /// [N, Cout, Ho, Wo].
  Shape output_shape() const { return Shape{n, cout, ho, wo}; }
  /// [Cout, Cin, KH, KW].
  Shape weight_shape() const { return Shape{cout, cin, kh, kw}; }

  /// Same extents, hyperparameters and mask.
  bool operator==(const Conv2dGeometry&) const = default;
};

/// Output extent of a convolution along one axis, or -1 when the kernel does not fit.
inline std::int64_t conv_out_extent(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p, std::int64_t d) {
  const std::int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span) return -1;
  return (in + 2 * p - span) / s + 1;
}

}  // namespace genmod::kernels
