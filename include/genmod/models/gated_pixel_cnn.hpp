#pragma once
/// \file gated_pixel_cnn.hpp
/// Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
/// Decoders") on grey images, unconditional or class-conditional: an exact likelihood as a
/// product of per-pixel conditionals in raster order (models/autoregressive.hpp has the
/// conventions).
///
/// Why: PixelCNN's stacked masked convolutions leave a blind spot above and to the right of each
/// pixel (tests/models/pixel_cnn_test.cpp measures 15 pixels on its reference architecture) and
/// use ReLUs where gates model better. Gated PixelCNN splits the network into two stacks:
///
///   vertical    v_l = gate(V_l * v_{l-1} + c_v,l[y])   k x k taps on rows <= the centre row
///                                                      (v_{-1} = x, kernel k0 for l = 0)
///   horizontal  p_l = H_l * h_{l-1} + L_l shift(v_l) + c_h,l[y]
///               h_0 = gate(p_0)                        1 x k0 taps strictly left of the centre
///               h_l = h_{l-1} + R_l gate(p_l)          1 x k taps left of and at the centre
///   gate(p)    = tanh(a) * sigmoid(b),  p = (a, b) split into two halves of 2C channels
///   logits     = conv1x1(relu(conv1x1(relu(h_L))))     256 (categorical) or 1 (Bernoulli) per pixel
/// where shift moves a map down one row (a zero row on top, the last row dropped), L_l and R_l
/// are 1x1 convolutions, and c_*,l[y] is a learned per-class bias of the gate's 2C
/// pre-activations (classes > 0 only; y the image's label). With GatedLink::pre_activation the
/// link reads L_l shift(V_l * v_{l-1}) instead, the vertical pre-activations, as the paper's
/// figure 2 draws it (measured behind the default at equal weights, 3.095 against 2.980 bits/dim
/// after one epoch: docs/autoregressive.md).
///
/// Causality: v_l at row r reads x only on rows <= r (all columns of a window); the shift makes
/// the horizontal stack at row i read it only on rows < i. The horizontal stack reads its own row
/// left of the centre (the first layer strictly left), so logits at (i, j) read x only before
/// (i, j) in raster order. No blind spot: with R = k0 / 2 + L (k / 2), the logits at (i, j) read
/// every pixel of rows i - 1 - R ... i - 1 at columns j - R ... j + R and of row i at columns
/// j - R ... j - 1 (the vertical stack's window is a full rectangle, not a growing triangle).
///
/// The convolutions hold only the taps they use: a vertical weight is [2C, Cin, k / 2 + 1, k], a
/// horizontal one [2C, Cin, 1, k / 2 + 1] (k0 / 2 for the first), initialized as PyTorch's
/// Conv2d of that kernel; the forward places it in a k x k frame and the masked kernel skips the
/// taps outside it, so num_parameters() counts only weights the model uses.
///
/// Sampling without recomputing the world: the vertical stack at row r reads row r itself at
/// columns right of j, so its row r is final once row r of the image is. The cached sampler
/// computes, at the start of row i, every layer's vertical row i - 1 (one product per layer over
/// the kept taps, [W N, taps Cin] x [taps Cin, 2C], from a ring of the last k / 2 + 1 rows of the
/// layer below), and at each position (i, j) every layer's horizontal value from the current row
/// of the layer below and the vertical row i - 1 (one product over the taps and the link's
/// input), then the head: one forward pass of work for the whole image, instead of H * W forward
/// passes for the naive loop.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/kernels/activations.hpp"
#include "genmod/kernels/elementwise.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/models/autoregressive.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/embedding.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::models {

/// What the vertical-to-horizontal link L_l reads of the vertical stack.
enum class GatedLink {
  /// shift(v_l), the gated vertical output (C -> 2C 1x1)
  output,
  /// shift(V_l * v_{l-1}), the vertical pre-activations before the gate and the class bias, as in
  /// the paper's figure 2 (2C -> 2C 1x1: twice the link's weights)
  pre_activation,
};

