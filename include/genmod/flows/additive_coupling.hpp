#pragma once
/// \file additive_coupling.hpp
/// AdditiveCoupling: NICE's coupling step (Dinh, Krueger and Bengio 2014).
///
/// With a binary mask m (1 = kept) and a conditioner network that sees only the kept dimensions,
///   y = x + t(x m) (1 - m),   x = y - t(y m) (1 - m)
/// The Jacobian is triangular with a unit diagonal: log |det dy/dx| = 0, so the step preserves
/// volume; NICE puts a diagonal Scaling step at the end of the chain for that (flows/scaling.hpp).

#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/nn/any_module.hpp"  // DynamicSequential, the conditioner of the instantiation at the end
#include "genmod/nn/layer.hpp"

namespace genmod::flows {

/// NICE's additive coupling step over a conditioner layer `Net` (see the file comment).
template <nn::LayerType Net>
class AdditiveCoupling : public BijectorModule<typename Net::value_type> {
 public:
  /// The element type.
  using T = typename Net::value_type;

  /// A step with the conditioner `net` (x m [N, ...] -> the shift t, the shape of x) and `mask`
  /// (the shape of one sample, entries 0 or 1, both present).
  AdditiveCoupling(Net net_, Tensor<T> mask) : net(std::move(net_)), mask_(std::move(mask)) {
    check_binary_mask("flows::AdditiveCoupling", mask_);
    keep_ = mask_.clone();
    transform_ = complement(mask_);
  }

  /// {x + t(x m)(1 - m), zeros [N]}.
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::AdditiveCoupling", "x", x.shape(), mask_.shape());
    return {add(x, shift(x)), Var<T>(zeros<T>(Shape{x.dim(0)}))};
  }

  /// y - t(y m)(1 - m).
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::AdditiveCoupling::inverse", "y", y.shape(), mask_.shape());
    return sub(y, shift(y));
  }

  /// The mask (1 = kept).
  const Tensor<T>& mask() const noexcept { return mask_; }

  /// Lists `net` and the mask as buffer "mask".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("net", net);
    v.buffer("mask", mask_);
  }

  Net net;  ///< the conditioner: x m -> t

 private:
  // t(z m)(1 - m), where z m = x m.
  Var<T> shift(const Var<T>& z) {
    Var<T> t = net(mul(z, Var<T>(keep_)));
    if (t.shape() != z.shape())
      throw ShapeError("flows::AdditiveCoupling: expected the conditioner's output to have the input's shape " +
                       z.shape().to_string() + ", got " + t.shape().to_string());
    return mul(t, Var<T>(transform_));
  }

  Tensor<T> mask_, keep_, transform_;  // the mask (saved), its copy and 1 - mask as constants
};

}  // namespace genmod::flows

// Explicit instantiation for the conditioner of genmod's flow models (a float DynamicSequential):
// declared extern under GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp
// (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::AdditiveCoupling, genmod::nn::DynamicSequential<float>)
#endif
