#pragma once
/// \file any_module.hpp
/// AnyModule: a type-erased module handle, and DynamicSequential: a stack of them built at run
/// time (from a configuration, a loop over layer sizes, ...).

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// Holds any Module<T> by shared ownership (copies share the module, as they share parameters).
template <class T = float>
class AnyModule : public Module<T> {
 public:
  AnyModule() = default;
  template <class M>
    requires(std::is_base_of_v<Module<T>, std::decay_t<M>> && !std::is_same_v<std::decay_t<M>, AnyModule>)
  AnyModule(M&& m) : ptr_(std::make_shared<std::decay_t<M>>(std::forward<M>(m))) {}  // NOLINT: implicit by design

  Var<T> forward(const Var<T>& x) override { return get().forward(x); }
  void visit(ModuleVisitor<T>& v) override { get().visit(v); }

  bool empty() const noexcept { return !ptr_; }
  Module<T>& get() {
    if (!ptr_) throw ValueError("AnyModule: empty module");
    return *ptr_;
  }
  /// The held module as M, or nullptr when it is of another type.
  template <class M>
  M* as() noexcept {
    return dynamic_cast<M*>(ptr_.get());
  }

 private:
  std::shared_ptr<Module<T>> ptr_;
};

/// Modules applied in order, the list chosen at run time. Children are named "0", "1", ...
template <class T = float>
class DynamicSequential : public Module<T> {
 public:
  DynamicSequential() = default;
  DynamicSequential(std::initializer_list<AnyModule<T>> layers) : layers_(layers) {}

  void push_back(AnyModule<T> m) { layers_.push_back(std::move(m)); }
  std::size_t size() const noexcept { return layers_.size(); }
  AnyModule<T>& operator[](std::size_t i) { return layers_.at(i); }

  Var<T> forward(const Var<T>& x) override {
    Var<T> h = x;
    for (auto& l : layers_) h = l.forward(h);
    return h;
  }
  void visit(ModuleVisitor<T>& v) override {
    for (std::size_t i = 0; i < layers_.size(); ++i) v.child(std::to_string(i), layers_[i]);
  }

 private:
  std::vector<AnyModule<T>> layers_;
};

}  // namespace genmod::nn
