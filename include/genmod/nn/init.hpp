#pragma once
/// \file init.hpp
/// Parameter initializers, with PyTorch's formulas so that parity runs start from the same
/// distributions: Xavier/Glorot and Kaiming/He (uniform and normal), orthogonal, zeros, constant.
///
/// fan_in and fan_out of a weight [out, in, kh, kw] are in*kh*kw and out*kh*kw.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/QR>
GENMOD_EIGEN_INCLUDE_END

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::nn::init {

/// fan_in and fan_out of a weight: the number of inputs and of outputs each unit connects to.
struct Fans {
  ///@{
  /// Inputs (in) and outputs (out) per unit, each times the receptive field (kh * kw).
  std::int64_t in, out;
  ///@}
};

/// fan_in and fan_out of a weight tensor (rank >= 2: [out, in, receptive...]).
inline Fans fans(const Shape& s) {
  check_min_rank("init::fans", "weight", s, 2, "[out, in, ...]");
  std::int64_t receptive = 1;
  for (int i = 2; i < s.rank(); ++i) receptive *= s[i];
  return {s[1] * receptive, s[0] * receptive};
}

/// Gain of a nonlinearity ("linear", "sigmoid", "tanh", "relu", "leaky_relu" with slope a), as
/// torch.nn.init.calculate_gain.
inline double gain(const std::string& nonlinearity, double a = 0.01) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity == "conv") return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + a * a));
  throw ValueError("init::gain: unknown nonlinearity '" + nonlinearity + "'");
}

/// Fills t with U(lo, hi) draws from g.
template <class T>
void uniform(Tensor<T>& t, Generator& g, double lo, double hi) {
  fill_uniform(t, g, static_cast<T>(lo), static_cast<T>(hi));
}
/// Fills t with N(mean, stddev^2) draws from g.
template <class T>
void normal(Tensor<T>& t, Generator& g, double mean, double stddev) {
  fill_normal(t, g, static_cast<T>(mean), static_cast<T>(stddev));
}
/// Sets every element of t to v (converted to T).
template <class T>
void constant(Tensor<T>& t, double v) {
  t.fill(static_cast<T>(v));
}
/// Sets every element of t to zero (biases, residual branches started at identity).
template <class T>
void zeros(Tensor<T>& t) {
  t.fill(T(0));
}

/// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
template <class T>
void xavier_uniform(Tensor<T>& t, Generator& g, double gain = 1.0) {
  const Fans f = fans(t.shape());
  const double b = gain * std::sqrt(6.0 / static_cast<double>(f.in + f.out));
  uniform(t, g, -b, b);
}
/// N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out)).
template <class T>
void xavier_normal(Tensor<T>& t, Generator& g, double gain = 1.0) {
  const Fans f = fans(t.shape());
  normal(t, g, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.in + f.out)));
}

/// Which fan the Kaiming initializers scale by: fan_in keeps the forward activations' variance,
/// fan_out the backward gradients'.
enum class FanMode { fan_in, fan_out };

/// U(-b, b), b = gain(nonlinearity, a) * sqrt(3 / fan).
template <class T>
void kaiming_uniform(Tensor<T>& t, Generator& g, double a = 0.0, FanMode mode = FanMode::fan_in,
                     const std::string& nonlinearity = "leaky_relu") {
  const Fans f = fans(t.shape());
  const double fan = static_cast<double>(mode == FanMode::fan_in ? f.in : f.out);
  const double b = gain(nonlinearity, a) * std::sqrt(3.0 / fan);
  uniform(t, g, -b, b);
}
/// N(0, s^2), s = gain(nonlinearity, a) / sqrt(fan).
template <class T>
void kaiming_normal(Tensor<T>& t, Generator& g, double a = 0.0, FanMode mode = FanMode::fan_in,
                    const std::string& nonlinearity = "leaky_relu") {
  const Fans f = fans(t.shape());
  const double fan = static_cast<double>(mode == FanMode::fan_in ? f.in : f.out);
  normal(t, g, 0.0, gain(nonlinearity, a) / std::sqrt(fan));
}

/// A (semi-)orthogonal matrix times gain (Saxe et al. 2014; torch.nn.init.orthogonal_): the
/// weight viewed as [rows = dim 0, cols = the rest] has orthonormal rows (rows <= cols) or
/// orthonormal columns (rows > cols). Drawn as the Q of a QR factorization of a Gaussian matrix,
/// with the signs of R's diagonal folded in so that Q is uniformly (Haar) distributed.
template <class T>
void orthogonal(Tensor<T>& t, Generator& g, double gain = 1.0) {
  if (!t.defined() || t.rank() < 2)
    throw ShapeError("init::orthogonal: expected a weight of rank >= 2, got " +
                     (t.defined() ? t.shape().to_string() : std::string("an undefined tensor")));
  const std::int64_t rows = t.dim(0), cols = t.numel() / rows;
  const std::int64_t tall = std::max(rows, cols), narrow = std::min(rows, cols);
  Tensor<double> gauss(Shape{tall, narrow});
  fill_normal(gauss, g, 0.0, 1.0);
  Eigen::MatrixXd a = gauss.matrix();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(tall, narrow);
  const Eigen::MatrixXd r = qr.matrixQR().topRows(narrow).template triangularView<Eigen::Upper>();
  for (std::int64_t j = 0; j < narrow; ++j)
    if (r(j, j) < 0) q.col(j) = -q.col(j);
  q *= gain;
  auto m = t.matrix();  // [rows, cols] row-major view
  if (rows >= cols)
    m = q.template cast<T>();
  else
    m = q.transpose().template cast<T>();
}

/// PyTorch's default for Linear and Conv weights: kaiming_uniform with a = sqrt(5), which is
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
template <class T>
void default_weight(Tensor<T>& t, Generator& g) {
  kaiming_uniform(t, g, std::sqrt(5.0));
}
/// PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in.
template <class T>
void default_bias(Tensor<T>& t, Generator& g, std::int64_t fan_in) {
  const double b = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  uniform(t, g, -b, b);
}

}  // namespace genmod::nn::init

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_TEMPLATE void genmod::nn::init::orthogonal<float>(genmod::Tensor<float>&, genmod::Generator&, double);
GENMOD_DETAIL_TEMPLATE void genmod::nn::init::orthogonal<double>(genmod::Tensor<double>&, genmod::Generator&, double);
#endif
