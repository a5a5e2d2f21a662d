#pragma once
/// \file pca.hpp
/// PCA<T>: principal component analysis, the linear baseline of the autoencoder family.
///
/// fit(x, k) centres the rows of x, forms the covariance C = Xc^T Xc / (N - 1) in double (row
/// blocks, so 60,000 x 784 needs no double copy of the data), and keeps the eigenvectors of the k
/// largest eigenvalues (Eigen's SelfAdjointEigenSolver). encode(x) = (x - mean) W, decode(z) =
/// z W^T + mean, with W [D, k] orthonormal: the best rank-k reconstruction in squared error, which
/// is what a linear autoencoder trained with squared error converges to (up to a basis change).

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/Dense>
GENMOD_EIGEN_INCLUDE_END

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::models {

/// Principal component analysis by the covariance's eigendecomposition (in double): the linear
/// autoencoder's closed form, for comparison with a trained linear Autoencoder.
template <class T = float>
class PCA {
 public:
  /// Fits the top-k principal subspace of the rows of x [N, D] (any rank >= 2, flattened per row).
  static PCA fit(const Tensor<T>& x, std::int64_t k) {
    if (!x.defined() || x.rank() < 2)
      throw ShapeError("PCA::fit: expected data [N, D], got " +
                       (x.defined() ? x.shape().to_string() : std::string("an undefined tensor")));
    const std::int64_t n = x.dim(0), d = x.numel() / std::max<std::int64_t>(n, 1);
    check_dim_at_least("PCA::fit", "data", x.shape(), 0, 2, "rows");
    check_in_range("PCA::fit", "k", k, std::int64_t{1}, d);
    const auto X = x.matrix();  // [N, D] row-major view
    PCA p;
    p.mean_ = X.template cast<double>().colwise().mean().transpose();
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(d, d);
    constexpr std::int64_t block = 2048;
    for (std::int64_t s = 0; s < n; s += block) {
      const std::int64_t b = std::min(block, n - s);
      Eigen::MatrixXd xc = X.middleRows(s, b).template cast<double>();
      xc.rowwise() -= p.mean_.transpose();
      cov.template selfadjointView<Eigen::Lower>().rankUpdate(xc.transpose());
    }
    cov = cov.template selfadjointView<Eigen::Lower>();
    cov /= static_cast<double>(n - 1);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
    if (eig.info() != Eigen::Success) throw NumericError("PCA::fit: the eigendecomposition did not converge");
    // Eigen sorts eigenvalues in increasing order: the top k are the last k columns.
    p.components_.resize(d, k);
    p.variance_.resize(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) {
      p.components_.col(j) = eig.eigenvectors().col(d - 1 - j);
      p.variance_[static_cast<std::size_t>(j)] = std::max(0.0, eig.eigenvalues()(d - 1 - j));
    }
    p.total_variance_ = std::max(0.0, eig.eigenvalues().sum());
    return p;
  }

  /// Codes (x - mean) W, [N, k].
  Tensor<T> encode(const Tensor<T>& x) const {
    check_rows(x, "PCA::encode");
    Tensor<T> z(Shape{x.dim(0), k()});
    Eigen::MatrixXd xc = x.matrix().template cast<double>();
    xc.rowwise() -= mean_.transpose();
    z.matrix() = (xc * components_).template cast<T>();
    return z;
  }

  /// Reconstructions z W^T + mean, [N, D].
  Tensor<T> decode(const Tensor<T>& z) const {
    if (!z.defined() || z.rank() != 2 || z.dim(1) != k())
      throw ShapeError("PCA::decode: expected codes [N, " + std::to_string(k()) + "], got " +
                       (z.defined() ? z.shape().to_string() : std::string("an undefined tensor")));
    Tensor<T> x(Shape{z.dim(0), dim()});
    Eigen::MatrixXd r = z.matrix().template cast<double>() * components_.transpose();
    r.rowwise() += mean_.transpose();
    x.matrix() = r.template cast<T>();
    return x;
  }

  /// Principal directions as orthonormal columns, [D, k], by decreasing variance.
  const Eigen::MatrixXd& components() const noexcept { return components_; }
  /// The data mean, [D].
  const Eigen::VectorXd& mean() const noexcept { return mean_; }
  /// Variance along each component (the covariance's eigenvalues), decreasing.
  const std::vector<double>& explained_variance() const noexcept { return variance_; }
  /// Share of the total variance the k components keep.
  double explained_variance_ratio() const {
    double s = 0;
    for (double v : variance_) s += v;
    return total_variance_ > 0 ? s / total_variance_ : 0.0;
  }
  /// Number of components k.
  std::int64_t k() const noexcept { return components_.cols(); }
  /// Data dimension D.
  std::int64_t dim() const noexcept { return components_.rows(); }

 private:
  void check_rows(const Tensor<T>& x, const char* op) const {
    if (!x.defined() || x.rank() < 2 || x.numel() / std::max<std::int64_t>(x.dim(0), 1) != dim())
      throw ShapeError(std::string(op) + ": expected rows of " + std::to_string(dim()) + " values, got " +
                       (x.defined() ? x.shape().to_string() : std::string("an undefined tensor")));
  }

  Eigen::MatrixXd components_;
  Eigen::VectorXd mean_;
  std::vector<double> variance_;
  double total_variance_ = 0;
};

}  // namespace genmod::models

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::models::PCA, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::models::PCA, double)
#endif
