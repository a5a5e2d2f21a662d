#pragma once
/// \file module.hpp
/// Module<T>: a parameter container. It lists its parameters, buffers (running statistics) and
/// child modules through `visit`, and carries a training/evaluation mode that reaches every
/// descendant, wrapped in a container or not. It has no `forward`: a module with one input and one
/// output is a Layer (layer.hpp); a model, a flow step returning {y, logdet} or a recurrent cell
/// with state is a Module that declares the signatures it means.
///
/// A module lists its members through `visit` instead of registering pointers at construction: a
/// module can then be copied and moved freely, and checkpoints and optimizers ask for exactly what a
/// module lists, under dotted names ("encoder.0.weight").
///
/// Copies share parameters: Parameter and Tensor copies share buffers, so `parameters()` returns
/// handles through which an optimizer updates the module's own weights.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/autodiff/parameter.hpp"
#include "genmod/autodiff/var.hpp"

namespace genmod::nn {

/// A parameter with its dotted name in the module tree.
template <class T = float>
struct NamedParameter {
  std::string name;        ///< dotted path, e.g. "encoder.0.weight"
  Parameter<T> parameter;  ///< shares the module's buffers
};

/// A non-trainable tensor a module keeps (running statistics), with its dotted name.
template <class T = float>
struct NamedBuffer {
  std::string name;  ///< dotted path, e.g. "encoder.1.running_mean"
  Tensor<T> tensor;  ///< shares the module's buffer: write with copy_from, never rebind
};

template <class T>
class Module;

/// Walks a module tree: modules call param/buffer for their own members and child for each
/// submodule; the visitor composes the dotted names and reports every module it enters.
template <class T = float>
class ModuleVisitor {
 public:
  /// Called for each parameter with its dotted name.
  using ParameterFn = std::function<void(const std::string&, Parameter<T>&)>;
  /// Called for each buffer with its dotted name.
  using BufferFn = std::function<void(const std::string&, Tensor<T>&)>;
  /// Called for each module entered (children and wrapped modules), with its dotted name.
  using ModuleFn = std::function<void(const std::string&, Module<T>&)>;

  /// A visitor calling the given functions (any may be empty).
  explicit ModuleVisitor(ParameterFn on_parameter, BufferFn on_buffer = {}, ModuleFn on_module = {})
      : on_parameter_(std::move(on_parameter)), on_buffer_(std::move(on_buffer)), on_module_(std::move(on_module)) {}

  /// Reports a parameter of the module being visited.
  void param(std::string_view name, Parameter<T>& p) {
    if (on_parameter_) on_parameter_(join(name), p);
  }
  /// Reports a buffer of the module being visited.
  void buffer(std::string_view name, Tensor<T>& t) {
    if (on_buffer_) on_buffer_(join(name), t);
  }
  /// Enters a child module under `name` (reports it, then visits its members). An empty name adds
  /// no segment: a wrapper (AnyModule) enters the module it holds under its own name, so the held
  /// module is reported (a mode change reaches it) and its parameters keep the wrapper's names.
  void child(std::string_view name, Module<T>& m);

 private:
  std::string join(std::string_view name) const {
    if (name.empty()) return prefix_;
    return prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
  }
  ParameterFn on_parameter_;
  BufferFn on_buffer_;
  ModuleFn on_module_;
  std::string prefix_;
};

/// Base of every parameter holder: layers, networks, models. Subclasses implement `visit`.
template <class T = float>
class Module {
 public:
  /// The scalar type of the module's parameters.
  using value_type = T;
  virtual ~Module() = default;

  /// Lists the module's parameters, buffers and children (see ModuleVisitor). A container must
  /// enter every module it holds through `child`, or train/eval will not reach it.
  virtual void visit(ModuleVisitor<T>& v) = 0;

  /// Sets training (true) or evaluation (false) mode here and in every descendant, held directly,
  /// in a container or behind a type-erased handle (Dropout and BatchNorm read it).
  void train(bool on = true) {
    training_ = on;
    ModuleVisitor<T> v({}, {}, [on](const std::string&, Module<T>& m) { m.training_ = on; });
    visit(v);
  }
  /// Evaluation mode: train(false).
  void eval() { train(false); }
  /// True in training mode (the default).
  bool is_training() const noexcept { return training_; }

  /// Handles to every parameter (sharing the module's buffers), in visit order.
  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> out;
    ModuleVisitor<T> v([&](const std::string&, Parameter<T>& p) { out.push_back(p); });
    visit(v);
    return out;
  }

  /// Every parameter with its dotted name, in visit order.
  std::vector<NamedParameter<T>> named_parameters() {
    std::vector<NamedParameter<T>> out;
    ModuleVisitor<T> v([&](const std::string& n, Parameter<T>& p) { out.push_back({n, p}); });
    visit(v);
    return out;
  }

  /// Every buffer (non-trainable state) with its dotted name, in visit order.
  std::vector<NamedBuffer<T>> named_buffers() {
    std::vector<NamedBuffer<T>> out;
    ModuleVisitor<T> v({}, [&](const std::string& n, Tensor<T>& t) { out.push_back({n, t}); });
    visit(v);
    return out;
  }

  /// Number of trainable scalars (frozen parameters included).
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
  /// Only subclasses construct, copy and move modules (copies share parameters).
  Module() = default;
  /// Copies share the parameters' buffers.
  Module(const Module&) = default;
  /// Moves the handles.
  Module(Module&&) noexcept = default;
  /// Copies share the parameters' buffers.
  Module& operator=(const Module&) = default;
  /// Moves the handles.
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

/// A type that is a genmod module: derives from Module<M::value_type>.
template <class M>
concept ModuleType = requires {
  typename M::value_type;
}
&&std::is_base_of_v<Module<typename M::value_type>, M>;

/// Evaluation mode for a scope: puts `module` (and every descendant) in evaluation mode and gives
/// it back the mode it had when the guard ends, on every path (exceptions included).
/// `nn::EvalModeGuard eval_mode(model);`
template <class M>
class EvalModeGuard {
 public:
  /// Switches `module` to evaluation mode, remembering its mode.
  explicit EvalModeGuard(M& module) : module_(module), was_training_(module.is_training()) { module_.eval(); }
  /// Restores the remembered mode (train(was_training) reaches every descendant).
  ~EvalModeGuard() { module_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  M& module_;
  bool was_training_;
};

}  // namespace genmod::nn
