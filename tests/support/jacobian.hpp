#pragma once
// The brute-force check of a flow step's log-determinant: the whole Jacobian of one sample,
// row by row from the tape, and its log |det| from an LU factorisation, in double.

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"

namespace genmod::test {

/// log |det J| of the map y = f(x_i) for each sample x_i of x [N, ...], where f maps a batch
/// [1, ...] to a batch of the same size (a Var). J is D x D (D the dimensions of one sample),
/// built from D tape gradients; its determinant from the LU diagonal (no overflow for D <= 64).
template <class F>
std::vector<double> tape_log_abs_det(F f, const Tensor<double>& x) {
  std::vector<double> out;
  const std::int64_t n = x.dim(0), d = x.numel() / n;
  for (std::int64_t i = 0; i < n; ++i) {
    Tape<double> tape;
    const Var<double> xi = tape.leaf(x.rows(i, 1).clone());
    const Var<double> y = reshape(f(xi), Shape{1, d});
    Eigen::MatrixXd jac(d, d);
    for (std::int64_t r = 0; r < d; ++r) {
      const Tensor<double> g = tape.grad(sum(slice(y, 1, r, 1)), {xi})[0].value();
      for (std::int64_t c = 0; c < d; ++c) jac(r, c) = g[c];
    }
    const Eigen::PartialPivLU<Eigen::MatrixXd> lu(jac);
    double log_abs_det = 0;
    for (std::int64_t k = 0; k < d; ++k) log_abs_det += std::log(std::abs(lu.matrixLU()(k, k)));
    out.push_back(log_abs_det);
  }
  return out;
}

}  // namespace genmod::test
