#pragma once
/// \file optimizer.hpp
/// Optimizer<T>: the common base of SGD, Adam, AdamW and RMSprop.
///
/// The base owns what every optimizer shares: the named parameters it updates (handles sharing the
/// module's buffers), the learning rate, the step counters, and the per-parameter state buffers
/// ("0.weight.exp_avg"), which it allocates once at construction so that step() never touches the
/// heap. A subclass only declares its state buffers and writes one fused, vectorized update per
/// parameter (update_parameter).
///
/// Contract of step(): each parameter with requires_grad() == true is updated from its grad()
/// buffer; frozen parameters are skipped (their state and step counter do not advance, as
/// PyTorch skips parameters whose gradient is None). step() reads gradients, it never zeroes them:
/// call zero_grad() (here or on the module) before the next backward.
///
/// The requires_grad flag is read through the optimizer's own Parameter handles, which share it
/// with the module's (copies of a Parameter share value, gradient and flag): freezing a module,
/// with nn::freeze / nn::unfreeze / nn::FreezeGuard (nn/freeze.hpp) or set_requires_grad on its
/// parameters, takes effect for the optimizer whether it happens before or after the optimizer was
/// built (tests/autodiff/parameter_test.cpp).

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "genmod/autodiff/parameter.hpp"
#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/simd.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::optim {

/// One named entry of an optimizer's state: a name such as "0.weight.exp_avg" and its tensor.
template <class T = float>
using StateEntry = std::pair<std::string, Tensor<T>>;

/// The whole state of an optimizer, in a stable order (see Optimizer::state).
template <class T = float>
using StateDict = std::vector<StateEntry<T>>;

namespace detail {

/// A double printed compactly ("0.001", "1e-08", "nan") for error messages.
inline std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

/// Throws ValueError "<optimizer>: expected option '<option>' <expected>, got <value>" unless ok:
/// check_arg for an option whose condition ("finite and > 0", "in [0, 1)") the caller states.
/// Comparisons are written so that NaN fails them (`!(x > 0)` rather than `x <= 0`).
inline void require(bool ok, std::string_view optimizer, std::string_view option, std::string_view expected,
                    double value) {
  if (ok) return;  // the message is built only on failure
  check_arg(false, optimizer, "option '" + std::string(option) + "'", expected, genmod::detail::check_number(value));
}

/// Names unnamed parameters by their position: "0", "1", ...
template <class T>
std::vector<nn::NamedParameter<T>> name_by_index(std::vector<Parameter<T>> params) {
  std::vector<nn::NamedParameter<T>> out;
  out.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) out.push_back({std::to_string(i), std::move(params[i])});
  return out;
}

using kernels::simd::loadu;
using kernels::simd::storeu;

/// a * b + c with one rounding, for a simd batch or a scalar. xsimd 8.1 has no AVX-512 kernel for
/// fma and falls back to a * b + c (two roundings), so the AVX-512 case calls the intrinsic.
template <class V>
inline V fmadd(const V& a, const V& b, const V& c) {
  if constexpr (kernels::simd::is_scalar<V>) {
    return std::fma(a, b, c);
  } else {
#if defined(__AVX512F__)
    if constexpr (sizeof(V) == 64 && std::is_same_v<kernels::simd::elem_t<V>, float>)
      return V(_mm512_fmadd_ps(a, b, c));
    else if constexpr (sizeof(V) == 64 && std::is_same_v<kernels::simd::elem_t<V>, double>)
      return V(_mm512_fmadd_pd(a, b, c));
    else
#endif
      return xsimd::fma(a, b, c);
  }
}

/// Runs body.template operator()<V>(i) over [0, n): V = simd::Batch<T> on full registers (i steps
/// by the register width), V = T on the last n % width elements. Threaded with parallel_for when
/// n * cost_per_item is large; body must not throw or allocate. One body serves both widths, so
/// the update rule is written once. Threads split the array at register boundaries, so which
/// elements take the scalar path does not depend on the thread count, nor do the results.
template <class T, class Body>
inline void fused_loop(std::int64_t n, std::int64_t cost_per_item, Body&& body) {
  constexpr std::int64_t W = kernels::simd::width<T>;
  const std::int64_t blocks = n / W;
  parallel_for(blocks, cost_per_item * W, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t k = b; k < e; ++k) body.template operator()<kernels::simd::Batch<T>>(k * W);
  });
  for (std::int64_t i = blocks * W; i < n; ++i) body.template operator()<T>(i);
}

}  // namespace detail

