#pragma once
/// \file scaling.hpp
/// Scaling: the learned diagonal scaling that ends NICE's chain of volume-preserving couplings.
///
///   y = x e^s,  log |det dy/dx| = sum_i s_i (the same for every sample),  x = y e^-s
/// with s learned per dimension of a sample, starting at 0 (the identity). NICE writes the
/// scaling as S = e^s; it lets the flow give more weight to some dimensions than to others.

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"

namespace genmod::flows {

/// y = x e^s with a learned log-scale s of the shape of one sample (see the file comment).
template <class T = float>
class Scaling : public BijectorModule<T> {
 public:
  /// The identity on samples of shape `event` ([D], or [C, H, W]).
  explicit Scaling(const Shape& event) : log_scale(zeros<T>(event)) {
    check_arg(event.rank() >= 1 && event.numel() >= 1, "flows::Scaling", "the event shape", "at least one dimension",
              event.to_string());
  }

  /// {x e^s, sum(s) per sample [N]}.
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::Scaling", "x", x.shape(), log_scale.shape());
    const Var<T> s = log_scale.var();
    return {mul(x, exp(s)), broadcast_to(sum(s), Shape{x.dim(0)})};
  }

  /// y e^-s.
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::Scaling::inverse", "y", y.shape(), log_scale.shape());
    return mul(y, exp(neg(log_scale.var())));
  }

  /// Lists "log_scale".
  void visit(nn::ModuleVisitor<T>& v) override { v.param("log_scale", log_scale); }

  Parameter<T> log_scale;  ///< s, the shape of one sample
};

}  // namespace genmod::flows
