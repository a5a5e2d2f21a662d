#pragma once
/// \file reshape.hpp
/// Flatten and Reshape as modules (the batch dimension is kept).

#include <array>
#include <initializer_list>
#include <string>

#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layers/activation.hpp"

namespace genmod::nn {

/// [N, ...] -> [N, prod(...)].
template <class T = float>
class Flatten : public Stateless<T> {
 public:
  /// x [N, ...] -> [N, numel / N] (a view, no copy).
  Var<T> forward(const Var<T>& x) override { return flatten(x, 1); }
};

/// [N, ...] -> [N, dims...] (same number of elements per sample).
template <class T = float>
class Reshape : public Stateless<T> {
 public:
  /// Per-sample extents (at most 3): `nn::Reshape({64, 7, 7})` maps [N, 3136] to [N, 64, 7, 7].
  Reshape(std::initializer_list<std::int64_t> dims) {
    if (dims.size() + 1 > static_cast<std::size_t>(kMaxRank))
      check_shape_arg(false, "Reshape", "at most " + std::to_string(kMaxRank - 1) + " per-sample dimensions", "",
                      std::to_string(dims.size()));
    for (auto d : dims) dims_[rank_++] = d;
  }
  /// x [N, ...] -> [N, dims...]; ShapeError when the element counts differ.
  Var<T> forward(const Var<T>& x) override {
    std::int64_t d[kMaxRank] = {x.dim(0)};
    for (int i = 0; i < rank_; ++i) d[i + 1] = dims_[static_cast<std::size_t>(i)];
    return reshape(x, Shape(std::span<const std::int64_t>(d, static_cast<std::size_t>(rank_ + 1))));
  }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace genmod::nn
