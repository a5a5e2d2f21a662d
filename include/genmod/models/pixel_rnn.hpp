#pragma once
/// \file pixel_rnn.hpp
/// PixelRNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016, "Pixel Recurrent Neural Networks") on
/// grey images: an exact likelihood as a product of per-pixel conditionals in raster order
/// (models/autoregressive.hpp has the conventions). Its layers are Row LSTMs (section 3.1, below)
/// or, with PixelRNNOptions::layer = PixelRNNLayer::diagonal_bilstm, Diagonal BiLSTMs (section
/// 3.2, models/diagonal_bilstm.hpp), which have no blind spot.
///
/// A Row LSTM processes the image one row at a time, every column of a row at once. With x the
/// layer's input [N, 2h, H, W] and h the number of state units:
///   s = K_is (*) x                            1 x k_is conv, mask B: row i, columns j - k_is/2 .. j
///                                             -> [N, 4h, H, W] (reads only x, no recurrence)
///   [o, f, i, g]_i = s_i + K_ss (*) h_{i-1}   1 x k_ss conv over the previous row's states,
///                                             columns j - k_ss/2 .. j + k_ss/2; h_{-1} = c_{-1} = 0
///   c_i = sigmoid(f) . c_{i-1} + sigmoid(i) . tanh(g),   h_i = sigmoid(o) . tanh(c_i)
/// (gates stacked in the paper's order o, f, i, g along the channels). A layer is residual: its
/// output is x + conv1x1(h), the 1x1 convolution taking the h states back to the 2h input features.
/// The paper computes s for the whole map at once; since the kernel is one row high, s_i depends on
/// row i of x alone, and the code computes it row by row, every layer passing its output to the
/// next as a list of rows [N, 2h, 1, W]: the same values, but the tape never slices rows out of a
/// whole [N, 4h, H, W] map (a slice's backward is as large as the map, H of them per layer cost
/// more than the convolution itself; measured 15 % of a training step).
/// The network:
///   r_0 = conv_A(x)                            k0 x k0 mask A: pixels strictly before (i, j), 2h
///   r_l = r_{l-1} + conv1x1(RowLSTM_l(r_{l-1}))   l = 1 .. L
///   logits = conv1x1(relu(conv1x1(relu(r_L))))   256 (categorical) or 1 (Bernoulli) per pixel
///
/// Causality and the receptive field: the state at (i, j) reads its layer's input at row i,
/// columns <= j (mask B) and, through h_{i-1} and c_{i-1}, d rows up at columns
/// j - d s - p .. j + d s (p = k_is / 2, s = k_ss / 2): a triangle that widens by s columns per row
/// up. Stacking L layers widens the left reach to d s + L p; the mask-A layer adds k0 / 2 rows and
/// columns around every position it is applied at and excludes the centre. So output (i, j) reads
/// row i at columns j - L p - k0/2 .. j - 1 and row i - d (d >= 1) at columns
/// j - d s - L p - k0/2 .. j + max((d - 1) s + k0/2, d s - 1): nothing at or after (i, j), and a
/// blind spot above-right of the triangle (the Row LSTM's documented limitation; Diagonal BiLSTM
/// removes it) and to the far left of the row. tests/models/pixel_rnn_test.cpp measures both.
///
/// Sampling without recomputing the world: every quantity at (i, j) (the mask-A output, each
/// layer's gates, c, h and residual output, the head) depends only on the previous row of states
/// (complete) and on row i at columns <= j, all known once pixel (i, j - 1) is drawn. The cached
/// sampler walks the positions in raster order and computes every layer at (i, j) once: one
/// product per layer over the gathered input and state taps ([N, p1 * 2h + k_ss * h] x [.., 4h]),
/// one for the residual and two for the head, keeping each layer's current input row and its
/// previous and current rows of h and c. That is one forward pass of work for the whole image,
/// instead of H * W forward passes for the naive loop.
///
/// With Diagonal BiLSTM layers the left LSTM at (i, j) needs its states at (i - 1, j) and
/// (i, j - 1) and the layer's input at (i, j): it is computed per position as above. The right
/// LSTM's state at (i - 1, j), which output (i, j) reads, needs all of row i - 1's inputs: at the
/// start of row i the sampler runs each layer's right LSTM along row i - 1, from its last column to
/// its first. Again one forward pass of work per image.

#include <algorithm>
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
#include "genmod/models/diagonal_bilstm.hpp"
#include "genmod/models/lstm_gates.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::models {

