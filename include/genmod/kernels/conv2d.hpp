#pragma once
/// \file conv2d.hpp
/// 2-D convolution on NCHW tensors, as the kernels the differentiable ops call:
///
///   conv2d_forward                  Y = C(X, W) (+ bias)
///   conv2d_input_grad               dX = Cx*(G, W)   the adjoint in X; also the transposed convolution
///   conv2d_weight_grad              dW = Cw*(X, G)   the adjoint in W (zero at masked taps)
///   conv2d_forward_and_weight_grad  (C(X, W), Cw*(X, G)) in one pass (a transposed convolution's backward)
///   conv2d_bias_grad                db = sum of G over N, H, W
///
/// C is bilinear, so these are closed under differentiation (autodiff/ops/conv.hpp builds double
/// backward from them). conv2d_reference.hpp writes each as plain loops over its definition.
///
/// Every pass splits the batch into one contiguous range per thread and walks it in groups of
/// images (one image, or images_per_gemm: about 256 output pixels per product for small outputs);
/// each thread runs single-threaded products on its own scratch, and the weight gradient sums the
/// per-thread partials in a fixed order, so results do not depend on scheduling. Masked
/// convolutions (PixelCNN) list the taps they keep, and every path runs over those only.
///
/// Which path a pass takes (forward_path, input_grad_path, weight_grad_path), with K = Cin x kept
/// taps; "strided or same" means stride > 1, or stride 1 with Wo = W. The first four paths exist
/// for float on AVX-512 (conv2d_gather.hpp); double, and every type elsewhere, takes the last two.
///
///   path       pass          taken where                               how
///   direct     forward       strided, K >= 64, Cout >= 32              Y^T = cols^T W^T  } cols broadcast from
///              weight grad   strided or same, K >= 64, Cout >= 32      dW^T = cols G^T   } the phase stack
///   permuted   forward       strided, K >= 64, Cout < 32, and every    B panels by two loads and a permute
///                            16 columns within 32 stack positions      from the phase stack
///   gathered   forward       strided or same, K >= 64, not the above   B panels by masked loads or gathers
///   phases     input grad    strided or same, Cin >= 8,                per stride phase: W_phase^T times
///                            Cout taps / (sh sw) >= 64                 panels loaded from G
///   pointwise  every pass    1x1, stride 1, unpadded, not masked       one GEMM on the image itself
///   im2col     every pass    everything else (Cin = 1: K < 64)         column matrix (conv2d_layout.hpp),
///                                                                      GEMM, col2im for the input grad
///
/// The reference workloads (benchmarks/reference_shapes.hpp), float on AVX-512: the k4 s2
/// convolutions with 32+ input channels (conv_vae.enc2, dcgan.D.c2, and the convolutions under
/// conv_vae.dec1 and dcgan.G.up1) take direct / phases / direct; PixelCNN's masked 3x3 gathered /
/// phases / direct; the one-channel ones (enc1, D.c1, maskA7, and those under dec2 and G.up2)
/// im2col throughout; the 1x1 ones pointwise. tests/kernels/conv2d_reference_test.cpp asserts
/// these and holds every path to the reference.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/kernels/conv2d_gather.hpp"
#include "genmod/kernels/conv2d_geometry.hpp"
#include "genmod/kernels/conv2d_layout.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/kernels/microkernel.hpp"
#include "genmod/kernels/reduce.hpp"

