#pragma once
/// \file context_coupling.hpp
/// ContextAffineCoupling: RealNVP's affine coupling (affine_coupling.hpp) on a VAE's latent code,
/// its conditioner reading the encoder's context h beside the kept dimensions:
///
///   (r, t) = net([z m, h])                 net: Z + H -> hidden -> ... -> 2Z, the last layer zero
///   s = bound(r) (1 - m),  t <- t (1 - m)
///   z' = z e^s + t,  log |det dz'/dz| = sum_i s_i
/// The Jacobian stays triangular (the transformed dimensions see only the kept ones and h, a
/// constant of the map z -> z'), so the log-determinant is exact. Consecutive steps should use a
/// mask and its complement (alternating_mask with MaskParity::first, then MaskParity::second).

#include <cstdint>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/autodiff/ops/coupling.hpp"
#include "genmod/core/check.hpp"
#include "genmod/flows/affine_coupling.hpp"
#include "genmod/flows/conditioners.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/flows/posterior_flow.hpp"
#include "genmod/nn/sequential.hpp"

namespace genmod::flows {

/// Options of ContextAffineCoupling.
struct ContextCouplingOptions {
  std::int64_t hidden = 256;            ///< width of the conditioner's hidden layers
  int hidden_layers = 1;                ///< hidden layers of the conditioner (ReLU)
  std::int64_t context_dim = 0;         ///< H, the context size the conditioner reads (0: none)
  ScaleBound bound = ScaleBound::tanh;  ///< how s is bounded (as AffineCoupling's)
};

/// The affine coupling step on codes [N, Z] given a context (see the file comment).
template <class T = float>
class ContextAffineCoupling : public PosteriorFlowStep<T> {
 public:
  /// A step with `mask` [Z] (entries 0 or 1, both present; 1 = kept) and a conditioner
  /// Z + H -> hidden (ReLU) x hidden_layers -> 2Z whose last layer starts at zero (the identity).
  explicit ContextAffineCoupling(Tensor<T> mask, ContextCouplingOptions options = {})
      : mask_(std::move(mask)), options_(options) {
    check_binary_mask("flows::ContextAffineCoupling", mask_);
    check_rank("flows::ContextAffineCoupling", "mask", mask_.shape(), 1, "[Z]");
    check_non_negative("flows::ContextAffineCoupling", "context_dim", options.context_dim);
    dim_ = mask_.dim(0);
    net = mlp_conditioner<T>(dim_ + options.context_dim, options.hidden, options.hidden_layers, 2 * dim_, true);
    keep_ = mask_.clone();
    transform_ = complement(mask_);
    if (options_.bound == ScaleBound::tanh) scale = Parameter<T>(ones<T>(mask_.shape()));
  }

  /// {z e^s + t, sum of s} for z [N, Z] and h [N, H].
  FlowResult<T> forward(const Var<T>& z, const Var<T>& h) override {
    check_posterior_flow_input("flows::ContextAffineCoupling", z, h, dim_, options_.context_dim);
    const Var<T> kept = mul(z, Var<T>(keep_));
    const Var<T> rt = net(options_.context_dim > 0 ? concat({kept, h}, 1) : kept);
    Var<T> logdet;
    Var<T> y = affine_coupling(z, rt, options_.bound == ScaleBound::tanh ? scale.var() : Var<T>(), transform_,
                               fused_bound(options_.bound), logdet);
    return {std::move(y), std::move(logdet)};
  }

  /// Z.
  std::int64_t dim() const override { return dim_; }
  /// H.
  std::int64_t context_dim() const override { return options_.context_dim; }
  /// The mask (1 = kept).
  const Tensor<T>& mask() const noexcept { return mask_; }

  /// Lists `net`, the learned `scale` (tanh bound only) and the mask as buffer "mask".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("net", net);
    if (options_.bound == ScaleBound::tanh) v.param("scale", scale);
    v.buffer("mask", mask_);
  }

  nn::DynamicSequential<T> net;  ///< [z m, h] -> (r, t) [N, 2Z]
  Parameter<T> scale;            ///< per-dimension bound of s (ScaleBound::tanh only; starts at 1)

 private:
  Tensor<T> mask_, keep_, transform_;  // the mask (saved), its copy and 1 - mask as constants
  ContextCouplingOptions options_;
  std::int64_t dim_ = 0;
};

}  // namespace genmod::flows
