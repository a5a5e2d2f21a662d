#pragma once
/// \file linear.hpp
/// Linear: y = x W^T + b, W of shape [out, in] (PyTorch's layout and default initialization).

#include <string>

#include "genmod/autodiff/ops/linear.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// Options of Linear: `nn::Linear(784, 512, {.bias = false})`.
struct LinearOptions {
  /// Learn an additive bias b [out] (y = x W^T + b); without it y = x W^T.
  bool bias = true;
  Generator* generator = nullptr;  ///< for the initialization; default_generator() when null
};

/// Fully connected layer y = x W^T + b on x [N, in], W [out, in], b [out] (see the file comment).
template <class T = float>
class Linear : public Layer<T> {
 public:
  /// A layer from `in` to `out` features, initialized as PyTorch's nn.Linear.
  Linear(std::int64_t in, std::int64_t out, LinearOptions options = {}) {
    check_positive("Linear", "in", in);
    check_positive("Linear", "out", out);
    Generator& g = options.generator ? *options.generator : default_generator();
    Tensor<T> w(Shape{out, in});
    init::default_weight(w, g);
    weight = Parameter<T>(w);
    if (options.bias) {
      Tensor<T> b(Shape{out});
      init::default_bias(b, g, in);
      bias = Parameter<T>(b);
    }
  }

  /// x [N, in] -> [N, out]; throws ShapeError naming both shapes otherwise.
  Var<T> forward(const Var<T>& x) override {
    if (x.rank() != 2 || x.dim(1) != weight.shape()[1])
      throw ShapeError("Linear(" + std::to_string(weight.shape()[1]) + " -> " + std::to_string(weight.shape()[0]) +
                       "): expected input [N, " + std::to_string(weight.shape()[1]) + "], got " + x.shape().to_string());
    return linear(x, weight.var(), bias.defined() ? bias.var() : Var<T>());
  }

  /// Lists `weight` and, when present, `bias`.
  void visit(ModuleVisitor<T>& v) override {
    v.param("weight", weight);
    if (bias.defined()) v.param("bias", bias);
  }

  /// Input width `in` (columns of weight).
  std::int64_t in_features() const { return weight.shape()[1]; }
  /// Output width `out` (rows of weight).
  std::int64_t out_features() const { return weight.shape()[0]; }

  Parameter<T> weight;  ///< [out, in]
  Parameter<T> bias;    ///< [out], undefined without bias
};

}  // namespace genmod::nn
