#pragma once
/// \file any_module.hpp
/// AnyModule: a type-erased handle to a layer, and DynamicSequential: a stack of them chosen at
/// run time (from a configuration, a loop over layer sizes, ...). Both are layers themselves.

#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// Holds any Layer<T> by shared ownership (copies share the layer, as they share parameters).
/// Mode changes (train/eval) reach the held layer.
template <class T = float>
class AnyModule : public Layer<T> {
 public:
  /// An empty handle (forward and visit throw / do nothing until assigned).
  AnyModule() = default;
  /// Takes (a copy of, or by move) any layer of value type T; a module that is not such a layer
  /// stops compilation with a message saying why.
  template <class M>
  requires(ModuleType<std::decay_t<M>> && !std::is_same_v<std::decay_t<M>, AnyModule>)
      AnyModule(M&& m)  // NOLINT: implicit by design, so {Linear(...), ReLU()} builds a list
      : ptr_(make(std::forward<M>(m))) {}

  /// Runs the held layer.
  Var<T> forward(const Var<T>& x) override { return get().forward(x); }
  /// Visits the held layer's members under this handle's own name.
  void visit(ModuleVisitor<T>& v) override {
    if (ptr_) v.child("", *ptr_);
  }

  /// True when no layer is held.
  bool empty() const noexcept { return !ptr_; }
  /// The held layer; throws ValueError when empty.
  Layer<T>& get() {
    if (!ptr_) throw ValueError("AnyModule: empty module");
    return *ptr_;
  }
  /// The held layer as M, or nullptr when it is of another type.
  template <class M>
  M* as() noexcept {
    return dynamic_cast<M*>(ptr_.get());
  }

 private:
  template <class M>
  static std::shared_ptr<Layer<T>> make(M&& m) {
    using L = std::decay_t<M>;
    static_assert(detail::is_layer_of<L, T>,
                  "nn::AnyModule<T> holds layers: the type must derive from nn::Layer<T> (Var<T> forward(const "
                  "Var<T>&)) with the same value type T. Models, flow steps and cells are Modules with other "
                  "signatures: keep them in an nn::ModuleList instead.");
    return std::make_shared<L>(std::forward<M>(m));
  }
  std::shared_ptr<Layer<T>> ptr_;
};

/// Another name for AnyModule, saying what it holds.
template <class T = float>
using AnyLayer = AnyModule<T>;

/// Layers applied in order, the list chosen at run time. Children are named "0", "1", ...
template <class T = float>
class DynamicSequential : public Layer<T> {
 public:
  /// An empty stack (forward is the identity).
  DynamicSequential() = default;
  /// The given layers, first to last.
  DynamicSequential(std::initializer_list<AnyModule<T>> layers) : layers_(layers) {}

  /// Appends a layer.
  void push_back(AnyModule<T> m) { layers_.push_back(std::move(m)); }
  /// Number of layers.
  std::size_t size() const noexcept { return layers_.size(); }
  /// The i-th layer's handle (bounds-checked).
  AnyModule<T>& operator[](std::size_t i) { return layers_.at(i); }

  /// Applies every layer in order.
  Var<T> forward(const Var<T>& x) override {
    Var<T> h = x;
    for (auto& l : layers_) h = l.forward(h);
    return h;
  }
  /// Visits each layer as child "0", "1", ...
  void visit(ModuleVisitor<T>& v) override {
    for (std::size_t i = 0; i < layers_.size(); ++i) v.child(std::to_string(i), layers_[i]);
  }

 private:
  std::vector<AnyModule<T>> layers_;
};

}  // namespace genmod::nn
