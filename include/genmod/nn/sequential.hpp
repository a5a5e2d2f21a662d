#pragma once
/// \file sequential.hpp
/// Sequential<Ls...>: layers applied in order, as one module. Children are named "0", "1", ...
///
///   nn::Sequential encoder{nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 64)};

#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "genmod/nn/module.hpp"

namespace genmod::nn {

template <class L0, class... Ls>
class Sequential : public Module<typename L0::value_type> {
 public:
  using T = typename L0::value_type;
  static_assert((std::is_base_of_v<Module<T>, Ls> && ...) && std::is_base_of_v<Module<T>, L0>,
                "Sequential: every layer must be a genmod::nn::Module of the same value type");

  explicit Sequential(L0 first, Ls... rest) : layers_(std::move(first), std::move(rest)...) {}

  Var<T> forward(const Var<T>& x) override {
    return std::apply([&](auto&... layer) { return chain(x, layer...); }, layers_);
  }

  void visit(ModuleVisitor<T>& v) override {
    std::apply(
        [&](auto&... layer) {
          int i = 0;
          (v.child(std::to_string(i++), layer), ...);
        },
        layers_);
  }

  /// The i-th layer.
  template <std::size_t I>
  auto& get() noexcept {
    return std::get<I>(layers_);
  }
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
