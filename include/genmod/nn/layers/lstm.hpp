#pragma once
/// \file lstm.hpp
/// LSTMCell with PyTorch's layout: gates (i, f, g, o) stacked in weight_ih [4H, I] and
/// weight_hh [4H, H], every parameter initialized U(-1/sqrt(H), 1/sqrt(H)).
///   i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)
///   c' = f * c + i * g,   h' = o * tanh(c')

#include <cmath>
#include <string>
#include <utility>

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/linear.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// Hidden and cell state of an LSTM.
template <class T = float>
struct LSTMState {
  Var<T> h;  ///< hidden state [N, H]
  Var<T> c;  ///< cell state [N, H]
};

/// One LSTM step as a module with state: `step(x, state) -> state`. It is not a Layer (it has two
/// inputs and two outputs); a recurrent model holds it as a member and loops over time itself.
template <class T = float>
class LSTMCell : public Module<T> {
 public:
  /// A cell from input_size features to hidden_size units, every parameter U(-1/sqrt(H), 1/sqrt(H)).
  LSTMCell(std::int64_t input_size, std::int64_t hidden_size, Generator* generator = nullptr) : hidden_(hidden_size) {
    check_positive("LSTMCell", "input_size", input_size);
    check_positive("LSTMCell", "hidden_size", hidden_size);
    Generator& g = generator ? *generator : default_generator();
    const double b = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto make = [&](const Shape& s) {
      Tensor<T> t(s);
      init::uniform(t, g, -b, b);
      return Parameter<T>(t);
    };
    weight_ih = make(Shape{4 * hidden_size, input_size});
    weight_hh = make(Shape{4 * hidden_size, hidden_size});
    bias_ih = make(Shape{4 * hidden_size});
    bias_hh = make(Shape{4 * hidden_size});
  }

  /// One step: x [N, I], state (h, c) [N, H] each -> the next state.
  LSTMState<T> step(const Var<T>& x, const LSTMState<T>& s) {
    if (x.rank() != 2 || x.dim(1) != weight_ih.shape()[1])
      throw ShapeError("LSTMCell(" + std::to_string(weight_ih.shape()[1]) + ", " + std::to_string(hidden_) +
                       "): expected input [N, " + std::to_string(weight_ih.shape()[1]) + "], got " + x.shape().to_string());
    if (!(s.h.shape() == Shape{x.dim(0), hidden_}) || !(s.c.shape() == Shape{x.dim(0), hidden_}))
      throw ShapeError("LSTMCell: state shapes " + s.h.shape().to_string() + " and " + s.c.shape().to_string() +
                       " do not match [" + std::to_string(x.dim(0)) + ", " + std::to_string(hidden_) + "]");
    Var<T> gates = add(linear(x, weight_ih.var(), bias_ih.var()), linear(s.h, weight_hh.var(), bias_hh.var()));
    auto parts = split(gates, 1, {hidden_, hidden_, hidden_, hidden_});
    Var<T> i = sigmoid(parts[0]), f = sigmoid(parts[1]), gg = tanh(parts[2]), o = sigmoid(parts[3]);
    Var<T> c = add(mul(f, s.c), mul(i, gg));
    return {mul(o, tanh(c)), c};
  }

  /// A zero state for a batch of n.
  LSTMState<T> initial_state(std::int64_t n) const {
    return {Var<T>(zeros<T>(Shape{n, hidden_})), Var<T>(zeros<T>(Shape{n, hidden_}))};
  }

  /// Lists weight_ih, weight_hh, bias_ih and bias_hh (PyTorch's names, so checkpoints line up).
  void visit(ModuleVisitor<T>& v) override {
    v.param("weight_ih", weight_ih);
    v.param("weight_hh", weight_hh);
    v.param("bias_ih", bias_ih);
    v.param("bias_hh", bias_hh);
  }

  /// H, the size of h and c.
  std::int64_t hidden_size() const noexcept { return hidden_; }

  ///@{
  /// weight_ih [4H, I], weight_hh [4H, H], bias_ih and bias_hh [4H]; rows in gate order i, f, g, o.
  Parameter<T> weight_ih, weight_hh, bias_ih, bias_hh;
  ///@}

 private:
  std::int64_t hidden_;
};

}  // namespace genmod::nn
