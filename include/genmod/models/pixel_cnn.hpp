#pragma once
/// \file pixel_cnn.hpp
/// PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.4) on grey
/// images: an exact likelihood as a product of per-pixel conditionals in raster order
/// (models/autoregressive.hpp has the conventions).
///
///   h0 = conv_A(x)                         k0 x k0 mask A: pixels strictly before (i, j)
///   h_l = h_{l-1} + conv_B(relu(h_{l-1}))   kb x kb mask B: pixels up to and including (i, j)
///   logits = conv1x1(relu(conv1x1(relu(h_L))))   256 (categorical) or 1 (Bernoulli) per pixel
/// The defaults are the `pixelcnn` reference workload (7x7 A to 64 channels, 5 residual 3x3 B
/// blocks, a 64-channel 1x1 head, 256-way output).
///
/// Causality: logits at (i, j) read x only at positions before (i, j) in raster order (mask A
/// excludes the centre once, mask B never adds a later pixel). Stacked masked convolutions leave
/// a blind spot: pixels above and to the right of (i, j) that the receptive field never reaches
/// (the stack grows up and to the left and right by one pixel per B layer, but a pixel at
/// (i - 1, j + r) can only be reached through the row above's right taps, so the reachable set
/// above-right is a triangle that misses a wedge). tests/models/pixel_cnn_test.cpp measures it.
///
/// Sampling without recomputing the world: the activation of every layer at position p depends
/// only on lower layers at positions <= p (the first layer's mask A on the input strictly before
/// p), so once pixel p - 1 is drawn, every layer's value at p is final and is computed exactly
/// once. The cached sampler walks the positions in raster order computing, per position, one
/// small matrix product per layer over the masked taps ([N, taps * C] x [taps * C, C]): one
/// forward pass of work for the whole image, instead of H * W forward passes for the naive loop.
/// Its activations live in a ring of kb / 2 + 1 rows per layer (what the next layer reads).

#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/kernels/gemm.hpp"
#include "genmod/models/autoregressive.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::models {

/// Options of PixelCNN (defaults: the `pixelcnn` reference workload on 28 x 28 images).
struct PixelCNNOptions {
  std::int64_t height = 28;                       ///< image rows
  std::int64_t width = 28;                        ///< image columns
  std::int64_t channels = 64;                     ///< width of the residual stack
  int residual_blocks = 5;                        ///< mask-B blocks after the mask-A layer
  std::int64_t input_kernel = 7;                  ///< mask-A kernel size (odd, <= 7)
  std::int64_t block_kernel = 3;                  ///< mask-B kernel size (odd, <= 7)
  std::int64_t head_channels = 64;                ///< channels of the 1x1 head's hidden layer
  PixelOutput output = PixelOutput::categorical;  ///< 256-way levels or binary pixels
};

/// PixelCNN (see the file comment). Satisfies GenerativeModel, DensityModel and CompletionModel.
template <class T = float>
class PixelCNN : public nn::Module<T> {
 public:
  /// The model of `options`, weights from genmod's default generator (ValueError for a size that
  /// is not positive, or a kernel that is even or above 7).
  explicit PixelCNN(PixelCNNOptions options = {})
      : input(nn::MaskType::A, 1, checked(options).channels, options.input_kernel,
              {.padding = options.input_kernel / 2}),
        head_hidden(options.channels, options.head_channels, 1),
        head_out(options.head_channels, detail::pixel_logits(options.output), 1),
        options_(options) {
    for (int l = 0; l < options.residual_blocks; ++l)
      blocks.emplace_back(nn::MaskType::B, options.channels, options.channels, options.block_kernel,
                          nn::Conv2dLayerOptions{.padding = options.block_kernel / 2});
  }

  /// The network: x [N, 1, H, W] in [0, 1] -> logits [N, 256, H, W] or [N, 1, H, W].
  Var<T> logits(const Var<T>& x) {
    detail::check_pixel_images("models::PixelCNN::logits", "x", x.shape(), options_.height, options_.width);
    Var<T> h = input(x);
    for (auto& block : blocks) h = add(h, block(relu(h)));
    return head_out(relu(head_hidden(relu(h))));
  }

  /// log p(x) per image [N], in nats (exact); pixels as the output kind expects (ValueError
  /// otherwise).
  Var<T> log_prob(const Var<T>& x) {
    return detail::pixel_log_prob("models::PixelCNN::log_prob", logits(x), x.value(), options_.output);
  }

  /// -log p(x) / (HW ln 2) per image [N]: bits per dimension.
  Var<T> bits_per_dim(const Var<T>& x) { return detail::bits_per_dim_of(log_prob(x), dims()); }

  /// The training objective: the batch mean of -log p(x) / HW, nats per pixel (the reference
  /// workload's mean cross-entropy).
  Var<T> loss(const Var<T>& x) { return detail::nats_per_pixel_loss(log_prob(x), dims()); }

  /// n new images [n, 1, H, W] at temperature 1, by the cached sampler.
  Tensor<T> sample(std::int64_t n, Generator& g) { return sample(n, {}, g); }

