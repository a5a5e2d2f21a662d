#pragma once
/// \file activation.hpp
/// Activations as layers, for Sequential: ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus.
///
/// Constructor arguments are `double`, so `nn::LeakyReLU(0.2)` is a float layer (the default T)
/// and sits in a Sequential of float layers; name the type for another one (`nn::LeakyReLU<double>`).

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// Base of the parameter-free layers: nothing to visit.
template <class T>
class Stateless : public Layer<T> {
 public:
  /// Nothing to list: an activation has no parameters and no buffers.
  void visit(ModuleVisitor<T>&) override {}
};

/// max(x, 0).
template <class T = float>
class ReLU : public Stateless<T> {
 public:
  /// relu(x), elementwise, any shape.
  Var<T> forward(const Var<T>& x) override { return relu(x); }
};

/// x for x > 0, slope * x otherwise.
template <class T = float>
class LeakyReLU : public Stateless<T> {
 public:
  /// The negative-side slope (PyTorch's default 0.01).
  explicit LeakyReLU(double slope = 0.01) : slope_(static_cast<T>(slope)) {}
  /// leaky_relu(x, slope), elementwise, any shape.
  Var<T> forward(const Var<T>& x) override { return leaky_relu(x, slope_); }

 private:
  T slope_;
};

/// x for x > 0, alpha (e^x - 1) otherwise.
template <class T = float>
class ELU : public Stateless<T> {
 public:
  /// The saturation value -alpha for x -> -inf.
  explicit ELU(double alpha = 1.0) : alpha_(static_cast<T>(alpha)) {}
  /// elu(x, alpha), elementwise, any shape.
  Var<T> forward(const Var<T>& x) override { return elu(x, alpha_); }

 private:
  T alpha_;
};

/// 1 / (1 + e^-x).
template <class T = float>
class Sigmoid : public Stateless<T> {
 public:
  /// sigmoid(x), elementwise, any shape; values in (0, 1).
  Var<T> forward(const Var<T>& x) override { return sigmoid(x); }
};

/// tanh(x).
template <class T = float>
class Tanh : public Stateless<T> {
 public:
  /// tanh(x), elementwise, any shape; values in (-1, 1).
  Var<T> forward(const Var<T>& x) override { return tanh(x); }
};

/// log(1 + e^x).
template <class T = float>
class Softplus : public Stateless<T> {
 public:
  /// softplus(x) = log(1 + e^x), elementwise, computed without overflow for large x.
  Var<T> forward(const Var<T>& x) override { return softplus(x); }
};

}  // namespace genmod::nn
