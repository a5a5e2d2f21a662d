#pragma once
/// \file psnr.hpp
/// Peak signal-to-noise ratio of reconstructions, in decibels:
///   PSNR = 10 log10(max_value^2 / MSE),  MSE = mean (reference - test)^2,
/// +infinity when the two are identical. max_value is the largest possible pixel value: 1 for
/// images in [0, 1], 255 for 8-bit pixels. Computed in double whatever T is.
///
/// Two ways to reduce a batch, which differ (log10 is concave, so the first is never smaller):
///   mean_psnr_per_sample: the mean over images of each image's PSNR, the usual number in papers;
///   psnr:                 one PSNR of the MSE pooled over every pixel of the batch.

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::eval::detail {

/// Checks equal, non-empty shapes and a positive max_value; `op` names the caller.
template <class T>
void check_psnr_args(const Tensor<T>& reference, const Tensor<T>& test, double max_value, const char* op) {
  check_same_shape(op, "reference", reference.shape(), "test", test.shape());
  if (reference.numel() == 0)
    throw ShapeError(std::string(op) + ": expected at least one element, got shape " + reference.shape().to_string());
  check_finite(op, "max_value", max_value);
  check_positive(op, "max_value", max_value);
}

/// 10 log10(max^2 / mse) for the mean squared difference of n values from a and b.
template <class T>
double psnr_range(const T* a, const T* b, std::int64_t n, double max_value) {
  double sq = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sq += d * d;
  }
  const double mse = sq / static_cast<double>(n);
  if (mse == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(max_value * max_value / mse);
}

}  // namespace genmod::eval::detail

namespace genmod::eval {

/// PSNR in dB of `test` against `reference` (same shape) over all elements: 10 log10(max^2 / MSE),
/// +infinity if identical (NaN if a value is NaN). ShapeError if the shapes differ or are empty;
/// ValueError unless max_value is finite and > 0.
template <class T>
double psnr(const Tensor<T>& reference, const Tensor<T>& test, double max_value = 1.0) {
  detail::check_psnr_args(reference, test, max_value, "psnr");
  return detail::psnr_range(reference.data(), test.data(), reference.numel(), max_value);
}

/// PSNR in dB of each sample of [N, ...] tensors: N values, the i-th over reference[i] and
/// test[i] (+infinity for a sample reproduced exactly). A rank-1 [N] tensor counts as N samples
/// of one value each. Same errors as psnr.
template <class T>
std::vector<double> psnr_per_sample(const Tensor<T>& reference, const Tensor<T>& test, double max_value = 1.0) {
  detail::check_psnr_args(reference, test, max_value, "psnr_per_sample");
  check_min_rank("psnr_per_sample", "reference", reference.shape(), 1, "[N, ...]");
  const std::int64_t n = reference.dim(0), d = reference.numel() / n;
  std::vector<double> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] = detail::psnr_range(reference.data() + i * d, test.data() + i * d, d, max_value);
  return out;
}

/// Mean over samples of psnr_per_sample: the per-image average PSNR papers usually report. It is
/// +infinity as soon as one sample is reproduced exactly.
template <class T>
double mean_psnr_per_sample(const Tensor<T>& reference, const Tensor<T>& test, double max_value = 1.0) {
  const std::vector<double> per = psnr_per_sample(reference, test, max_value);
  double total = 0;
  for (double p : per) total += p;
  return total / static_cast<double>(per.size());
}

}  // namespace genmod::eval
