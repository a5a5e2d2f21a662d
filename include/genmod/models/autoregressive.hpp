#pragma once
/// \file autoregressive.hpp
/// What every autoregressive image model shares (PixelCNN, Gated PixelCNN, PixelRNN): the pixel
/// conventions, the per-pixel output distribution, drawing one pixel from its logits, and the
/// checks of images and completion masks.
///
/// An image x of H x W grey pixels is a product of conditionals in raster order:
///   log p(x) = sum_{i = 0}^{HW - 1} log p(x_i | x_0 ... x_{i-1})          nats per image
/// Images enter as [N, 1, H, W] with values in [0, 1]:
///   PixelOutput::categorical   8-bit pixels as k / 255 (k = 0 ... 255); the network gives 256
///                              logits per pixel, p(x_i = k | ...) = softmax(logits)_k;
///                              bits/dim = -log p(x) / (HW ln 2), the discrete NLL itself
///   PixelOutput::bernoulli     binary pixels 0 or 1; one logit per pixel, p(x_i = 1 | ...) =
///                              sigmoid(logit); reported in nats per image
/// A temperature tau divides the logits before sampling (tau < 1 sharper, tau = 1 the model).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/losses/classification.hpp"
#include "genmod/losses/reconstruction.hpp"

namespace genmod::models {

/// The distribution of one pixel given the pixels before it (see the file comment).
enum class PixelOutput {
  categorical,  ///< 256-way softmax over 8-bit levels k / 255
  bernoulli     ///< binary pixels, one logit each
};

/// How an autoregressive model draws pixels.
struct PixelSamplingOptions {
  double temperature = 1.0;  ///< tau > 0: the logits are divided by it before sampling
  bool cached = true;        ///< false: run the whole network once per pixel (the naive reference)
};

namespace detail {

/// Logits per pixel of an output kind: 256 or 1.
constexpr std::int64_t pixel_logits(PixelOutput out) noexcept {
  return out == PixelOutput::categorical ? 256 : 1;
}

/// Throws ShapeError unless x is [N, 1, H, W] with N >= 1 (H, W checked when positive).
inline void check_pixel_images(std::string_view op, std::string_view arg, const Shape& s, std::int64_t height,
                               std::int64_t width) {
  check_rank(op, arg, s, 4);
  check_dim(op, arg, s, 1, 1);
  if (height > 0) check_dim(op, arg, s, 2, height);
  if (width > 0) check_dim(op, arg, s, 3, width);
}

/// The level of every pixel of x ([0, 1] values): k in 0..255 for categorical (x = k / 255 to
/// within 1e-3 of a level), 0 or 1 for Bernoulli. Anything else is a ValueError naming the first
/// offending value, because a model of 8-bit levels has no probability for 0.5004.
template <class T>
Tensor<std::int64_t> pixel_levels(std::string_view op, const Tensor<T>& x, PixelOutput out) {
  Tensor<std::int64_t> k(x.shape());
  const double scale = out == PixelOutput::categorical ? 255.0 : 1.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double v = static_cast<double>(x[i]) * scale;
    const double r = std::round(v);
    if (!(std::abs(v - r) <= 1e-3 * scale) || r < 0 || r > scale)
      throw ValueError(std::string(op) + ": expected pixels " +
                       (out == PixelOutput::categorical ? "k / 255 with k in 0..255" : "0 or 1") + ", got " +
                       std::to_string(static_cast<double>(x[i])) + " at index " + std::to_string(i));
    k[i] = static_cast<std::int64_t>(r);
  }
  return k;
}

/// log p(x) per image [N] from the network's logits: [N, 256, H, W] (categorical) or [N, 1, H, W]
/// (Bernoulli); differentiable in the logits.
template <class T>
Var<T> pixel_log_prob(std::string_view op, const Var<T>& logits, const Tensor<T>& x, PixelOutput out) {
  const std::int64_t n = x.dim(0), d = x.numel() / std::max<std::int64_t>(n, 1);
  const Tensor<std::int64_t> k = pixel_levels(op, x, out);
  if (out == PixelOutput::categorical) {
    Var<T> nll = losses::cross_entropy(logits, k.reshape({n, x.dim(2), x.dim(3)}));  // [N, H, W]
    return neg(sum(reshape(nll, Shape{n, d}), 1));
  }
  Var<T> nll = losses::bce_with_logits(logits, Var<T>(x));
  return neg(sum(reshape(nll, Shape{n, d}), 1));
}

/// One pixel drawn from its logits (count of them, `stride` apart) at temperature tau with the
/// uniform u in [0, 1): the level k / 255 by the inverse CDF of softmax(logits / tau), or 1 when
/// u < sigmoid(logit / tau) for a Bernoulli pixel. Both sampling paths call this with the same
/// u, so they agree whenever their logits do.
template <class T>
T draw_pixel(const T* logits, std::int64_t stride, PixelOutput out, double temperature, double u) {
  if (out == PixelOutput::bernoulli) {
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[0]) / temperature));
    return u < p ? T(1) : T(0);
  }
  double m = -std::numeric_limits<double>::infinity();
  for (std::int64_t c = 0; c < 256; ++c) m = std::max(m, static_cast<double>(logits[c * stride]));
  double total = 0;
  for (std::int64_t c = 0; c < 256; ++c) total += std::exp((static_cast<double>(logits[c * stride]) - m) / temperature);
  const double target = u * total;
  double cum = 0;
  for (std::int64_t c = 0; c < 256; ++c) {
    cum += std::exp((static_cast<double>(logits[c * stride]) - m) / temperature);
    if (target < cum) return static_cast<T>(static_cast<double>(c) / 255.0);
  }
  return T(1);  // u * total rounded above the last partial sum
}

