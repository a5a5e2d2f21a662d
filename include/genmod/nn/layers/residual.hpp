#pragma once
/// \file residual.hpp
/// Residual: y = x + body(x), the skip connection of ResNets (He et al. 2016); the blocks of a
/// RealNVP coupling network.

#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/any_module.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// x + body(x); body must keep the shape of its input.
template <class T = float>
class Residual : public Layer<T> {
 public:
  /// A block around `body_`.
  explicit Residual(DynamicSequential<T> body_) : body(std::move(body_)) {}

  /// x + body(x); ShapeError when body changes the shape.
  Var<T> forward(const Var<T>& x) override {
    Var<T> y = body(x);
    if (y.shape() != x.shape())
      check_shape_arg(false, "nn::Residual", "the body's output", "the input's shape " + x.shape().to_string(),
                      y.shape().to_string());
    return add(x, y);
  }

  /// Visits the body as "body".
  void visit(ModuleVisitor<T>& v) override { v.child("body", body); }

  DynamicSequential<T> body;  ///< the residual branch
};

}  // namespace genmod::nn