namespace genmod::kernels {

/// The ways a convolution pass can run; see the table in the file comment.
enum class ConvPath { im2col, pointwise, gathered, permuted, direct, phases };

/// The path of the forward (and of the forward half of the fused pass) for groups of `images`
/// images (a batch's last group may be smaller than images_per_gemm).
template <class T>
ConvPath forward_path(const Conv2dGeometry& g, std::int64_t images) {
  if (detail::forward_direct<T>(g)) return ConvPath::direct;
  if (detail::permute_columns<T>(g, images)) return ConvPath::permuted;
  if (detail::gather_columns<T>(g, images)) return ConvPath::gathered;
  return g.pointwise() ? ConvPath::pointwise : ConvPath::im2col;
}

/// The path of the input gradient.
template <class T>
ConvPath input_grad_path(const Conv2dGeometry& g) {
  if (detail::gather_input_grad<T>(g, detail::images_per_gemm(g))) return ConvPath::phases;
  return g.pointwise() ? ConvPath::pointwise : ConvPath::im2col;
}

/// The path of the weight gradient (and of the weight half of the fused pass).
template <class T>
ConvPath weight_grad_path(const Conv2dGeometry& g) {
  if (detail::weight_grad_direct<T>(g)) return ConvPath::direct;
  return g.pointwise() ? ConvPath::pointwise : ConvPath::im2col;
}

/// Throws ShapeError naming `op` unless x and w fit geometry g.
inline void check_conv_shapes(const Conv2dGeometry& g, const Shape& x, const Shape& w, const char* op) {
  if (!(x == g.input_shape()))
    throw ShapeError(std::string(op) + ": input " + x.to_string() + " does not match the expected " +
                     g.input_shape().to_string());
  if (!(w == g.weight_shape()))
    throw ShapeError(std::string(op) + ": weight " + w.to_string() + " does not match the expected " +
                     g.weight_shape().to_string());
}

namespace detail {

/// The weight [Cout, K] packed once for every group's GEMM: as the left factor W (forward) or W^T
/// (input gradient, `transposed`).
template <class T>
PackedA<T> packed_weight_panels(const Conv2dGeometry& g, const Tensor<T>& w, bool transposed) {
  const Tensor<T> wp = packed_weight(g, w);
  return transposed ? PackedA<T>(true, g.k(), g.cout, wp.data(), g.k())
                    : PackedA<T>(false, g.cout, g.k(), wp.data(), g.k());
}

/// The forward's weight, packed once per call for the path forward_group takes: as the GEMM's
/// left factor W, or, where the forward multiplies straight from the phase stack
/// (forward_direct), as W^T [K, Cout] in panels of 64 output channels, depth-major (panel j:
/// [K, 64], zero past Cout).
template <class T>
struct ForwardWeights {
  PackedA<T> panels;  ///< W, when not direct
  Tensor<T> direct;   ///< W^T panels, when direct
};
template <class T>
ForwardWeights<T> forward_weights(const Conv2dGeometry& g, const Tensor<T>& w) {
  if (!forward_direct<T>(g)) return {packed_weight_panels(g, w, false), Tensor<T>()};
  constexpr std::int64_t NRD = 64;
  const Tensor<T> wp = packed_weight(g, w);
  const std::int64_t K = g.k(), panels = (g.cout + NRD - 1) / NRD;
  Tensor<T> wt = zeros<T>(Shape{panels * K * NRD});
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t k = 0; k < K; ++k) wt[((o / NRD) * K + k) * NRD + o % NRD] = wp[o * K + k];
  return {PackedA<T>(), std::move(wt)};
}

/// Per-thread scratch: the column matrix of a group of images [K, group * HW], a matrix
/// [Cout, group * HW] (grouped outputs or output gradients), and the phase buffer of one image.
template <class T>
struct ConvScratch {
  T* cols;
  T* out;
  T* phases;
};
template <class T>
ConvScratch<T> conv_scratch(const Conv2dGeometry& g, std::int64_t group) {
  thread_local Tensor<T> scratch;
  // Each block rounded up to 16 elements keeps the next one 64-byte aligned.
  const auto round = [](std::int64_t v) { return (v + 15) / 16 * 16; };
  const std::int64_t cols = round(g.k() * g.hw_out() * group), out = round(g.cout * g.hw_out() * group);
  // The phase buffer comes first: col2im_gather addresses a few elements before a column row
  // (never reading them: masked lanes), which must still lie inside this allocation.
  const std::int64_t phases = round(std::max<std::int64_t>(phase_buffer_size(g), 64));
  const std::int64_t need = phases + cols + out;
  if (!scratch.defined() || scratch.numel() < need) scratch = Tensor<T>(Shape{need});
  return {scratch.data() + phases, scratch.data() + phases + cols, scratch.data()};
}

/// The column matrices of `group` consecutive images starting at x, side by side in
/// scratch.cols ([K, group * HW], image j in columns j * HW ..).
template <class T>
void im2col_group(const Conv2dGeometry& g, const T* x, std::int64_t group, const ConvScratch<T>& scratch) {
  const std::int64_t in_size = g.cin * g.h * g.w, hw = g.hw_out();
  for (std::int64_t j = 0; j < group; ++j)
    im2col(g, phase_image(g, x + j * in_size, scratch.phases), scratch.cols + j * hw, group * hw);
}

/// Number of chunks the batch is split into (one per thread, at most one image each).
inline std::int64_t batch_chunks(const Conv2dGeometry& g) {
  const double flops = 2.0 * static_cast<double>(g.cout) * static_cast<double>(g.k()) * static_cast<double>(g.hw_out());
  if (static_cast<double>(g.n) * flops < 2e6 || in_parallel_region()) return 1;
  return std::min<std::int64_t>(get_num_threads(), g.n);
}

/// Sums the per-chunk weight-gradient blocks of `partial` [chunks, Cout, K] in chunk order and
/// returns the weight gradient in the weight's layout (zero at masked taps).
template <class T>
Tensor<T> reduce_weight_partials(const Conv2dGeometry& g, Tensor<T>& partial) {
  const std::int64_t K = g.k(), chunks = partial.dim(0);
  for (std::int64_t c = 1; c < chunks; ++c) axpy(T(1), partial.data() + c * g.cout * K, partial.data(), g.cout * K);
  // The reduced sum sits in the first block of `partial`, transposed ([K, Cout]) where the
  // weight gradient multiplied straight from the phase stack (weight_grad_direct_group).
  Tensor<T> sum = partial.rows(0, 1).reshape(Shape{g.cout, K});
  if (weight_grad_path<T>(g) == ConvPath::direct) {
    sum = Tensor<T>(Shape{g.cout, K});
    for (std::int64_t k0 = 0; k0 < K; k0 += 16)
      tile::transpose_rows(partial.data() + k0 * g.cout, g.cout, static_cast<int>(std::min<std::int64_t>(16, K - k0)),
                           g.cout, sum.data() + k0, K);
  }
  if (!g.masked()) return sum.reshape(g.weight_shape());  // a view, no copy
  Tensor<T> dw = zeros<T>(g.weight_shape());
  const std::int64_t nt = g.num_taps(), kk = g.kh * g.kw;
  for (std::int64_t o = 0; o < g.cout; ++o)
    for (std::int64_t ci = 0; ci < g.cin; ++ci)
      for (std::int64_t t = 0; t < nt; ++t) dw[(o * g.cin + ci) * kk + g.tap(t)] = sum[o * K + ci * nt + t];
  return dw;
}

/// Runs body(chunk, first_image, images, scratch) over the batch: the images are split into
/// `chunks` contiguous ranges, one per thread, and each range is walked in groups of
/// images_per_gemm(g) with the thread's own scratch (none for pointwise convolutions).
template <class T, class F>
void for_each_image_group(const Conv2dGeometry& g, std::int64_t chunks, F&& body) {
  const std::int64_t group = images_per_gemm(g);
  parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto scratch = g.pointwise() ? ConvScratch<T>{} : conv_scratch<T>(g, group);
      const std::int64_t end = g.n * (c + 1) / chunks;
      for (std::int64_t i = g.n * c / chunks; i < end; i += group) body(c, i, std::min(group, end - i), scratch);
    }
  });
}

