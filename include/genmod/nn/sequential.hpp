#pragma once
/// \file sequential.hpp
/// Sequential<Ls...>: layers applied in order, as one layer. Children are named "0", "1", ...
///
///   nn::Sequential encoder{nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 64)};
///
/// The element types are deduced (CTAD). To keep one as a class member without spelling every
/// type, name it through a factory: `static auto make_encoder() { return nn::Sequential{...}; }`
/// then `decltype(make_encoder()) encoder = make_encoder();`, or use DynamicSequential (type-erased,
/// one virtual call per layer).

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "genmod/nn/layer.hpp"

namespace genmod::nn {

namespace detail {

/// L::value_type, or float when L has none (so a non-layer reaches Sequential's static_assert
/// instead of failing in the base-class list).
template <class L>
struct layer_value {
  using type = float;
};
template <class L>
  requires requires { typename L::value_type; }
struct layer_value<L> {
  using type = typename L::value_type;
};

}  // namespace detail

/// Layers applied in order; itself a layer, so Sequentials nest.
template <class L0, class... Ls>
class Sequential : public Layer<typename detail::layer_value<L0>::type> {
 public:
  /// The value type shared by every layer.
  using T = typename detail::layer_value<L0>::type;
  static_assert(detail::is_layer_of<L0, T> && (detail::is_layer_of<Ls, T> && ...),
                "nn::Sequential: every element must be a genmod::nn::Layer<T> of one value type T, i.e. derive from "
                "nn::Layer<T> and define Var<T> forward(const Var<T>&). Modules with other signatures (a model, a "
                "flow step, an LSTMCell) do not go into a Sequential: hold them as members or in an nn::ModuleList. "
                "Mixed value types: write float literals (nn::LeakyReLU(0.2f)) or name the type (nn::Linear<double>).");

  /// The layers, applied first to last.
  explicit Sequential(L0 first, Ls... rest) : layers_(std::move(first), std::move(rest)...) {}

  /// Applies every layer in order.
  Var<T> forward(const Var<T>& x) override {
    return std::apply([&](auto&... layer) { return chain(x, layer...); }, layers_);
  }

  /// Visits each layer as child "0", "1", ...
  void visit(ModuleVisitor<T>& v) override {
    std::apply(
        [&](auto&... layer) {
          int i = 0;
          (v.child(std::to_string(i++), layer), ...);
        },
        layers_);
  }

  /// The I-th layer.
  template <std::size_t I>
  auto& get() noexcept {
    return std::get<I>(layers_);
  }
  /// Number of layers.
  static constexpr std::size_t size() noexcept { return 1 + sizeof...(Ls); }

 private:
  template <class First, class... Rest>
  static Var<T> chain(const Var<T>& x, First& f, Rest&... rest) {
    if constexpr (sizeof...(Rest) == 0) return f.forward(x);
    else return chain(f.forward(x), rest...);
  }

  std::tuple<L0, Ls...> layers_;
};

}  // namespace genmod::nn