/// Throws unless the temperature is finite and positive.
inline void check_temperature(std::string_view op, double temperature) {
  check_arg(std::isfinite(temperature) && temperature > 0, op, "temperature", "finite and > 0",
            std::to_string(temperature));
}

/// Throws unless `mask` has the images' shape and holds only 0 (unknown) and 1 (known).
template <class T>
void check_known_mask(std::string_view op, const Tensor<T>& images, const Tensor<T>& mask) {
  check_same_shape(op, "known_mask", mask.shape(), "images", images.shape());
  for (std::int64_t i = 0; i < mask.numel(); ++i)
    if (mask[i] != T(0) && mask[i] != T(1))
      throw ValueError(std::string(op) + ": expected known_mask values 0 (unknown) or 1 (known), got " +
                       std::to_string(static_cast<double>(mask[i])) + " at index " + std::to_string(i));
}

/// -log p(x) / (D ln 2) per image from log p(x) [N] over D pixels: bits per dimension.
template <class T>
Var<T> bits_per_dim_of(const Var<T>& log_prob, std::int64_t dims) {
  return scale(log_prob, T(-1) / (static_cast<T>(dims) * std::numbers::ln2_v<T>));
}

/// The family's training objective from log p(x) [N] over D pixels: the batch mean of
/// -log p(x) / D, nats per pixel (PixelCNN's reference: the mean cross-entropy per pixel).
template <class T>
Var<T> nats_per_pixel_loss(const Var<T>& log_prob, std::int64_t dims) {
  return scale(mean(log_prob), T(-1) / static_cast<T>(dims));
}

/// The blank [n, 1, H, W] canvas sample() fills, after checking n and the temperature.
template <class T>
Tensor<T> blank_images(std::string_view op, std::int64_t n, double temperature, std::int64_t height,
                       std::int64_t width) {
  check_positive(op, "n", n);
  check_temperature(op, temperature);
  return zeros<T>(Shape{n, 1, height, width});
}

/// The images complete() starts from, after checking them (the model's [N, 1, H, W], pixels the
/// output kind can hold where known), the mask and the temperature: known pixels kept, unknown
/// ones zeroed, so that whatever the caller left there cannot leak into the result.
template <class T>
Tensor<T> completion_start(std::string_view op, const Tensor<T>& images, const Tensor<T>& known_mask,
                           double temperature, std::int64_t height, std::int64_t width, PixelOutput out) {
  check_pixel_images(op, "images", images.shape(), height, width);
  check_known_mask(op, images, known_mask);
  check_temperature(op, temperature);
  Tensor<T> kept(images.shape());
  for (std::int64_t i = 0; i < kept.numel(); ++i) kept[i] = known_mask[i] == T(0) ? T(0) : images[i];
  (void)pixel_levels(op, kept, out);  // a known pixel that is not a level: ValueError naming it
  return kept;
}

/// The B uniforms for the pixels of one raster position, one per image (the draw order both
/// sampling paths share: position by position, image by image).
template <class T>
Tensor<T> position_uniforms(std::int64_t batch, Generator& g) {
  return rand<T>(Shape{batch}, g);
}

/// Where a stepper's logits for one raster position are: logit c of image b at
/// data[b * row_stride + c * class_stride].
template <class T>
struct PixelLogitsView {
  const T* data = nullptr;        ///< logit 0 of image 0
  std::int64_t row_stride = 0;    ///< from one image to the next
  std::int64_t class_stride = 1;  ///< from one logit to the next (categorical)
};

/// Fills the unknown pixels of `images` [N, 1, H, W] in raster order (known: the same shape, 1
/// known, 0 unknown; null: every pixel unknown). `step(i, j, need)` is called once per position
/// in raster order, after every pixel before (i, j) is final; it advances whatever the model
/// caches and, when `need` (some image has (i, j) unknown), returns the logits of position (i, j).
/// The uniforms are drawn per needed position, one per image (image order), so two steppers
/// that agree on the logits give the same images from the same generator state.
template <class T, class Step>
void raster_fill(Tensor<T>& images, const Tensor<T>* known, PixelOutput out, double temperature, Generator& g,
                 Step&& step) {
  const std::int64_t n = images.dim(0), h = images.dim(2), w = images.dim(3), hw = h * w;
  for (std::int64_t i = 0; i < h; ++i)
    for (std::int64_t j = 0; j < w; ++j) {
      const std::int64_t p = i * w + j;
      bool need = known == nullptr;
      for (std::int64_t b = 0; b < n && !need; ++b) need = (*known)[b * hw + p] == T(0);
      const PixelLogitsView<T> v = step(i, j, need);
      if (!need) continue;
      const Tensor<T> u = position_uniforms<T>(n, g);
      for (std::int64_t b = 0; b < n; ++b)
        if (known == nullptr || (*known)[b * hw + p] == T(0))
          images[b * hw + p] =
              draw_pixel(v.data + b * v.row_stride, v.class_stride, out, temperature, static_cast<double>(u[b]));
    }
}

/// The naive stepper for raster_fill: the whole network (`logits_of(images)` -> [N, L, H, W])
/// once per needed position, the reference that cached samplers are tested against.
template <class T, class LogitsOf>
auto naive_stepper(const Tensor<T>& images, LogitsOf&& logits_of) {
  return [&images, logits_of, current = Tensor<T>()](std::int64_t i, std::int64_t j, bool need) mutable {
    if (!need) return PixelLogitsView<T>{};
    NoGradGuard no_grad;
    current = logits_of(images);
    const std::int64_t hw = current.dim(2) * current.dim(3);
    return PixelLogitsView<T>{current.data() + i * current.dim(3) + j, current.dim(1) * hw, hw};
  };
}

}  // namespace detail

}  // namespace genmod::models
