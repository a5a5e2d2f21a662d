#pragma once
/// \file module.hpp
/// The module concept: a layer or network with `forward`, named parameters and buffers, and a
/// training/evaluation mode.
///
/// A module lists its members through `visit` (parameters, buffers such as BatchNorm's running
/// statistics, and child modules) instead of registering pointers at construction: a module can
/// then be copied and moved freely, and checkpoints and optimizers ask for exactly what a module
/// lists, under dotted names ("encoder.0.weight").
///
/// Copies share parameters: Parameter and Tensor copies share buffers, so `parameters()` returns
/// handles through which an optimizer updates the module's own weights.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/autodiff/parameter.hpp"
#include "genmod/autodiff/var.hpp"

namespace genmod::nn {

/// A parameter with its dotted name in the module tree.
template <class T = float>
struct NamedParameter {
  std::string name;
  Parameter<T> parameter;  ///< shares the module's buffers
};

/// A non-trainable tensor a module keeps (running statistics), with its dotted name.
template <class T = float>
struct NamedBuffer {
  std::string name;
  Tensor<T> tensor;  ///< shares the module's buffer: write with copy_from, never rebind
};

template <class T>
class Module;

/// Walks a module tree: modules call param/buffer for their own members and child for each
/// submodule; the visitor composes the dotted names.
template <class T = float>
class ModuleVisitor {
 public:
  using ParameterFn = std::function<void(const std::string&, Parameter<T>&)>;
  using BufferFn = std::function<void(const std::string&, Tensor<T>&)>;
  using ModuleFn = std::function<void(const std::string&, Module<T>&)>;

  ModuleVisitor(ParameterFn on_parameter, BufferFn on_buffer = {}, ModuleFn on_module = {})
      : on_parameter_(std::move(on_parameter)), on_buffer_(std::move(on_buffer)), on_module_(std::move(on_module)) {}

  void param(std::string_view name, Parameter<T>& p) {
    if (on_parameter_) on_parameter_(join(name), p);
  }
  void buffer(std::string_view name, Tensor<T>& t) {
    if (on_buffer_) on_buffer_(join(name), t);
  }
  void child(std::string_view name, Module<T>& m);

 private:
  std::string join(std::string_view name) const {
    return prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
  }
  ParameterFn on_parameter_;
  BufferFn on_buffer_;
  ModuleFn on_module_;
  std::string prefix_;
};

/// Base of every layer and network. Subclasses implement forward and visit.
template <class T = float>
class Module {
 public:
  using value_type = T;
  virtual ~Module() = default;

  /// The module's computation on one input.
  virtual Var<T> forward(const Var<T>& x) = 0;
  Var<T> operator()(const Var<T>& x) { return forward(x); }

  /// Lists the module's parameters, buffers and children (see ModuleVisitor).
  virtual void visit(ModuleVisitor<T>& v) = 0;

  /// Sets training (true) or evaluation (false) mode here and in every descendant (Dropout and
  /// BatchNorm read it).
  void train(bool on = true) {
    training_ = on;
    ModuleVisitor<T> v({}, {}, [on](const std::string&, Module<T>& m) { m.training_ = on; });
    visit(v);
  }
  void eval() { train(false); }
  bool is_training() const noexcept { return training_; }

  /// Handles to every parameter (sharing the module's buffers), in visit order.
  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> out;
    ModuleVisitor<T> v([&](const std::string&, Parameter<T>& p) { out.push_back(p); });
    visit(v);
    return out;
  }

  /// Every parameter with its dotted name.
  std::vector<NamedParameter<T>> named_parameters() {
    std::vector<NamedParameter<T>> out;
    ModuleVisitor<T> v([&](const std::string& n, Parameter<T>& p) { out.push_back({n, p}); });
    visit(v);
    return out;
  }

  /// Every buffer (non-trainable state) with its dotted name.
  std::vector<NamedBuffer<T>> named_buffers() {
    std::vector<NamedBuffer<T>> out;
    ModuleVisitor<T> v({}, [&](const std::string& n, Tensor<T>& t) { out.push_back({n, t}); });
    visit(v);
    return out;
  }

  /// Number of trainable scalars.
  std::int64_t num_parameters() {
    std::int64_t n = 0;
    for (auto& p : parameters()) n += p.numel();
    return n;
  }

  /// Zeroes every parameter's gradient buffer.
  void zero_grad() {
    for (auto& p : parameters()) p.zero_grad();
  }

 protected:
  Module() = default;
  Module(const Module&) = default;
  Module(Module&&) noexcept = default;
  Module& operator=(const Module&) = default;
  Module& operator=(Module&&) noexcept = default;

 private:
  bool training_ = true;
};

template <class T>
void ModuleVisitor<T>::child(std::string_view name, Module<T>& m) {
  const std::string saved = prefix_;
  prefix_ = join(name);
  if (on_module_) on_module_(prefix_, m);
  m.visit(*this);
  prefix_ = saved;
}

}  // namespace genmod::nn
