#pragma once
/// \file conv.hpp
/// Conv2d, ConvTranspose2d and MaskedConv2d (PixelCNN masks A and B, masked taps skipped by the
/// kernel). Weights use PyTorch's layouts and default initialization.

#include <array>
#include <string>

#include "genmod/autodiff/ops/conv.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// Options of Conv2d and MaskedConv2d.
struct Conv2dLayerOptions {
  /// Step between output positions (>= 1); H_out = (H + 2p - d(k - 1) - 1) / stride + 1.
  std::int64_t stride = 1;
  /// Zeros added on each side of both spatial axes (>= 0); k / 2 keeps H and W at stride 1.
  std::int64_t padding = 0;
  /// Spacing between kernel taps (>= 1).
  std::int64_t dilation = 1;
  /// Learn a per-output-channel bias [Cout].
  bool bias = true;
  Generator* generator = nullptr;  ///< for the initialization; default_generator() when null
};

/// Options of ConvTranspose2d.
struct ConvTranspose2dLayerOptions {
  /// Upsampling factor (>= 1): H_out = (H - 1) stride - 2p + d(k - 1) + output_padding + 1.
  std::int64_t stride = 1;
  /// Padding of the convolution this layer transposes (removes rows and columns of the output).
  std::int64_t padding = 0;
  /// Extra rows and columns on the bottom and right of the output (< stride or < dilation).
  std::int64_t output_padding = 0;
  /// Spacing between kernel taps (>= 1).
  std::int64_t dilation = 1;
  /// Learn a per-output-channel bias [Cout].
  bool bias = true;
  /// For the initialization; default_generator() when null.
  Generator* generator = nullptr;
};

namespace detail {

inline void check_channels(const char* layer, std::int64_t in, std::int64_t out, std::int64_t k) {
  check_positive(layer, "in_channels", in);
  check_positive(layer, "out_channels", out);
  check_positive(layer, "kernel_size", k);
}

/// A weight of `shape` and a bias of `out` values, initialized as PyTorch does (fan_in from the
/// weight's dimension 1 and kernel).
template <class T>
void init_conv(Parameter<T>& weight, Parameter<T>& bias, const Shape& shape, std::int64_t out, bool with_bias,
               Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor<T> w(shape);
  init::default_weight(w, g);
  weight = Parameter<T>(w);
  if (with_bias) {
    Tensor<T> b(Shape{out});
    init::default_bias(b, g, init::fans(shape).in);
    bias = Parameter<T>(b);
  }
}

/// Runs f (which computes a geometry) and, only if it throws, prefixes the error with the layer's
/// name and weight shape: the steady-state path builds no string (no heap allocation per step).
template <class T, class F>
auto with_layer_name(const char* layer, const Parameter<T>& w, F&& f) {
  try {
    return f();
  } catch (const ShapeError& e) {
    throw ShapeError(std::string(layer) + "(" + w.shape().to_string() + "): " + e.what());
  } catch (const ValueError& e) {
    throw ValueError(std::string(layer) + "(" + w.shape().to_string() + "): " + e.what());
  }
}

}  // namespace detail

/// 2-D convolution over [N, Cin, H, W] inputs; weight [Cout, Cin, k, k].
template <class T = float>
class Conv2d : public Layer<T> {
 public:
  /// A k x k convolution from in_channels to out_channels, initialized as PyTorch's Conv2d.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, Conv2dLayerOptions o = {})
      : opt_{o.stride, o.padding, o.dilation} {
    detail::check_channels("Conv2d", in_channels, out_channels, kernel_size);
    check_at_least("Conv2d", "stride", o.stride, 1);
    check_non_negative("Conv2d", "padding", o.padding);
    check_at_least("Conv2d", "dilation", o.dilation, 1);
    detail::init_conv(weight, bias, Shape{out_channels, in_channels, kernel_size, kernel_size}, out_channels, o.bias,
                      o.generator);
  }

  /// x [N, Cin, H, W] -> [N, Cout, H_out, W_out]; ShapeError names the layer and both shapes.
  Var<T> forward(const Var<T>& x) override {
    const auto g = detail::with_layer_name("Conv2d", weight, [&] { return conv2d_geometry_for(x.shape(), weight.shape(), opt_); });
    return conv2d_geometry(g, x, weight.var(), bias.defined() ? bias.var() : Var<T>());
  }
  /// Lists `weight` and, when present, `bias`.
  void visit(ModuleVisitor<T>& v) override {
    v.param("weight", weight);
    if (bias.defined()) v.param("bias", bias);
  }

  Parameter<T> weight;  ///< [Cout, Cin, k, k]
  Parameter<T> bias;    ///< [Cout], undefined without bias

 private:
  Conv2dOptions opt_;
};

