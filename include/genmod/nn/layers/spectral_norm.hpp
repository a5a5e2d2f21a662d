#pragma once
/// \file spectral_norm.hpp
/// SpectralNorm: a Linear, Conv2d or ConvTranspose2d whose weight is divided by an estimate of its
/// largest singular value (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial
/// Networks"; PyTorch's spectral_norm), so that a discriminator built from such layers and
/// 1-Lipschitz activations is (about) 1-Lipschitz.
///
/// The weight W is viewed as a matrix W_mat [out, rest]: rows are the output channels (dimension 0
/// of Linear's [out, in] and Conv2d's [Cout, Cin, k, k]; dimension 1 of ConvTranspose2d's
/// [Cin, Cout, k, k], as PyTorch does), columns everything else. The layer keeps the buffers
/// u [out] and v [rest], estimates of the top singular vectors, and in training mode each forward
/// first runs `power_iterations` steps of
///
///     v <- normalize(W_mat^T u),   u <- normalize(W_mat v),   normalize(x) = x / max(||x||, eps)
///
/// on the current weight values, as plain arithmetic: nothing is recorded, u and v are constants
/// to the tape. Then sigma = u^T W_mat v is recorded as a function of W (d sigma / dW = u v^T,
/// which is the gradient of the true top singular value when u and v are the exact singular
/// vectors), and the layer computes its op with W / sigma. Every step is a differentiable op, so
/// second derivatives (a gradient penalty differentiating the discriminator twice) go through the
/// tape like any other. In evaluation mode the power iteration is skipped: u and v stay as they
/// are, and sigma = u^T W_mat v is still recomputed from the current W.
///
/// Names: the wrapped layer's parameters keep their own names ("weight", the unnormalised W that
/// the optimizer trains, PyTorch's weight_orig; "bias"), with no extra segment, and u and v are the
/// buffers "u" and "v": checkpoints save and restore them.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/linear.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/linear.hpp"