/// A residual Row LSTM layer (see the file comment): x [N, 2h, H, W] -> x + conv1x1(h states).
template <class T = float>
class RowLSTM : public nn::Layer<T> {
 public:
  /// A layer over `features` input channels with `hidden` state units, a 1 x row_kernel masked
  /// input-to-state and a 1 x state_kernel state-to-state convolution (odd sizes up to 7), weights
  /// initialized as PyTorch's Conv2d (from `generator`, or genmod's default generator when null).
  RowLSTM(std::int64_t features, std::int64_t hidden, std::int64_t row_kernel = 3, std::int64_t state_kernel = 3,
          Generator* generator = nullptr)
      : residual(hidden, features, 1, {.generator = generator}), hidden_(hidden) {
    constexpr const char* op = "models::RowLSTM";
    check_positive(op, "features", features);
    check_positive(op, "hidden", hidden);
    for (auto [name, k] : {std::pair{"row_kernel", row_kernel}, std::pair{"state_kernel", state_kernel}})
      check_arg(k >= 1 && k <= 7 && k % 2 == 1, op, name, "an odd size from 1 to 7", std::to_string(k));
    Parameter<T> unused;
    nn::detail::init_conv(weight_is, bias_is, Shape{4 * hidden, features, 1, row_kernel}, 4 * hidden, true, generator);
    nn::detail::init_conv(weight_ss, unused, Shape{4 * hidden, hidden, 1, state_kernel}, 4 * hidden, false, generator);
  }

  /// keep[x] for the 1 x k input-to-state kernel: columns up to and including the centre (mask B).
  static std::array<bool, kernels::Conv2dGeometry::kMaxMaskedTaps> row_mask(std::int64_t k) {
    std::array<bool, kernels::Conv2dGeometry::kMaxMaskedTaps> keep{};
    for (std::int64_t x = 0; x < k; ++x) keep[static_cast<std::size_t>(x)] = x <= k / 2;
    return keep;
  }

  /// The hidden states h [N, hidden, H, W] of x [N, features, H, W], row by row (ShapeError for
  /// another shape).
  Var<T> states(const Var<T>& x) {
    check_input(x.shape());
    std::vector<Var<T>> rows, h;
    split_rows(x, rows);
    recur(rows, h);
    return concat(std::span<const Var<T>>(h), 2);
  }

  /// The layer on an image given as its rows [N, features, 1, W] (top first): the output rows
  /// x_i + conv1x1(h_i). Stacked layers pass rows to each other, so that no layer slices rows out
  /// of a whole image (a slice's backward is as large as the image it slices).
  std::vector<Var<T>> forward_rows(const std::vector<Var<T>>& rows) {
    std::vector<Var<T>> out;
    forward_rows(rows, out);
    return out;
  }

  /// forward_rows into `out` (cleared first; its capacity is reused, so a model that keeps the
  /// vector between steps calls no allocator). `out` must not be `rows`.
  void forward_rows(std::span<const Var<T>> rows, std::vector<Var<T>>& out) {
    check_arg(!rows.empty(), "models::RowLSTM::forward_rows", "rows", "at least one row", "none");
    for (const Var<T>& r : rows) {
      check_input(r.shape());
      check_same_shape("models::RowLSTM::forward_rows", "row", r.shape(), "row 0", rows[0].shape());
      check_dim("models::RowLSTM::forward_rows", "row", r.shape(), 2, 1, "a single row");
    }
    recur(rows, out);
    for (std::size_t i = 0; i < rows.size(); ++i) out[i] = add(rows[i], residual(out[i]));
  }

  /// x + conv1x1(states(x)): [N, features, H, W] -> the same shape.
  Var<T> forward(const Var<T>& x) override {
    check_input(x.shape());
    std::vector<Var<T>> rows, out;
    split_rows(x, rows);
    forward_rows(rows, out);
    return concat(std::span<const Var<T>>(out), 2);
  }

  /// The rows [N, C, 1, W] of x [N, C, H, W], top first, into `rows` (cleared first).
  static void split_rows(const Var<T>& x, std::vector<Var<T>>& rows) {
    rows.clear();
    for (std::int64_t r = 0; r < x.dim(2); ++r) rows.push_back(slice(x, 2, r, 1));
  }