/// The column matrix of images [i, i + images) of x: the image itself for a pointwise
/// convolution, else built in scratch.cols.
template <class T>
const T* columns_of(const Conv2dGeometry& g, const T* x, std::int64_t i, std::int64_t images,
                    const ConvScratch<T>& scratch) {
  const T* xi = x + i * g.cin * g.h * g.w;
  if (g.pointwise()) return xi;
  im2col_group(g, xi, images, scratch);
  return scratch.cols;
}

/// What a forward built for its images that their weight gradient can use again: the column
/// matrix (explicit path) or the filled phase stack (direct path); null where it built neither.
template <class T>
struct ForwardColumns {
  const T* matrix = nullptr;
  const float* stack = nullptr;
};

/// y (the outputs of `images` consecutive images starting at image i of x) = W cols (+ bias),
/// by forward_path: straight into y for one image, else through scratch.out and copied to place
/// with the bias added. Returns the column matrix or phase stack it built, so the fused pass does
/// not build it again for the weight gradient.
template <class T>
ForwardColumns<T> forward_group(const Conv2dGeometry& g, const ForwardWeights<T>& fw, const T* x, std::int64_t i,
                                std::int64_t images, const Tensor<T>& bias, T* y, const ConvScratch<T>& scratch) {
  const std::int64_t HW = g.hw_out(), ld = images * HW;
  const PackedA<T>& wp = fw.panels;
  const ConvPath path = forward_path<T>(g, images);
#if defined(__AVX512F__)  // the direct, permuted and gathered paths exist only there
  const T* xi = x + i * g.cin * g.h * g.w;
  if constexpr (kGatherColumns<T>) {
    if (path == ConvPath::direct)  // Y^T = cols^T W^T, bias included, transposed into y
      return {nullptr, forward_direct_group(g, fw.direct.data(), xi, images, bias.defined() ? bias.data() : nullptr, y,
                                            scratch.out)};
  }
#endif
  T* dst = images == 1 ? y : scratch.out;
  for (std::int64_t o = 0; o < g.cout; ++o)
    std::fill(dst + o * ld, dst + (o + 1) * ld, images == 1 && bias.defined() ? bias[o] : T(0));
  const T* cols = nullptr;
#if defined(__AVX512F__)
  if constexpr (kGatherColumns<T>) {
    if (path == ConvPath::permuted) {
      const PermuteTables& tables = PermuteTables::of(g, images);
      gemm_packed_serial_with<T>(wp, ld, T(1), PermutedColumns(g, tables, filled_phase_stack(g, tables, xi)), dst, ld);
    } else if (path == ConvPath::gathered) {
      gemm_packed_serial_with<T>(wp, ld, T(1), GatheredColumns(forward_columns(g, images), xi), dst, ld);
    }
  }
#endif
  if (path == ConvPath::im2col || path == ConvPath::pointwise) {
    cols = columns_of(g, x, i, images, scratch);
    gemm_packed<T>(wp, false, ld, T(1), cols, ld, T(1), dst, ld);
  }
  if (images == 1) return {cols, nullptr};
  for (std::int64_t j = 0; j < images; ++j)
    for (std::int64_t o = 0; o < g.cout; ++o) {
      T* yo = y + (j * g.cout + o) * HW;
      const T* so = scratch.out + o * ld + j * HW;
      const T b = bias.defined() ? bias[o] : T(0);
      for (std::int64_t p = 0; p < HW; ++p) yo[p] = so[p] + b;
    }
  return {cols, nullptr};
}

