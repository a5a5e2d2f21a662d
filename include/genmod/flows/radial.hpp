#pragma once
/// \file radial.hpp
/// RadialFlow: the radial posterior flow of Rezende and Mohamed (2015), which contracts or expands
/// the codes around a centre z0:
///
///   f(z) = z + beta h (z - z0),  r = |z - z0|,  h = 1 / (alpha + r)
///   log |det df/dz| = (Z - 1) log(1 + beta h) + log(1 + beta h + beta h' r),  h' = -1 / (alpha + r)^2
///                   = (Z - 1) log(1 + beta h) + log(1 + beta alpha h^2)
/// (the Jacobian is (1 + beta h) I + beta h' (z - z0)(z - z0)^T / r: Z - 1 eigenvalues 1 + beta h and
/// one 1 + beta h + beta h' r). alpha = softplus(a) > 0 and beta = softplus(c) - alpha >= -alpha
/// keep both arguments positive, which makes f invertible. (z0, a, c) are global or amortized from
/// a context, as PlanarFlow's.

#include <cmath>
#include <cstdint>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/flows/posterior_flow.hpp"

namespace genmod::flows {

/// The radial flow step (see the file comment).
template <class T = float>
class RadialFlow : public PosteriorFlowStep<T> {
 public:
  /// A step on codes of size `dim`: global z0 ~ N(0, 1 / dim), a = c = 0 (from genmod's default
  /// generator), or, with options.context_dim = H > 0, (z0, a, c) = h W^T + b per sample.
  explicit RadialFlow(std::int64_t dim, PosteriorStepOptions options = {})
      : dim_(checked_dim(dim, options)), theta_(dim + 2, options.context_dim, initial(dim)) {}

  /// {z + beta h (z - z0), (Z - 1) log(1 + beta h) + log(1 + beta alpha h^2)} for z [N, Z].
  FlowResult<T> forward(const Var<T>& z, const Var<T>& h) override {
    check_posterior_flow_input("flows::RadialFlow", z, h, dim_, context_dim());
    const Var<T> p = theta_.at(h);  // [1 or N, Z + 2]: z0, a, c
    const Var<T> z0 = slice(p, 1, 0, dim_);
    const Var<T> alpha = softplus(slice(p, 1, dim_, 1));
    const Var<T> beta = sub(softplus(slice(p, 1, dim_ + 1, 1)), alpha);
    const Var<T> diff = sub(z, z0);
    const Var<T> r = sqrt(sum(square(diff), 1, true));    // [N, 1]
    const Var<T> inv = rdiv_scalar(T(1), add(alpha, r));  // h
    const Var<T> beta_h = mul(beta, inv);                 // in (-1, inf): beta >= -alpha, h <= 1 / alpha
    const Var<T> y = add(z, mul(beta_h, diff));
    const Var<T> first = scale(log(add_scalar(beta_h, T(1))), static_cast<T>(dim_ - 1));
    const Var<T> second = log(add_scalar(mul(mul(beta_h, alpha), inv), T(1)));
    return {y, reshape(add(first, second), Shape{z.dim(0)})};
  }

  /// Z.
  std::int64_t dim() const override { return dim_; }
  /// H (0: global parameters).
  std::int64_t context_dim() const override { return theta_.context_dim(); }

  /// Lists "theta" [1, Z + 2] (global: z0, a, c) or "weight" and "bias" (amortized).
  void visit(nn::ModuleVisitor<T>& v) override { theta_.visit(v); }

 private:
  static std::int64_t checked_dim(std::int64_t dim, const PosteriorStepOptions& o) {
    check_positive("flows::RadialFlow", "dim", dim);
    check_non_negative("flows::RadialFlow", "context_dim", o.context_dim);
    return dim;
  }

  // [z0, a, c]: z0 ~ N(0, 1 / dim), a = c = 0.
  static Tensor<T> initial(std::int64_t dim) {
    Tensor<T> t = randn<T>(Shape{1, dim + 2}, default_generator());
    const double sd = 1.0 / std::sqrt(static_cast<double>(dim));
    for (auto& v : t) v = static_cast<T>(v * sd);
    t[dim] = t[dim + 1] = T(0);
    return t;
  }

  std::int64_t dim_;
  StepParameters<T> theta_;
};

}  // namespace genmod::flows
