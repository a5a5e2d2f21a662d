#pragma once
/// \file transforms.hpp
/// Data transforms for generative models: pixel scaling, static and dynamic binarization,
/// uniform dequantization, corruption for denoising autoencoders, one-hot labels.
///
/// Every transform returns a new tensor and leaves its input alone (buffers come from the tensor
/// pool, so a transform applied to every batch allocates nothing in steady state). Random
/// transforms draw from a Generator with counter-based fills, so their result depends only on the
/// generator's state, never on the thread count.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

/// Target interval of pixel scaling.
enum class PixelRange {
  unit,       ///< [0, 1]: x / 255 (Bernoulli and logistic likelihoods, VAEs)
  symmetric,  ///< [-1, 1]: x / 127.5 - 1 (tanh generators, GANs)
};

namespace detail {

inline void check_defined(const Tensor<float>& x, const char* op) {
  if (!x.defined()) throw ValueError(std::string(op) + ": the input tensor is undefined");
}

inline void check_probability(float p, const char* op, const char* what) {
  check_in_range(op, what, p, 0.f, 1.f);
}

/// out[i] = f(x[i], u[i]) with u uniform in [0, 1) from g.
template <class F>
Tensor<float> map_with_uniforms(const Tensor<float>& x, Generator& g, F f) {
  Tensor<float> out(x.shape());
  fill_uniform(out, g);
  const float* in = x.data();
  float* o = out.data();
  parallel_for(x.numel(), 4, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) o[i] = f(in[i], o[i]);
  });
  return out;
}

/// Largest float below 1: dequantized values stay in [0, 1) even after rounding to float.
inline constexpr float kBelowOne = 1.0f - 0x1.0p-24f;

}  // namespace detail

/// Pixels 0..255 as floats in [0, 1] (x / 255) or [-1, 1] (x / 127.5 - 1).
GENMOD_DETAIL_NONTEMPLATE Tensor<float> scale_pixels(const Tensor<std::uint8_t>& pixels,
                                                     PixelRange range = PixelRange::unit)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  if (!pixels.defined()) throw ValueError("scale_pixels: the input tensor is undefined");
  Tensor<float> out(pixels.shape());
  const float a = range == PixelRange::unit ? 1.f / 255.f : 2.f / 255.f;
  const float b = range == PixelRange::unit ? 0.f : -1.f;
  const std::uint8_t* in = pixels.data();
  float* o = out.data();
  parallel_for(pixels.numel(), 2, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) o[i] = a * static_cast<float>(in[i]) + b;
  });
  return out;
}
#else
    ;
#endif

/// [0, 1] -> [-1, 1]: 2x - 1.
inline Tensor<float> unit_to_symmetric(const Tensor<float>& x) {
  detail::check_defined(x, "unit_to_symmetric");
  Tensor<float> out(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) out[i] = 2.f * x[i] - 1.f;
  return out;
}

/// [-1, 1] -> [0, 1]: (x + 1) / 2 (e.g. before saving a tanh generator's samples as images).
inline Tensor<float> symmetric_to_unit(const Tensor<float>& x) {
  detail::check_defined(x, "symmetric_to_unit");
  Tensor<float> out(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) out[i] = 0.5f * (x[i] + 1.f);
  return out;
}

/// Static binarization: 1 where x > threshold, else 0. Deterministic, so the same image always
/// gives the same binary image (a fixed binarized test set).
inline Tensor<float> binarize(const Tensor<float>& x, float threshold = 0.5f) {
  detail::check_defined(x, "binarize");
  Tensor<float> out(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) out[i] = x[i] > threshold ? 1.f : 0.f;
  return out;
}

/// Dynamic binarization: each value x in [0, 1] becomes 1 with probability x (a Bernoulli sample),
/// redrawn every call, the standard protocol for Bernoulli likelihoods on grey-level images (it
/// acts as a regularizer and keeps the data's grey levels as probabilities).
inline Tensor<float> binarize_dynamic(const Tensor<float>& x, Generator& g) {
  detail::check_defined(x, "binarize_dynamic");
  return detail::map_with_uniforms(x, g, [](float v, float u) { return u < v ? 1.f : 0.f; });
}