/// Options of GatedPixelCNN. The defaults have about as many weights as PixelCNN's defaults use
/// (121,376 against PixelCNN's 125,120 unmasked of 208,640 stored) on 28 x 28 images.
struct GatedPixelCNNOptions {
  std::int64_t height = 28;                       ///< image rows
  std::int64_t width = 28;                        ///< image columns
  std::int64_t channels = 32;                     ///< C: channels of both stacks (gates have 2C inputs)
  int layers = 5;                                 ///< gated layers after the first
  std::int64_t input_kernel = 7;                  ///< k0 of the first layer (odd, 3 to 7)
  std::int64_t kernel = 3;                        ///< k of the other layers (odd, 1 to 7)
  std::int64_t head_channels = 64;                ///< channels of the 1x1 head's hidden layer
  PixelOutput output = PixelOutput::categorical;  ///< 256-way levels or binary pixels
  std::int64_t classes = 0;                       ///< 0: unconditional; K > 0: labels in 0..K-1
  GatedLink link = GatedLink::output;             ///< what the vertical-to-horizontal link reads
};

namespace detail {

/// A convolution whose weight covers a block of a k x k kernel centred on the output pixel: rows
/// [row0, row0 + rows) and columns [0, cols) of the frame (weight [Cout, Cin, rows, cols]). The
/// forward zero-pads the weight to k x k and masks the taps outside the block, so the kernel skips
/// them; padding k / 2 keeps H and W. Initialized as PyTorch's Conv2d of a rows x cols kernel.
template <class T>
class BlockConv : public nn::Layer<T> {
 public:
  /// The block (row0, rows, cols) of a k x k frame, from in_channels to out_channels.
  BlockConv(std::int64_t in_channels, std::int64_t out_channels, std::int64_t k, std::int64_t row0, std::int64_t rows,
            std::int64_t cols)
      : k_(k), row0_(row0) {
    nn::detail::init_conv(weight, bias, Shape{out_channels, in_channels, rows, cols}, out_channels, true, nullptr);
  }

  /// x [N, Cin, H, W] -> [N, Cout, H, W]; output (i, j) reads x only at the block's offsets.
  Var<T> forward(const Var<T>& x) override {
    const Var<T> full = frame();
    auto g = nn::detail::with_layer_name("GatedPixelCNN conv", weight, [&] {
      return conv2d_geometry_for(x.shape(), full.shape(), Conv2dOptions{.padding = k_ / 2});
    });
    // The block's taps, without building taps()'s vector: a training step calls no allocator.
    std::array<bool, kernels::Conv2dGeometry::kMaxMaskedTaps> keep{};
    for (std::int64_t y = 0; y < weight.shape()[2]; ++y)
      for (std::int64_t x = 0; x < weight.shape()[3]; ++x) keep[static_cast<std::size_t>((row0_ + y) * k_ + x)] = true;
    g.set_mask(std::span<const bool>(keep.data(), static_cast<std::size_t>(k_ * k_)));
    return conv2d_geometry(g, x, full, bias.var());
  }

  /// The (dy, dx) offsets the block covers, in the weight's row-major tap order.
  std::vector<std::array<std::int64_t, 2>> taps() const {
    std::vector<std::array<std::int64_t, 2>> t;
    for (std::int64_t y = 0; y < weight.shape()[2]; ++y)
      for (std::int64_t x = 0; x < weight.shape()[3]; ++x) t.push_back({row0_ + y - k_ / 2, x - k_ / 2});
    return t;
  }

  /// Lists `weight` and `bias`.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("weight", weight);
    v.param("bias", bias);
  }

  Parameter<T> weight;  ///< [Cout, Cin, rows, cols]: the block's taps only
  Parameter<T> bias;    ///< [Cout]

 private:
  // The weight zero-padded to [Cout, Cin, k, k] (differentiable: the padding is constant).
  Var<T> frame() const {
    const Shape s = weight.shape();
    Var<T> w = weight.var();
    if (s[3] < k_) w = concat({w, Var<T>(zeros<T>(Shape{s[0], s[1], s[2], k_ - s[3]}))}, 3);
    std::array<Var<T>, 3> parts;  // on the stack: a training step calls no allocator
    std::size_t n = 0;
    if (row0_ > 0) parts[n++] = Var<T>(zeros<T>(Shape{s[0], s[1], row0_, k_}));
    parts[n++] = w;
    if (row0_ + s[2] < k_) parts[n++] = Var<T>(zeros<T>(Shape{s[0], s[1], k_ - row0_ - s[2], k_}));
    return n == 1 ? w : concat(std::span<const Var<T>>(parts.data(), n), 2);
  }

  std::int64_t k_, row0_;
};

