#pragma once
/// \file coupling.hpp
/// The elementwise work of an affine coupling step (RealNVP, flows/affine_coupling.hpp) as one
/// pass forward and one pass backward. Sample n has d elements (C x H x W, or D); the conditioner's
/// output rt [N, 2C, ...] holds the sample's r in its first d values and t in the next d (the C
/// channels of r come first). With m the transform mask (1 where the step transforms, 0 where it
/// keeps; entries 0 or 1):
///   b = bound(r):  tanh: scale tanh(r);  sigmoid: log sigmoid(r + 2);  exp: r
///   s = b m,  e = exp(s),  y = x e + t m,  logdet_n = sum_i s_i
/// and backward, from gy and glogdet (each may be absent, i.e. zero):
///   gx = gy e
///   gb = (gy x e + glogdet_n) m          the gradient of b
///   gr = gb db/dr:  tanh: scale (1 - tanh^2 r);  sigmoid: sigmoid(-(r + 2)) = 1 - e where m = 1;  exp: 1
///   gt = gy m
///   gscale_i += sum over n of gb_i tanh(r_i)      (tanh only)
/// Composed from generic ops the forward alone was about ten passes over [N, d] (two slices, the
/// bound, two masks, exp, multiply, add, the per-sample sum), each with its temporary, and the
/// backward as many again. Here the forward reads x and rt once and writes y and the saved e (and
/// tanh r), and the backward reads gy, x and the saved values once and writes gx and both halves
/// of grt, the r half and the t half, straight into one [N, 2C, ...] gradient.
///
/// Threads split the samples: each thread reads and writes whole contiguous rows. Each logdet is
/// one sample's sum in a fixed order. gscale's terms gb tanh(r) go to a scratch [N, d] and are
/// then summed from zero in sample order (threads over blocks of elements), the sum the composed
/// ops formed: no result depends on the thread count, and training reproduces the composed
/// form's numbers. Measured at realnvp_mlp's shape (backward, 1 / 2 threads): this 51 / 43 us;
/// splitting the elements instead, each thread summing its own elements of gscale, 43 / 60-72 us;
/// partial sums per group of 16 samples, 48 / 23-27 us, but another rounding of gscale, which
/// moved the seeded RealNVPMLP training test from 5.34 to 5.81 bits/dim (groups of 8: 5.35).

#include <algorithm>
#include <cstdint>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

/// How an affine coupling bounds its log-scale b = bound(r) (flows::ScaleBound names the same three).
enum class CouplingBound {
  tanh,     ///< b = scale tanh(r), scale per element
  sigmoid,  ///< b = log sigmoid(r + 2)
  exp       ///< b = r
};

/// Sizes of an affine coupling: n samples of d elements (rt rows have 2 d).
struct CouplingLayout {
  std::int64_t n;  ///< samples
  std::int64_t d;  ///< elements per sample of x and y
};

/// Operands of affine_coupling_forward. Per-sample arrays are [n, d] (rt: [n, 2d]), per-element
/// ones [d].
template <class T>
struct CouplingForwardArgs {
  const T* x = nullptr;          ///< the input [n, d]
  const T* rt = nullptr;         ///< the conditioner's output [n, 2d]: r, then t, per sample
  const T* scale = nullptr;      ///< [d], the tanh bound's scale (unused by the other bounds)
  const T* transform = nullptr;  ///< [d], m: 1 where the step transforms, 0 where it keeps
  T* y = nullptr;                ///< out: [n, d]
  T* logdet = nullptr;           ///< out: [n], the per-sample sum of s
  T* e = nullptr;                ///< out, for the backward: e = exp(s) [n, d]; nullptr: not saved
  T* th = nullptr;               ///< out, for the backward (tanh bound): tanh(r) [n, d]; nullptr: not saved
};

/// Operands of affine_coupling_backward: the gradients flowing in, the forward's inputs and saved
/// values, and the gradients to write (nullptr: not wanted).
template <class T>
struct CouplingBackwardArgs {
  const T* gy = nullptr;         ///< d loss / d y [n, d]; nullptr: zero (y unused)
  const T* glogdet = nullptr;    ///< d loss / d logdet [n]; nullptr: zero
  const T* x = nullptr;          ///< the forward's input [n, d] (read when gy is given)
  const T* scale = nullptr;      ///< [d] (tanh bound)
  const T* transform = nullptr;  ///< [d]
  const T* e = nullptr;          ///< saved exp(s) [n, d]
  const T* th = nullptr;         ///< saved tanh(r) [n, d] (tanh bound)
  T* gx = nullptr;               ///< out: [n, d], written only when gy is given
  T* grt = nullptr;              ///< out: [n, 2d], the r half then the t half of each sample
  T* gscale = nullptr;           ///< out, accumulated (+=): [d] (tanh bound)
};

