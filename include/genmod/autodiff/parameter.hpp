#pragma once
/// \file parameter.hpp
/// Parameter<T>: a trainable tensor with a persistent gradient buffer. Each backward() adds into
/// the buffer; it keeps accumulating across backward calls until zero_grad().
///
/// A Parameter is a handle: copies share the value, the gradient and the requires_grad flag, so
/// the copies an optimizer or a checkpoint holds see exactly what the module sees (freezing a
/// network after its optimizer was built freezes it for the optimizer too, as
/// tests/autodiff/parameter_test.cpp checks). To freeze a whole module: nn::freeze, nn::unfreeze
/// or nn::FreezeGuard (nn/freeze.hpp).

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/tape.hpp"
#include "genmod/autodiff/var.hpp"
#include "genmod/core/parallel.hpp"

namespace genmod {

/// A trainable tensor and its gradient buffer, shared by every copy of the handle (see the file comment).
template <class T = float>
class Parameter {
 public:
  /// An undefined parameter (defined() is false), e.g. an absent bias.
  Parameter() = default;
  /// A parameter holding `value` (shared, not copied), with a zeroed gradient buffer.
  explicit Parameter(Tensor<T> value, bool requires_grad = true) : state_(std::make_shared<State>()) {
    state_->grad = zeros<T>(value.shape());
    state_->value = std::move(value);
    state_->requires_grad = requires_grad;
  }

  /// The current value; optimizers update it in place.
  Tensor<T>& value() noexcept { return state().value; }
  /// The current value, read-only.
  const Tensor<T>& value() const noexcept { return state().value; }
  /// The accumulated gradient, same shape as value(); backward() adds into it.
  Tensor<T>& grad() noexcept { return state().grad; }
  /// The accumulated gradient, read-only.
  const Tensor<T>& grad() const noexcept { return state().grad; }
  /// Shape of the value (and of the gradient).
  const Shape& shape() const noexcept { return state().value.shape(); }
  /// Number of scalar parameters in the tensor.
  std::int64_t numel() const noexcept { return state().value.numel(); }
  /// False for a default-constructed Parameter (e.g. a layer built without bias).
  bool defined() const noexcept { return state_ && state_->value.defined(); }

  /// False when frozen (or undefined): ops then treat it as a constant.
  bool requires_grad() const noexcept { return state_ && state_->requires_grad; }
  /// A frozen parameter is used as a constant by ops (no node, no gradient), in every copy.
  void set_requires_grad(bool on) noexcept {
    if (state_) state_->requires_grad = on;
  }

  /// Sets the gradient buffer to zero (before the next backward, unless accumulating on purpose).
  void zero_grad() noexcept {
    if (!state_ || !state_->grad.defined()) return;
    // Split over threads: for a large network this is a pass over as many bytes as the weights.
    T* g = state_->grad.data();
    parallel_for(state_->grad.numel(), 1, [g](std::int64_t b, std::int64_t e) { std::fill(g + b, g + e, T(0)); });
  }

  /// True when both handles refer to the same parameter.
  bool same_as(const Parameter& o) const noexcept { return state_ == o.state_; }

  /// The parameter as a Var: a leaf on the current tape (one per tape, reused by later uses), or
  /// a constant when no tape records, recording is off, or the parameter is frozen.
  Var<T> var() const {
    Tape<T>* tape = Tape<T>::current();
    if (!state_ || !tape || !grad_enabled() || !state_->requires_grad) return Var<T>(value());
    if (cached_.requires_grad()) return cached_;
    cached_ = tape->parameter_leaf(state_->value, state_->grad);
    return cached_;
  }
  /// Same as var(): a parameter can be passed wherever a Var is expected.
  operator Var<T>() const { return var(); }  // NOLINT: lets parameters be used where Vars are

 private:
  struct State {
    Tensor<T> value;
    Tensor<T> grad;
    bool requires_grad = true;
  };
  const State& state() const noexcept {
    static const State empty{};
    return state_ ? *state_ : empty;
  }
  State& state() noexcept {
    // A default-constructed Parameter gets its (empty) state on first mutable access, so that
    // value() can be assigned through.
    if (!state_) state_ = std::make_shared<State>();
    return *state_;
  }

  std::shared_ptr<State> state_;
  mutable Var<T> cached_;
};

}  // namespace genmod