/// Uniform dequantization of 8-bit pixels k: (k + u) / 256 with u ~ U[0, 1), a continuous density
/// whose likelihood lower-bounds the discrete one (Theis et al. 2016). Values lie in [0, 1).
inline Tensor<float> dequantize(const Tensor<std::uint8_t>& pixels, Generator& g) {
  if (!pixels.defined()) throw ValueError("dequantize: the input tensor is undefined");
  Tensor<float> out(pixels.shape());
  fill_uniform(out, g);
  const std::uint8_t* in = pixels.data();
  float* o = out.data();
  parallel_for(out.numel(), 4, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      o[i] = std::min(static_cast<float>((static_cast<double>(in[i]) + static_cast<double>(o[i])) / 256.0), detail::kBelowOne);
  });
  return out;
}

/// Uniform dequantization of images already scaled to [0, 1] (k / 255): recovers k = round(255 x),
/// then returns (k + u) / 256.
inline Tensor<float> dequantize(const Tensor<float>& unit_pixels, Generator& g) {
  detail::check_defined(unit_pixels, "dequantize");
  return detail::map_with_uniforms(unit_pixels, g, [](float v, float u) {
    const float k = std::clamp(std::nearbyint(v * 255.f), 0.f, 255.f);
    return std::min(static_cast<float>((static_cast<double>(k) + static_cast<double>(u)) / 256.0), detail::kBelowOne);
  });
}

/// Additive Gaussian corruption x + N(0, sigma^2) (not clipped; clip yourself when the model
/// needs values in range).
inline Tensor<float> add_gaussian_noise(const Tensor<float>& x, float sigma, Generator& g) {
  detail::check_defined(x, "add_gaussian_noise");
  check_non_negative("add_gaussian_noise", "sigma", sigma);
  check_finite("add_gaussian_noise", "sigma", sigma);
  Tensor<float> out(x.shape());
  fill_normal(out, g, 0.f, sigma);
  for (std::int64_t i = 0; i < x.numel(); ++i) out[i] += x[i];
  return out;
}

/// Masking corruption: each value is set to 0 with probability p (Vincent et al. 2008).
inline Tensor<float> mask_noise(const Tensor<float>& x, float p, Generator& g) {
  detail::check_defined(x, "mask_noise");
  detail::check_probability(p, "mask_noise", "p");
  return detail::map_with_uniforms(x, g, [p](float v, float u) { return u < p ? 0.f : v; });
}

/// Salt-and-pepper corruption: with probability p a value is replaced by `low` or `high`
/// (each with probability p/2).
inline Tensor<float> salt_and_pepper_noise(const Tensor<float>& x, float p, Generator& g, float low = 0.f, float high = 1.f) {
  detail::check_defined(x, "salt_and_pepper_noise");
  detail::check_probability(p, "salt_and_pepper_noise", "p");
  const float half = 0.5f * p;
  return detail::map_with_uniforms(x, g, [=](float v, float u) { return u < half ? low : u < p ? high : v; });
}

/// Kind of corruption applied by corrupt().
enum class Corruption {
  gaussian,         ///< x + N(0, level^2)
  masking,          ///< zero with probability level
  salt_and_pepper,  ///< 0 or 1 with probability level
};

/// Options for corrupt().
struct CorruptionOptions {
  Corruption kind = Corruption::gaussian;  ///< which corruption
  float level = 0.1f;                      ///< sigma for gaussian, probability for the others
};

/// The corruption a denoising autoencoder trains against, chosen at run time.
inline Tensor<float> corrupt(const Tensor<float>& x, const CorruptionOptions& options, Generator& g) {
  switch (options.kind) {
    case Corruption::gaussian: return add_gaussian_noise(x, options.level, g);
    case Corruption::masking: return mask_noise(x, options.level, g);
    case Corruption::salt_and_pepper: return salt_and_pepper_noise(x, options.level, g);
  }
  throw ValueError("corrupt: unknown corruption kind");
}

/// One-hot encoding: labels [N] in [0, num_classes) to floats [N, num_classes].
inline Tensor<float> one_hot(const Tensor<std::int64_t>& labels, std::int64_t num_classes) {
  check_rank("one_hot", "labels", labels.shape(), 1, "[N]");  // an undefined tensor has rank 0
  check_positive("one_hot", "num_classes", num_classes);
  auto out = zeros<float>({labels.dim(0), num_classes});
  for (std::int64_t i = 0; i < labels.dim(0); ++i) {
    const std::int64_t c = labels[i];
    if (c < 0 || c >= num_classes)
      throw ValueError("one_hot: label " + std::to_string(c) + " at position " + std::to_string(i) + " is outside [0, " +
                       std::to_string(num_classes) + ")");
    out(i, c) = 1.f;
  }
  return out;
}

}  // namespace genmod::data