/// dw [Cout, K] += G cols^T for the output gradients gy of `images` consecutive images starting
/// at image i of x, by weight_grad_path: straight from the images' phase stack (direct: dw is
/// then [K, Cout]), else G (interleaved into scratch.out when there are several images) times the
/// column matrix. `built`: what the forward of these images built, if it ran just before; the
/// matrix or the stack is then not built again.
template <class T>
void weight_grad_group(const Conv2dGeometry& g, const T* x, const T* gy, std::int64_t i, std::int64_t images,
                       const ConvScratch<T>& scratch, T* dw, const ForwardColumns<T>& built = {}) {
  const std::int64_t K = g.k(), HW = g.hw_out(), ld = images * HW;
#if defined(__AVX512F__)
  if constexpr (kGatherColumns<T>) {
    if (weight_grad_path<T>(g) == ConvPath::direct) {
      weight_grad_direct_group(g, x + i * g.cin * g.h * g.w, gy, images, dw, built.stack);
      return;
    }
  }
#endif
  const T* cols = built.matrix;
  if (images > 1) {
    interleave_images(gy, scratch.out, images, g.cout, HW);
    gy = scratch.out;
  }
  if (cols == nullptr) cols = columns_of(g, x, i, images, scratch);
  gemm<T>(false, true, g.cout, K, ld, T(1), gy, ld, cols, ld, T(1), dw, K);
}

