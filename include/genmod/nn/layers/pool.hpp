#pragma once
/// \file pool.hpp
/// MaxPool2d, AvgPool2d and Upsample (nearest) as modules.

#include "genmod/autodiff/ops/pool.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layers/activation.hpp"

namespace genmod::nn {

/// Max over k x k windows of [N, C, H, W] inputs; the gradient goes to each window's maximum.
template <class T = float>
class MaxPool2d : public Stateless<T> {
 public:
  /// Windows of kernel x kernel moved by stride (0: stride = kernel), padding with -inf.
  explicit MaxPool2d(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0)
      : k_(kernel), s_(stride ? stride : kernel), p_(padding) {}
  /// x [N, C, H, W] -> [N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1].
  Var<T> forward(const Var<T>& x) override { return max_pool2d(x, k_, s_, p_); }

 private:
  std::int64_t k_, s_, p_;
};

/// Mean over k x k windows of [N, C, H, W] inputs.
template <class T = float>
class AvgPool2d : public Stateless<T> {
 public:
  /// Windows of kernel x kernel moved by stride (0: stride = kernel), zero padding.
  explicit AvgPool2d(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0)
      : k_(kernel), s_(stride ? stride : kernel), p_(padding) {}
  /// x [N, C, H, W] -> [N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1].
  Var<T> forward(const Var<T>& x) override { return avg_pool2d(x, k_, s_, p_); }

 private:
  std::int64_t k_, s_, p_;
};

/// Nearest-neighbour upsampling by an integer scale factor.
template <class T = float>
class Upsample : public Stateless<T> {
 public:
  /// Each pixel repeated scale_factor times along H and W (scale_factor >= 1).
  explicit Upsample(std::int64_t scale_factor) : f_(scale_factor) { check_at_least("Upsample", "scale_factor", f_, 1); }
  /// x [N, C, H, W] -> [N, C, f H, f W].
  Var<T> forward(const Var<T>& x) override { return upsample_nearest(x, f_); }

 private:
  std::int64_t f_;
};

}  // namespace genmod::nn
