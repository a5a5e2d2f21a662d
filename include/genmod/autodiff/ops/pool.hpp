#pragma once
/// \file pool.hpp
/// max_pool2d, avg_pool2d and nearest upsampling. Max pooling and upsampling are gathers of
/// input pixels (so their gradients are scatter-adds, and double backward comes for free);
/// average pooling is a linear map recorded with its adjoint.

#include <string>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/select.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/pool.hpp"

namespace genmod {

namespace detail {

inline kernels::Pool2dGeometry pool_geometry(const Shape& x, std::int64_t k, std::int64_t s, std::int64_t p,
                                             const char* op) {
  check_rank(op, "input", x, 4, "[N, C, H, W]");
  if (k < 1 || s < 1 || p < 0 || 2 * p > k)
    throw ValueError(std::string(op) + ": expected kernel >= 1, stride >= 1 and 0 <= padding <= kernel/2, got " +
                     std::to_string(k) + ", " + std::to_string(s) + ", " + std::to_string(p));
  kernels::Pool2dGeometry g{x[0], x[1], x[2], x[3], k, s, p, 0, 0};
  g.ho = (g.h + 2 * p - k) / s + 1;
  g.wo = (g.w + 2 * p - k) / s + 1;
  if (g.h + 2 * p < k || g.w + 2 * p < k)
    throw ShapeError(std::string(op) + ": kernel " + std::to_string(k) + " is larger than the input " + x.to_string() +
                     " padded by " + std::to_string(p));
  return g;
}

template <class T>
Var<T> avg_pool2d_adjoint(const kernels::Pool2dGeometry& g, const Var<T>& gy);

/// Average pooling on an explicit geometry (linear: its backward is its adjoint).
template <class T>
Var<T> avg_pool2d_geometry(const kernels::Pool2dGeometry& g, const Var<T>& x) {
  return record_op(
      "avg_pool2d", kernels::avg_pool2d(g, x.value()),
      [g](const Var<T>&, const Var<T>& gy, GradSink<T>& sink) { sink.add(0, avg_pool2d_adjoint(g, gy)); }, x);
}

template <class T>
Var<T> avg_pool2d_adjoint(const kernels::Pool2dGeometry& g, const Var<T>& gy) {
  return record_op(
      "avg_pool2d_adjoint", kernels::avg_pool2d_adjoint(g, gy.value()),
      [g](const Var<T>&, const Var<T>& h, GradSink<T>& sink) { sink.add(0, avg_pool2d_geometry(g, h)); }, gy);
}

}  // namespace detail

/// Maximum over k x k windows with stride s (default k) and padding p.
template <class T>
Var<T> max_pool2d(const Var<T>& x, std::int64_t k, std::int64_t s = 0, std::int64_t p = 0) {
  const auto g = detail::pool_geometry(x.shape(), k, s ? s : k, p, "max_pool2d");
  const Tensor<std::int64_t> idx = kernels::max_pool2d_indices(g, x.value());
  Var<T> flat = reshape(x, Shape{g.n, g.c, g.h * g.w});
  return reshape(gather(flat, 2, idx), Shape{g.n, g.c, g.ho, g.wo});
}

/// Mean over k x k windows with stride s (default k) and zero padding p (counted in the mean).
template <class T>
Var<T> avg_pool2d(const Var<T>& x, std::int64_t k, std::int64_t s = 0, std::int64_t p = 0) {
  return detail::avg_pool2d_geometry(detail::pool_geometry(x.shape(), k, s ? s : k, p, "avg_pool2d"), x);
}

/// Nearest-neighbour upsampling by an integer factor: [N, C, H, W] -> [N, C, fH, fW].
template <class T>
Var<T> upsample_nearest(const Var<T>& x, std::int64_t factor) {
  check_rank("upsample_nearest", "input", x.shape(), 4, "[N, C, H, W]");
  check_positive("upsample_nearest", "factor", factor);
  const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), ho = h * factor, wo = w * factor;
  Tensor<std::int64_t> idx(Shape{n, c, ho * wo});
  for (std::int64_t pl = 0; pl < n * c; ++pl)
    for (std::int64_t oy = 0; oy < ho; ++oy)
      for (std::int64_t ox = 0; ox < wo; ++ox) idx[(pl * ho + oy) * wo + ox] = (oy / factor) * w + ox / factor;
  return reshape(gather(reshape(x, Shape{n, c, h * w}), 2, idx), Shape{n, c, ho, wo});
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::max_pool2d, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::avg_pool2d, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::upsample_nearest, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::max_pool2d, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::avg_pool2d, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::upsample_nearest, double)
#endif