namespace detail {

template <CouplingBound B, bool Save, class T>
void coupling_forward(const CouplingLayout& l, const CouplingForwardArgs<T>& a) {
  constexpr std::int64_t W = simd::width<T>;
  const std::int64_t d = l.d;
  parallel_for(l.n, d * 8, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n) {
      const std::int64_t o = n * d;
      const T* r = a.rt + 2 * o;
      const T* t = r + d;
      // s at element j; y, e and tanh r written.
      auto at = [&]<class V>(std::int64_t j) {
        const V rv = simd::loadu<V>(r + j), m = simd::loadu<V>(a.transform + j);
        V b;
        if constexpr (B == CouplingBound::tanh) {
          const V th = simd::tanh(rv);
          if constexpr (Save) simd::storeu(a.th + o + j, th);
          b = th * simd::loadu<V>(a.scale + j);
        } else if constexpr (B == CouplingBound::sigmoid) {
          b = LogSigmoid{}(rv + V(T(2)));
        } else {
          b = rv;
        }
        const V s = b * m, e = simd::exp(s);
        if constexpr (Save) simd::storeu(a.e + o + j, e);
        simd::storeu(a.y + o + j, simd::loadu<V>(a.x + o + j) * e + simd::loadu<V>(t + j) * m);
        return s;
      };
      simd::Batch<T> acc(T(0));
      T tail(0);
      std::int64_t j = 0;
      for (; j + W <= d; j += W) acc += at.template operator()<simd::Batch<T>>(j);
      for (; j < d; ++j) tail += at.template operator()<T>(j);
      a.logdet[n] = simd::hsum(acc) + tail;
    }
  });
}

template <CouplingBound B, bool HasGy, class T>
void coupling_backward(const CouplingLayout& l, const CouplingBackwardArgs<T>& a) {
  constexpr std::int64_t W = simd::width<T>;
  const std::int64_t d = l.d;
  // gscale's terms gb tanh(r) go to a scratch [n, d] first and are summed over the samples
  // afterwards, in sample order: the sum the composed ops formed, so the same bits.
  const bool with_gscale = B == CouplingBound::tanh && a.gscale;
  Tensor<T> terms = with_gscale ? Tensor<T>(Shape{l.n, d}) : Tensor<T>();
  parallel_for(l.n, d * 4, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n) {
      const std::int64_t o = n * d;
      const T gl = a.glogdet ? a.glogdet[n] : T(0);
      T* gr_row = a.grt ? a.grt + 2 * o : nullptr;
      T* term_row = with_gscale ? terms.data() + o : nullptr;
      auto at = [&]<class V>(std::int64_t j) {
        const V m = simd::loadu<V>(a.transform + j);
        V gb(gl), gt(T(0));
        if constexpr (HasGy) {
          const V g = simd::loadu<V>(a.gy + o + j), e = simd::loadu<V>(a.e + o + j);
          if (a.gx) simd::storeu(a.gx + o + j, g * e);
          gb += g * simd::loadu<V>(a.x + o + j) * e;
          gt = g * m;
        }
        gb *= m;
        if constexpr (B == CouplingBound::tanh) {
          const V th = simd::loadu<V>(a.th + o + j);
          if (gr_row) simd::storeu(gr_row + j, gb * simd::loadu<V>(a.scale + j) * (V(T(1)) - th * th));
          if (term_row) simd::storeu(term_row + j, gb * th);
        } else if constexpr (B == CouplingBound::sigmoid) {
          if (gr_row) simd::storeu(gr_row + j, gb * (V(T(1)) - simd::loadu<V>(a.e + o + j)));
        } else {
          if (gr_row) simd::storeu(gr_row + j, gb);
        }
        if (gr_row) simd::storeu(gr_row + d + j, gt);
      };
      std::int64_t j = 0;
      for (; j + W <= d; j += W) at.template operator()<simd::Batch<T>>(j);
      for (; j < d; ++j) at.template operator()<T>(j);
    }
  });
  if (!with_gscale) return;
  // gscale += the column sums of terms, each summed from zero in sample order; threads take
  // blocks of columns.
  constexpr std::int64_t kBlock = 4 * W;
  parallel_for((d + kBlock - 1) / kBlock, l.n * kBlock, [&](std::int64_t b0, std::int64_t b1) {
    const std::int64_t c0 = b0 * kBlock, c1 = std::min(d, b1 * kBlock);
    auto at = [&]<class V>(std::int64_t j) {
      V sum(T(0));
      for (std::int64_t n = 0; n < l.n; ++n) sum += simd::loadu<V>(terms.data() + n * d + j);
      simd::storeu(a.gscale + j, simd::loadu<V>(a.gscale + j) + sum);
    };
    std::int64_t j = c0;
    for (; j + W <= c1; j += W) at.template operator()<simd::Batch<T>>(j);
    for (; j < c1; ++j) at.template operator()<T>(j);
  });
}

// Calls f.template operator()<B>() with the bound as a compile-time constant.
template <class F>
void with_bound(CouplingBound bound, F&& f) {
  switch (bound) {
    case CouplingBound::tanh:
      return f.template operator()<CouplingBound::tanh>();
    case CouplingBound::sigmoid:
      return f.template operator()<CouplingBound::sigmoid>();
    case CouplingBound::exp:
      return f.template operator()<CouplingBound::exp>();
  }
}

}  // namespace detail

/// y, logdet (and, when a.e is given, the values the backward reads) of the file comment, in one
/// pass; threads over the samples.
template <class T>
void affine_coupling_forward(const CouplingLayout& l, CouplingBound bound, const CouplingForwardArgs<T>& a) {
  detail::with_bound(bound, [&]<CouplingBound B>() {
    if (a.e)
      detail::coupling_forward<B, true>(l, a);
    else
      detail::coupling_forward<B, false>(l, a);
  });
}

/// gx, grt (both halves) and gscale (+=) of the file comment, in one pass over the samples (and,
/// for gscale, one over its terms); no result depends on the thread count.
template <class T>
void affine_coupling_backward(const CouplingLayout& l, CouplingBound bound, const CouplingBackwardArgs<T>& a) {
  detail::with_bound(bound, [&]<CouplingBound B>() {
    if (a.gy)
      detail::coupling_backward<B, true>(l, a);
    else
      detail::coupling_backward<B, false>(l, a);
  });
}

}  // namespace genmod::kernels
