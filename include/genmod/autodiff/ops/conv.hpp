#pragma once
/// \file conv.hpp
/// Differentiable 2-D convolution, transposed convolution and their adjoints.
///
/// With C(x, W) the convolution (bilinear), Cx*(G, W) its adjoint in x and Cw*(x, G) its adjoint
/// in W, the gradients are again these three maps:
///   Y = C(x, W):     dx = Cx*(G, W),   dW = Cw*(x, G)
///   Z = Cx*(G, W):   dG = C(H, W),     dW = Cw*(H, G)     (H: the gradient flowing into Z)
///   Z = Cw*(x, G):   dx = Cx*(G, H),   dG = C(x, H)
/// so every backward is recorded with the same ops, and convolutional critics get exact second
/// derivatives (WGAN-GP). A transposed convolution is Cx*.

#include <algorithm>
#include <string>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/ops/broadcast.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/conv2d.hpp"

namespace genmod {

/// Stride, padding and dilation of a convolution (the same along both axes unless given per axis).
struct Conv2dOptions {
  /// Step between output positions, in input pixels (>= 1): H_out = (H + 2p - d(K - 1) - 1) / s + 1.
  std::int64_t stride = 1;
  /// Zeros added on each side of both spatial axes (>= 0).
  std::int64_t padding = 0;
  /// Spacing between kernel taps (>= 1; 1 is a dense kernel).
  std::int64_t dilation = 1;
};

/// Stride, padding, output padding and dilation of a transposed convolution.
struct ConvTranspose2dOptions {
  /// Upsampling factor: H_out = (H - 1) s - 2p + d(K - 1) + output_padding + 1.
  std::int64_t stride = 1;
  /// Padding of the convolution this transposes: removes p rows and columns on each side.
  std::int64_t padding = 0;
  /// Extra rows and columns on one side of the output, to pick among the sizes a strided conv maps to
  /// one size (< stride or < dilation).
  std::int64_t output_padding = 0;
  /// Spacing between kernel taps (>= 1).
  std::int64_t dilation = 1;
};

template <class T>
Var<T> conv2d_adjoint_input(const kernels::Conv2dGeometry& g, const Var<T>& grad_out, const Var<T>& w);
template <class T>
Var<T> conv2d_adjoint_weight(const kernels::Conv2dGeometry& g, const Var<T>& x, const Var<T>& grad_out);

namespace detail {

/// Per-channel sum of g [N, C, H, W] -> [C], differentiable (fused kernel when not recorded).
template <class T>
Var<T> channel_sum(const Var<T>& g) {
  if (!grad_enabled() || !g.requires_grad()) return Var<T>(kernels::conv2d_bias_grad(g.value()));
  return reshape(sum_to(g, Shape{1, g.dim(1), 1, 1}), Shape{g.dim(1)});
}

}  // namespace detail

/// Y = C(x, W) (+ b) for an explicit geometry (masked taps included).
template <class T>
Var<T> conv2d_geometry(const kernels::Conv2dGeometry& g, const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  kernels::check_conv_shapes(g, x.shape(), w.shape(), "conv2d");
  const bool has_bias = b.defined();
  if (has_bias) check_shape("conv2d", "bias ([Cout])", b.shape(), Shape{g.cout});
  Tensor<T> y = kernels::conv2d_forward(g, x.value(), w.value(), has_bias ? b.value() : Tensor<T>());
  auto backward = [g, x, w, has_bias](const Var<T>&, const Var<T>& gy, GradSink<T>& sink) {
    if (sink.needs(0)) sink.add(0, conv2d_adjoint_input(g, gy, w));
    if (sink.needs(1)) sink.add(1, conv2d_adjoint_weight(g, x, gy));
    if (has_bias && sink.needs(2)) sink.add(2, detail::channel_sum(gy));
  };
  return has_bias ? record_op("conv2d", std::move(y), backward, x, w, b)
                  : record_op("conv2d", std::move(y), backward, x, w);
}

/// Z = Cx*(G, W): the convolution's adjoint in its input (a transposed convolution).
template <class T>
Var<T> conv2d_adjoint_input(const kernels::Conv2dGeometry& g, const Var<T>& grad_out, const Var<T>& w) {
  kernels::check_conv_shapes(g, g.input_shape(), w.shape(), "conv2d_adjoint_input");
  check_shape("conv2d_adjoint_input", "input", grad_out.shape(), g.output_shape());
  return record_op(
      "conv2d_adjoint_input", kernels::conv2d_input_grad(g, grad_out.value(), w.value()),
      [g, grad_out, w](const Var<T>&, const Var<T>& h, GradSink<T>& sink) {
        // Both gradients start from the column matrix of h: build it once when nothing records.
        if (sink.needs(0) && sink.needs(1) && !grad_enabled()) {
          auto [dx, dw] = kernels::conv2d_forward_and_weight_grad(g, h.value(), w.value(), grad_out.value());
          sink.add(0, Var<T>(std::move(dx)));
          sink.add(1, Var<T>(std::move(dw)));
          return;
        }
        if (sink.needs(0)) sink.add(0, conv2d_geometry(g, h, w, Var<T>()));
        if (sink.needs(1)) sink.add(1, conv2d_adjoint_weight(g, h, grad_out));
      },
      grad_out, w);
}

/// Z = Cw*(x, G): the convolution's adjoint in its weight.
template <class T>
Var<T> conv2d_adjoint_weight(const kernels::Conv2dGeometry& g, const Var<T>& x, const Var<T>& grad_out) {
  check_shape("conv2d_adjoint_weight", "input", x.shape(), g.input_shape());
  check_shape("conv2d_adjoint_weight", "grad_out", grad_out.shape(), g.output_shape());
  return record_op(
      "conv2d_adjoint_weight", kernels::conv2d_weight_grad(g, x.value(), grad_out.value()),
      [g, x, grad_out](const Var<T>&, const Var<T>& h, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, conv2d_adjoint_input(g, grad_out, h));
        if (sink.needs(1)) sink.add(1, conv2d_geometry(g, x, h, Var<T>()));
      },
      x, grad_out);
}

