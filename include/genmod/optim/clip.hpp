#pragma once
/// \file clip.hpp
/// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
///
///   clip_grad_norm:  N = sqrt(sum over every gradient element of g^2)   (one L2 norm over all)
///                    if N > max_norm:  g <- g * max_norm / (N + 1e-6)   (every gradient)
///                    returns N, the norm before clipping
///   clip_grad_value: g <- min(max(g, -v), v)
///
/// Frozen parameters (requires_grad() == false) are left out, as the optimizers skip them.
/// Each function takes the parameters as net.parameters(), net.named_parameters() or an
/// optimizer; the optimizer form makes no heap allocation (the others build a vector first).
/// A non-finite norm is returned as is: with NaN nothing is scaled, with +inf every gradient is
/// multiplied by 0 (and inf entries become NaN), as in PyTorch; check the returned value.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genmod/autodiff/parameter.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/kernels/simd.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::optim {

namespace detail {

/// Sum of x[i]^2 over [0, n), accumulated in double. Registers accumulate T over runs of 1024
/// elements (32 FMAs per lane), then flush into a double, so float rounding stays negligible.
template <class T>
double sum_squares_serial(const T* x, std::int64_t n) {
  using B = kernels::simd::Batch<T>;
  constexpr std::int64_t W = kernels::simd::width<T>;
  constexpr std::int64_t kRun = 1024;
  double total = 0;
  std::int64_t i = 0;
  while (i + W <= n) {
    const std::int64_t end = std::min(n, i + kRun);
    B acc0(T(0)), acc1(T(0));
    for (; i + 2 * W <= end; i += 2 * W) {
      const B a = B::load_unaligned(x + i), b = B::load_unaligned(x + i + W);
      acc0 = detail::fmadd(a, a, acc0);
      acc1 = detail::fmadd(b, b, acc1);
    }
    for (; i + W <= end; i += W) {
      const B a = B::load_unaligned(x + i);
      acc0 = detail::fmadd(a, a, acc0);
    }
    total += static_cast<double>(kernels::simd::hsum(acc0 + acc1));
  }
  for (; i < n; ++i) total += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return total;
}

/// Sum of squares, threaded over a fixed number of blocks whose partial sums are added in order:
/// the result does not depend on the thread count.
template <class T>
double sum_squares(const T* x, std::int64_t n) {
  constexpr std::int64_t kBlocks = 64;
  if (n < kBlocks * 1024) return sum_squares_serial(x, n);
  std::array<double, kBlocks> partial{};
  const std::int64_t block = (n + kBlocks - 1) / kBlocks;
  parallel_for(kBlocks, block, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t k = b; k < e; ++k) {
      const std::int64_t s = k * block;
      partial[static_cast<std::size_t>(k)] = s < n ? sum_squares_serial(x + s, std::min(block, n - s)) : 0.0;
    }
  });
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

/// Calls f(Parameter<T>&) for each trainable parameter of a list.
template <class T, class F>
void for_each_trainable(const std::vector<Parameter<T>>& params, F&& f) {
  for (const auto& p : params)
    if (p.requires_grad()) f(p);
}
template <class T, class F>
void for_each_trainable(const std::vector<nn::NamedParameter<T>>& params, F&& f) {
  for (const auto& np : params)
    if (np.parameter.requires_grad()) f(np.parameter);
}

template <class T, class List>
double clip_grad_norm_impl(const List& params, double max_norm) {
  check_non_negative("clip_grad_norm", "max_norm", max_norm);
  double sq = 0;
  for_each_trainable<T>(params, [&](const Parameter<T>& p) { sq += sum_squares(p.grad().data(), p.numel()); });
  const double norm = std::sqrt(sq);
  if (norm > max_norm) {
    // PyTorch's 1e-6 keeps the scale finite for a zero norm and makes the clipped norm a hair
    // below max_norm.
    const T scale = static_cast<T>(max_norm / (norm + 1e-6));
    for_each_trainable<T>(params, [&](const Parameter<T>& p) {
      Tensor<T> grad = p.grad();  // a handle sharing the buffer (no copy), writable
      T* g = grad.data();
      fused_loop<T>(p.numel(), 2,
                    [&]<class V>(std::int64_t i) { detail::storeu(g + i, detail::loadu<V>(g + i) * V(scale)); });
    });
  }
  return norm;
}

template <class T, class List>
void clip_grad_value_impl(const List& params, double clip_value) {
  check_non_negative("clip_grad_value", "clip_value", clip_value);
  const T hi = static_cast<T>(clip_value);
  for_each_trainable<T>(params, [&](const Parameter<T>& p) {
    Tensor<T> grad = p.grad();
    T* g = grad.data();
    fused_loop<T>(p.numel(), 2, [&]<class V>(std::int64_t i) {
      detail::storeu(g + i, kernels::simd::min(kernels::simd::max(detail::loadu<V>(g + i), V(-hi)), V(hi)));
    });
  });
}

}  // namespace detail

/// Scales every trainable gradient by max_norm / (N + 1e-6) when their joint L2 norm N exceeds
/// max_norm (>= 0); returns N, the norm before clipping.
template <class T>
double clip_grad_norm(const std::vector<Parameter<T>>& params, double max_norm) {
  return detail::clip_grad_norm_impl<T>(params, max_norm);
}
/// clip_grad_norm over named parameters (net.named_parameters()).
template <class T>
double clip_grad_norm(const std::vector<nn::NamedParameter<T>>& params, double max_norm) {
  return detail::clip_grad_norm_impl<T>(params, max_norm);
}
/// clip_grad_norm over the parameters an optimizer updates (no heap allocation).
template <class T>
double clip_grad_norm(const Optimizer<T>& optimizer, double max_norm) {
  return detail::clip_grad_norm_impl<T>(optimizer.parameters(), max_norm);
}

/// Clamps every trainable gradient element into [-clip_value, clip_value] (clip_value >= 0).
template <class T>
void clip_grad_value(const std::vector<Parameter<T>>& params, double clip_value) {
  detail::clip_grad_value_impl<T>(params, clip_value);
}
/// clip_grad_value over named parameters (net.named_parameters()).
template <class T>
void clip_grad_value(const std::vector<nn::NamedParameter<T>>& params, double clip_value) {
  detail::clip_grad_value_impl<T>(params, clip_value);
}
/// clip_grad_value over the parameters an optimizer updates (no heap allocation).
template <class T>
void clip_grad_value(const Optimizer<T>& optimizer, double clip_value) {
  detail::clip_grad_value_impl<T>(optimizer.parameters(), clip_value);
}

}  // namespace genmod::optim
