#pragma once
/// \file check.hpp
/// One vocabulary for argument checks. Each check names the op, the argument, what was expected
/// and what was found, and throws the genmod::Error that fits: ShapeError for shapes, ValueError
/// for values. Messages read the same everywhere:
///
///     linear: expected input of rank 2 ([N, in]), got shape [3, 4, 5] (rank 3)
///     bce_with_logits: expected logits [4, 10] and target [4, 9] to have the same shape
///     kl_sparsity_penalty: expected rho in (0, 1), got 1.5
///
/// ```cpp
/// check_rank("linear", "input", x.shape(), 2, "[N, in]");
/// check_positive("Adam", "lr", options.lr);
/// ```
///
/// Numbers are printed in their shortest exact form (0.1, not 0.100000), so the message shows the
/// value the caller passed. A NaN fails every numeric check (each is written so that NaN compares
/// false), which is what an argument check should do.

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "genmod/config.hpp"
#include "genmod/core/shape.hpp"

namespace genmod {

/// Which ends of a range an in-range check includes.
enum class Bounds {
  closed,       ///< [lo, hi]
  open,         ///< (lo, hi)
  closed_open,  ///< [lo, hi)
  open_closed,  ///< (lo, hi]
};

namespace detail {

/// A number as an argument check prints it: integers exactly, floating point in the shortest form
/// that reads back as the same value ("0.1", "1e-08"), "nan" and "inf" as such.
template <class N>
requires std::is_arithmetic_v<N> std::string check_number(N v) {
  if constexpr (std::is_same_v<N, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_integral_v<N>) {
    return std::to_string(v);
  } else {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }
}

/// a < b, exact for mixed signed and unsigned integers (std::cmp_less), IEEE for floating point
/// (so false when either is NaN).
template <class A, class B>
constexpr bool check_less(A a, B b) noexcept {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B> && !std::is_same_v<A, bool> && !std::is_same_v<B, bool>)
    return std::cmp_less(a, b);
  else
    return a < b;
}

/// a <= b, as check_less.
template <class A, class B>
constexpr bool check_less_equal(A a, B b) noexcept {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B> && !std::is_same_v<A, bool> && !std::is_same_v<B, bool>)
    return std::cmp_less_equal(a, b);
  else
    return a <= b;
}

/// "<op>: expected <arg> <expected>, got <found>".
inline std::string check_message(std::string_view op, std::string_view arg, std::string_view expected,
                                 std::string_view found) {
  std::string m;
  m.reserve(op.size() + arg.size() + expected.size() + found.size() + 20);
  m += op;
  m += ": expected ";
  m += arg;
  if (!expected.empty()) {
    m += ' ';
    m += expected;
  }
  m += ", got ";
  m += found;
  return m;
}

/// "shape [2, 3] (rank 2)".
inline std::string shape_with_rank(const Shape& s) {
  return "shape " + s.to_string() + " (rank " + std::to_string(s.rank()) + ")";
}

}  // namespace detail

/// Throws ValueError "<op>: expected <arg> <expected>, got <found>" unless `ok`: the general form
/// every value check below is an instance of, for conditions they do not cover.
inline void check_arg(bool ok, std::string_view op, std::string_view arg, std::string_view expected,
                      std::string_view found) {
  if (!ok) throw ValueError(detail::check_message(op, arg, expected, found));
}

/// Throws ShapeError "<op>: expected <arg> <expected>, got <found>" unless `ok`: the general form
/// of a shape check.
inline void check_shape_arg(bool ok, std::string_view op, std::string_view arg, std::string_view expected,
                            std::string_view found) {
  if (!ok) throw ShapeError(detail::check_message(op, arg, expected, found));
}

/// `shape` has rank `rank`; `layout` (optional) says what the axes mean, "[N, C, H, W]".
inline void check_rank(std::string_view op, std::string_view arg, const Shape& shape, int rank,
                       std::string_view layout = {}) {
  if (shape.rank() == rank) return;
  std::string expected = "of rank " + std::to_string(rank);
  if (!layout.empty()) expected += " (" + std::string(layout) + ")";
  throw ShapeError(detail::check_message(op, arg, expected, detail::shape_with_rank(shape)));
}

/// `shape` has one of the ranks listed, e.g. {2, 4} with layout "[N, C] or [N, C, H, W]".
inline void check_rank(std::string_view op, std::string_view arg, const Shape& shape, std::initializer_list<int> ranks,
                       std::string_view layout = {}) {
  for (const int r : ranks)
    if (shape.rank() == r) return;
  std::string expected = "of rank ";
  std::size_t i = 0;
  for (const int r : ranks) {
    if (i > 0) expected += i + 1 == ranks.size() ? " or " : ", ";
    expected += std::to_string(r);
    ++i;
  }
  if (!layout.empty()) expected += " (" + std::string(layout) + ")";
  throw ShapeError(detail::check_message(op, arg, expected, detail::shape_with_rank(shape)));
}