/// y[n, c, i, j] = x[n, c, i, j] + b[c].  d/dx = 1, d/db = sum over N, H, W.
template <class T>
Var<T> add_channel_bias(const Var<T>& x, const Var<T>& b) {
  if (x.rank() != 4 || !(b.shape() == Shape{x.dim(1)}))
    throw ShapeError("add_channel_bias: bias " + b.shape().to_string() + " does not fit input " +
                     x.shape().to_string());
  Tensor<T> y = x.value().clone();
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t o = 0; o < c; ++o) {
      T* p = y.data() + (i * c + o) * hw;
      const T v = b.value()[o];
      for (std::int64_t j = 0; j < hw; ++j) p[j] += v;
    }
  return record_op(
      "add_channel_bias", std::move(y),
      [](const Var<T>&, const Var<T>& g, GradSink<T>& sink) {
        if (sink.needs(0)) sink.add(0, g);
        if (sink.needs(1)) sink.add(1, detail::channel_sum(g));
      },
      x, b);
}

/// The geometry of a convolution of x [N, Cin, H, W] with w [Cout, Cin, KH, KW]; throws
/// ShapeError naming `op` when they do not fit or the kernel is larger than the padded input.
GENMOD_DETAIL_NONTEMPLATE kernels::Conv2dGeometry conv2d_geometry_for(const Shape& x, const Shape& w,
                                                                      const Conv2dOptions& o, const char* op = "conv2d")
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  check_rank(op, "input", x, 4, "[N, C, H, W]");
  check_rank(op, "weight", w, 4, "[Cout, Cin, KH, KW]");
  if (x[1] != w[1])
    throw ShapeError(std::string(op) + ": input " + x.to_string() + " has " + std::to_string(x[1]) +
                     " channels but weight " + w.to_string() + " expects " + std::to_string(w[1]));
  check_at_least(op, "stride", o.stride, 1);
  check_non_negative(op, "padding", o.padding);
  check_at_least(op, "dilation", o.dilation, 1);
  kernels::Conv2dGeometry g;
  g.n = x[0], g.cin = x[1], g.h = x[2], g.w = x[3];
  g.cout = w[0], g.kh = w[2], g.kw = w[3];
  g.stride_h = g.stride_w = o.stride;
  g.pad_h = g.pad_w = o.padding;
  g.dil_h = g.dil_w = o.dilation;
  g.ho = kernels::conv_out_extent(g.h, g.kh, o.stride, o.padding, o.dilation);
  g.wo = kernels::conv_out_extent(g.w, g.kw, o.stride, o.padding, o.dilation);
  if (g.ho <= 0 || g.wo <= 0)
    throw ShapeError(std::string(op) + ": kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " (dilation " +
                     std::to_string(o.dilation) + ") is larger than the input " + x.to_string() + " padded by " +
                     std::to_string(o.padding));
  return g;
}
#else
    ;
