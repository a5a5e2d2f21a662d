#pragma once
/// \file shape.hpp
/// Shape: the extents of a tensor of rank 0 (scalar) to 4, stored inline (no heap).

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "genmod/config.hpp"

namespace genmod {

/// Largest rank a tensor may have: N, C, H, W.
inline constexpr int kMaxRank = 4;

/// Extents of a row-major tensor. Rank 0 is a scalar with one element.
class Shape {
 public:
  Shape() = default;

  /// Shape from extents: `Shape{128, 1, 28, 28}`; at most kMaxRank of them, each >= 0.
  Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.size()); }

  /// Shape from extents held elsewhere (at most kMaxRank).
  explicit Shape(std::span<const std::int64_t> dims) { assign(dims.data(), dims.size()); }

  /// Number of dimensions (0 for a scalar).
  int rank() const noexcept { return rank_; }

  /// Extent of dimension i; negative i counts from the end (-1 is the last).
  std::int64_t operator[](int i) const noexcept { return dims_[static_cast<std::size_t>(i < 0 ? i + rank_ : i)]; }

  /// Extent of dimension i, checked; negative i counts from the end.
  std::int64_t dim(int i) const {
    const int j = normalize_axis(i, "Shape::dim");
    return dims_[static_cast<std::size_t>(j)];
  }

  /// Product of the extents (1 for a scalar).
  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }

  /// Row-major stride (in elements) of dimension i.
  std::int64_t stride(int i) const noexcept {
    std::int64_t s = 1;
    for (int j = rank_ - 1; j > i; --j) s *= dims_[static_cast<std::size_t>(j)];
    return s;
  }

  /// The extents as a span of rank() values, outermost first.
  std::span<const std::int64_t> dims() const noexcept { return {dims_.data(), static_cast<std::size_t>(rank_)}; }

  /// Maps a possibly negative axis into [0, rank) or throws ShapeError naming `op`.
  int normalize_axis(int axis, const char* op) const {
    const int a = axis < 0 ? axis + rank_ : axis;
    if (a < 0 || a >= rank_)
      throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for shape " +
                       to_string());
    return a;
  }

  /// "[2, 3, 4]"; a scalar prints as "[]".
  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }

  /// Same rank and the same extents.
  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)]) return false;
    return true;
  }

  /// The same extents with dimension i replaced.
  Shape with_dim(int i, std::int64_t extent) const {
    Shape s = *this;
    s.dims_[static_cast<std::size_t>(normalize_axis(i, "Shape::with_dim"))] = extent;
    s.check_extent(extent);
    return s;
  }

 private:
  void assign(const std::int64_t* d, std::size_t n) {
    if (n > static_cast<std::size_t>(kMaxRank))
      throw ShapeError("Shape: rank " + std::to_string(n) + " exceeds the maximum rank " + std::to_string(kMaxRank));
    rank_ = static_cast<int>(n);
    for (std::size_t i = 0; i < n; ++i) {
      check_extent(d[i]);
      dims_[i] = d[i];
    }
  }

  static void check_extent(std::int64_t e) {
    if (e < 0) throw ShapeError("Shape: negative extent " + std::to_string(e));
  }

  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

/// NumPy broadcasting of two shapes (aligned at the trailing dimension); throws ShapeError naming `op`.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int r = a.rank() > b.rank() ? a.rank() : b.rank();
  std::array<std::int64_t, kMaxRank> out{};
  for (int i = 0; i < r; ++i) {
    const int ia = a.rank() - r + i;
    const int ib = b.rank() - r + i;
    const std::int64_t da = ia >= 0 ? a[ia] : 1;
    const std::int64_t db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + a.to_string() + " and " + b.to_string() +
                       " cannot be broadcast together");
    out[static_cast<std::size_t>(i)] = da == 1 ? db : da;
  }
  return Shape(std::span<const std::int64_t>(out.data(), static_cast<std::size_t>(r)));
}

/// True when `from` broadcasts to `to` without changing `to`.
inline bool broadcastable_to(const Shape& from, const Shape& to) noexcept {
  if (from.rank() > to.rank()) return false;
  for (int i = 0; i < from.rank(); ++i) {
    const std::int64_t f = from[from.rank() - 1 - i];
    const std::int64_t t = to[to.rank() - 1 - i];
    if (f != t && f != 1) return false;
  }
  return true;
}

}  // namespace genmod