/// One gated layer of both stacks (see the file comment): the vertical and horizontal
/// convolutions, the vertical-to-horizontal link, the horizontal residual 1x1 (layers after the
/// first) and, for a class-conditional model, the per-class gate biases.
template <class T>
class GatedLayer : public nn::Module<T> {
 public:
  /// Layer `index` (0: reads the image) of kernel k, C channels, `classes` labels (0: none).
  GatedLayer(int index, std::int64_t k, std::int64_t channels, std::int64_t classes, GatedLink link_input)
      : vertical(index == 0 ? 1 : channels, 2 * channels, k, 0, k / 2 + 1, k),
        horizontal(index == 0 ? 1 : channels, 2 * channels, k, k / 2, 1, index == 0 ? k / 2 : k / 2 + 1),
        link(link_input == GatedLink::pre_activation ? 2 * channels : channels, 2 * channels, 1) {
    if (index > 0) residual.emplace(channels, channels, 1);
    if (classes > 0) vertical_class.emplace(classes, 2 * channels), horizontal_class.emplace(classes, 2 * channels);
  }

  /// Lists vertical, horizontal, link, then residual and the class tables when present.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("vertical", vertical), v.child("horizontal", horizontal), v.child("link", link);
    if (residual) v.child("residual", *residual);
    if (vertical_class) v.child("vertical_class", *vertical_class), v.child("horizontal_class", *horizontal_class);
  }

  BlockConv<T> vertical;                             ///< k x k, rows <= centre: Cin -> 2C
  BlockConv<T> horizontal;                           ///< centre row, left of (and at, after layer 0) the centre
  nn::Conv2d<T> link;                                ///< 1x1, shifted vertical output (C or 2C) -> 2C
  std::optional<nn::Conv2d<T>> residual;             ///< 1x1, C -> C (layers after the first)
  std::optional<nn::Embedding<T>> vertical_class;    ///< [classes, 2C] vertical gate biases
  std::optional<nn::Embedding<T>> horizontal_class;  ///< [classes, 2C] horizontal gate biases
};

}  // namespace detail

/// Gated PixelCNN (see the file comment). Satisfies GenerativeModel, DensityModel and
/// CompletionModel (the unconditional calls; a class-conditional model takes labels [N] beside
/// each call, and calling the other kind's overload is a ValueError that says which to call).
template <class T = float>
class GatedPixelCNN : public nn::Module<T> {
 public:
  /// The model of `options`, weights from genmod's default generator (ValueError for a size that
  /// is not positive, a kernel that is even or above 7, or an input kernel below 3).
  explicit GatedPixelCNN(GatedPixelCNNOptions options = {})
      : head_hidden(checked(options).channels, options.head_channels, 1),
        head_out(options.head_channels, detail::pixel_logits(options.output), 1),
        options_(options) {
    for (int l = 0; l <= options.layers; ++l)
      layers.emplace_back(l, l == 0 ? options.input_kernel : options.kernel, options.channels, options.classes,
                          options.link);
  }

  /// The network: x [N, 1, H, W] in [0, 1] -> logits [N, 256, H, W] or [N, 1, H, W]
  /// (unconditional model).
  Var<T> logits(const Var<T>& x) {
    constexpr const char* op = "models::GatedPixelCNN::logits";
    detail::check_pixel_images(op, "x", x.shape(), options_.height, options_.width);
    require_kind(op, false);
    return network(x, nullptr);
  }

  /// The network given labels [N] (class-conditional model), one class in 0..classes-1 per image.
  Var<T> logits(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    constexpr const char* op = "models::GatedPixelCNN::logits";
    detail::check_pixel_images(op, "x", x.shape(), options_.height, options_.width);
    require_kind(op, true);
    check_labels(op, labels, x.dim(0));
    return network(x, &labels);
  }

  /// log p(x) per image [N], in nats (exact); pixels as the output kind expects (ValueError
  /// otherwise).
  Var<T> log_prob(const Var<T>& x) {
    return detail::pixel_log_prob("models::GatedPixelCNN::log_prob", logits(x), x.value(), options_.output);
  }

  /// log p(x | labels) per image [N], in nats (class-conditional model).
  Var<T> log_prob(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    return detail::pixel_log_prob("models::GatedPixelCNN::log_prob", logits(x, labels), x.value(), options_.output);
  }

  /// -log p(x) / (HW ln 2) per image [N]: bits per dimension.
  Var<T> bits_per_dim(const Var<T>& x) { return to_bits(log_prob(x)); }

  /// -log p(x | labels) / (HW ln 2) per image [N] (class-conditional model).
  Var<T> bits_per_dim(const Var<T>& x, const Tensor<std::int64_t>& labels) { return to_bits(log_prob(x, labels)); }

