#pragma once
/// \file batch_norm.hpp
/// Per-channel passes of a fused batch normalization over x seen as [n, c, inner] (inner = H W for
/// [N, C, H, W], 1 for [N, C]). Training-mode batch norm is two reads of x forward (mean, then
/// centred variance) and one write, and two reads of (x, g) backward; composed from generic ops
/// it was some twenty passes over the activation with as many temporaries.
///
/// Reductions run threads over whole channels, so each channel is summed in the same order at any
/// thread count. With inner > 1 a channel is n contiguous runs; with inner == 1 the loops run
/// across channels instead, which is the contiguous direction there.

#include <cmath>
#include <cstdint>

#include "genmod/core/parallel.hpp"
#include "genmod/kernels/reduce.hpp"
#include "genmod/kernels/simd.hpp"

namespace genmod::kernels {

/// Batch mean and biased variance per channel (two passes: the variance is of centred values, so
/// a large mean costs no precision), and invstd = 1 / sqrt(var + eps).
template <class T>
void batch_norm_statistics(const ChannelLayout& l, const T* x, T eps, T* mean, T* var, T* invstd) {
  const T inv_count = T(1) / static_cast<T>(l.count());
  channel_sum(l, x, mean);
  for (std::int64_t ch = 0; ch < l.c; ++ch) mean[ch] *= inv_count;
  detail::channel_sums(l, x, static_cast<const T*>(nullptr), var, [mean](auto a, auto, std::int64_t ch) {
    const auto d = a - decltype(a)(mean[ch]);
    return d * d;
  });
  for (std::int64_t ch = 0; ch < l.c; ++ch) {
    var[ch] *= inv_count;
    invstd[ch] = T(1) / std::sqrt(var[ch] + eps);
  }
}

/// out = scale[ch] * x + shift[ch] (+ weight2[ch] * x2 when x2 is given), elementwise.
template <class T>
void channel_affine(const ChannelLayout& l, const T* x, const T* scale, const T* shift, T* out, const T* x2 = nullptr,
                    const T* weight2 = nullptr) {
  if (l.inner == 1) {  // [N, C]: rows, each contiguous across channels
    parallel_for(l.n, l.c * 2, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const std::int64_t r = i * l.c;
        if (x2)
          for (std::int64_t ch = 0; ch < l.c; ++ch)
            out[r + ch] = scale[ch] * x[r + ch] + shift[ch] + weight2[ch] * x2[r + ch];
        else
          for (std::int64_t ch = 0; ch < l.c; ++ch) out[r + ch] = scale[ch] * x[r + ch] + shift[ch];
      }
    });
    return;
  }
  parallel_for(l.n * l.c, l.inner * 2, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t blk = b; blk < e; ++blk) {
      const std::int64_t ch = blk % l.c, off = blk * l.inner;
      const T a = scale[ch], s = shift[ch], w2 = x2 ? weight2[ch] : T(0);
      const T* xr = x + off;
      const T* x2r = x2 ? x2 + off : nullptr;
      T* o = out + off;
      auto at = [&]<class V>(std::int64_t j) {
        V v = V(a) * simd::loadu<V>(xr + j) + V(s);
        if (x2r) v += V(w2) * simd::loadu<V>(x2r + j);
        simd::storeu(o + j, v);
      };
      std::int64_t j = 0;
      for (; j + simd::width<T> <= l.inner; j += simd::width<T>) at.template operator()<simd::Batch<T>>(j);
      for (; j < l.inner; ++j) at.template operator()<T>(j);
    }
  });
}

/// Backward sums: sum_g[ch] = sum of g, sum_gc[ch] = sum of g (x - mean[ch]).
template <class T>
void batch_norm_grad_sums(const ChannelLayout& l, const T* g, const T* x, const T* mean, T* sum_g, T* sum_gc) {
  channel_sum(l, g, sum_g);
  detail::channel_sums(l, g, x, sum_gc,
                       [mean](auto a, auto b, std::int64_t ch) { return a * (b - decltype(b)(mean[ch])); });
}

}  // namespace genmod::kernels
