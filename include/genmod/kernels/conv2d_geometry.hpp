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
  std::int64_t n = 0, cin = 0, h = 0, w = 0;
  std::int64_t cout = 0, kh = 0, kw = 0;
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  std::int64_t ho = 0, wo = 0;

  /// Largest kernel (kh * kw) a masked convolution may have.
  static constexpr int kMaxMaskedTaps = 64;
  /// Kept taps as ky * kw + kx, ascending, when masked (a fixed array: geometries are captured
  /// by tape nodes, which must not allocate).
  std::array<std::int16_t, kMaxMaskedTaps> kept{};
  std::int32_t n_kept = 0;  ///< 0: dense, every tap kept

  bool masked() const { return n_kept > 0; }
  std::int64_t num_taps() const { return masked() ? n_kept : kh * kw; }
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
  std::int64_t hw_out() const { return ho * wo; }
  /// A 1x1, stride-1, unpadded convolution needs no im2col: the image is its own column matrix.
  bool pointwise() const {
    return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0 && !masked();
  }
  Shape input_shape() const { return Shape{n, cin, h, w}; }
  Shape output_shape() const { return Shape{n, cout, ho, wo}; }
  Shape weight_shape() const { return Shape{cout, cin, kh, kw}; }

  bool operator==(const Conv2dGeometry&) const = default;
};

/// Output extent of a convolution along one axis, or -1 when the kernel does not fit.
inline std::int64_t conv_out_extent(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p, std::int64_t d) {
  const std::int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span) return -1;
  return (in + 2 * p - span) / s + 1;
}

}  // namespace genmod::kernels