  /// The training objective: the batch mean of -log p(x) / HW, nats per pixel.
  Var<T> loss(const Var<T>& x) { return detail::nats_per_pixel_loss(log_prob(x), dims()); }

  /// The batch mean of -log p(x | labels) / HW (class-conditional model).
  Var<T> loss(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    return detail::nats_per_pixel_loss(log_prob(x, labels), dims());
  }

  /// n new images [n, 1, H, W] at temperature 1, by the cached sampler (unconditional model).
  Tensor<T> sample(std::int64_t n, Generator& g) { return sample(n, PixelSamplingOptions{}, g); }

  /// n new images drawn pixel by pixel with `options` (temperature; cached or naive).
  Tensor<T> sample(std::int64_t n, const PixelSamplingOptions& options, Generator& g) {
    constexpr const char* op = "models::GatedPixelCNN::sample";
    require_kind(op, false);
    Tensor<T> images = detail::blank_images<T>(op, n, options.temperature, options_.height, options_.width);
    fill(images, nullptr, nullptr, options, g);
    return images;
  }

  /// One new image per label [N] at temperature 1 (class-conditional model).
  Tensor<T> sample(const Tensor<std::int64_t>& labels, Generator& g) {
    return sample(labels, PixelSamplingOptions{}, g);
  }

  /// One new image per label [N], drawn with `options` (class-conditional model).
  Tensor<T> sample(const Tensor<std::int64_t>& labels, const PixelSamplingOptions& options, Generator& g) {
    constexpr const char* op = "models::GatedPixelCNN::sample";
    require_kind(op, true);
    check_labels(op, labels, -1);
    detail::check_temperature(op, options.temperature);
    Tensor<T> images = zeros<T>(Shape{labels.dim(0), 1, options_.height, options_.width});
    fill(images, nullptr, &labels, options, g);
    return images;
  }

  /// images [N, 1, H, W] with every pixel the mask marks unknown (0) drawn from p(x_i | x_<i) in
  /// raster order, conditioned on the known pixels (1) and the pixels drawn before; known pixels
  /// are kept (unconditional model).
  Tensor<T> complete(const Tensor<T>& images, const Tensor<T>& known_mask, Generator& g) {
    return complete(images, known_mask, PixelSamplingOptions{}, g);
  }

  /// complete() with sampling options.
  Tensor<T> complete(const Tensor<T>& images, const Tensor<T>& known_mask, const PixelSamplingOptions& options,
                     Generator& g) {
    return complete_impl(images, known_mask, nullptr, options, g);
  }

  /// complete() given one label per image (class-conditional model).
  Tensor<T> complete(const Tensor<T>& images, const Tensor<T>& known_mask, const Tensor<std::int64_t>& labels,
                     Generator& g) {
    return complete(images, known_mask, labels, PixelSamplingOptions{}, g);
  }

  /// complete() given one label per image, with sampling options (class-conditional model).
  Tensor<T> complete(const Tensor<T>& images, const Tensor<T>& known_mask, const Tensor<std::int64_t>& labels,
                     const PixelSamplingOptions& options, Generator& g) {
    return complete_impl(images, known_mask, &labels, options, g);
  }

