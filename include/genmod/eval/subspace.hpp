#pragma once
/// \file subspace.hpp
/// Principal angles between two subspaces, each given by spanning columns (not necessarily
/// orthonormal): orthonormalize both (thin QR), then the singular values of Qa^T Qb are the
/// cosines of the angles (Bjorck & Golub). The angle between a linear autoencoder's decoder and
/// the PCA subspace tells whether it found the principal subspace, whatever basis it chose in it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <type_traits>
#include <vector>

#include "genmod/config.hpp"
GENMOD_EIGEN_INCLUDE_BEGIN  // see config.hpp
#include <Eigen/Dense>
GENMOD_EIGEN_INCLUDE_END

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"

namespace genmod::eval {

/// Principal angles in degrees, ascending, between span(A) and span(B) (A, B: [D, k_a], [D, k_b]
/// with full column rank); min(k_a, k_b) angles. Sines of small angles are taken from the
/// residual of B after projection on A, so angles below 1e-4 degrees are still accurate.
/// (A template only so that its QR and SVDs, 4 s of compile time, are compiled where it is called,
/// not in every translation unit that includes this header: Matrix is always Eigen::MatrixXd.)
template <class Matrix = Eigen::MatrixXd>
std::vector<double> principal_angles_degrees(const std::type_identity_t<Matrix>& A,
                                             const std::type_identity_t<Matrix>& B) {
  if (A.rows() != B.rows() || A.cols() == 0 || B.cols() == 0)
    throw ShapeError("principal_angles_degrees: expected two bases with the same number of rows, got [" +
                     std::to_string(A.rows()) + ", " + std::to_string(A.cols()) + "] and [" + std::to_string(B.rows()) +
                     ", " + std::to_string(B.cols()) + "]");
  if (A.cols() > A.rows() || B.cols() > B.rows())
    throw ShapeError("principal_angles_degrees: a basis has more columns than rows");
  auto orthonormal = [](const Matrix& M) -> Matrix {
    Eigen::HouseholderQR<Matrix> qr(M);
    return qr.householderQ() * Matrix::Identity(M.rows(), M.cols());
  };
  const Matrix qa = orthonormal(A), qb = orthonormal(B);
  // Small angles: sines from the part of the smaller basis outside the other's span.
  const bool a_small = qa.cols() <= qb.cols();
  const Matrix& qs = a_small ? qa : qb;
  const Matrix& ql = a_small ? qb : qa;
  const Matrix residual = qs - ql * (ql.transpose() * qs);
  Eigen::JacobiSVD<Matrix> sv_sin(residual);
  Eigen::JacobiSVD<Matrix> sv_cos(ql.transpose() * qs);
  const auto m = static_cast<std::size_t>(qs.cols());
  std::vector<double> angles(m);
  const double deg = 180.0 / std::numbers::pi;
  for (std::size_t i = 0; i < m; ++i) {
    // cosines sorted descending give angles ascending; sines sorted descending give them descending.
    const double c = std::clamp(sv_cos.singularValues()(static_cast<Eigen::Index>(i)), 0.0, 1.0);
    const double s = std::clamp(sv_sin.singularValues()(static_cast<Eigen::Index>(m - 1 - i)), 0.0, 1.0);
    angles[i] = (c > std::sqrt(0.5) ? std::asin(s) : std::acos(c)) * deg;
  }
  return angles;
}

/// As above for bases stored as tensors [D, k] (a Linear decoder's weight is [out, in] = [D, k]).
template <class T>
std::vector<double> principal_angles_degrees(const Tensor<T>& A, const Tensor<T>& B) {
  check_rank("principal_angles_degrees", "basis A", A.shape(), 2, "[D, k]");  // an undefined tensor has rank 0
  check_rank("principal_angles_degrees", "basis B", B.shape(), 2, "[D, k]");
  return principal_angles_degrees(Eigen::MatrixXd(A.matrix().template cast<double>()),
                                  Eigen::MatrixXd(B.matrix().template cast<double>()));
}

}  // namespace genmod::eval
