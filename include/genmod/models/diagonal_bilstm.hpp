#pragma once
/// \file diagonal_bilstm.hpp
/// The Diagonal BiLSTM layer of PixelRNN (van den Oord, Kalchbrenner, Kavukcuoglu 2016, "Pixel
/// Recurrent Neural Networks", section 3.2): two LSTMs that sweep the image along its diagonals,
/// one from the left and one from the right, whose states together see the pixels before the
/// current one: no blind spot above-right as Row LSTM and PixelCNN have (models/pixel_rnn.hpp uses
/// it when PixelRNNOptions::layer says so).
///
/// With x the layer's input [N, F, H, W] and h state units per direction:
///   left   L(i, j) = LSTM(K_L x(i, j), L(i - 1, j), L(i, j - 1))      cell from (i, j - 1)
///   right  R(i, j) = LSTM(K_R x(i, j), R(i - 1, j), R(i, j + 1))      cell from (i, j + 1)
///   out(i, j) = x(i, j) + conv1x1(L(i, j) + R(i - 1, j))              R shifted down one row
/// where LSTM(s, a, b) takes the gates [o, f, i, g] = s + S_a a + S_b b (K: the 1x1 input-to-state,
/// S_a and S_b the two taps of the 2 x 1 state-to-state kernel), c = sigmoid(f) . c_prev +
/// sigmoid(i) . tanh(g) and h = sigmoid(o) . tanh(c); states outside the image are 0.
///
/// Why diagonals: L(i, j) reads L(i - 1, j) and L(i, j - 1), which both lie on the previous
/// anti-diagonal i + j - 1, so a whole anti-diagonal is one step. The paper skews the map (row i
/// moved i columns right) so that an anti-diagonal becomes a column of H pixels; the state-to-state
/// kernel is then a 2 x 1 convolution over the previous column (rows i - 1 and i). The right LSTM
/// sweeps the diagonals i - j in the mirrored order: it skews row i by H - 1 - i instead and runs
/// from the last column to the first (no flip of the image is needed). Positions of the skewed
/// columns outside the image keep a zero state, so (i, 0) starts its row from zero as (0, j) does.
///
/// Causality: L(i, j) reads x at (y, x') with y <= i and x' <= j (the left LSTM's quarter plane),
/// R(i - 1, j) reads x at rows <= i - 1 and columns >= j. With x(i, j) itself causal (the mask-A
/// layer below excludes pixel (i, j)), out(i, j) reads nothing at or after (i, j) and every pixel
/// before it but one: the last pixel of the row above, (i - 1, W - 1), for j < W - 1 - k0 / 2 (k0
/// the mask-A kernel). Each x on row i - 1 excludes its own pixel and those right of it, so no
/// input the right LSTM reads contains the row's last pixel; only the mask-A kernel at row i,
/// columns >= W - 1 - k0 / 2, reaches it, and stacking layers does not change that.
/// tests/models/diagonal_bilstm_test.cpp checks this field exactly.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/models/lstm_gates.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::models {

/// A residual Diagonal BiLSTM layer (see the file comment): x [N, F, H, W] -> x +
/// conv1x1(L + shift_down(R)).
template <class T = float>
class DiagonalBiLSTM : public nn::Layer<T> {
 public:
  /// A layer over `features` input channels with `hidden` state units per direction, weights
  /// initialized as PyTorch's Conv2d of their shapes (from `generator`, or genmod's default
  /// generator when null).
  DiagonalBiLSTM(std::int64_t features, std::int64_t hidden, Generator* generator = nullptr)
      : residual(check_sizes(features, hidden), features, 1, {.generator = generator}), hidden_(hidden) {
    Parameter<T> unused_left, unused_right;
    nn::detail::init_conv(weight_is, bias_is, Shape{8 * hidden, features, 1, 1}, 8 * hidden, true, generator);
    nn::detail::init_conv(weight_ss_left, unused_left, Shape{4 * hidden, hidden, 2, 1}, 4 * hidden, false, generator);
    nn::detail::init_conv(weight_ss_right, unused_right, Shape{4 * hidden, hidden, 2, 1}, 4 * hidden, false, generator);
  }