/// `shape` has rank at least `min_rank`.
inline void check_min_rank(std::string_view op, std::string_view arg, const Shape& shape, int min_rank,
                           std::string_view layout = {}) {
  if (shape.rank() >= min_rank) return;
  std::string expected = "of rank >= " + std::to_string(min_rank);
  if (!layout.empty()) expected += " (" + std::string(layout) + ")";
  throw ShapeError(detail::check_message(op, arg, expected, detail::shape_with_rank(shape)));
}

/// `shape` is exactly `expected`.
inline void check_shape(std::string_view op, std::string_view arg, const Shape& shape, const Shape& expected) {
  if (!(shape == expected))
    throw ShapeError(detail::check_message(op, arg, "of shape " + expected.to_string(), "shape " + shape.to_string()));
}

/// Two arguments have the same shape: "<op>: expected <a> [..] and <b> [..] to have the same shape".
inline void check_same_shape(std::string_view op, std::string_view arg_a, const Shape& a, std::string_view arg_b,
                             const Shape& b) {
  if (a == b) return;
  throw ShapeError(std::string(op) + ": expected " + std::string(arg_a) + " " + a.to_string() + " and " +
                   std::string(arg_b) + " " + b.to_string() + " to have the same shape");
}

/// Extent `axis` (negative counts from the end) of `shape` equals `expected`; `meaning` (optional)
/// names the extent ("channels"). Throws ShapeError, also when `shape` has no such axis.
inline void check_dim(std::string_view op, std::string_view arg, const Shape& shape, int axis, std::int64_t expected,
                      std::string_view meaning = {}) {
  const int a = axis < 0 ? axis + shape.rank() : axis;
  if (a >= 0 && a < shape.rank() && shape[a] == expected) return;
  std::string what = "with dimension " + std::to_string(axis);
  if (!meaning.empty()) what += " (" + std::string(meaning) + ")";
  what += " equal to " + std::to_string(expected);
  throw ShapeError(detail::check_message(op, arg, what, "shape " + shape.to_string()));
}

/// Extent `axis` of `shape` is at least `min` (e.g. a batch of at least one row).
inline void check_dim_at_least(std::string_view op, std::string_view arg, const Shape& shape, int axis,
                               std::int64_t min, std::string_view meaning = {}) {
  const int a = axis < 0 ? axis + shape.rank() : axis;
  if (a >= 0 && a < shape.rank() && shape[a] >= min) return;
  std::string what = "with dimension " + std::to_string(axis);
  if (!meaning.empty()) what += " (" + std::string(meaning) + ")";
  what += " >= " + std::to_string(min);
  throw ShapeError(detail::check_message(op, arg, what, "shape " + shape.to_string()));
}

/// `value` > 0 (NaN fails).
template <class N>
requires std::is_arithmetic_v<N>
void check_positive(std::string_view op, std::string_view arg, N value) {
  if (!(value > N{0})) throw ValueError(detail::check_message(op, arg, "> 0", detail::check_number(value)));
}

/// `value` >= 0 (NaN fails).
template <class N>
requires std::is_arithmetic_v<N>
void check_non_negative(std::string_view op, std::string_view arg, N value) {
  if (!(value >= N{0})) throw ValueError(detail::check_message(op, arg, ">= 0", detail::check_number(value)));
}

/// `value` >= `min` (NaN fails).
template <class N, class M>
requires std::is_arithmetic_v<N> && std::is_arithmetic_v<M>
void check_at_least(std::string_view op, std::string_view arg, N value, M min) {
  if (!detail::check_less_equal(min, value))
    throw ValueError(detail::check_message(op, arg, ">= " + detail::check_number(min), detail::check_number(value)));
}

/// `value` is finite (neither NaN nor infinite).
template <class N>
requires std::is_floating_point_v<N>
void check_finite(std::string_view op, std::string_view arg, N value) {
  if (!std::isfinite(value))
    throw ValueError(detail::check_message(op, arg, "to be finite", detail::check_number(value)));
}

/// `value` lies in the range from `lo` to `hi`, ends included or not as `bounds` says (NaN fails).
template <class N, class L, class H>
requires std::is_arithmetic_v<N> && std::is_arithmetic_v<L> && std::is_arithmetic_v<H>
void check_in_range(std::string_view op, std::string_view arg, N value, L lo, H hi, Bounds bounds = Bounds::closed) {
  const bool lo_open = bounds == Bounds::open || bounds == Bounds::open_closed;
  const bool hi_open = bounds == Bounds::open || bounds == Bounds::closed_open;
  const bool ok = (lo_open ? detail::check_less(lo, value) : detail::check_less_equal(lo, value)) &&
                  (hi_open ? detail::check_less(value, hi) : detail::check_less_equal(value, hi));
  if (ok) return;
  const std::string range = std::string("in ") + (lo_open ? "(" : "[") + detail::check_number(lo) + ", " +
                            detail::check_number(hi) + (hi_open ? ")" : "]");
  throw ValueError(detail::check_message(op, arg, range, detail::check_number(value)));
}

}  // namespace genmod