/// Base class of every optimizer: parameters, learning rate, step counters and named state.
///
/// Not copyable (two optimizers sharing state buffers would silently corrupt each other); movable.
template <class T = float>
class Optimizer {
  static_assert(std::is_floating_point_v<T>, "Optimizer<T> needs a floating-point T (float or double)");

 public:
  /// Scalar type of the parameters and of the state buffers.
  using value_type = T;

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every trainable parameter from its current gradient. Makes no heap allocation.
  void step() {
    ++step_count_;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Parameter<T>& p = params_[i].parameter;
      if (!p.requires_grad()) continue;  // frozen: skipped, its state does not advance
      Slot& s = slots_[i];
      ++s.steps;
      update_parameter(p.value().data(), p.grad().data(), p.numel(), s.buffers.data(), s.steps);
    }
  }

  /// Zeroes the gradient buffer of every parameter (frozen ones included).
  void zero_grad() {
    for (auto& np : params_) np.parameter.zero_grad();
  }

  /// The learning rate the next step() uses.
  double lr() const noexcept { return lr_; }

  /// Sets the learning rate (what schedules call). Accepts 0, which a cosine schedule reaches at
  /// its end; the constructor asks for lr > 0 because a zero rate there is surely a mistake.
  void set_lr(double lr) {
    check_non_negative(name_, "lr", lr);
    check_finite(name_, "lr", lr);
    lr_ = lr;
  }

  /// Number of step() calls so far (restored by load_state).
  std::int64_t step_count() const noexcept { return step_count_; }

  /// The optimizer's name, as error messages use it ("Adam").
  std::string_view name() const noexcept { return name_; }

  /// The parameters this optimizer updates, with their names (handles sharing the buffers).
  const std::vector<nn::NamedParameter<T>>& parameters() const noexcept { return params_; }

  /// Names of the per-parameter state buffers, in order (e.g. {"exp_avg", "exp_avg_sq"}).
  const std::vector<std::string>& buffer_names() const noexcept { return buffer_names_; }

  /// The optimizer's state by name, in a stable order:
  ///   "step"                     rank-0, the number of step() calls;
  ///   "<param>.step"             rank-0, the number of updates that parameter received
  ///                              (differs from "step" only for parameters that were frozen);
  ///   "<param>.<buffer>"         the buffer, shaped as the parameter ("0.weight.exp_avg").
  /// The buffers are handles (shared with the optimizer): writing them changes the optimizer.
  /// The step entries are refreshed from the integer counters at each call (exact up to 2^24 for
  /// float); restore them with load_state. The learning rate is not state: a schedule recomputes
  /// it from step_count() after loading (or call set_lr).
  StateDict<T> state() {
    StateDict<T> out;
    out.reserve(1 + params_.size() * (1 + buffer_names_.size()));
    step_tensor_[0] = static_cast<T>(step_count_);
    out.emplace_back("step", step_tensor_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Slot& s = slots_[i];
      s.step_tensor[0] = static_cast<T>(s.steps);
      out.emplace_back(params_[i].name + ".step", s.step_tensor);
      for (std::size_t k = 0; k < buffer_names_.size(); ++k)
        out.emplace_back(params_[i].name + "." + buffer_names_[k], s.buffers[k]);
    }
    return out;
  }

  /// Copies a state (as state() returns it, e.g. read back from a checkpoint) into this
  /// optimizer's existing buffers. Every entry of state() must be present with the same shape;
  /// with `strict`, entries this optimizer does not have are errors too. Nothing is modified
  /// unless every check passes. Throws ValueError for a missing, unexpected, duplicate or invalid
  /// entry and ShapeError for a shape mismatch, naming the entry (and both shapes).
  void load_state(const StateDict<T>& entries, bool strict = true) {
    std::unordered_map<std::string_view, std::size_t> index;
    index.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (!index.emplace(entries[i].first, i).second)
        throw ValueError(std::string(name_) + "::load_state: duplicate entry '" + entries[i].first + "'");

    StateDict<T> mine = state();
    std::vector<const Tensor<T>*> sources(mine.size(), nullptr);
    for (std::size_t j = 0; j < mine.size(); ++j) {
      const auto& [key, dst] = mine[j];
      auto it = index.find(key);
      if (it == index.end())
        throw ValueError(std::string(name_) + "::load_state: missing entry '" + key + "' (expected shape " +
                         dst.shape().to_string() + ")");
      const Tensor<T>& src = entries[it->second].second;
      if (!src.defined() || !(src.shape() == dst.shape()))
        throw ShapeError(std::string(name_) + "::load_state: entry '" + key + "' has shape " +
                         (src.defined() ? src.shape().to_string() : std::string("(undefined)")) +
                         " but the optimizer's buffer has shape " + dst.shape().to_string());
      if (is_step_entry(key)) {
        const double v = static_cast<double>(src[0]);
        if (!(v >= 0) || !std::isfinite(v) || v != std::floor(v))
          throw ValueError(std::string(name_) + "::load_state: entry '" + key +
                           "' must hold a non-negative whole number of steps, got " + detail::fmt(v));
      }
      sources[j] = &src;
      index.erase(it);
    }
    if (strict && !index.empty())
      throw ValueError(std::string(name_) + "::load_state: unexpected entry '" + std::string(index.begin()->first) +
                       "' (this optimizer has no such state)");

    for (std::size_t j = 0; j < mine.size(); ++j) mine[j].second.copy_from(*sources[j]);
    step_count_ = static_cast<std::int64_t>(step_tensor_[0]);
    for (auto& s : slots_) s.steps = static_cast<std::int64_t>(s.step_tensor[0]);
  }

 protected:
  /// Takes the parameters to optimize (names must be unique, each buffer listed once) and the
  /// initial learning rate (validated: finite, > 0). `name` prefixes error messages.
  Optimizer(const char* name, std::vector<nn::NamedParameter<T>> params, double lr)
      : name_(name), params_(std::move(params)), slots_(params_.size()), step_tensor_(zeros<T>(Shape{})) {
    detail::require(lr > 0 && std::isfinite(lr), name_, "lr", "finite and > 0", lr);
    lr_ = lr;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& np = params_[i];
      if (!np.parameter.value().defined())
        throw ValueError(std::string(name_) + ": parameter '" + np.name + "' has no value (undefined tensor)");
      if (!(np.parameter.grad().defined() && np.parameter.grad().shape() == np.parameter.shape()))
        throw ShapeError(std::string(name_) + ": parameter '" + np.name + "' has a gradient buffer of shape " +
                         np.parameter.grad().shape().to_string() + ", its value has shape " +
                         np.parameter.shape().to_string());
      for (std::size_t j = 0; j < i; ++j) {
        if (params_[j].name == np.name)
          throw ValueError(std::string(name_) + ": two parameters are named '" + np.name + "'");
        if (params_[j].parameter.value().shares_buffer_with(np.parameter.value()))
          throw ValueError(std::string(name_) + ": parameters '" + params_[j].name + "' and '" + np.name +
                           "' share one buffer (a parameter listed twice would be updated twice)");
      }
      slots_[i].step_tensor = zeros<T>(Shape{});
    }
  }

  /// Movable (state and parameter handles move along); not copyable, as two copies would
  /// update the same parameters twice.
  Optimizer(Optimizer&&) noexcept = default;
  /// Move assignment, as the move constructor.
  Optimizer& operator=(Optimizer&&) noexcept = default;

  /// Declares a per-parameter state buffer named `buffer` (zero-initialised, shaped as each
  /// parameter) and returns its index in the `state` array update_parameter receives.
  std::size_t add_buffer(std::string buffer) {
    buffer_names_.push_back(std::move(buffer));
    for (std::size_t i = 0; i < params_.size(); ++i)
      slots_[i].buffers.push_back(zeros<T>(params_[i].parameter.shape()));
    return buffer_names_.size() - 1;
  }

  /// The update of one parameter: `value` and `grad` have n elements; `state[k]` is buffer k (as
  /// add_buffer numbered it); `t` is this parameter's step number, 1 on its first update.
  virtual void update_parameter(T* value, const T* grad, std::int64_t n, Tensor<T>* state, std::int64_t t) = 0;

 private:
  struct Slot {
    std::int64_t steps = 0;
    Tensor<T> step_tensor;           // rank 0, the export of `steps`
    std::vector<Tensor<T>> buffers;  // one per buffer_names_
  };

  static bool is_step_entry(std::string_view key) noexcept {
    return key == "step" || (key.size() > 5 && key.substr(key.size() - 5) == ".step");
  }

  const char* name_;
  std::vector<nn::NamedParameter<T>> params_;
  std::vector<Slot> slots_;
  std::vector<std::string> buffer_names_;
  Tensor<T> step_tensor_;
  double lr_ = 0;
  std::int64_t step_count_ = 0;
};

}  // namespace genmod::optim

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::optim::Optimizer, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::optim::Optimizer, double)
#endif