/// Transposed 2-D convolution; weight [Cin, Cout, k, k] as PyTorch's ConvTranspose2d.
template <class T = float>
class ConvTranspose2d : public Layer<T> {
 public:
  /// A k x k transposed convolution from in_channels to out_channels (PyTorch's initialization).
  ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
                  ConvTranspose2dLayerOptions o = {})
      : opt_{o.stride, o.padding, o.output_padding, o.dilation} {
    detail::check_channels("ConvTranspose2d", in_channels, out_channels, kernel_size);
    detail::init_conv(weight, bias, Shape{in_channels, out_channels, kernel_size, kernel_size}, out_channels, o.bias,
                      o.generator);
  }

  /// x [N, Cin, H, W] -> [N, Cout, H_out, W_out], the adjoint of a Conv2d's input map.
  Var<T> forward(const Var<T>& x) override {
    const auto g = detail::with_layer_name("ConvTranspose2d", weight,
                                           [&] { return conv_transpose2d_geometry_for(x.shape(), weight.shape(), opt_); });
    Var<T> y = conv2d_adjoint_input(g, x, weight.var());
    return bias.defined() ? add_channel_bias(y, bias.var()) : y;
  }
  /// Lists `weight` and, when present, `bias`.
  void visit(ModuleVisitor<T>& v) override {
    v.param("weight", weight);
    if (bias.defined()) v.param("bias", bias);
  }

  Parameter<T> weight;  ///< [Cin, Cout, k, k]
  Parameter<T> bias;    ///< [Cout]

 private:
  ConvTranspose2dOptions opt_;
};

/// PixelCNN mask types: A excludes the centre pixel (first layer), B includes it.
enum class MaskType { A, B };

/// Convolution whose kernel sees only pixels above, and left of (A) or up to (B) the centre.
/// The masked taps are skipped by the kernel, not multiplied by zero: a 7x7 type-A kernel costs
/// 24/49 of a dense one. The weight keeps the full [Cout, Cin, k, k] layout (masked entries are
/// unused and get zero gradient), so checkpoints line up with PyTorch's masked-multiply version.
template <class T = float>
class MaskedConv2d : public Layer<T> {
 public:
  /// A masked k x k convolution (odd k, at most 7) from in_channels to out_channels.
  MaskedConv2d(MaskType type, std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
               Conv2dLayerOptions o = {})
      : type_(type), opt_{o.stride, o.padding, o.dilation} {
    detail::check_channels("MaskedConv2d", in_channels, out_channels, kernel_size);
    // Constructor-time checks: building the "got" text eagerly costs nothing that matters here.
    check_arg(kernel_size % 2 == 1, "MaskedConv2d", "kernel_size", "to be odd", std::to_string(kernel_size));
    check_arg(kernel_size * kernel_size <= kernels::Conv2dGeometry::kMaxMaskedTaps, "MaskedConv2d", "kernel_size",
              "<= 7 (kernels up to 7x7 are supported)", std::to_string(kernel_size));
    detail::init_conv(weight, bias, Shape{out_channels, in_channels, kernel_size, kernel_size}, out_channels, o.bias,
                      o.generator);
  }

  /// keep[ky * k + kx]: true for the taps the mask keeps.
  static std::array<bool, kernels::Conv2dGeometry::kMaxMaskedTaps> mask(MaskType type, std::int64_t k) {
    std::array<bool, kernels::Conv2dGeometry::kMaxMaskedTaps> keep{};
    const std::int64_t c = k / 2;
    for (std::int64_t y = 0; y < k; ++y)
      for (std::int64_t x = 0; x < k; ++x)
        keep[static_cast<std::size_t>(y * k + x)] = y < c || (y == c && (type == MaskType::A ? x < c : x <= c));
    return keep;
  }

  /// x [N, Cin, H, W] -> [N, Cout, H_out, W_out]; output pixel (i, j) depends only on the pixels
  /// the mask keeps (above, and left of or at (i, j)).
  Var<T> forward(const Var<T>& x) override {
    auto g = detail::with_layer_name("MaskedConv2d", weight, [&] { return conv2d_geometry_for(x.shape(), weight.shape(), opt_); });
    const std::int64_t k = weight.shape()[2];
    const auto keep = mask(type_, k);
    g.set_mask(std::span<const bool>(keep.data(), static_cast<std::size_t>(k * k)));
    return conv2d_geometry(g, x, weight.var(), bias.defined() ? bias.var() : Var<T>());
  }
  /// Lists `weight` (full k x k layout) and, when present, `bias`.
  void visit(ModuleVisitor<T>& v) override {
    v.param("weight", weight);
    if (bias.defined()) v.param("bias", bias);
  }

  /// A or B, as constructed.
  MaskType mask_type() const noexcept { return type_; }

  Parameter<T> weight;  ///< [Cout, Cin, k, k]; masked taps unused
  Parameter<T> bias;    ///< [Cout]

 private:
  MaskType type_;
  Conv2dOptions opt_;
};

}  // namespace genmod::nn
