#pragma once
/// \file invertible_1x1_conv.hpp
/// Invertible1x1Conv: Glow's learned mixing of the channels, a C x C matrix W applied at every
/// position, in the LU parameterisation that makes its log-determinant cheap.
///
///   W = P L (U + diag(sign e^log_s))     P a fixed permutation, L unit lower triangular,
///                                        U strictly upper triangular, sign fixed in {-1, 1}
///   y[n, :, i, j] = W x[n, :, i, j],     log |det dy/dx| = H W sum(log_s)  (sum(log_s) for [N, C])
/// W starts as a random rotation (the QR factor of a Gaussian matrix), factored once by LU with
/// partial pivoting. The inverse applies W^-1, computed from the current W in double (sampling
/// needs no gradient through it: inverse is a constant map of y with respect to the parameters).

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/LU>
#include <Eigen/QR>
GENMOD_EIGEN_INCLUDE_END
#include <cmath>
#include <cstdint>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"

namespace genmod::flows {

/// Glow's invertible 1 x 1 convolution in LU form (see the file comment).
template <class T = float>
class Invertible1x1Conv : public BijectorModule<T> {
 public:
  /// For samples of shape `event` ([C] or [C, H, W], C >= 2); W drawn from `g` (genmod's default
  /// generator if null).
  explicit Invertible1x1Conv(const Shape& event, Generator* g = nullptr) : event_(event) {
    check_rank("flows::Invertible1x1Conv", "the event shape", event, {1, 3}, "[C] or [C, H, W]");
    check_dim_at_least("flows::Invertible1x1Conv", "the event shape", event, 0, 2);
    const std::int64_t c = event[0];
    Generator& gen = g ? *g : default_generator();
    const Tensor<double> gauss = randn<double>(Shape{c, c}, gen);
    Eigen::MatrixXd a(c, c);
    for (std::int64_t r = 0; r < c; ++r)
      for (std::int64_t k = 0; k < c; ++k) a(r, k) = gauss[r * c + k];
    const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(a).householderQ();
    const Eigen::PartialPivLU<Eigen::MatrixXd> lu(q);  // P0 q = L U, so q = P0^T L U
    const Eigen::MatrixXd p = lu.permutationP().transpose().toDenseMatrix().cast<double>();
    const Eigen::MatrixXd packed = lu.matrixLU();
    Tensor<T> pm(Shape{c, c}), l(Shape{c, c}), u(Shape{c, c}), ls(Shape{c});
    sign_ = Tensor<T>(Shape{c});
    lower_ = Tensor<T>(Shape{c, c});
    upper_ = Tensor<T>(Shape{c, c});
    eye_ = Tensor<T>(Shape{c, c});
    for (std::int64_t r = 0; r < c; ++r)
      for (std::int64_t k = 0; k < c; ++k) {
        pm[r * c + k] = static_cast<T>(p(r, k));
        l[r * c + k] = r > k ? static_cast<T>(packed(r, k)) : T(0);
        u[r * c + k] = r < k ? static_cast<T>(packed(r, k)) : T(0);
        lower_[r * c + k] = static_cast<T>(r > k);
        upper_[r * c + k] = static_cast<T>(r < k);
        eye_[r * c + k] = static_cast<T>(r == k);
      }
    for (std::int64_t k = 0; k < c; ++k) {
      sign_[k] = packed(k, k) < 0 ? T(-1) : T(1);
      ls[k] = static_cast<T>(std::log(std::abs(packed(k, k))));
    }
    permutation_ = std::move(pm);
    lower = Parameter<T>(std::move(l));
    upper = Parameter<T>(std::move(u));
    log_s = Parameter<T>(std::move(ls));
  }

  /// {W x at every position, (D / C) sum(log_s) per sample}.
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::Invertible1x1Conv", "x", x.shape(), event_);
    const T per_channel = static_cast<T>(event_.numel() / event_[0]);
    return {apply(x, weight()), broadcast_to(scale(sum(log_s.var()), per_channel), Shape{x.dim(0)})};
  }

  /// W^-1 y at every position (W^-1 from the current parameters, a constant).
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::Invertible1x1Conv::inverse", "y", y.shape(), event_);
    const std::int64_t c = event_[0];
    Tensor<T> w;
    {
      NoGradGuard no_grad;
      w = weight().value();
    }
    Eigen::MatrixXd m(c, c);
    for (std::int64_t r = 0; r < c; ++r)
      for (std::int64_t k = 0; k < c; ++k) m(r, k) = static_cast<double>(w[r * c + k]);
    const Eigen::MatrixXd inv = m.partialPivLu().inverse();
    Tensor<T> wi(Shape{c, c});
    for (std::int64_t r = 0; r < c; ++r)
      for (std::int64_t k = 0; k < c; ++k) wi[r * c + k] = static_cast<T>(inv(r, k));
    return apply(y, Var<T>(std::move(wi)));
  }

  /// W = P L (U + diag(sign e^log_s)) as a Var (gradients reach lower, upper and log_s).
  Var<T> weight() const {
    const std::int64_t c = event_[0];
    const Var<T> l = add(mul(lower.var(), Var<T>(lower_)), Var<T>(eye_));
    const Var<T> diag = mul(Var<T>(eye_), reshape(mul(Var<T>(sign_), exp(log_s.var())), Shape{1, c}));
    const Var<T> u = add(mul(upper.var(), Var<T>(upper_)), diag);
    return matmul(Var<T>(permutation_), matmul(l, u));
  }

  /// Lists "lower", "upper", "log_s" and the buffers "permutation", "sign".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.param("lower", lower);
    v.param("upper", upper);
    v.param("log_s", log_s);
    v.buffer("permutation", permutation_);
    v.buffer("sign", sign_);
  }

  Parameter<T> lower;  ///< L below the diagonal (the rest is masked out; L has a unit diagonal)
  Parameter<T> upper;  ///< U above the diagonal (the rest is masked out)
  Parameter<T> log_s;  ///< log |diagonal of U|, [C]

 private:
  // m applied to the channel vector at every position of z.
  Var<T> apply(const Var<T>& z, const Var<T>& m) const {
    const std::int64_t c = event_[0];
    if (event_.rank() == 1) return matmul(z, transpose(m));
    return conv2d(z, reshape(m, Shape{c, c, 1, 1}));
  }

  Shape event_;
  Tensor<T> permutation_, sign_;   // saved: the fixed parts of the factorisation
  Tensor<T> lower_, upper_, eye_;  // masks, rebuilt by the constructor
};

}  // namespace genmod::flows

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::Invertible1x1Conv, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::Invertible1x1Conv, double)
#endif
