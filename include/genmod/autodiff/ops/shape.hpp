#pragma once
/// \file shape.hpp
/// Shape ops: reshape, flatten, transpose/permute, concat, slice, split, space_to_depth and
/// depth_to_space. Each backward is the
/// inverse movement of the gradient.

#include <array>
#include <span>
#include <string>
#include <vector>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/index.hpp"

namespace genmod {

/// The same elements viewed with another shape (no copy).  d/dx: the gradient reshaped back.
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
  if (shape.numel() != x.numel())
    throw ShapeError("reshape: cannot view shape " + x.shape().to_string() + " as " + shape.to_string());
  if (shape == x.shape()) return x;
  return record_op(
      "reshape", x.value().reshape(shape),
      [xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, reshape(g, xs)); }, x);
}

/// [d0, d1, ...] -> [d0 * ... * d(start-1), rest]: dimensions from `start_dim` on folded into one.
template <class T>
Var<T> flatten(const Var<T>& x, int start_dim = 1) {
  const int s = start_dim < 0 ? start_dim + x.rank() : start_dim;
  if (s < 0 || s >= x.rank())
    throw ShapeError("flatten: start_dim " + std::to_string(start_dim) + " is out of range for shape " +
                     x.shape().to_string());
  std::int64_t d[kMaxRank];
  for (int i = 0; i < s; ++i) d[i] = x.dim(i);
  std::int64_t rest = 1;
  for (int i = s; i < x.rank(); ++i) rest *= x.dim(i);
  d[s] = rest;
  return reshape(x, Shape(std::span<const std::int64_t>(d, static_cast<std::size_t>(s + 1))));
}

/// Dimensions reordered: result.shape[i] = x.shape[perm[i]].  d/dx: the inverse permutation.
template <class T>
Var<T> permute(const Var<T>& x, std::span<const int> perm) {
  const int r = x.rank();
  if (static_cast<int>(perm.size()) != r)
    throw ShapeError("permute: " + std::to_string(perm.size()) + " axes given for shape " + x.shape().to_string());
  std::array<int, kMaxRank> p{}, inv{};
  std::array<bool, kMaxRank> seen{};
  for (int i = 0; i < r; ++i) {
    const int a = perm[static_cast<std::size_t>(i)] < 0 ? perm[static_cast<std::size_t>(i)] + r
                                                        : perm[static_cast<std::size_t>(i)];
    if (a < 0 || a >= r || seen[static_cast<std::size_t>(a)])
      throw ShapeError("permute: invalid permutation for shape " + x.shape().to_string());
    seen[static_cast<std::size_t>(a)] = true;
    p[static_cast<std::size_t>(i)] = a;
    inv[static_cast<std::size_t>(a)] = i;
  }
  return record_op(
      "permute", kernels::permute(x.value(), std::span<const int>(p.data(), static_cast<std::size_t>(r))),
      [inv, r](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, permute(g, std::span<const int>(inv.data(), static_cast<std::size_t>(r))));
      },
      x);
}

/// Swaps two dimensions (default: the last two, a matrix transpose).
template <class T>
Var<T> transpose(const Var<T>& x, int d0 = -2, int d1 = -1) {
  const int a = x.shape().normalize_axis(d0, "transpose"), b = x.shape().normalize_axis(d1, "transpose");
  std::array<int, kMaxRank> p{};
  for (int i = 0; i < x.rank(); ++i) p[static_cast<std::size_t>(i)] = i;
  std::swap(p[static_cast<std::size_t>(a)], p[static_cast<std::size_t>(b)]);
  return permute(x, std::span<const int>(p.data(), static_cast<std::size_t>(x.rank())));
}

/// Entries [start, start + length) along `axis`.  d/dx: the gradient placed back among zeros.
template <class T>
Var<T> slice(const Var<T>& x, int axis, std::int64_t start, std::int64_t length);

namespace detail {
/// Zeros of `full` with x placed at [start, ...) along axis: the adjoint of slice.
template <class T>
Var<T> embed(const Var<T>& x, const Shape& full, int axis, std::int64_t start) {
  return record_op(
      "embed", kernels::embed_axis(x.value(), full, axis, start),
      [axis, start, len = x.dim(axis)](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        sink.add(0, slice(g, axis, start, len));
      },
      x);
}
}  // namespace detail

template <class T>
Var<T> slice(const Var<T>& x, int axis, std::int64_t start, std::int64_t length) {
  const int a = x.shape().normalize_axis(axis, "slice");
  if (start < 0 || length < 0 || start + length > x.dim(a))
    throw ShapeError("slice: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                     ") is outside axis " + std::to_string(axis) + " of shape " + x.shape().to_string());
  return record_op(
      "slice", kernels::slice_axis(x.value(), a, start, length),
      [a, start, xs = x.shape()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (!sink.add_block(0, g, xs, a, start)) sink.add(0, detail::embed(g, xs, a, start));
      },
      x);
}

/// Splits x along `axis` into pieces of the given sizes (which must add up to the extent).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, int axis, std::span<const std::int64_t> sizes) {
  const int a = x.shape().normalize_axis(axis, "split");
  std::int64_t total = 0;
  for (auto s : sizes) total += s;
  if (total != x.dim(a))
    throw ShapeError("split: sizes add up to " + std::to_string(total) + " but axis " + std::to_string(axis) +
                     " of shape " + x.shape().to_string() + " has " + std::to_string(x.dim(a)));
  std::vector<Var<T>> out;
  out.reserve(sizes.size());
  std::int64_t at = 0;
  for (auto s : sizes) {
    out.push_back(slice(x, a, at, s));
    at += s;
  }
  return out;
}
/// As split above, sizes as a brace list: `split(h, 1, {32, 32})` gives mean and log-variance.
template <class T>
std::vector<Var<T>> split(const Var<T>& x, int axis, std::initializer_list<std::int64_t> sizes) {
  return split(x, axis, std::span<const std::int64_t>(sizes.begin(), sizes.size()));
}

