#pragma once
/// \file layer.hpp
/// Layer<T>: a module with one input and one output, `Var<T> forward(const Var<T>&)`. Only layers
/// go into the containers Sequential, DynamicSequential and AnyModule; everything else (a model, a
/// flow step, a cell with state, a GAN with two networks) is a Module with its own signatures.

#include <type_traits>

#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// Base of every one-in/one-out module (Linear, Conv2d, activations, Sequential, ...).
template <class T = float>
class Layer : public Module<T> {
 public:
  /// The layer's computation on one input.
  virtual Var<T> forward(const Var<T>& x) = 0;
  /// Same as forward(x).
  Var<T> operator()(const Var<T>& x) { return forward(x); }

 protected:
  /// Only subclasses construct layers.
  Layer() = default;
  /// Copies share the parameters' buffers.
  Layer(const Layer&) = default;
  /// Moves the handles.
  Layer(Layer&&) noexcept = default;
  /// Copies share the parameters' buffers.
  Layer& operator=(const Layer&) = default;
  /// Moves the handles.
  Layer& operator=(Layer&&) noexcept = default;
};

/// A type that is a genmod layer: derives from Layer<L::value_type>, so it has
/// `Var<T> forward(const Var<T>&)` and `visit`.
template <class L>
concept LayerType = requires {
  typename L::value_type;
}
&&std::is_base_of_v<Layer<typename L::value_type>, L>;

namespace detail {

/// True when L is a layer of value type T; used by the containers' static_asserts.
template <class L, class T>
inline constexpr bool is_layer_of = LayerType<L>&& std::is_same_v<typename L::value_type, T>;

}  // namespace detail

}  // namespace genmod::nn
