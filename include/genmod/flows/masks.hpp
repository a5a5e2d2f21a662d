#pragma once
/// \file masks.hpp
/// Binary masks that split a sample's dimensions between the two halves of a coupling step.
///
/// A coupling step keeps the dimensions where the mask is 1 and transforms the others as a function
/// of the kept ones (flows/affine_coupling.hpp). A mask has the shape of one sample (the event
/// shape: [D] for vectors, [C, H, W] for images); consecutive steps use a mask and its complement
/// so that every dimension is transformed. The patterns of NICE and RealNVP:
///   halves        [D]: the first half kept               (NICE partitions by position)
///   alternating   [D]: even positions kept (or odd)
///   checkerboard  [H, W] or [C, H, W]: (i + j) even kept (or odd), the same in every channel
///   channels      [C, H, W]: the first half of the channels kept (RealNVP after a squeeze)

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::flows {

/// Which of the two complementary patterns a mask builder returns: `first` keeps the first half,
/// the even positions or the even squares; `second` keeps the others.
enum class MaskParity { first, second };

/// [d]: 1 on the first half (d / 2 rounded down) of the positions, or on the rest.
template <class T = float>
Tensor<T> halves_mask(std::int64_t d, MaskParity parity = MaskParity::first) {
  check_at_least("flows::halves_mask", "the dimension d", d, 2);
  Tensor<T> m(Shape{d});
  const bool first = parity == MaskParity::first;
  for (std::int64_t i = 0; i < d; ++i) m[i] = static_cast<T>((i < d / 2) == first);
  return m;
}

/// [d]: 1 on the even positions, or on the odd ones.
template <class T = float>
Tensor<T> alternating_mask(std::int64_t d, MaskParity parity = MaskParity::first) {
  check_at_least("flows::alternating_mask", "the dimension d", d, 2);
  Tensor<T> m(Shape{d});
  const std::int64_t keep = parity == MaskParity::first ? 0 : 1;
  for (std::int64_t i = 0; i < d; ++i) m[i] = static_cast<T>(i % 2 == keep);
  return m;
}

/// `event` is [H, W] or [C, H, W]: 1 where (row + column) is even (or odd), in every channel.
template <class T = float>
Tensor<T> checkerboard_mask(const Shape& event, MaskParity parity = MaskParity::first) {
  check_rank("flows::checkerboard_mask", "the event shape", event, {2, 3}, "[H, W] or [C, H, W]");
  const std::int64_t h = event[event.rank() - 2], w = event[event.rank() - 1];
  check_arg(h * w >= 2, "flows::checkerboard_mask", "the event shape", "at least two pixels", event.to_string());
  Tensor<T> m(event);
  const std::int64_t keep = parity == MaskParity::first ? 0 : 1, planes = m.numel() / (h * w);
  for (std::int64_t c = 0; c < planes; ++c)
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j) m[(c * h + i) * w + j] = static_cast<T>((i + j) % 2 == keep);
  return m;
}

/// `event` is [C, H, W] with C >= 2: 1 on the first C / 2 channels, or on the others.
template <class T = float>
Tensor<T> channel_mask(const Shape& event, MaskParity parity = MaskParity::first) {
  check_rank("flows::channel_mask", "the event shape", event, 3, "[C, H, W]");
  check_dim_at_least("flows::channel_mask", "the event shape", event, 0, 2);
  Tensor<T> m(event);
  const std::int64_t c = event[0], plane = event[1] * event[2];
  const bool first = parity == MaskParity::first;
  for (std::int64_t k = 0; k < c; ++k)
    for (std::int64_t i = 0; i < plane; ++i) m[k * plane + i] = static_cast<T>((k < c / 2) == first);
  return m;
}

/// 1 - mask.
template <class T>
Tensor<T> complement(const Tensor<T>& mask) {
  Tensor<T> m(mask.shape());
  for (std::int64_t i = 0; i < m.numel(); ++i) m[i] = T(1) - mask[i];
  return m;
}

/// Throws ValueError unless every entry of `mask` is 0 or 1 and both values occur (a mask that
/// keeps everything, or nothing, makes a coupling step the identity or not invertible).
template <class T>
void check_binary_mask(std::string_view op, const Tensor<T>& mask) {
  std::int64_t ones = 0;
  for (std::int64_t i = 0; i < mask.numel(); ++i) {
    if (mask[i] != T(0) && mask[i] != T(1))
      check_arg(false, op, "the mask", "entries 0 or 1",
                genmod::detail::check_number(static_cast<double>(mask[i])) + " at index " + std::to_string(i));
    ones += mask[i] == T(1);
  }
  check_arg(ones > 0 && ones < mask.numel(), op, "the mask", "both kept (1) and transformed (0) entries",
            std::to_string(ones) + " of " + std::to_string(mask.numel()) + " entries kept");
}

/// [n, event...]: the shape of a batch of n samples of shape `event`.
inline Shape batch_shape(std::int64_t n, const Shape& event) {
  if (event.rank() >= kMaxRank)
    throw ShapeError("flows::batch_shape: expected a sample shape of rank < " + std::to_string(kMaxRank) + ", got " +
                     event.to_string());
  std::array<std::int64_t, kMaxRank> dims{n};  // on the stack: called in every training step
  std::copy(event.dims().begin(), event.dims().end(), dims.begin() + 1);
  return Shape(std::span<const std::int64_t>(dims.data(), static_cast<std::size_t>(event.rank()) + 1));
}

/// Throws ShapeError unless `shape` is a batch [N, ...] of samples of shape `event` (the shape of a
/// mask or of a per-dimension parameter).
inline void check_batch_of(std::string_view op, std::string_view arg, const Shape& shape, const Shape& event) {
  if (shape.rank() >= 2 && Shape(shape.dims().subspan(1)) == event) return;
  check_shape_arg(false, op, arg, "a batch [N, ...] of samples of shape " + event.to_string(), shape.to_string());
}

}  // namespace genmod::flows
