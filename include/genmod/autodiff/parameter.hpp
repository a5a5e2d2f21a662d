#pragma once
/// \file parameter.hpp
/// Parameter<T>: a trainable tensor with a persistent gradient buffer. Each backward() adds into
/// the buffer; it keeps accumulating across backward calls until zero_grad().

#include <cstdint>
#include <utility>

#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/tape.hpp"
#include "genmod/autodiff/var.hpp"

namespace genmod {

template <class T = float>
class Parameter {
 public:
  Parameter() = default;
  /// A parameter holding `value` (shared, not copied), with a zeroed gradient buffer.
  explicit Parameter(Tensor<T> value, bool requires_grad = true)
      : value_(std::move(value)), grad_(zeros<T>(value_.shape())), requires_grad_(requires_grad) {}

  Tensor<T>& value() noexcept { return value_; }
  const Tensor<T>& value() const noexcept { return value_; }
  Tensor<T>& grad() noexcept { return grad_; }
  const Tensor<T>& grad() const noexcept { return grad_; }
  const Shape& shape() const noexcept { return value_.shape(); }
  std::int64_t numel() const noexcept { return value_.numel(); }

  bool requires_grad() const noexcept { return requires_grad_; }
  /// A frozen parameter is used as a constant by ops (no node, no gradient).
  void set_requires_grad(bool on) noexcept { requires_grad_ = on; }

  void zero_grad() noexcept {
    if (grad_.defined()) grad_.fill(T(0));
  }

  /// The parameter as a Var: a leaf on the current tape (one per tape, reused by later uses), or
  /// a constant when no tape records, recording is off, or the parameter is frozen.
  Var<T> var() const {
    Tape<T>* tape = Tape<T>::current();
    if (!tape || !grad_enabled() || !requires_grad_) return Var<T>(value_);
    if (cached_.requires_grad()) return cached_;
    cached_ = tape->parameter_leaf(value_, grad_);
    return cached_;
  }
  operator Var<T>() const { return var(); }  // NOLINT: lets parameters be used where Vars are

 private:
  Tensor<T> value_;
  Tensor<T> grad_;
  bool requires_grad_ = true;
  mutable Var<T> cached_;
};

}  // namespace genmod