  /// Lists weight_is, bias_is, weight_ss and residual.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("weight_is", weight_is), v.param("bias_is", bias_is), v.param("weight_ss", weight_ss);
    v.child("residual", residual);
  }

  /// h, the number of state units.
  std::int64_t hidden_size() const noexcept { return hidden_; }

  Parameter<T> weight_is;  ///< [4h, features, 1, k_is], gates o, f, i, g; taps right of the centre unused
  Parameter<T> bias_is;    ///< [4h]
  Parameter<T> weight_ss;  ///< [4h, h, 1, k_ss], no bias (bias_is covers it)
  nn::Conv2d<T> residual;  ///< 1x1, h -> features

 private:
  void check_input(const Shape& x) const {
    constexpr const char* op = "models::RowLSTM";
    check_rank(op, "x", x, 4, "[N, features, H, W]");
    check_dim(op, "x", x, 1, weight_is.shape()[1], "features");
  }

  // h_0 ... h_{H-1} of the input rows: the masked 1 x k_is conv of row i and the 1 x k_ss conv of
  // h_{i-1} give the gates (o, f, i, g), then the cell update.
  void recur(std::span<const Var<T>> rows, std::vector<Var<T>>& out) {
    constexpr const char* op = "models::RowLSTM";
    const std::int64_t hd = hidden_, k = weight_is.shape()[3];
    kernels::Conv2dGeometry gis = row_geometry(rows[0].shape(), weight_is.shape(), op);
    const auto keep = row_mask(k);
    gis.set_mask(std::span<const bool>(keep.data(), static_cast<std::size_t>(k)));
    const kernels::Conv2dGeometry gss =
        row_geometry(Shape{rows[0].dim(0), hd, 1, rows[0].dim(3)}, weight_ss.shape(), op);
    out.clear();
    Var<T> h, c;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      Var<T> gates = conv2d_geometry(gis, rows[i], weight_is.var(), bias_is.var());  // [N, 4h, 1, W]
      if (i > 0) gates = add(gates, conv2d_geometry(gss, h, weight_ss.var(), Var<T>()));
      const std::array<Var<T>, 2> next = detail::lstm_update(gates, c, hd);
      h = next[0], c = next[1];
      out.push_back(h);
    }
  }

  // A stride-1 1 x k convolution that keeps the width: no vertical padding, k / 2 columns each side.
  static kernels::Conv2dGeometry row_geometry(const Shape& x, const Shape& w, const char* op) {
    kernels::Conv2dGeometry g = conv2d_geometry_for(x, Shape{w[0], w[1], 1, 1}, {}, op);
    g.kw = w[3];
    g.pad_w = w[3] / 2;
    return g;
  }

  std::int64_t hidden_;
};

/// The recurrent layer of a PixelRNN.
enum class PixelRNNLayer {
  row_lstm,        ///< RowLSTM: a row at a time; a triangular context above (a blind spot)
  diagonal_bilstm  ///< DiagonalBiLSTM: two diagonal sweeps; every earlier pixel in context
};

/// Options of PixelRNN (defaults: a Row LSTM model of modest size on 28 x 28 images).
struct PixelRNNOptions {
  std::int64_t height = 28;                       ///< image rows
  std::int64_t width = 28;                        ///< image columns
  std::int64_t channels = 32;                     ///< h, state units per LSTM (direction); the residual stream has 2h
  int layers = 2;                                 ///< recurrent layers after the mask-A layer (>= 1)
  std::int64_t input_kernel = 7;                  ///< mask-A kernel size k0 (odd, 3 to 7)
  std::int64_t row_kernel = 3;                    ///< Row LSTM: k_is, the masked 1 x k input-to-state (odd, <= 7)
  std::int64_t state_kernel = 3;                  ///< Row LSTM: k_ss, the 1 x k state-to-state (odd, <= 7)
  std::int64_t head_channels = 64;                ///< channels of the 1x1 head's hidden layer
  PixelOutput output = PixelOutput::categorical;  ///< 256-way levels or binary pixels
  PixelRNNLayer layer = PixelRNNLayer::row_lstm;  ///< Row LSTM or Diagonal BiLSTM layers
};

/// PixelRNN with Row LSTM or Diagonal BiLSTM layers (see the file comment). Satisfies
/// GenerativeModel, DensityModel and CompletionModel.
template <class T = float>
class PixelRNN : public nn::Module<T> {
 public:
  /// The model of `options`, weights from genmod's default generator (ValueError for a size that
  /// is not positive, or a kernel that is even or above 7).
  explicit PixelRNN(PixelRNNOptions options = {})
      : input(nn::MaskType::A, 1, 2 * checked(options).channels, options.input_kernel,
              {.padding = options.input_kernel / 2}),
        head_hidden(2 * options.channels, options.head_channels, 1),
        head_out(options.head_channels, detail::pixel_logits(options.output), 1),
        options_(options) {
    for (int l = 0; l < options.layers; ++l) {
      if (diagonal())
        diagonal_layers.emplace_back(2 * options.channels, options.channels);
      else
        layers.emplace_back(2 * options.channels, options.channels, options.row_kernel, options.state_kernel);
    }
  }