  /// n new images drawn pixel by pixel with `options` (temperature; cached or naive).
  Tensor<T> sample(std::int64_t n, const PixelSamplingOptions& options, Generator& g) {
    Tensor<T> images =
        detail::blank_images<T>("models::PixelCNN::sample", n, options.temperature, options_.height, options_.width);
    fill(images, nullptr, options, g);
    return images;
  }

  /// images [N, 1, H, W] with every pixel the mask marks unknown (0) drawn from p(x_i | x_<i) in
  /// raster order, conditioned on the known pixels (1) and the pixels drawn before; known pixels
  /// are kept. Any mask: the bottom half, a rectangle, scattered pixels.
  Tensor<T> complete(const Tensor<T>& images, const Tensor<T>& known_mask, Generator& g) {
    return complete(images, known_mask, {}, g);
  }

  /// complete() with sampling options.
  Tensor<T> complete(const Tensor<T>& images, const Tensor<T>& known_mask, const PixelSamplingOptions& options,
                     Generator& g) {
    Tensor<T> out = detail::completion_start("models::PixelCNN::complete", images, known_mask, options.temperature,
                                             options_.height, options_.width, options_.output);
    fill(out, &known_mask, options, g);
    return out;
  }

  /// Lists input, blocks.0 ... blocks.(L-1), head_hidden and head_out.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("input", input), v.child("blocks", blocks), v.child("head_hidden", head_hidden);
    v.child("head_out", head_out);
  }

  /// The options it was built with.
  const PixelCNNOptions& options() const noexcept { return options_; }
  /// H * W, the dimensions per image.
  std::int64_t dims() const noexcept { return options_.height * options_.width; }

  nn::MaskedConv2d<T> input;                   ///< mask A, 1 -> channels
  nn::ModuleList<nn::MaskedConv2d<T>> blocks;  ///< mask B, channels -> channels, residual
  nn::Conv2d<T> head_hidden;                   ///< 1x1, channels -> head_channels
  nn::Conv2d<T> head_out;                      ///< 1x1, head_channels -> 256 or 1

 private:
  static const PixelCNNOptions& checked(const PixelCNNOptions& o) {
    constexpr const char* op = "models::PixelCNN";
    check_positive(op, "height", o.height);
    check_positive(op, "width", o.width);
    check_positive(op, "channels", o.channels);
    check_non_negative(op, "residual_blocks", o.residual_blocks);
    check_positive(op, "head_channels", o.head_channels);
    for (auto [name, k] : {std::pair{"input_kernel", o.input_kernel}, std::pair{"block_kernel", o.block_kernel}})
      check_arg(k >= 1 && k <= 7 && k % 2 == 1, op, name, "an odd size from 1 to 7", std::to_string(k));
    check_arg(o.input_kernel >= 3, op, "input_kernel", ">= 3 (a 1x1 mask A sees nothing)",
              std::to_string(o.input_kernel));
    return o;
  }

  void fill(Tensor<T>& images, const Tensor<T>* known, const PixelSamplingOptions& o, Generator& g) {
    NoGradGuard no_grad;
    if (!o.cached) {
      detail::raster_fill(
          images, known, options_.output, o.temperature, g,
          detail::naive_stepper(images, [this](const Tensor<T>& x) { return logits(Var<T>(x)).value(); }));
      return;
    }
    CachedStepper step(*this, images);
    detail::raster_fill(images, known, options_.output, o.temperature, g,
                        [&step](std::int64_t i, std::int64_t j, bool need) { return step(i, j, need); });
  }

  /// The incremental sampler (see the file comment): each layer's activations at one position
  /// from a product over its kept taps, in a ring of rows.
  class CachedStepper {
   public:
    CachedStepper(PixelCNN& m, const Tensor<T>& images)
        : m_(m),
          x_(images),
          n_(images.dim(0)),
          h_(m.options_.height),
          w_(m.options_.width),
          c_(m.options_.channels),
          rows_(m.options_.block_kernel / 2 + 1) {
      layers_.push_back(pack(m.input, 1));
      for (auto& b : m.blocks) layers_.push_back(pack(b, c_));
      for (std::size_t l = 0; l < layers_.size(); ++l) ring_.push_back(Tensor<T>(Shape{rows_ * w_, n_, c_}));
      std::int64_t widest = c_;  // also holds relu(h_L) for the head
      for (const Packed& l : layers_) widest = std::max(widest, static_cast<std::int64_t>(l.taps.size()) * l.cin);
      gathered_ = Tensor<T>(Shape{n_, widest});
      const std::int64_t hc = m.options_.head_channels, lo = detail::pixel_logits(m.options_.output);
      head1_ = m.head_hidden.weight.value().reshape({hc, c_});
      head2_ = m.head_out.weight.value().reshape({lo, hc});
      hidden_ = Tensor<T>(Shape{n_, hc});
      logits_ = Tensor<T>(Shape{n_, lo});
    }

    detail::PixelLogitsView<T> operator()(std::int64_t i, std::int64_t j, bool need) {
      for (std::size_t l = 0; l < layers_.size(); ++l) layer_at(l, i, j);
      if (!need) return {};
      // The head on relu(h_L) at (i, j): two 1x1 convolutions are two row-major products.
      const T* top = at(layers_.size() - 1, i, j);
      T* r = gathered_.data();
      for (std::int64_t k = 0; k < n_ * c_; ++k) r[k] = std::max(top[k], T(0));
      const std::int64_t hc = hidden_.dim(1), lo = logits_.dim(1);
      affine(r, c_, head1_.data(), hc, m_.head_hidden.bias.value().data(), hidden_.data());
      for (std::int64_t k = 0; k < n_ * hc; ++k) hidden_[k] = std::max(hidden_[k], T(0));
      affine(hidden_.data(), hc, head2_.data(), lo, m_.head_out.bias.value().data(), logits_.data());
      return {logits_.data(), lo, 1};
    }

   private:
    struct Packed {
      std::vector<std::array<std::int64_t, 2>> taps;  // (dy, dx) offsets the mask keeps
      Tensor<T> weight;                               // [Cout, taps * Cin]: row co, column t * Cin + ci
      const T* bias = nullptr;
      std::int64_t cin = 0;
    };

    static Packed pack(nn::MaskedConv2d<T>& conv, std::int64_t cin) {
      Packed p;
      const Tensor<T>& wt = conv.weight.value();
      const std::int64_t cout = wt.dim(0), k = wt.dim(2), c = k / 2;
      const auto keep = nn::MaskedConv2d<T>::mask(conv.mask_type(), k);
      for (std::int64_t y = 0; y < k; ++y)
        for (std::int64_t x = 0; x < k; ++x)
          if (keep[static_cast<std::size_t>(y * k + x)]) p.taps.push_back({y - c, x - c});
      const std::int64_t nt = static_cast<std::int64_t>(p.taps.size());
      p.weight = Tensor<T>(Shape{cout, nt * cin});
      for (std::int64_t co = 0; co < cout; ++co)
        for (std::int64_t t = 0; t < nt; ++t)
          for (std::int64_t ci = 0; ci < cin; ++ci)
            p.weight[(co * nt + t) * cin + ci] =
                wt[((co * cin + ci) * k + (p.taps[t][0] + c)) * k + (p.taps[t][1] + c)];
      p.bias = conv.bias.defined() ? conv.bias.value().data() : nullptr;
      p.cin = cin;
      return p;
    }

    // The [N, C] activations of layer l at (i, j) in its ring.
    T* at(std::size_t l, std::int64_t i, std::int64_t j) { return ring_[l].data() + ((i % rows_) * w_ + j) * n_ * c_; }

    // out [N, cout] = in [N, k] * weight^T ([cout, k]) + bias.
    void affine(const T* in, std::int64_t k, const T* weight, std::int64_t cout, const T* bias, T* out) {
      kernels::gemm(false, true, n_, cout, k, T(1), in, k, weight, k, T(0), out, cout);
      if (bias)
        for (std::int64_t b = 0; b < n_; ++b)
          for (std::int64_t co = 0; co < cout; ++co) out[b * cout + co] += bias[co];
    }

    // Layer l's value at (i, j): gather its kept taps (the image for layer 0, relu of layer l - 1
    // otherwise; zeros outside the image), one product, the residual for l > 0.
    void layer_at(std::size_t l, std::int64_t i, std::int64_t j) {
      const Packed& p = layers_[l];
      const std::int64_t nt = static_cast<std::int64_t>(p.taps.size()), width = nt * p.cin;
      T* g = gathered_.data();
      for (std::int64_t t = 0; t < nt; ++t) {
        const std::int64_t y = i + p.taps[t][0], x = j + p.taps[t][1];
        const bool inside = y >= 0 && y < h_ && x >= 0 && x < w_;
        if (l == 0) {
          for (std::int64_t b = 0; b < n_; ++b) g[b * width + t] = inside ? x_[(b * h_ + y) * w_ + x] : T(0);
          continue;
        }
        const T* src = inside ? at(l - 1, y, x) : nullptr;
        for (std::int64_t b = 0; b < n_; ++b) {
          T* dst = g + b * width + t * p.cin;
          if (src == nullptr)
            std::fill(dst, dst + p.cin, T(0));
          else
            for (std::int64_t ci = 0; ci < p.cin; ++ci) dst[ci] = std::max(src[b * p.cin + ci], T(0));
        }
      }
      T* out = at(l, i, j);
      affine(g, width, p.weight.data(), c_, p.bias, out);
      if (l > 0) {
        const T* prev = at(l - 1, i, j);
        for (std::int64_t k = 0; k < n_ * c_; ++k) out[k] += prev[k];
      }
    }

    PixelCNN& m_;
    const Tensor<T>& x_;
    std::int64_t n_, h_, w_, c_, rows_;
    std::vector<Packed> layers_;
    std::vector<Tensor<T>> ring_;
    Tensor<T> gathered_, head1_, head2_, hidden_, logits_;
  };

  PixelCNNOptions options_;
};

static_assert(GenerativeModel<PixelCNN<float>> && DensityModel<PixelCNN<float>> && CompletionModel<PixelCNN<float>>);

}  // namespace genmod::models
