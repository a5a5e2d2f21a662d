#pragma once
/// \file matmul.hpp
/// Matrix products through the GEMM kernel: 2-D with optional transposes, and batched.
///
/// For C = op(A) op(B) the gradients are again products with transposes, so backward needs no
/// transposed copies: dA = G op(B)^T (transposed back when A was), dB = op(A)^T G (likewise).

#include <string>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/gemm.hpp"

namespace genmod {

namespace detail {

inline void check_matmul(const Shape& a, const Shape& b, bool ta, bool tb, const char* op) {
  const std::int64_t ka = ta ? a[-2] : a[-1];
  const std::int64_t kb = tb ? b[-1] : b[-2];
  if (ka != kb)
    throw ShapeError(std::string(op) + ": inner dimensions differ: " + a.to_string() + (ta ? "^T" : "") + " x " +
                     b.to_string() + (tb ? "^T" : ""));
}

}  // namespace detail

/// op(a) op(b) for 2-D a and b, op(x) = x or x^T.
template <class T>
Var<T> matmul_t(const Var<T>& a, const Var<T>& b, bool ta, bool tb) {
  check_rank("matmul_t", "a", a.shape(), 2);
  check_rank("matmul_t", "b", b.shape(), 2);
  detail::check_matmul(a.shape(), b.shape(), ta, tb, "matmul");
  const std::int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const std::int64_t n = tb ? b.dim(0) : b.dim(1);
  Tensor<T> c(Shape{m, n});
  kernels::gemm<T>(ta, tb, m, n, k, T(1), a.value().data(), a.dim(1), b.value().data(), b.dim(1), T(0), c.data(), n);
  return record_op(
      "matmul", std::move(c),
      [a, b, ta, tb](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, ta ? matmul_t(b, g, tb, true) : matmul_t(g, b, false, !tb));
        if (sink.needs(1)) sink.add(1, tb ? matmul_t(g, a, true, ta) : matmul_t(a, g, !ta, false));
      },
      a, b);
}

/// Batched op(a[i]) op(b[i]) for 3-D a [B, ., .] and b [B, ., .].
template <class T>
Var<T> bmm_t(const Var<T>& a, const Var<T>& b, bool ta, bool tb) {
  check_rank("bmm", "a", a.shape(), 3, "[B, M, K]");
  check_rank("bmm", "b", b.shape(), 3, "[B, K, N]");
  check_dim("bmm", "b", b.shape(), 0, a.dim(0), "the batch of a");
  detail::check_matmul(a.shape(), b.shape(), ta, tb, "bmm");
  const std::int64_t batch = a.dim(0);
  const std::int64_t m = ta ? a.dim(2) : a.dim(1), k = ta ? a.dim(1) : a.dim(2);
  const std::int64_t n = tb ? b.dim(1) : b.dim(2);
  Tensor<T> c(Shape{batch, m, n});
  const std::int64_t sa = a.dim(1) * a.dim(2), sb = b.dim(1) * b.dim(2);
  for (std::int64_t i = 0; i < batch; ++i)
    kernels::gemm<T>(ta, tb, m, n, k, T(1), a.value().data() + i * sa, a.dim(2), b.value().data() + i * sb, b.dim(2),
                     T(0), c.data() + i * m * n, n);
  return record_op(
      "bmm", std::move(c),
      [a, b, ta, tb](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, ta ? bmm_t(b, g, tb, true) : bmm_t(g, b, false, !tb));
        if (sink.needs(1)) sink.add(1, tb ? bmm_t(g, a, true, ta) : bmm_t(a, g, !ta, false));
      },
      a, b);
}

/// Matrix product: [M,K] x [K,N]; batched [B,M,K] x [B,K,N]; and [..., M, K] x [K, N] (the 2-D
/// right operand shared by every leading index).
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  if (a.rank() == 2 && b.rank() == 2) return matmul_t(a, b, false, false);
  if (a.rank() >= 2 && b.rank() == 2) {
    // Fold the leading dimensions into rows: one large GEMM instead of many small ones.
    detail::check_matmul(a.shape(), b.shape(), false, false, "matmul");
    const std::int64_t k = a.dim(-1);
    Var<T> flat = reshape(a, Shape{a.numel() / k, k});
    Var<T> c = matmul_t(flat, b, false, false);
    std::int64_t d[kMaxRank];
    for (int i = 0; i < a.rank() - 1; ++i) d[i] = a.dim(i);
    d[a.rank() - 1] = b.dim(1);
    return reshape(c, Shape(std::span<const std::int64_t>(d, static_cast<std::size_t>(a.rank()))));
  }
  if (a.rank() == 3 && b.rank() == 3) return bmm_t(a, b, false, false);
  throw ShapeError("matmul: unsupported operand shapes " + a.shape().to_string() + " and " + b.shape().to_string() +
                   " (expected 2-D x 2-D, N-D x 2-D, or 3-D x 3-D)");
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::matmul, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::matmul, double)
#endif