/// dX = Cx*(G, W) by stride phases (conv2d_gather.hpp), where input_grad_path is `phases`: for
/// each phase, dX's phase pixels = W_phase^T times columns loaded from G, written to place.
template <class T>
void input_grad_by_phases(const Conv2dGeometry& g, const Tensor<T>& grad_out, const Tensor<T>& w, Tensor<T>& dx) {
#if !defined(__AVX512F__)
  (void)g, (void)grad_out, (void)w, (void)dx;
#else
  if constexpr (kGatherColumns<T>) {
    const std::int64_t group = images_per_gemm(g);
    // W_phase^T [Cin, Cout T'] per phase, packed once per call: A(c, o T' + t) = W[o, c, tap t].
    const std::vector<InputGradPhase>& phases = InputGradPlan::of(g, group).phases;
    // (A reference, so the workers below use this thread's panels, not their own thread_local.)
    thread_local std::vector<PackedA<T>> packed_store;
    std::vector<PackedA<T>>& packed = packed_store;
    packed.resize(phases.size());
    const std::int64_t kk = g.kh * g.kw;
    for (std::size_t p = 0; p < phases.size(); ++p) {
      const std::int64_t nt = static_cast<std::int64_t>(phases[p].taps.size()), depth = g.cout * nt;
      Tensor<T> wp(Shape{g.cin, std::max<std::int64_t>(depth, 1)});
      for (std::int64_t c = 0; c < g.cin; ++c)
        for (std::int64_t o = 0; o < g.cout; ++o)
          for (std::int64_t t = 0; t < nt; ++t)
            wp[c * depth + o * nt + t] = w[(o * g.cin + c) * kk + g.tap(phases[p].taps[static_cast<std::size_t>(t)])];
      packed[p] = PackedA<T>(false, g.cin, depth, wp.data(), std::max<std::int64_t>(depth, 1));
    }
    const std::int64_t in_size = g.cin * g.h * g.w, out_size = g.cout * g.hw_out(), chunks = batch_chunks(g);
    parallel_for(chunks, kParallelGrain, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t chunk = c0; chunk < c1; ++chunk) {
        const std::int64_t end = g.n * (chunk + 1) / chunks;
        for (std::int64_t i = g.n * chunk / chunks; i < end; i += group) {
          const std::int64_t images = std::min(group, end - i);
          const InputGradPlan& plan = InputGradPlan::of(g, images);
          // Each phase's product lands in its own block of the scratch; the blocks are then
          // interleaved into dX row by row.
          const std::size_t phases_n = plan.phases.size();
          std::int64_t total = 0;
          for (const InputGradPhase& ph : plan.phases) total += g.cin * images * ph.pixels();
          thread_local Tensor<T> scratch;
          if (!scratch.defined() || scratch.numel() < total)
            scratch = Tensor<T>(Shape{std::max<std::int64_t>(total, 1)});
          std::fill(scratch.data(), scratch.data() + total, T(0));
          thread_local std::vector<const T*> block_store;
          std::vector<const T*>& block = block_store;
          block.assign(phases_n, nullptr);
          T* next = scratch.data();
          for (std::size_t p = 0; p < phases_n; ++p) {
            const std::int64_t ld = images * plan.phases[p].pixels();
            block[p] = next;
            if (ld > 0)
              gemm_packed_serial_with<T>(packed[p], ld, T(1),
                                         GatheredColumns(plan.columns[p], grad_out.data() + i * out_size), next, ld);
            next += g.cin * ld;
          }
          write_phases(g, plan.phases, block.data(), images, dx.data() + i * in_size);
        }
      }
    });
  }
#endif
}

}  // namespace detail

/// Y = C(X, W) (+ bias per output channel when `bias` is defined).
template <class T>
Tensor<T> conv2d_forward(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias) {
  Tensor<T> y(g.output_shape());
  const detail::ForwardWeights<T> fw = detail::forward_weights(g, w);
  const std::int64_t out_size = g.cout * g.hw_out();
  detail::for_each_image_group<T>(
      g, detail::batch_chunks(g), [&](std::int64_t, std::int64_t i, std::int64_t n, const auto& scratch) {
        detail::forward_group(g, fw, x.data(), i, n, bias, y.data() + i * out_size, scratch);
      });
  return y;
}

