#pragma once
/// \file planar.hpp
/// PlanarFlow: the planar posterior flow of Rezende and Mohamed (2015), with the reparameterization
/// of u that keeps it invertible.
///
///   f(z) = z + u^ tanh(w . z + b)                       w, u [Z], b a scalar
///   log |det df/dz| = log |1 + u^ . psi(z)|,  psi(z) = (1 - tanh^2(w . z + b)) w
/// f is invertible iff w . u^ >= -1 (the paper's appendix A). Any u becomes such a u^ by
///   u^ = u + (m(w . u) - w . u) w / |w|^2,   m(a) = -1 + softplus(a) > -1,
/// which gives w . u^ = m(w . u), so 1 + u^ . psi = 1 + (1 - tanh^2) m(w . u) > 0: the
/// log-determinant is the log of a positive number and needs no absolute value. It is computed as
///   log(tanh^2 + (1 - tanh^2) softplus(w . u))
/// (the same number), which stays finite where 1 + m would round to 0.
///
/// (w, u, b) are global (learned, the same for every sample) or amortized: produced per sample
/// from the encoder's context h [N, H] by a linear map (van den Berg et al. 2018), so each image
/// gets its own hyperplane.

#include <cmath>
#include <cstdint>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/flows/posterior_flow.hpp"

namespace genmod::flows {

/// The planar flow step (see the file comment).
template <class T = float>
class PlanarFlow : public PosteriorFlowStep<T> {
 public:
  /// A step on codes of size `dim`: global w, u ~ N(0, 1 / dim) and b = 0 (from genmod's default
  /// generator), or, with options.context_dim = H > 0, (w, u, b) = h W^T + c per sample.
  explicit PlanarFlow(std::int64_t dim, PosteriorStepOptions options = {})
      : dim_(checked_dim(dim, options)), theta_(2 * dim + 1, options.context_dim, initial(dim)) {}

  /// {z + u^ tanh(w . z + b), log(1 + (1 - tanh^2(w . z + b)) w . u^)} for z [N, Z].
  FlowResult<T> forward(const Var<T>& z, const Var<T>& h) override {
    check_posterior_flow_input("flows::PlanarFlow", z, h, dim_, context_dim());
    const Var<T> p = theta_.at(h);  // [1 or N, 2Z + 1]: w, u, b
    const Var<T> w = slice(p, 1, 0, dim_), u = slice(p, 1, dim_, dim_), b = slice(p, 1, 2 * dim_, 1);
    const Var<T> u_hat = constrained_u(w, u);
    const Var<T> t = tanh(add(sum(mul(w, z), 1, true), b));  // [N, 1]
    const Var<T> y = add(z, mul(u_hat, t));
    // 1 + u^ . psi = 1 + (1 - t^2) m(w . u) = t^2 + (1 - t^2) softplus(w . u): a sum of two terms
    // >= 0 instead of 1 minus nearly 1 (with w . u << 0, m rounds to -1 and 1 + (1 - t^2) m to 0).
    const Var<T> t2 = square(t);
    const Var<T> det = add(t2, mul(add_scalar(neg(t2), T(1)), softplus(sum(mul(w, u), 1, true))));
    return {y, reshape(log(det), Shape{z.dim(0)})};
  }

  /// u^ = u + (m(w . u) - w . u) w / |w|^2, row by row, so that w . u^ = m(w . u) > -1.
  static Var<T> constrained_u(const Var<T>& w, const Var<T>& u) {
    const Var<T> wu = sum(mul(w, u), 1, true), ww = sum(square(w), 1, true);
    const Var<T> m = add_scalar(softplus(wu), T(-1));
    return add(u, mul(div(sub(m, wu), ww), w));
  }

  /// Z.
  std::int64_t dim() const override { return dim_; }
  /// H (0: global parameters).
  std::int64_t context_dim() const override { return theta_.context_dim(); }
  /// The parameters (w, u, b) [1 or N, 2Z + 1] for the context h (ignored when global).
  Var<T> parameters_at(const Var<T>& h) const { return theta_.at(h); }

  /// Lists "theta" [1, 2Z + 1] (global: w, u, b) or "weight" and "bias" (amortized).
  void visit(nn::ModuleVisitor<T>& v) override { theta_.visit(v); }

 private:
  static std::int64_t checked_dim(std::int64_t dim, const PosteriorStepOptions& o) {
    check_positive("flows::PlanarFlow", "dim", dim);
    check_non_negative("flows::PlanarFlow", "context_dim", o.context_dim);
    return dim;
  }

  // [w, u, b]: w, u ~ N(0, 1 / dim), b = 0.
  static Tensor<T> initial(std::int64_t dim) {
    Tensor<T> t = randn<T>(Shape{1, 2 * dim + 1}, default_generator());
    const double sd = 1.0 / std::sqrt(static_cast<double>(dim));
    for (auto& v : t) v = static_cast<T>(v * sd);
    t[2 * dim] = T(0);
    return t;
  }

  std::int64_t dim_;
  StepParameters<T> theta_;
};

}  // namespace genmod::flows