  /// The network: x [N, 1, H, W] in [0, 1] -> logits [N, 256, H, W] or [N, 1, H, W].
  Var<T> logits(const Var<T>& x) {
    detail::check_pixel_images("models::PixelRNN::logits", "x", x.shape(), options_.height, options_.width);
    if (diagonal()) {
      Var<T> r = input(x);
      for (auto& layer : diagonal_layers) r = layer(r);
      return head_out(relu(head_hidden(relu(r))));
    }
    // The rows pass between layers in two vectors the model keeps (their capacity reused: a
    // training step calls no allocator); emptied again before returning.
    RowLSTM<T>::split_rows(input(x), rows_);
    for (auto& layer : layers) {
      layer.forward_rows(rows_, next_rows_);
      std::swap(rows_, next_rows_);
    }
    Var<T> h = concat(std::span<const Var<T>>(rows_), 2);
    rows_.clear(), next_rows_.clear();
    return head_out(relu(head_hidden(relu(h))));
  }

  /// log p(x) per image [N], in nats (exact); pixels as the output kind expects (ValueError
  /// otherwise).
  Var<T> log_prob(const Var<T>& x) {
    return detail::pixel_log_prob("models::PixelRNN::log_prob", logits(x), x.value(), options_.output);
  }

  /// -log p(x) / (HW ln 2) per image [N]: bits per dimension.
  Var<T> bits_per_dim(const Var<T>& x) { return detail::bits_per_dim_of(log_prob(x), dims()); }

  /// The training objective: the batch mean of -log p(x) / HW, nats per pixel.
  Var<T> loss(const Var<T>& x) { return detail::nats_per_pixel_loss(log_prob(x), dims()); }

  /// n new images [n, 1, H, W] at temperature 1, by the cached sampler.
  Tensor<T> sample(std::int64_t n, Generator& g) { return sample(n, {}, g); }

  /// n new images drawn pixel by pixel with `options` (temperature; cached or naive).
  Tensor<T> sample(std::int64_t n, const PixelSamplingOptions& options, Generator& g) {
    Tensor<T> images =
        detail::blank_images<T>("models::PixelRNN::sample", n, options.temperature, options_.height, options_.width);
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
    Tensor<T> out = detail::completion_start("models::PixelRNN::complete", images, known_mask, options.temperature,
                                             options_.height, options_.width, options_.output);
    fill(out, &known_mask, options, g);
    return out;
  }