namespace genmod::nn {

/// Options of SpectralNorm: `nn::spectral_norm(nn::Linear(128, 1), {.power_iterations = 2})`.
struct SpectralNormOptions {
  /// Power-iteration steps per training forward (>= 1); one per step suffices in practice, since
  /// the weights move little between steps and u carries over.
  int power_iterations = 1;
  /// Floor of the norm in normalize(x) = x / max(||x||, eps) (> 0).
  double eps = 1e-12;
  /// For the initial draw of u; default_generator() when null.
  Generator* generator = nullptr;
};

/// How W is viewed as a matrix [rows, cols] with the rows along dimension `row_dim`: W's flat
/// index (a * rows + r) * inner + s is entry (r, a * inner + s), a over the dimensions before
/// row_dim and s over those after it.
struct SpectralMatrixView {
  std::int64_t outer = 1;  ///< product of the extents before row_dim
  std::int64_t rows = 1;   ///< extent of row_dim (the out dimension)
  std::int64_t inner = 1;  ///< product of the extents after row_dim
  /// Number of columns, outer * inner.
  std::int64_t cols() const noexcept { return outer * inner; }
};

/// The matrix view of a weight of shape `w` with rows along `row_dim`; `op` names the caller in
/// the ShapeError thrown for a row_dim outside [0, rank).
inline SpectralMatrixView spectral_matrix_view(const Shape& w, int row_dim, const char* op) {
  if (row_dim < 0 || row_dim >= w.rank())
    check_shape_arg(false, op, "weight", "with a dimension " + std::to_string(row_dim) + " (the rows)", w.to_string());
  SpectralMatrixView m;
  for (int d = 0; d < row_dim; ++d) m.outer *= w[d];
  m.rows = w[row_dim];
  for (int d = row_dim + 1; d < w.rank(); ++d) m.inner *= w[d];
  return m;
}

namespace detail {

/// x / max(||x||, eps) in place (the norm accumulated in double).
template <class T>
void normalize_in_place(Tensor<T>& x, double eps) {
  double sq = 0;
  for (const T e : x) sq += static_cast<double>(e) * static_cast<double>(e);
  const T inv = static_cast<T>(1.0 / std::max(std::sqrt(sq), eps));
  for (T& e : x) e *= inv;
}

/// v = W_mat^T u (v has cols entries, u rows).
template <class T>
void spectral_transposed_product(const T* w, const SpectralMatrixView& m, const T* u, T* v) {
  std::fill(v, v + m.cols(), T(0));
  for (std::int64_t a = 0; a < m.outer; ++a)
    for (std::int64_t r = 0; r < m.rows; ++r) {
      const T* row = w + (a * m.rows + r) * m.inner;
      T* out = v + a * m.inner;
      const T ur = u[r];
      for (std::int64_t s = 0; s < m.inner; ++s) out[s] += row[s] * ur;
    }
}

/// u = W_mat v (u has rows entries, v cols).
template <class T>
void spectral_product(const T* w, const SpectralMatrixView& m, const T* v, T* u) {
  std::fill(u, u + m.rows, T(0));
  for (std::int64_t a = 0; a < m.outer; ++a)
    for (std::int64_t r = 0; r < m.rows; ++r) {
      const T* row = w + (a * m.rows + r) * m.inner;
      const T* in = v + a * m.inner;
      T acc = 0;
      for (std::int64_t s = 0; s < m.inner; ++s) acc += row[s] * in[s];
      u[r] += acc;
    }
}

/// Checks that u and v fit the view of `weight`.
template <class T>
void check_singular_vectors(const char* op, const Shape& weight, const SpectralMatrixView& m, const Tensor<T>& u,
                            const Tensor<T>& v) {
  // The messages are built only on failure: this runs on every forward.
  if (u.rank() != 1 || u.numel() != m.rows)
    check_shape_arg(false, op, "u",
                    "[" + std::to_string(m.rows) + "] (the out dimension of weight " + weight.to_string() + ")",
                    u.shape().to_string());
  if (v.rank() != 1 || v.numel() != m.cols())
    check_shape_arg(false, op, "v",
                    "[" + std::to_string(m.cols()) + "] (the other dimensions of weight " + weight.to_string() + ")",
                    v.shape().to_string());
}

}  // namespace detail

/// `steps` power-iteration steps on the values of `weight` (rows along `row_dim`), updating u [rows]
/// and v [cols] in place (their buffers are kept: handles from named_buffers() see the update):
/// v <- normalize(W_mat^T u), u <- normalize(W_mat v). Plain arithmetic, nothing recorded.
template <class T>
void spectral_power_iteration(const Tensor<T>& weight, Tensor<T>& u, Tensor<T>& v, int row_dim, int steps,
                              double eps = 1e-12) {
  const SpectralMatrixView m = spectral_matrix_view(weight.shape(), row_dim, "spectral_power_iteration");
  detail::check_singular_vectors("spectral_power_iteration", weight.shape(), m, u, v);
  for (int i = 0; i < steps; ++i) {
    detail::spectral_transposed_product(weight.data(), m, u.data(), v.data());
    detail::normalize_in_place(v, eps);
    detail::spectral_product(weight.data(), m, v.data(), u.data());
    detail::normalize_in_place(u, eps);
  }
}

/// sigma = u^T W_mat v (a scalar Var) as a differentiable function of `weight` (rows along
/// `row_dim`), u and v constants: recorded as sum(W * (u v^T)) with u v^T laid out as W, so
/// d sigma / dW = u v^T and the expression differentiates again through the tape.
template <class T>
Var<T> spectral_sigma(const Var<T>& weight, const Tensor<T>& u, const Tensor<T>& v, int row_dim) {
  const SpectralMatrixView m = spectral_matrix_view(weight.shape(), row_dim, "spectral_sigma");
  detail::check_singular_vectors("spectral_sigma", weight.shape(), m, u, v);
  // A fresh tensor: the tape keeps it, and later power iterations overwrite u and v in place.
  Tensor<T> outer_product(weight.shape());
  T* p = outer_product.data();
  for (std::int64_t a = 0; a < m.outer; ++a)
    for (std::int64_t r = 0; r < m.rows; ++r) {
      const T ur = u[r];
      const T* vs = v.data() + a * m.inner;
      for (std::int64_t s = 0; s < m.inner; ++s) *p++ = ur * vs[s];
    }
  return sum(mul(weight, Var<T>(std::move(outer_product))));
}

namespace detail {

/// Which layers SpectralNorm wraps, and the dimension of their weight that holds the outputs.
template <class Inner>
struct SpectralNormTraits {
  static constexpr bool supported = false;
};
template <class T>
struct SpectralNormTraits<Linear<T>> {
  static constexpr bool supported = true;
  static constexpr int row_dim = 0;  // [out, in]
};
template <class T>
struct SpectralNormTraits<Conv2d<T>> {
  static constexpr bool supported = true;
  static constexpr int row_dim = 0;  // [Cout, Cin, k, k]
};
template <class T>
struct SpectralNormTraits<ConvTranspose2d<T>> {
  static constexpr bool supported = true;
  static constexpr int row_dim = 1;  // [Cin, Cout, k, k]: the outputs are dimension 1, as in PyTorch
};

}  // namespace detail

/// A Linear, Conv2d or ConvTranspose2d computed with its weight divided by the spectral-norm
/// estimate sigma (see the file comment). Copies share the weights and the u, v buffers.
template <class Inner>
class SpectralNorm : public Layer<typename Inner::value_type> {
  static_assert(detail::SpectralNormTraits<Inner>::supported,
                "nn::SpectralNorm wraps nn::Linear, nn::Conv2d or nn::ConvTranspose2d. nn::MaskedConv2d is not "
                "supported: the taps its mask skips would still enter sigma.");

 public:
  /// The scalar type of the wrapped layer.
  using T = typename Inner::value_type;
  /// The dimension of the weight that holds the outputs (the rows of W_mat).
  static constexpr int row_dim = detail::SpectralNormTraits<Inner>::row_dim;