  /// The states of both directions, each [N, hidden, H, W]: left L(i, j) and right R(i, j), the
  /// latter not yet shifted (ShapeError for an input that is not [N, features, H, W]).
  std::array<Var<T>, 2> states(const Var<T>& x) {
    check_input(x.shape());
    const std::int64_t g4 = 4 * hidden_;
    const Var<T> s = conv2d(x, weight_is.var(), bias_is.var());  // [N, 8h, H, W]: both directions' inputs
    return {sweep(slice(s, 1, 0, g4), weight_ss_left.var(), false),
            sweep(slice(s, 1, g4, g4), weight_ss_right.var(), true)};
  }

  /// x + conv1x1(L + R shifted down one row): [N, features, H, W] -> the same shape.
  Var<T> forward(const Var<T>& x) override {
    const auto [left, right] = states(x);
    const std::int64_t n = x.dim(0), hgt = x.dim(2), w = x.dim(3);
    Var<T> combined = left;
    if (hgt > 1) {
      const Var<T> shifted =
          concat({Var<T>(zeros<T>(Shape{n, hidden_, 1, w})), slice(right, 2, 0, hgt - 1)}, 2);  // R(i - 1, j)
      combined = add(left, shifted);
    }
    return add(x, residual(combined));
  }

  /// Lists weight_is, bias_is, weight_ss_left, weight_ss_right and residual.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("weight_is", weight_is), v.param("bias_is", bias_is);
    v.param("weight_ss_left", weight_ss_left), v.param("weight_ss_right", weight_ss_right);
    v.child("residual", residual);
  }

  /// h, the number of state units per direction.
  std::int64_t hidden_size() const noexcept { return hidden_; }

  Parameter<T> weight_is;        ///< [8h, features, 1, 1]: gates o, f, i, g of the left, then the right LSTM
  Parameter<T> bias_is;          ///< [8h]
  Parameter<T> weight_ss_left;   ///< [4h, h, 2, 1]: taps on the state above (row i - 1) and the previous one
  Parameter<T> weight_ss_right;  ///< [4h, h, 2, 1]: the same for the right LSTM
  nn::Conv2d<T> residual;        ///< 1x1, h -> features

 private:
  static std::int64_t check_sizes(std::int64_t features, std::int64_t hidden) {
    check_positive("models::DiagonalBiLSTM", "features", features);
    check_positive("models::DiagonalBiLSTM", "hidden", hidden);
    return hidden;
  }

  void check_input(const Shape& x) const {
    constexpr const char* op = "models::DiagonalBiLSTM";
    check_rank(op, "x", x, 4, "[N, features, H, W]");
    check_dim(op, "x", x, 1, weight_is.shape()[1], "features");
  }

  // Skewed column of row i: i (left LSTM) or H - 1 - i (right LSTM) columns right of the image's.
  static std::int64_t offset(std::int64_t i, std::int64_t height, bool right) { return right ? height - 1 - i : i; }

  // One direction's states [N, h, H, W] from its input-to-state map s [N, 4h, H, W] and its 2 x 1
  // state-to-state kernel: skew, sweep the T = W + H - 1 columns (the right LSTM from the last),
  // unskew. The skewed maps are kept column-major ([T, N, C, H]), so that a column is one
  // contiguous block (its slice and the slice's gradient are single copies).
  Var<T> sweep(const Var<T>& s, const Var<T>& weight_ss, bool right) {
    const std::int64_t n = s.dim(0), hgt = s.dim(2), w = s.dim(3), hd = hidden_, cols = w + hgt - 1;
    // Skew: row i of s at columns offset(i) .. offset(i) + W - 1 of an [N, 4h, H, T] map.
    // rows_ and columns_ are members emptied after use, so that their capacity is reused: a
    // training step calls no allocator.
    std::vector<Var<T>>& rows = rows_;
    rows.clear();
    for (std::int64_t i = 0; i < hgt; ++i) {
      const std::int64_t o = offset(i, hgt, right);
      std::array<Var<T>, 3> parts;
      std::size_t np = 0;
      if (o > 0) parts[np++] = Var<T>(zeros<T>(Shape{n, 4 * hd, 1, o}));
      parts[np++] = slice(s, 2, i, 1);
      if (cols - o - w > 0) parts[np++] = Var<T>(zeros<T>(Shape{n, 4 * hd, 1, cols - o - w}));
      rows.push_back(concat(std::span<const Var<T>>(parts.data(), np), 3));
    }
    constexpr std::array<int, 4> to_columns{3, 0, 1, 2}, from_columns{1, 2, 3, 0};
    const Var<T> skewed = permute(concat(std::span<const Var<T>>(rows), 2), to_columns);  // [T, N, 4h, H]
    // The 2 x 1 state kernel as the top two taps of a 3 x 1 frame centred on row i, padded by one
    // row: output row i reads rows i - 1 and i of the previous column.
    const Var<T> frame = concat({weight_ss, Var<T>(zeros<T>(Shape{4 * hd, hd, 1, 1}))}, 2);
    kernels::Conv2dGeometry g =
        conv2d_geometry_for(Shape{n, hd, hgt, 1}, Shape{4 * hd, hd, 1, 1}, {}, "models::DiagonalBiLSTM");
    g.kh = 3, g.pad_h = 1;
    const std::array<bool, 3> keep{true, true, false};
    g.set_mask(std::span<const bool>(keep.data(), keep.size()));
    const std::vector<Tensor<T>>& inside = column_masks(n, hgt, w, right);
    std::vector<Var<T>>& hs = columns_;
    hs.assign(static_cast<std::size_t>(cols), Var<T>());
    Var<T> h, c;
    for (std::int64_t step = 0; step < cols; ++step) {
      const std::int64_t col = right ? cols - 1 - step : step;
      Var<T> gates = reshape(slice(skewed, 0, col, 1), Shape{n, 4 * hd, hgt, 1});
      if (step > 0) gates = add(gates, conv2d_geometry(g, h, frame, Var<T>()));
      const std::array<Var<T>, 2> next = detail::lstm_update(gates, c, hd);
      h = next[0], c = next[1];
      // Rows whose pixel in this column lies outside the image keep a zero state.
      const Var<T> m(inside[static_cast<std::size_t>(col)]);
      c = mul(c, m), h = mul(h, m);
      hs[static_cast<std::size_t>(col)] = reshape(h, Shape{1, n, hd, hgt});
    }
    // Unskew: row i of the states from columns offset(i) .. offset(i) + W - 1.
    const Var<T> map = permute(concat(std::span<const Var<T>>(hs), 0), from_columns);  // [N, h, H, T]
    for (std::int64_t i = 0; i < hgt; ++i)
      rows[static_cast<std::size_t>(i)] = slice(slice(map, 2, i, 1), 3, offset(i, hgt, right), w);
    Var<T> states = concat(std::span<const Var<T>>(rows), 2);
    rows.clear(), hs.clear();
    return states;
  }

  // Per skewed column, [N, h, H, 1]: 1 where row i's pixel of the column is inside the image (the
  // full shape, so that the product is a plain elementwise one). Kept between calls per shape.
  const std::vector<Tensor<T>>& column_masks(std::int64_t n, std::int64_t hgt, std::int64_t w, bool right) {
    std::vector<Tensor<T>>& masks = masks_[right ? 1 : 0];
    const Shape key{n, hgt, w};
    if (mask_keys_[right ? 1 : 0] == key && !masks.empty()) return masks;
    masks.clear();
    for (std::int64_t col = 0; col < w + hgt - 1; ++col) {
      Tensor<T> m = zeros<T>(Shape{n, hidden_, hgt, 1});
      for (std::int64_t i = 0; i < hgt; ++i) {
        const std::int64_t j = col - offset(i, hgt, right);
        if (j < 0 || j >= w) continue;
        for (std::int64_t b = 0; b < n * hidden_; ++b) m[b * hgt + i] = T(1);
      }
      masks.push_back(std::move(m));
    }
    mask_keys_[right ? 1 : 0] = key;
    return masks;
  }

  std::vector<Var<T>> rows_, columns_;           // sweep()'s scratch, empty between calls
  std::array<std::vector<Tensor<T>>, 2> masks_;  // column_masks of the left and right LSTM
  std::array<Shape, 2> mask_keys_;
  std::int64_t hidden_;
};

}  // namespace genmod::models