  /// Lists input, layers.0 ... layers.(L-1) (Row LSTMs or Diagonal BiLSTMs), head_hidden and
  /// head_out.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("input", input);
    if (diagonal())
      v.child("layers", diagonal_layers);
    else
      v.child("layers", layers);
    v.child("head_hidden", head_hidden), v.child("head_out", head_out);
  }

  /// The options it was built with.
  const PixelRNNOptions& options() const noexcept { return options_; }
  /// H * W, the dimensions per image.
  std::int64_t dims() const noexcept { return options_.height * options_.width; }
  /// True for Diagonal BiLSTM layers.
  bool diagonal() const noexcept { return options_.layer == PixelRNNLayer::diagonal_bilstm; }

  nn::MaskedConv2d<T> input;                          ///< mask A, 1 -> 2h
  nn::ModuleList<RowLSTM<T>> layers;                  ///< residual Row LSTM layers, 2h -> 2h (or none)
  nn::ModuleList<DiagonalBiLSTM<T>> diagonal_layers;  ///< residual Diagonal BiLSTM layers (or none)
  nn::Conv2d<T> head_hidden;          ///< 1x1, 2h -> head_channels
  nn::Conv2d<T> head_out;             ///< 1x1, head_channels -> 256 or 1

 private:
  static const PixelRNNOptions& checked(const PixelRNNOptions& o) {
    constexpr const char* op = "models::PixelRNN";
    check_positive(op, "height", o.height);
    check_positive(op, "width", o.width);
    check_positive(op, "channels", o.channels);
    check_positive(op, "layers", o.layers);
    check_positive(op, "head_channels", o.head_channels);
    for (auto [name, k] : {std::pair{"input_kernel", o.input_kernel}, std::pair{"row_kernel", o.row_kernel},
                           std::pair{"state_kernel", o.state_kernel}})
      check_arg(k >= 1 && k <= 7 && k % 2 == 1, op, name, "an odd size from 1 to 7", std::to_string(k));
    check_arg(o.input_kernel >= 3, op, "input_kernel", ">= 3 (a 1x1 mask A sees nothing)",
              std::to_string(o.input_kernel));
    check_arg(o.layer == PixelRNNLayer::row_lstm || o.layer == PixelRNNLayer::diagonal_bilstm, op, "layer",
              "row_lstm or diagonal_bilstm", std::to_string(static_cast<int>(o.layer)));
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

  /// The incremental sampler (see the file comment): every layer at one position, from the
  /// previous row of states and the current row's inputs.
  class CachedStepper {
   public:
    CachedStepper(PixelRNN& m, const Tensor<T>& images)
        : m_(m),
          x_(images),
          n_(images.dim(0)),
          h_(m.options_.height),
          w_(m.options_.width),
          hd_(m.options_.channels),
          r_(2 * m.options_.channels) {
      // The mask-A layer: its kept taps and a [2h, taps] weight (one input channel).
      const Tensor<T>& wa = m.input.weight.value();
      const std::int64_t k = wa.dim(2), c = k / 2;
      const auto keep = nn::MaskedConv2d<T>::mask(nn::MaskType::A, k);
      for (std::int64_t y = 0; y < k; ++y)
        for (std::int64_t x = 0; x < k; ++x)
          if (keep[static_cast<std::size_t>(y * k + x)]) taps_a_.push_back({y - c, x - c});
      const std::int64_t na = static_cast<std::int64_t>(taps_a_.size());
      weight_a_ = Tensor<T>(Shape{r_, na});
      for (std::int64_t co = 0; co < r_; ++co)
        for (std::int64_t t = 0; t < na; ++t)
          weight_a_[co * na + t] = wa[(co * k + (taps_a_[t][0] + c)) * k + (taps_a_[t][1] + c)];
      std::int64_t widest = std::max(na, r_);
      for (auto& layer : m.layers) {
        layers_.push_back(pack(layer));
        widest = std::max(widest, layers_.back().weight.dim(1));
        states_.push_back(Tensor<T>(Shape{2, w_, n_, hd_}));
        cells_.push_back(Tensor<T>(Shape{2, w_, n_, hd_}));
      }
      for (auto& layer : m.diagonal_layers) {
        diagonal_.push_back(pack(layer));
        widest = std::max(widest, r_ + 2 * hd_);
        states_.push_back(Tensor<T>(Shape{2, w_, n_, hd_}));  // left h, rows i - 1 and i
        cells_.push_back(Tensor<T>(Shape{2, w_, n_, hd_}));   // left c (row i), right c (row i - 1)
        right_.push_back(Tensor<T>(Shape{2, w_, n_, hd_}));   // right h, rows i - 2 and i - 1
      }
      for (int l = 0; l < m.options_.layers; ++l) inputs_.push_back(Tensor<T>(Shape{2, w_, n_, r_}));
      gathered_ = Tensor<T>(Shape{n_, widest});
      gates_ = Tensor<T>(Shape{n_, 4 * hd_});
      top_ = Tensor<T>(Shape{n_, r_});
      const std::int64_t hc = m.options_.head_channels, lo = detail::pixel_logits(m.options_.output);
      head1_ = m.head_hidden.weight.value().reshape({hc, r_});
      head2_ = m.head_out.weight.value().reshape({lo, hc});
      hidden_ = Tensor<T>(Shape{n_, hc});
      both_ = Tensor<T>(Shape{n_, hd_});
      logits_ = Tensor<T>(Shape{n_, lo});
    }

    detail::PixelLogitsView<T> operator()(std::int64_t i, std::int64_t j, bool need) {
      // Diagonal BiLSTM: the right LSTM's row i - 1 needs all of that row's inputs, complete now.
      if (j == 0 && i > 0)
        for (std::size_t l = 0; l < diagonal_.size(); ++l) right_row(l, i - 1);
      input_at(i, j);
      for (std::size_t l = 0; l < layers_.size(); ++l) layer_at(l, i, j);
      for (std::size_t l = 0; l < diagonal_.size(); ++l) diagonal_at(l, i, j);
      if (!need) return {};
      // The head on relu(r_L) at (i, j): two 1x1 convolutions are two row-major products.
      T* r = gathered_.data();
      for (std::int64_t k = 0; k < n_ * r_; ++k) r[k] = std::max(top_[k], T(0));
      const std::int64_t hc = hidden_.dim(1), lo = logits_.dim(1);
      affine(r, r_, head1_.data(), hc, m_.head_hidden.bias.value().data(), hidden_.data());
      for (std::int64_t k = 0; k < n_ * hc; ++k) hidden_[k] = std::max(hidden_[k], T(0));
      affine(hidden_.data(), hc, head2_.data(), lo, m_.head_out.bias.value().data(), logits_.data());
      return {logits_.data(), lo, 1};
    }

   private:
    struct Packed {
      std::vector<std::int64_t> row_taps;    // column offsets of the input-to-state taps kept (<= 0)
      std::vector<std::int64_t> state_taps;  // column offsets of the state-to-state taps
      Tensor<T> weight;                      // [4h, row_taps * 2h + state_taps * h]
      const T* bias = nullptr;               // [4h]
      Tensor<T> residual;                    // [2h, h]
      const T* residual_bias = nullptr;      // [2h]
    };

    Packed pack(RowLSTM<T>& layer) const {
      Packed p;
      const Tensor<T>& wi = layer.weight_is.value();
      const Tensor<T>& ws = layer.weight_ss.value();
      const std::int64_t ki = wi.dim(3), ks = ws.dim(3), g4 = 4 * hd_;
      for (std::int64_t x = 0; x <= ki / 2; ++x) p.row_taps.push_back(x - ki / 2);
      for (std::int64_t x = 0; x < ks; ++x) p.state_taps.push_back(x - ks / 2);
      const std::int64_t ni = static_cast<std::int64_t>(p.row_taps.size()), ns = ks;
      const std::int64_t width = ni * r_ + ns * hd_;
      p.weight = Tensor<T>(Shape{g4, width});
      for (std::int64_t co = 0; co < g4; ++co) {
        T* row = p.weight.data() + co * width;
        for (std::int64_t t = 0; t < ni; ++t)
          for (std::int64_t ci = 0; ci < r_; ++ci) row[t * r_ + ci] = wi[(co * r_ + ci) * ki + t];
        for (std::int64_t t = 0; t < ns; ++t)
          for (std::int64_t ci = 0; ci < hd_; ++ci) row[ni * r_ + t * hd_ + ci] = ws[(co * hd_ + ci) * ks + t];
      }
      p.bias = layer.bias_is.value().data();
      p.residual = layer.residual.weight.value().reshape({r_, hd_});
      p.residual_bias = layer.residual.bias.value().data();
      return p;
    }

    // out [N, cout] = in [N, k] * weight^T ([cout, k]) + bias.
    void affine(const T* in, std::int64_t k, const T* weight, std::int64_t cout, const T* bias, T* out) {
      kernels::gemm(false, true, n_, cout, k, T(1), in, k, weight, k, T(0), out, cout);
      if (bias)
        for (std::int64_t b = 0; b < n_; ++b)
          for (std::int64_t co = 0; co < cout; ++co) out[b * cout + co] += bias[co];
    }

    // r_0 at (i, j): the mask-A taps of the image (zeros outside), one product.
    void input_at(std::int64_t i, std::int64_t j) {
      const std::int64_t na = static_cast<std::int64_t>(taps_a_.size());
      T* g = gathered_.data();
      for (std::int64_t t = 0; t < na; ++t) {
        const std::int64_t y = i + taps_a_[t][0], x = j + taps_a_[t][1];
        const bool inside = y >= 0 && y < h_ && x >= 0 && x < w_;
        for (std::int64_t b = 0; b < n_; ++b) g[b * na + t] = inside ? x_[(b * h_ + y) * w_ + x] : T(0);
      }
      affine(g, na, weight_a_.data(), r_, m_.input.bias.value().data(), input_row(0, i) + j * n_ * r_);
    }

    // Layer l's input row i, [W, N, 2h] (a ring of two rows).
    T* input_row(std::size_t l, std::int64_t i) { return inputs_[l].data() + (i % 2) * w_ * n_ * r_; }

    // Layer l at (i, j): gates from the row's inputs (columns <= j) and the previous row's states,
    // the cell update, and the residual output into the next layer's input row (or top_).
    void layer_at(std::size_t l, std::int64_t i, std::int64_t j) {
      const Packed& p = layers_[l];
      const std::int64_t width = p.weight.dim(1), ni = static_cast<std::int64_t>(p.row_taps.size());
      const T* in = input_row(l, i);
      T* hs = states_[l].data();
      T* cs = cells_[l].data();
      const std::int64_t cur = i % 2, prev = 1 - cur, plane = w_ * n_ * hd_;
      T* g = gathered_.data();
      for (std::int64_t t = 0; t < ni; ++t) {
        const std::int64_t x = j + p.row_taps[t];
        for (std::int64_t b = 0; b < n_; ++b) {
          T* dst = g + b * width + t * r_;
          if (x < 0)
            std::fill(dst, dst + r_, T(0));
          else
            std::copy_n(in + (x * n_ + b) * r_, r_, dst);
        }
      }
      for (std::size_t t = 0; t < p.state_taps.size(); ++t) {
        const std::int64_t x = j + p.state_taps[t];
        for (std::int64_t b = 0; b < n_; ++b) {
          T* dst = g + b * width + ni * r_ + static_cast<std::int64_t>(t) * hd_;
          if (i == 0 || x < 0 || x >= w_)
            std::fill(dst, dst + hd_, T(0));
          else
            std::copy_n(hs + prev * plane + (x * n_ + b) * hd_, hd_, dst);
        }
      }
      affine(g, width, p.weight.data(), 4 * hd_, p.bias, gates_.data());
      T* h_out = hs + cur * plane + j * n_ * hd_;
      const T* c_in = i == 0 ? nullptr : cs + prev * plane + j * n_ * hd_;
      detail::lstm_update_rows(gates_.data(), n_, hd_, c_in, cs + cur * plane + j * n_ * hd_, h_out);
      residual_out(h_out, p.residual, p.residual_bias, in + j * n_ * r_, next_input(l, layers_.size(), i, j));
    }

    // Layer l's output at (i, j) goes to the next layer's input row, or to top_ after the last.
    T* next_input(std::size_t l, std::size_t layers, std::int64_t i, std::int64_t j) {
      return l + 1 < layers ? input_row(l + 1, i) + j * n_ * r_ : top_.data();
    }

    // out [N, 2h] = in + conv1x1(h) for h [N, h]: a layer's residual output.
    void residual_out(const T* h, const Tensor<T>& weight, const T* bias, const T* in, T* out) {
      affine(h, hd_, weight.data(), r_, bias, out);
      for (std::int64_t k = 0; k < n_ * r_; ++k) out[k] = in[k] + out[k];
    }

    // A Diagonal BiLSTM's two LSTMs as products over [input (2h), state above (h), previous state
    // (h)]: the left one's previous state is (i, j - 1), the right one's (i, j + 1).
    struct PackedDiagonal {
      Tensor<T> left, right;                                // [4h, 2h + 2h]
      const T *left_bias = nullptr, *right_bias = nullptr;  // [4h] each
      Tensor<T> residual;                                   // [2h, h]
      const T* residual_bias = nullptr;                     // [2h]
    };

    PackedDiagonal pack(DiagonalBiLSTM<T>& layer) const {
      PackedDiagonal p;
      const Tensor<T>& wi = layer.weight_is.value();  // [8h, 2h, 1, 1]
      const std::int64_t g4 = 4 * hd_, width = r_ + 2 * hd_;
      const auto one = [&](const Tensor<T>& ws, std::int64_t first) {  // ws [4h, h, 2, 1]
        Tensor<T> out(Shape{g4, width});
        for (std::int64_t co = 0; co < g4; ++co) {
          T* row = out.data() + co * width;
          for (std::int64_t ci = 0; ci < r_; ++ci) row[ci] = wi[(first + co) * r_ + ci];
          for (std::int64_t t = 0; t < 2; ++t)
            for (std::int64_t ci = 0; ci < hd_; ++ci) row[r_ + t * hd_ + ci] = ws[(co * hd_ + ci) * 2 + t];
        }
        return out;
      };
      p.left = one(layer.weight_ss_left.value(), 0);
      p.right = one(layer.weight_ss_right.value(), g4);
      p.left_bias = layer.bias_is.value().data();
      p.right_bias = layer.bias_is.value().data() + g4;
      p.residual = layer.residual.weight.value().reshape({r_, hd_});
      p.residual_bias = layer.residual.bias.value().data();
      return p;
    }

    // One LSTM position of a Diagonal BiLSTM: gathers [input, above, previous] (nullptr: zeros),
    // the gates, c = f c_prev + i g (c_prev nullptr: 0) and h, written to c_out and h_out [N, h].
    void lstm_at(const Tensor<T>& weight, const T* bias, const T* input, const T* above, const T* previous,
                 const T* c_prev, T* c_out, T* h_out) {
      const std::int64_t width = r_ + 2 * hd_;
      T* g = gathered_.data();
      for (std::int64_t b = 0; b < n_; ++b) {
        T* dst = g + b * width;
        std::copy_n(input + b * r_, r_, dst);
        for (auto [src, at] : {std::pair{above, r_}, std::pair{previous, r_ + hd_}}) {
          if (src)
            std::copy_n(src + b * hd_, hd_, dst + at);
          else
            std::fill(dst + at, dst + at + hd_, T(0));
        }
      }
      affine(g, width, weight.data(), 4 * hd_, bias, gates_.data());
      detail::lstm_update_rows(gates_.data(), n_, hd_, c_prev, c_out, h_out);
    }

    // The right LSTM of diagonal layer l on row r, from its last column to its first: it reads the
    // row's inputs, its states on row r - 1 (above) and at (r, j + 1).
    void right_row(std::size_t l, std::int64_t r) {
      const PackedDiagonal& p = diagonal_[l];
      const std::int64_t plane = w_ * n_ * hd_;
      T* hs = right_[l].data();
      T* cs = cells_[l].data() + plane;  // the right LSTM's cells of row r
      const T* in = input_row(l, r);
      for (std::int64_t j = w_ - 1; j >= 0; --j) {
        const T* above = r > 0 ? hs + ((r - 1) % 2) * plane + j * n_ * hd_ : nullptr;
        const T* previous = j + 1 < w_ ? hs + (r % 2) * plane + (j + 1) * n_ * hd_ : nullptr;
        const T* c_prev = j + 1 < w_ ? cs + (j + 1) * n_ * hd_ : nullptr;
        lstm_at(p.right, p.right_bias, in + j * n_ * r_, above, previous, c_prev, cs + j * n_ * hd_,
                hs + (r % 2) * plane + j * n_ * hd_);
      }
    }

    // Diagonal layer l at (i, j): the left LSTM from the input, (i - 1, j) and (i, j - 1), then
    // x + conv1x1(L(i, j) + R(i - 1, j)) into the next layer's input row (or top_).
    void diagonal_at(std::size_t l, std::int64_t i, std::int64_t j) {
      const PackedDiagonal& p = diagonal_[l];
      const std::int64_t plane = w_ * n_ * hd_, at = j * n_ * hd_;
      T* hs = states_[l].data();
      T* cs = cells_[l].data();  // the left LSTM's cells of row i
      const T* in = input_row(l, i) + j * n_ * r_;
      T* h_out = hs + (i % 2) * plane + at;
      lstm_at(p.left, p.left_bias, in, i > 0 ? hs + ((i - 1) % 2) * plane + at : nullptr,
              j > 0 ? h_out - n_ * hd_ : nullptr, j > 0 ? cs + at - n_ * hd_ : nullptr, cs + at, h_out);
      T* both = both_.data();                                          // L(i, j) + R(i - 1, j), [N, h]
      const T* right = right_[l].data() + ((i + 1) % 2) * plane + at;  // row i - 1 of the ring
      for (std::int64_t k = 0; k < n_ * hd_; ++k) both[k] = h_out[k] + (i > 0 ? right[k] : T(0));
      residual_out(both, p.residual, p.residual_bias, in, next_input(l, diagonal_.size(), i, j));
    }

    PixelRNN& m_;
    const Tensor<T>& x_;
    std::int64_t n_, h_, w_, hd_, r_;
    std::vector<std::array<std::int64_t, 2>> taps_a_;
    Tensor<T> weight_a_;
    std::vector<Packed> layers_;
    std::vector<PackedDiagonal> diagonal_;
    // Per layer: inputs [2, W, N, 2h] (rows i - 1 and i), states and cells [2, W, N, h] (Row LSTM:
    // rows i - 1 and i; Diagonal BiLSTM: the left h of rows i - 1 and i, the left and right cells),
    // the right LSTM's h [2, W, N, h] (Diagonal BiLSTM: rows i - 2 and i - 1).
    std::vector<Tensor<T>> inputs_, states_, cells_, right_;
    Tensor<T> gathered_, gates_, top_, head1_, head2_, hidden_, both_, logits_;
  };

  PixelRNNOptions options_;
  std::vector<Var<T>> rows_, next_rows_;  // logits()'s scratch, empty between calls
};

static_assert(GenerativeModel<PixelRNN<float>> && DensityModel<PixelRNN<float>> && CompletionModel<PixelRNN<float>>);

}  // namespace genmod::models