  /// Wraps `inner`, sharing its parameters. u is a normal draw, normalised; v = normalize(W_mat^T u),
  /// so that the first estimate sigma = u^T W_mat v = ||W_mat^T u|| is positive even in
  /// evaluation mode before any training forward.
  explicit SpectralNorm(Inner inner, SpectralNormOptions options = {}) : inner_(std::move(inner)), options_(options) {
    check_at_least("SpectralNorm", "power_iterations", options.power_iterations, 1);
    check_positive("SpectralNorm", "eps", options.eps);
    const SpectralMatrixView m = spectral_matrix_view(inner_.weight.shape(), row_dim, "SpectralNorm");
    Generator& g = options.generator ? *options.generator : default_generator();
    u = randn<T>(Shape{m.rows}, g);
    detail::normalize_in_place(u, options.eps);
    v = Tensor<T>(Shape{m.cols()});
    detail::spectral_transposed_product(inner_.weight.value().data(), m, u.data(), v.data());
    detail::normalize_in_place(v, options.eps);
    sigma_ = current_sigma();
  }

  /// The wrapped layer's output with W / sigma in place of W; in training mode u and v first take
  /// `power_iterations` steps on the current W. Same input shapes (and shape errors) as the
  /// wrapped layer.
  Var<T> forward(const Var<T>& x) override {
    if (this->is_training())
      spectral_power_iteration(inner_.weight.value(), u, v, row_dim, options_.power_iterations, options_.eps);
    const Var<T> sigma = spectral_sigma(inner_.weight.var(), u, v, row_dim);
    sigma_ = sigma.value().item();
    if constexpr (std::is_same_v<Inner, Linear<T>>) {
      const std::int64_t in = inner_.in_features();
      if (x.rank() != 2 || x.dim(1) != in)
        throw ShapeError("SpectralNorm(Linear(" + std::to_string(in) + " -> " + std::to_string(inner_.out_features()) +
                         ")): expected input [N, " + std::to_string(in) + "], got " + x.shape().to_string());
      return linear(x, div(inner_.weight.var(), sigma), inner_.bias.defined() ? inner_.bias.var() : Var<T>());
    } else {
      // The convolution layers keep stride and padding private, so W / sigma cannot be handed to
      // the op; a convolution is bilinear, conv(x / sigma, W) = conv(x, W / sigma), so the input
      // is scaled instead (the bias is added after, unscaled, in both forms).
      return inner_.forward(div(x, sigma));
    }
  }

  /// Lists the wrapped layer's parameters under its own names ("weight", "bias") and the buffers
  /// "u" and "v".
  void visit(ModuleVisitor<T>& visitor) override {
    visitor.child("", inner_);
    visitor.buffer("u", u);
    visitor.buffer("v", v);
  }

  /// The estimate of the largest singular value of W_mat from the last forward (from the
  /// constructor before any).
  T sigma() const noexcept { return sigma_; }

  /// W / (u^T W_mat v) with the current u and v: the weight an evaluation-mode forward uses.
  Tensor<T> normalized_weight() const {
    const T s = current_sigma();
    Tensor<T> w = inner_.weight.value().clone();
    for (T& e : w) e /= s;
    return w;
  }

  /// The wrapped layer (its `weight` is the unnormalised W).
  Inner& inner() noexcept { return inner_; }
  /// The wrapped layer, read-only.
  const Inner& inner() const noexcept { return inner_; }
  /// The options, as constructed.
  const SpectralNormOptions& options() const noexcept { return options_; }

  /// Left singular vector estimate [out], a buffer (saved, not trained): write with copy_from.
  Tensor<T> u;
  /// Right singular vector estimate [rest], a buffer: write with copy_from.
  Tensor<T> v;

 private:
  /// u^T W_mat v on the values, accumulated in double.
  T current_sigma() const {
    const Tensor<T>& w = inner_.weight.value();
    const SpectralMatrixView m = spectral_matrix_view(w.shape(), row_dim, "SpectralNorm");
    double s = 0;
    for (std::int64_t a = 0; a < m.outer; ++a)
      for (std::int64_t r = 0; r < m.rows; ++r) {
        const T* row = w.data() + (a * m.rows + r) * m.inner;
        const T* vs = v.data() + a * m.inner;
        double acc = 0;
        for (std::int64_t k = 0; k < m.inner; ++k) acc += static_cast<double>(row[k]) * static_cast<double>(vs[k]);
        s += static_cast<double>(u[r]) * acc;
      }
    return static_cast<T>(s);
  }

  Inner inner_;
  SpectralNormOptions options_;
  T sigma_ = T(0);
};

/// `inner` wrapped in a SpectralNorm: `nn::spectral_norm(nn::Conv2d(64, 128, 4, {.stride = 2}))`.
template <class Inner>
SpectralNorm<Inner> spectral_norm(Inner inner, SpectralNormOptions options = {}) {
  return SpectralNorm<Inner>(std::move(inner), options);
}

}  // namespace genmod::nn