  /// Lists layers.0 ... layers.L (each: vertical, horizontal, link, residual, class tables),
  /// head_hidden and head_out.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("layers", layers), v.child("head_hidden", head_hidden), v.child("head_out", head_out);
  }

  /// The options it was built with.
  const GatedPixelCNNOptions& options() const noexcept { return options_; }
  /// H * W, the dimensions per image.
  std::int64_t dims() const noexcept { return options_.height * options_.width; }
  /// True for a class-conditional model (classes > 0).
  bool conditional() const noexcept { return options_.classes > 0; }

  nn::ModuleList<detail::GatedLayer<T>> layers;  ///< the first layer (reads x), then `layers` more
  nn::Conv2d<T> head_hidden;                     ///< 1x1, channels -> head_channels
  nn::Conv2d<T> head_out;                        ///< 1x1, head_channels -> 256 or 1

 private:
  static const GatedPixelCNNOptions& checked(const GatedPixelCNNOptions& o) {
    constexpr const char* op = "models::GatedPixelCNN";
    check_positive(op, "height", o.height);
    check_positive(op, "width", o.width);
    check_positive(op, "channels", o.channels);
    check_non_negative(op, "layers", o.layers);
    check_positive(op, "head_channels", o.head_channels);
    check_non_negative(op, "classes", o.classes);
    for (auto [name, k] : {std::pair{"input_kernel", o.input_kernel}, std::pair{"kernel", o.kernel}})
      check_arg(k >= 1 && k <= 7 && k % 2 == 1, op, name, "an odd size from 1 to 7", std::to_string(k));
    check_arg(o.input_kernel >= 3, op, "input_kernel", ">= 3 (a 1-wide first horizontal layer sees nothing)",
              std::to_string(o.input_kernel));
    return o;
  }

  // The unconditional calls on a conditional model, and the reverse, say which to call.
  void require_kind(const char* op, bool with_labels) const {
    if (with_labels == conditional()) return;
    throw ValueError(std::string(op) + ": the model is " +
                     (conditional() ? "class-conditional (classes = " + std::to_string(options_.classes) +
                                          "); call the overload that takes labels"
                                    : std::string("unconditional (classes = 0); call the overload without labels")));
  }

  // labels must be [n] (n < 0: any n >= 1) with every value a class in [0, classes).
  void check_labels(const char* op, const Tensor<std::int64_t>& labels, std::int64_t n) const {
    check_rank(op, "labels", labels.shape(), 1, "[N], one class per image");
    // The messages are built only on failure: a training step calls no allocator.
    if (n >= 0 && labels.dim(0) != n)
      check_shape_arg(false, op, "labels", "[" + std::to_string(n) + "] (one per image)", labels.shape().to_string());
    if (n < 0 && labels.dim(0) < 1) check_shape_arg(false, op, "labels", "[N] with N >= 1", labels.shape().to_string());
    for (std::int64_t i = 0; i < labels.numel(); ++i)
      if (labels[i] < 0 || labels[i] >= options_.classes)
        throw ValueError(std::string(op) + ": label " + std::to_string(labels[i]) + " at position " +
                         std::to_string(i) + " is outside the classes [0, " + std::to_string(options_.classes) + ")");
  }

  Var<T> to_bits(const Var<T>& log_prob) const { return detail::bits_per_dim_of(log_prob, dims()); }

  // tanh(a) * sigmoid(b) of the two channel halves of p [N, 2C, H, W].
  static Var<T> gate(const Var<T>& p) {
    const std::int64_t c = p.dim(1) / 2;
    return mul(tanh(slice(p, 1, 0, c)), sigmoid(slice(p, 1, c, c)));
  }

  // p + table[labels] at every pixel.
  static Var<T> add_class(const Var<T>& p, nn::Embedding<T>& table, const Tensor<std::int64_t>& labels) {
    return add(p, reshape(table.lookup(labels), Shape{p.dim(0), p.dim(1), 1, 1}));
  }

  // v [N, C, H, W] moved down one row: a zero row on top, the last row dropped.
  static Var<T> shift_down(const Var<T>& v) {
    const Var<T> top(zeros<T>(Shape{v.dim(0), v.dim(1), 1, v.dim(3)}));
    if (v.dim(2) == 1) return top;
    return concat({top, slice(v, 2, 0, v.dim(2) - 1)}, 2);
  }

  // The two stacks and the head (labels checked, or null for the unconditional model).
  Var<T> network(const Var<T>& x, const Tensor<std::int64_t>* labels) {
    Var<T> v = x, h = x;
    int l = 0;
    for (auto& layer : layers) {
      const Var<T> conv = layer.vertical(v);
      const Var<T> pv = labels ? add_class(conv, *layer.vertical_class, *labels) : conv;
      v = gate(pv);
      Var<T> ph = add(layer.horizontal(h), layer.link(shift_down(options_.link == GatedLink::output ? v : conv)));
      if (labels) ph = add_class(ph, *layer.horizontal_class, *labels);
      h = l == 0 ? gate(ph) : add(h, (*layer.residual)(gate(ph)));
      ++l;
    }
    return head_out(relu(head_hidden(relu(h))));
  }

  Tensor<T> complete_impl(const Tensor<T>& images, const Tensor<T>& known_mask, const Tensor<std::int64_t>* labels,
                          const PixelSamplingOptions& options, Generator& g) {
    constexpr const char* op = "models::GatedPixelCNN::complete";
    require_kind(op, labels != nullptr);
    Tensor<T> kept = detail::completion_start(op, images, known_mask, options.temperature, options_.height,
                                              options_.width, options_.output);
    if (labels) check_labels(op, *labels, images.dim(0));
    fill(kept, &known_mask, labels, options, g);
    return kept;
  }

  void fill(Tensor<T>& images, const Tensor<T>* known, const Tensor<std::int64_t>* labels,
            const PixelSamplingOptions& o, Generator& g) {
    NoGradGuard no_grad;
    if (!o.cached) {
      detail::raster_fill(images, known, options_.output, o.temperature, g,
                          detail::naive_stepper(images, [this, labels](const Tensor<T>& x) {
                            return network(Var<T>(x), labels).value();
                          }));
      return;
    }
    CachedStepper step(*this, images, labels);
    detail::raster_fill(images, known, options_.output, o.temperature, g,
                        [&step](std::int64_t i, std::int64_t j, bool need) { return step(i, j, need); });
  }

  /// The incremental sampler (see the file comment): vertical rows once a row of the image is
  /// complete, horizontal values and the head per position.
  class CachedStepper {
   public:
    CachedStepper(GatedPixelCNN& m, const Tensor<T>& images, const Tensor<std::int64_t>* labels)
        : x_(images),
          n_(images.dim(0)),
          h_(m.options_.height),
          w_(m.options_.width),
          c_(m.options_.channels),
          rows_(m.options_.kernel / 2 + 1),
          link_pre_(m.options_.link == GatedLink::pre_activation) {
      std::int64_t widest = c_;
      for (auto& layer : m.layers) {
        Layer p{pack(layer.vertical),
                with_link(pack(layer.horizontal), dense(layer.link)),
                layer.residual ? dense(*layer.residual) : Dense{},
                {},
                {}};
        if (labels) {
          p.vertical_class = class_rows(*layer.vertical_class, *labels);
          p.horizontal_class = class_rows(*layer.horizontal_class, *labels);
        }
        widest = std::max({widest, p.vertical.width(), p.horizontal.width()});
        layers_.push_back(std::move(p));
        vring_.push_back(Tensor<T>(Shape{rows_ * w_, n_, c_}));
        if (link_pre_) vpre_.push_back(Tensor<T>(Shape{w_, n_, 2 * c_}));
        hrow_.push_back(Tensor<T>(Shape{w_, n_, c_}));
      }
      gathered_ = Tensor<T>(Shape{w_ * n_, widest});
      pre_ = Tensor<T>(Shape{w_ * n_, 2 * c_});
      gated_ = Tensor<T>(Shape{n_, c_});
      res_ = Tensor<T>(Shape{n_, c_});
      head1_ = dense(m.head_hidden);
      head2_ = dense(m.head_out);
      hidden_ = Tensor<T>(Shape{n_, head1_.cout});
      logits_ = Tensor<T>(Shape{n_, head2_.cout});
    }

    detail::PixelLogitsView<T> operator()(std::int64_t i, std::int64_t j, bool need) {
      if (j == 0 && i > 0)
        for (std::size_t l = 0; l < layers_.size(); ++l) vertical_row(l, i - 1);
      for (std::size_t l = 0; l < layers_.size(); ++l) horizontal_at(l, i, j);
      if (!need) return {};
      // The head on relu(h_L) at (i, j): two 1x1 convolutions are two row-major products.
      const T* top = hrow_.back().data() + j * n_ * c_;
      T* r = gathered_.data();
      for (std::int64_t k = 0; k < n_ * c_; ++k) r[k] = std::max(top[k], T(0));
      affine(r, n_, head1_, hidden_.data());
      for (std::int64_t k = 0; k < hidden_.numel(); ++k) hidden_[k] = std::max(hidden_[k], T(0));
      affine(hidden_.data(), n_, head2_, logits_.data());
      return {logits_.data(), head2_.cout, 1};
    }

   private:
    // A convolution's kept taps and weight [Cout, taps * Cin + extra] (row co, column t * Cin + ci;
    // the extra columns multiply inputs appended after the taps: the link's).
    struct Packed {
      std::vector<std::array<std::int64_t, 2>> taps;
      Tensor<T> weight, bias;
      std::int64_t cin = 0, cout = 0, extra = 0;
      std::int64_t width() const { return static_cast<std::int64_t>(taps.size()) * cin + extra; }
    };
    // A 1x1 convolution as a matrix [Cout, Cin].
    struct Dense {
      Tensor<T> weight;
      const T* bias = nullptr;
      std::int64_t cin = 0, cout = 0;
    };
    struct Layer {
      Packed vertical, horizontal;  // horizontal: the link's C (or 2C) columns after the taps
      Dense residual;
      Tensor<T> vertical_class, horizontal_class;  // [N, 2C] rows of the class tables, or empty
    };

    static Packed pack(detail::BlockConv<T>& conv) {
      Packed p;
      const Tensor<T>& wt = conv.weight.value();
      p.cout = wt.dim(0), p.cin = wt.dim(1), p.taps = conv.taps();
      const std::int64_t nt = static_cast<std::int64_t>(p.taps.size());  // = rows * cols, row-major
      p.weight = Tensor<T>(Shape{p.cout, nt * p.cin});
      for (std::int64_t co = 0; co < p.cout; ++co)
        for (std::int64_t t = 0; t < nt; ++t)
          for (std::int64_t ci = 0; ci < p.cin; ++ci)
            p.weight[(co * nt + t) * p.cin + ci] = wt[(co * p.cin + ci) * nt + t];
      p.bias = conv.bias.value();
      return p;
    }

    // The horizontal convolution and the link as one product: columns [taps * Cin | C] and the
    // sum of their biases.
    static Packed with_link(Packed p, const Dense& link) {
      const std::int64_t taps = p.width(), cols = taps + link.cin;
      Tensor<T> w(Shape{p.cout, cols}), b(Shape{p.cout});
      for (std::int64_t co = 0; co < p.cout; ++co) {
        std::copy_n(p.weight.data() + co * taps, taps, w.data() + co * cols);
        std::copy_n(link.weight.data() + co * link.cin, link.cin, w.data() + co * cols + taps);
        b[co] = p.bias[co] + link.bias[co];
      }
      p.weight = w, p.bias = b, p.extra = link.cin;
      return p;
    }

    static Dense dense(nn::Conv2d<T>& conv) {
      const Tensor<T>& wt = conv.weight.value();
      return {wt.reshape({wt.dim(0), wt.dim(1)}), conv.bias.defined() ? conv.bias.value().data() : nullptr, wt.dim(1),
              wt.dim(0)};
    }

    static Tensor<T> class_rows(nn::Embedding<T>& table, const Tensor<std::int64_t>& labels) {
      const Tensor<T>& wt = table.weight.value();
      const std::int64_t n = labels.dim(0), d = wt.dim(1);
      Tensor<T> rows(Shape{n, d});
      for (std::int64_t b = 0; b < n; ++b) std::copy_n(wt.data() + labels[b] * d, d, rows.data() + b * d);
      return rows;
    }

    // out [m, cout] = in [m, k] * weight^T ([cout, k]) + bias.
    static void affine(const T* in, std::int64_t m, const T* weight, std::int64_t k, std::int64_t cout, const T* bias,
                       T* out) {
      kernels::gemm(false, true, m, cout, k, T(1), in, k, weight, k, T(0), out, cout);
      if (bias)
        for (std::int64_t r = 0; r < m; ++r)
          for (std::int64_t co = 0; co < cout; ++co) out[r * cout + co] += bias[co];
    }
    static void affine(const T* in, std::int64_t m, const Dense& d, T* out) {
      affine(in, m, d.weight.data(), d.cin, d.cout, d.bias, out);
    }

    // out [m, C] = tanh(a) * sigmoid(b) of pre [m, 2C] = (a, b) per row, plus the class rows
    // (row r is image r % N); pre is overwritten. The activations are the kernels the ops use.
    void gate(T* pre, std::int64_t m, const Tensor<T>& cls, T* out) const {
      for (std::int64_t r = 0; r < m; ++r) {
        T* p = pre + r * 2 * c_;
        if (cls.defined()) {
          const T* cb = cls.data() + (r % n_) * 2 * c_;
          for (std::int64_t k = 0; k < 2 * c_; ++k) p[k] += cb[k];
        }
        kernels::map(p, p, c_, kernels::Tanh{});
        kernels::map(p + c_, p + c_, c_, kernels::Sigmoid{});
        for (std::int64_t ch = 0; ch < c_; ++ch) out[r * c_ + ch] = p[ch] * p[c_ + ch];
      }
    }

    // Vertical activations [N, C] of layer l at (y, x) in its ring.
    T* vertical_at(std::size_t l, std::int64_t y, std::int64_t x) {
      return vring_[l].data() + ((y % rows_) * w_ + x) * n_ * c_;
    }

    // Layer l's vertical row y (every column), from the image or the ring of layer l - 1.
    void vertical_row(std::size_t l, std::int64_t y) {
      const Packed& p = layers_[l].vertical;
      const auto from_image = [this](T* dst, std::int64_t b, std::int64_t yy, std::int64_t xx) {
        dst[0] = x_[(b * h_ + yy) * w_ + xx];
      };
      const auto from_below = [this, l](T* dst, std::int64_t b, std::int64_t yy, std::int64_t xx) {
        const T* src = vertical_at(l - 1, yy, xx) + b * c_;
        std::copy_n(src, c_, dst);
      };
      if (l == 0)
        gather_with(p, y, 0, w_, from_image);
      else
        gather_with(p, y, 0, w_, from_below);
      affine(gathered_.data(), w_ * n_, p.weight.data(), p.width(), p.cout, p.bias.data(), pre_.data());
      // The link reads the pre-activations of the latest vertical row: kept before the gate
      // overwrites them (rows col * N + b, as vpre_ is laid out).
      if (link_pre_) std::copy_n(pre_.data(), w_ * n_ * 2 * c_, vpre_[l].data());
      gate(pre_.data(), w_ * n_, layers_[l].vertical_class, vertical_at(l, y, 0));
    }

    // Layer l's horizontal value at (i, j) into its current row.
    void horizontal_at(std::size_t l, std::int64_t i, std::int64_t j) {
      const Layer& layer = layers_[l];
      const Packed& p = layer.horizontal;
      const auto from_image = [this](T* dst, std::int64_t b, std::int64_t yy, std::int64_t xx) {
        dst[0] = x_[(b * h_ + yy) * w_ + xx];
      };
      const auto from_left = [this, l](T* dst, std::int64_t b, std::int64_t, std::int64_t xx) {
        std::copy_n(hrow_[l - 1].data() + (xx * n_ + b) * c_, c_, dst);
      };
      if (l == 0)
        gather_with(p, i, j, 1, from_image);
      else
        gather_with(p, i, j, 1, from_left);
      // The link's columns: the vertical stack of the row above, gated or its pre-activations
      // (the zero row above row 0).
      const std::int64_t width = p.width(), taps = width - p.extra;
      for (std::int64_t b = 0; b < n_; ++b) {
        T* dst = gathered_.data() + b * width + taps;
        if (i == 0)
          std::fill(dst, dst + p.extra, T(0));
        else if (link_pre_)
          std::copy_n(vpre_[l].data() + (j * n_ + b) * p.extra, p.extra, dst);
        else
          std::copy_n(vertical_at(l, i - 1, j) + b * c_, c_, dst);
      }
      T* pre = pre_.data();
      affine(gathered_.data(), n_, p.weight.data(), width, p.cout, p.bias.data(), pre);
      T* out = hrow_[l].data() + j * n_ * c_;
      if (l == 0) {
        gate(pre, n_, layer.horizontal_class, out);
        return;
      }
      gate(pre, n_, layer.horizontal_class, gated_.data());
      affine(gated_.data(), n_, layer.residual, res_.data());
      const T* prev = hrow_[l - 1].data() + j * n_ * c_;
      for (std::int64_t k = 0; k < n_ * c_; ++k) out[k] = prev[k] + res_[k];
    }

    // Gathers rows (column col of `columns`, image b) = col * N + b of the taps of p around
    // (y0, x0 + col); zeros outside the image.
    template <class Source>
    void gather_with(const Packed& p, std::int64_t y0, std::int64_t x0, std::int64_t columns, const Source& source) {
      const std::int64_t nt = static_cast<std::int64_t>(p.taps.size()), width = p.width();
      T* g = gathered_.data();
      for (std::int64_t col = 0; col < columns; ++col)
        for (std::int64_t t = 0; t < nt; ++t) {
          const std::int64_t y = y0 + p.taps[t][0], x = x0 + col + p.taps[t][1];
          const bool inside = y >= 0 && y < h_ && x >= 0 && x < w_;
          for (std::int64_t b = 0; b < n_; ++b) {
            T* dst = g + (col * n_ + b) * width + t * p.cin;
            if (inside)
              source(dst, b, y, x);
            else
              std::fill(dst, dst + p.cin, T(0));
          }
        }
    }

    const Tensor<T>& x_;
    std::int64_t n_, h_, w_, c_, rows_;
    bool link_pre_;  // the link reads vertical pre-activations (vpre_), not the ring's outputs
    std::vector<Layer> layers_;
    std::vector<Tensor<T>> vring_, vpre_, hrow_;
    Dense head1_, head2_;
    Tensor<T> gathered_, pre_, gated_, res_, hidden_, logits_;
  };

  GatedPixelCNNOptions options_;
};

static_assert(GenerativeModel<GatedPixelCNN<float>> && DensityModel<GatedPixelCNN<float>> &&
              CompletionModel<GatedPixelCNN<float>>);

}  // namespace genmod::models
