#pragma once
/// \file activation.hpp
/// Activations as modules, for Sequential: ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus.

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// Base of the parameter-free modules: nothing to visit.
template <class T>
class Stateless : public Module<T> {
 public:
  void visit(ModuleVisitor<T>&) override {}
};

template <class T = float>
class ReLU : public Stateless<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return relu(x); }
};

template <class T = float>
class LeakyReLU : public Stateless<T> {
 public:
  explicit LeakyReLU(T slope = T(0.01)) : slope_(slope) {}
  Var<T> forward(const Var<T>& x) override { return leaky_relu(x, slope_); }

 private:
  T slope_;
};

template <class T = float>
class ELU : public Stateless<T> {
 public:
  explicit ELU(T alpha = T(1)) : alpha_(alpha) {}
  Var<T> forward(const Var<T>& x) override { return elu(x, alpha_); }

 private:
  T alpha_;
};

template <class T = float>
class Sigmoid : public Stateless<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return sigmoid(x); }
};

template <class T = float>
class Tanh : public Stateless<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return tanh(x); }
};

template <class T = float>
class Softplus : public Stateless<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return softplus(x); }
};

}  // namespace genmod::nn
