#pragma once
/// \file batched_eval.hpp
/// evaluate_in_batches: a trained module applied to a whole data set in bounded memory (encode,
/// score, classify N images a block of rows at a time), with recording off and the module in
/// evaluation mode for the duration.

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/var.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// f applied to the row blocks x[s, s + batch_size) of x [N, ...], with recording off and `module`
/// in evaluation mode (its own mode restored afterwards, on every path); each block's result
/// [b, ...] goes to rows [s, s + b) of the output [N, ...]. `op` names the caller in errors:
/// ShapeError for an empty or undefined x, ValueError for batch_size < 1.
template <class M, class T, class F>
Tensor<T> evaluate_in_batches(std::string_view op, M& module, const Tensor<T>& x, std::int64_t batch_size, F f) {
  if (!x.defined() || x.rank() < 1 || x.dim(0) == 0)
    throw ShapeError(std::string(op) + ": expected a non-empty batch [N, ...], got " +
                     (x.defined() ? x.shape().to_string() : std::string("an undefined tensor")));
  check_positive(op, "batch_size", batch_size);
  NoGradGuard no_grad;
  EvalModeGuard eval_mode(module);
  Tensor<T> out;
  const std::int64_t n = x.dim(0);
  for (std::int64_t s = 0; s < n; s += batch_size) {
    const std::int64_t b = std::min(batch_size, n - s);
    const Tensor<T> y = f(Var<T>(x.rows(s, b))).value();
    if (!out.defined()) {  // the output's shape: the first block's, with N rows
      std::array<std::int64_t, kMaxRank> dims{};
      const auto yd = y.shape().dims();
      std::copy(yd.begin(), yd.end(), dims.begin());
      dims[0] = n;
      out = Tensor<T>(Shape(std::span<const std::int64_t>(dims.data(), yd.size())));
    }
    std::copy(y.data(), y.data() + y.numel(), out.data() + s * (y.numel() / b));
  }
  return out;
}

}  // namespace genmod::nn