/// X = Cx*(G, W): the gradient of <G, C(X, W)> with respect to X; also the transposed convolution.
template <class T>
Tensor<T> conv2d_input_grad(const Conv2dGeometry& g, const Tensor<T>& grad_out, const Tensor<T>& w) {
  Tensor<T> dx(g.input_shape());
  const ConvPath path = input_grad_path<T>(g);
  if (path == ConvPath::phases) {
    detail::input_grad_by_phases(g, grad_out, w, dx);
    return dx;
  }
  const PackedA<T> wp = detail::packed_weight_panels(g, w, true);
  const std::int64_t HW = g.hw_out(), in_size = g.cin * g.h * g.w, out_size = g.cout * HW;
  const T* G = grad_out.data();
  T* DX = dx.data();
  detail::for_each_image_group<T>(
      g, detail::batch_chunks(g), [&](std::int64_t, std::int64_t i, std::int64_t n, const auto& scratch) {
        const std::int64_t ld = n * HW;
        if (path == ConvPath::pointwise) {  // dX = W^T G, the image its own column matrix
          gemm_packed<T>(wp, false, HW, T(1), G + i * out_size, HW, T(0), DX + i * in_size, HW);
          return;
        }
        const T* src = G + i * out_size;
        if (n > 1) {
          detail::interleave_images(src, scratch.out, n, g.cout, HW);
          src = scratch.out;
        }
        gemm_packed<T>(wp, false, ld, T(1), src, ld, T(0), scratch.cols, ld);
        for (std::int64_t j = 0; j < n; ++j)
          detail::col2im(g, scratch.cols + j * HW, ld, scratch.phases, DX + (i + j) * in_size);
      });
  return dx;
}

/// W = Cw*(X, G): the gradient of <G, C(X, W)> with respect to W (zero at masked taps).
template <class T>
Tensor<T> conv2d_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x, const Tensor<T>& grad_out) {
  const std::int64_t K = g.k(), out_size = g.cout * g.hw_out(), chunks = detail::batch_chunks(g);
  Tensor<T> partial = zeros<T>(Shape{chunks, g.cout, K});
  detail::for_each_image_group<T>(g, chunks, [&](std::int64_t c, std::int64_t i, std::int64_t n, const auto& scratch) {
    detail::weight_grad_group(g, x.data(), grad_out.data() + i * out_size, i, n, scratch,
                              partial.data() + c * g.cout * K);
  });
  return detail::reduce_weight_partials(g, partial);
}

/// (C(X, W), Cw*(X, G)) in one pass over X: a transposed convolution's backward needs both (the
/// gradient of its input is a convolution of the incoming gradient, the gradient of its weight
/// the weight adjoint of that same tensor), and the weight gradient reuses the column matrix
/// (im2col) or phase stack (direct) the forward has just built for the same images.
template <class T>
std::pair<Tensor<T>, Tensor<T>> conv2d_forward_and_weight_grad(const Conv2dGeometry& g, const Tensor<T>& x,
                                                               const Tensor<T>& w, const Tensor<T>& grad_out) {
  Tensor<T> y(g.output_shape());
  const detail::ForwardWeights<T> fw = detail::forward_weights(g, w);
  const std::int64_t K = g.k(), out_size = g.cout * g.hw_out(), chunks = detail::batch_chunks(g);
  Tensor<T> partial = zeros<T>(Shape{chunks, g.cout, K});
  detail::for_each_image_group<T>(g, chunks, [&](std::int64_t c, std::int64_t i, std::int64_t n, const auto& scratch) {
    // The forward's grouped result passes through scratch.out before the gradients use it.
    const auto built = detail::forward_group(g, fw, x.data(), i, n, Tensor<T>(), y.data() + i * out_size, scratch);
    detail::weight_grad_group(g, x.data(), grad_out.data() + i * out_size, i, n, scratch,
                              partial.data() + c * g.cout * K, built);
  });
  return {std::move(y), detail::reduce_weight_partials(g, partial)};
}

/// Sum of G over N, H, W per channel: the bias gradient.
template <class T>
Tensor<T> conv2d_bias_grad(const Tensor<T>& grad_out) {
  const std::int64_t n = grad_out.dim(0), c = grad_out.dim(1), hw = grad_out.dim(2) * grad_out.dim(3);
  Tensor<T> db(Shape{c});
  channel_sum(ChannelLayout{n, c, hw}, grad_out.data(), db.data());
  return db;
}

}  // namespace genmod::kernels
