#pragma once
/// \file var.hpp
/// Var<T>: a value (Tensor) plus, while a tape records it, the id of its slot on that tape.

#include <cstdint>
#include <utility>

#include "genmod/core/tensor.hpp"

namespace genmod {

template <class T>
class Tape;

namespace detail {
/// Epoch of the tape currently recording on this thread (0: none). Each Tape, and each
/// Tape::clear, gets a fresh epoch, so a Var from a finished tape is seen as a constant.
template <class T>
std::uint64_t& current_tape_epoch() noexcept {
  thread_local std::uint64_t epoch = 0;
  return epoch;
}
}  // namespace detail

/// A differentiable value. A Var made from a Tensor is a constant; ops on Vars that require
/// gradients return Vars recorded on the current Tape. Copies are cheap (the value is shared).
template <class T = float>
class Var {
 public:
  /// Scalar type of the value (float, or double for gradient checks).
  using value_type = T;

  /// An undefined Var (defined() is false).
  Var() = default;
  /// A constant (no gradient flows into it).
  Var(Tensor<T> value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose, x * tensor reads well

  /// The computed value (shared, not copied).
  const Tensor<T>& value() const noexcept { return value_; }
  /// Shape of the value.
  const Shape& shape() const noexcept { return value_.shape(); }
  /// Rank of the value.
  int rank() const noexcept { return value_.rank(); }
  /// Number of elements of the value.
  std::int64_t numel() const noexcept { return value_.numel(); }
  /// Extent of dimension i of the value (negative counts from the end), checked.
  std::int64_t dim(int i) const { return value_.dim(i); }
  /// False for a default-constructed Var.
  bool defined() const noexcept { return value_.defined(); }
  /// The single element of a one-element Var.
  T item() const { return value_.item(); }

  /// True when this Var is recorded on the tape currently active on this thread.
  bool requires_grad() const noexcept { return id_ >= 0 && epoch_ == detail::current_tape_epoch<T>(); }

  /// The same value as a constant: gradients stop here.
  Var detach() const { return Var(value_); }

  /// Slot id on its tape (-1 for a constant).
  std::int32_t id() const noexcept { return requires_grad() ? id_ : -1; }

 private:
  friend class Tape<T>;
  Var(Tensor<T> value, std::int32_t id, std::uint64_t epoch) : value_(std::move(value)), id_(id), epoch_(epoch) {}

  Tensor<T> value_;
  std::int32_t id_ = -1;
  std::uint64_t epoch_ = 0;
};


}  // namespace genmod