/// Joins tensors along `axis` (all other extents equal).  d/dx_i: the i-th block of the gradient.
template <class T>
Var<T> concat(std::span<const Var<T>> xs, int axis) {
  check_shape_arg(!xs.empty(), "concat", "at least one input", "", "none");
  const Shape& s0 = xs[0].shape();
  const int a = s0.normalize_axis(axis, "concat");
  std::int64_t total = 0;
  for (const Var<T>& x : xs) {
    bool ok = x.rank() == s0.rank();
    for (int i = 0; ok && i < s0.rank(); ++i) ok = i == a || x.dim(i) == s0[i];
    if (!ok)
      throw ShapeError("concat: shape " + x.shape().to_string() + " does not match " + s0.to_string() +
                       " outside axis " + std::to_string(axis));
    total += x.dim(a);
  }
  Tensor<T> y(s0.with_dim(a, total));
  std::int64_t at = 0;
  for (const Var<T>& x : xs) {
    kernels::copy_into_axis(x.value(), y, a, at);
    at += x.dim(a);
  }
  Tape<T>* tape = Tape<T>::current();
  if (!tape || !grad_enabled()) return Var<T>(std::move(y));
  // Block offsets live in the tape's arena, as long as the node that reads them.
  std::int64_t* offsets = tape->template arena_array<std::int64_t>(xs.size() + 1);
  offsets[0] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) offsets[i + 1] = offsets[i] + xs[i].dim(a);
  return record_op_n(
      "concat", std::move(y),
      [a, offsets, n = xs.size()](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        for (std::size_t i = 0; i < n; ++i)
          if (sink.needs(static_cast<int>(i)))
            sink.add(static_cast<int>(i), slice(g, a, offsets[i], offsets[i + 1] - offsets[i]));
      },
      xs);
}
/// As concat above, inputs as a brace list: `concat({x, c}, 1)`.
template <class T>
Var<T> concat(std::initializer_list<Var<T>> xs, int axis) {
  return concat(std::span<const Var<T>>(xs.begin(), xs.size()), axis);
}

template <class T>
Var<T> depth_to_space(const Var<T>& x, std::int64_t factor);

/// [N, C, H, W] -> [N, C f^2, H / f, W / f]: each f x f block of a channel becomes f^2 channels
/// (kernels::space_to_depth gives the order); the "squeeze" of multiscale flows. H and W must be
/// multiples of f. A permutation of the elements: d/dx is depth_to_space of the gradient.
template <class T>
Var<T> space_to_depth(const Var<T>& x, std::int64_t factor) {
  check_rank("space_to_depth", "x", x.shape(), 4, "[N, C, H, W]");
  check_positive("space_to_depth", "the factor", factor);
  if (x.dim(2) % factor != 0 || x.dim(3) % factor != 0)
    check_shape_arg(false, "space_to_depth", "x", "H and W multiples of the factor " + std::to_string(factor),
                    x.shape().to_string());
  return record_op(
      "space_to_depth", kernels::space_to_depth(x.value(), factor),
      [factor](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, depth_to_space(g, factor)); }, x);
}

/// [N, C f^2, H, W] -> [N, C, H f, W f], the inverse of space_to_depth. d/dx: space_to_depth.
template <class T>
Var<T> depth_to_space(const Var<T>& x, std::int64_t factor) {
  check_rank("depth_to_space", "x", x.shape(), 4, "[N, C, H, W]");
  check_positive("depth_to_space", "the factor", factor);
  if (x.dim(1) % (factor * factor) != 0)
    check_shape_arg(false, "depth_to_space", "x",
                    "channels a multiple of factor^2 = " + std::to_string(factor * factor), x.shape().to_string());
  return record_op(
      "depth_to_space", kernels::depth_to_space(x.value(), factor),
      [factor](const Var<T>&, const Var<T>& g, GradSink<T>& sink) { sink.add(0, space_to_depth(g, factor)); }, x);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
#define GENMOD_DETAIL_SHAPE_OPS(T)                                                                                 \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::reshape<T>(const genmod::Var<T>&, const genmod::Shape&);           \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::flatten<T>(const genmod::Var<T>&, int);                            \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::permute<T>(const genmod::Var<T>&, std::span<const int>);           \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::transpose<T>(const genmod::Var<T>&, int, int);                     \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::slice<T>(const genmod::Var<T>&, int, std::int64_t, std::int64_t);  \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::detail::embed<T>(const genmod::Var<T>&, const genmod::Shape&, int, \
                                                                 std::int64_t);                                    \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::concat<T>(std::span<const genmod::Var<T>>, int);                   \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::space_to_depth<T>(const genmod::Var<T>&, std::int64_t);            \
  GENMOD_DETAIL_TEMPLATE genmod::Var<T> genmod::depth_to_space<T>(const genmod::Var<T>&, std::int64_t);
GENMOD_DETAIL_SHAPE_OPS(float)
GENMOD_DETAIL_SHAPE_OPS(double)
#undef GENMOD_DETAIL_SHAPE_OPS
#endif