#endif

/// 2-D convolution: x [N, Cin, H, W], w [Cout, Cin, KH, KW], b [Cout] or undefined.
template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b = {}, const Conv2dOptions& o = {}) {
  return conv2d_geometry(conv2d_geometry_for(x.shape(), w.shape(), o), x, w, b);
}

/// The geometry of the convolution whose input adjoint is the transposed convolution of x
/// [N, Cin, H, W] with w [Cin, Cout, KH, KW] (PyTorch's layout for ConvTranspose2d weights).
GENMOD_DETAIL_NONTEMPLATE kernels::Conv2dGeometry conv_transpose2d_geometry_for(const Shape& x, const Shape& w,
                                                                                const ConvTranspose2dOptions& o,
                                                                                const char* op = "conv_transpose2d")
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  check_rank(op, "input", x, 4, "[N, C, H, W]");
  check_rank(op, "weight", w, 4, "[Cin, Cout, KH, KW]");
  if (x[1] != w[0])
    throw ShapeError(std::string(op) + ": input " + x.to_string() + " has " + std::to_string(x[1]) +
                     " channels but weight " + w.to_string() + " expects " + std::to_string(w[0]));
  check_at_least(op, "stride", o.stride, 1);
  check_non_negative(op, "padding", o.padding);
  check_at_least(op, "dilation", o.dilation, 1);
  // output_padding only picks among the input sizes a strided (or dilated) convolution maps to one size.
  if (o.output_padding < 0 || (o.output_padding >= o.stride && o.output_padding >= o.dilation))
    check_arg(false, op, "output_padding",
              "in [0, max(stride, dilation)) = [0, " + std::to_string(std::max(o.stride, o.dilation)) + ")",
              std::to_string(o.output_padding));
  kernels::Conv2dGeometry g;
  g.n = x[0];
  g.cout = x[1];  // the underlying convolution maps the result back to x
  g.cin = w[1];
  g.kh = w[2], g.kw = w[3];
  g.stride_h = g.stride_w = o.stride;
  g.pad_h = g.pad_w = o.padding;
  g.dil_h = g.dil_w = o.dilation;
  g.ho = x[2], g.wo = x[3];
  g.h = (x[2] - 1) * o.stride - 2 * o.padding + o.dilation * (g.kh - 1) + o.output_padding + 1;
  g.w = (x[3] - 1) * o.stride - 2 * o.padding + o.dilation * (g.kw - 1) + o.output_padding + 1;
  if (g.h <= 0 || g.w <= 0 || kernels::conv_out_extent(g.h, g.kh, o.stride, o.padding, o.dilation) != g.ho ||
      kernels::conv_out_extent(g.w, g.kw, o.stride, o.padding, o.dilation) != g.wo)
    throw ShapeError(std::string(op) + ": input " + x.to_string() + " with kernel " + w.to_string() + ", stride " +
                     std::to_string(o.stride) + " and padding " + std::to_string(o.padding) +
                     " gives no valid output size");
  return g;
}
#else
    ;
#endif

/// Transposed convolution: x [N, Cin, H, W], w [Cin, Cout, KH, KW], b [Cout] or undefined ->
/// [N, Cout, (H-1)s - 2p + d(KH-1) + output_padding + 1, ...].
template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const Var<T>& b = {}, const ConvTranspose2dOptions& o = {}) {
  const kernels::Conv2dGeometry g = conv_transpose2d_geometry_for(x.shape(), w.shape(), o);
  Var<T> y = conv2d_adjoint_input(g, x, w);
  return b.defined() ? add_channel_bias(y, b) : y;
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_geometry, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_adjoint_input, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_adjoint_weight, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::add_channel_bias, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv_transpose2d, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_geometry, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_adjoint_input, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv2d_adjoint_weight, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::add_channel_bias, double)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::conv_transpose2d, double)
#endif
