#pragma once
/// \file affine_coupling.hpp
/// AffineCoupling: RealNVP's coupling step (Dinh, Sohl-Dickstein and Bengio 2017).
///
/// With a binary mask m (1 = kept) of the sample's shape and a conditioner network that sees only
/// the kept dimensions,
///   (r, t) = net(x m)                     net's output: [N, 2C, ...] for x [N, C, ...], r first
///   s = bound(r) (1 - m),  t <- t (1 - m)  zero on the kept dimensions
///   y = x e^s + t                         = x on the kept dimensions
///   log |det dy/dx| = sum_i s_i           the Jacobian is triangular with diagonal e^s
///   x = (y - t) e^-s, with (r, t) = net(y m), as y m = x m
/// The bound keeps e^s from exploding, the usual way an affine flow diverges:
///   tanh     s = scale tanh(r), scale learned per dimension (starts at 1): |s| <= |scale|
///   sigmoid  e^s = sigmoid(r + 2) (Glow): s = log sigmoid(r + 2) in (-inf, 0), e^s starts near 0.88
///   exp      s = r, unbounded (the plain form of the paper)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/autodiff/ops/coupling.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/nn/any_module.hpp"  // DynamicSequential, the conditioner of the instantiation at the end
#include "genmod/nn/layer.hpp"

namespace genmod::flows {

/// How an affine coupling bounds its log-scale s (see the file comment).
enum class ScaleBound {
  tanh,     ///< s = scale * tanh(r), scale learned per dimension (the realnvp_mlp workload)
  sigmoid,  ///< s = log sigmoid(r + 2) (Glow)
  exp       ///< s = r, unbounded
};

/// The fused op's enumerator (autodiff/ops/coupling.hpp) for a scale bound.
constexpr CouplingBound fused_bound(ScaleBound bound) noexcept {
  switch (bound) {
    case ScaleBound::sigmoid:
      return CouplingBound::sigmoid;
    case ScaleBound::exp:
      return CouplingBound::exp;
    case ScaleBound::tanh:
      break;
  }
  return CouplingBound::tanh;
}

/// Options of AffineCoupling.
struct AffineCouplingOptions {
  ScaleBound bound = ScaleBound::tanh;  ///< how s is bounded
  /// true: y and logdet by the one fused op (autodiff/ops/coupling.hpp); false: by the generic ops
  /// it replaces (slice, the bound, exp, mul, add, sum), the same numbers in more passes; kept to
  /// measure the fused op against (bench_models' realnvp_mlp_composed) and to cross-check it.
  bool fused = true;
};

/// RealNVP's affine coupling step over a conditioner layer `Net` (see the file comment).
template <nn::LayerType Net>
class AffineCoupling : public BijectorModule<typename Net::value_type> {
 public:
  /// The element type.
  using T = typename Net::value_type;

  /// A step with the conditioner `net` and `mask` (the shape of one sample, entries 0 or 1, both
  /// present). `net` maps x m [N, C, ...] to [N, 2C, ...]: the raw log-scale r, then the shift t.
  AffineCoupling(Net net_, Tensor<T> mask, AffineCouplingOptions options = {})
      : net(std::move(net_)), mask_(std::move(mask)), options_(options) {
    check_binary_mask("flows::AffineCoupling", mask_);
    keep_ = mask_.clone();
    transform_ = complement(mask_);
    if (options_.bound == ScaleBound::tanh) scale = Parameter<T>(ones<T>(mask_.shape()));
  }

  /// {y, log|det dy/dx| [N]}. A NaN or Inf found by a checking tape is re-raised with the
  /// statistics of the log-scale s at x (the usual cause: s or the learned scale grew too large).
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::AffineCoupling", "x", x.shape(), mask_.shape());
    try {
      const Var<T> rt = conditioner(x);
      if (!options_.fused) {  // the generic ops: y = x e^s + t, logdet = sum of s per sample
        auto [s, t] = log_scale_and_shift_of(rt);
        return {add(mul(x, exp(s)), t), sum_per_sample(s)};
      }
      // One fused op after the conditioner (autodiff/ops/coupling.hpp): y and logdet in one pass.
      Var<T> logdet;
      Var<T> y = affine_coupling(x, rt, options_.bound == ScaleBound::tanh ? scale.var() : Var<T>(), transform_,
                                 fused_bound(options_.bound), logdet);
      return {std::move(y), std::move(logdet)};
    } catch (const NumericError& e) {
      throw NumericError(std::string(e.what()) + "; " + log_scale_statistics(x));
    }
  }

  /// x = (y - t) e^-s.
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::AffineCoupling::inverse", "y", y.shape(), mask_.shape());
    auto [s, t] = log_scale_and_shift(y);
    return mul(sub(y, t), exp(neg(s)));
  }

  /// The log-scale s [N, ...] (zero on the kept dimensions) at x, for diagnostics: its range is
  /// what to watch when an affine flow diverges.
  Var<T> log_scale(const Var<T>& x) { return log_scale_and_shift(x).first; }

  /// The mask (1 = kept).
  const Tensor<T>& mask() const noexcept { return mask_; }
  /// The bound of the log-scale.
  ScaleBound bound() const noexcept { return options_.bound; }
  /// Whether forward uses the fused op (AffineCouplingOptions::fused).
  bool fused() const noexcept { return options_.fused; }

  /// Lists `net`, the learned `scale` (tanh bound only) and the mask as buffer "mask".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("net", net);
    if (options_.bound == ScaleBound::tanh) v.param("scale", scale);
    v.buffer("mask", mask_);
  }

  Net net;             ///< the conditioner: x m -> (r, t) stacked along dimension 1
  Parameter<T> scale;  ///< per-dimension bound of s (ScaleBound::tanh only; starts at 1)

 private:
  // (s, t) of the file comment at z, where z m = x m (forward: z = x; inverse: z = y).
  std::pair<Var<T>, Var<T>> log_scale_and_shift(const Var<T>& z) { return log_scale_and_shift_of(conditioner(z)); }

  // (s, t) from the conditioner's output rt [N, 2C, ...].
  std::pair<Var<T>, Var<T>> log_scale_and_shift_of(const Var<T>& rt) {
    const Var<T> transformed(transform_);
    const std::int64_t c = rt.dim(1) / 2;
    Var<T> r = slice(rt, 1, 0, c), t = slice(rt, 1, c, c);
    Var<T> s;
    switch (options_.bound) {
      case ScaleBound::tanh:
        s = mul(tanh(r), scale.var());
        break;
      case ScaleBound::sigmoid:
        s = log_sigmoid(add_scalar(r, T(2)));
        break;
      case ScaleBound::exp:
        s = r;
        break;
    }
    return {mul(s, transformed), mul(t, transformed)};
  }

  // (r, t) = net(z m) [N, 2C, ...], its shape checked; z m = x m (forward: z = x; inverse: z = y).
  Var<T> conditioner(const Var<T>& z) {
    Var<T> rt = net(mul(z, Var<T>(keep_)));
    const Shape expected = z.shape().with_dim(1, 2 * z.dim(1));
    if (rt.shape() != expected)
      throw ShapeError("flows::AffineCoupling: expected the conditioner's output " + expected.to_string() +
                       " (the log-scale and the shift of an input " + z.shape().to_string() +
                       " stacked along dimension 1), got " + rt.shape().to_string());
    return rt;
  }

  // "affine coupling log-scale s at this batch: min, max, ..." computed without a tape.
  std::string log_scale_statistics(const Var<T>& x) {
    NoGradGuard no_grad;
    const Tensor<T> s = log_scale_and_shift(Var<T>(x.value())).first.value();
    double lo = 0, hi = 0, x_abs = 0, scale_abs = 0;
    std::int64_t bad = 0;
    for (T v : s) {
      if (!std::isfinite(static_cast<double>(v))) {
        ++bad;
        continue;
      }
      lo = std::min(lo, static_cast<double>(v));
      hi = std::max(hi, static_cast<double>(v));
    }
    for (T v : x.value()) x_abs = std::max(x_abs, std::abs(static_cast<double>(v)));
    if (options_.bound == ScaleBound::tanh)
      for (T v : scale.value()) scale_abs = std::max(scale_abs, std::abs(static_cast<double>(v)));
    std::string out = "affine coupling log-scale s at this batch: min " + std::to_string(lo) + ", max " +
                      std::to_string(hi) + ", " + std::to_string(bad) + " of " + std::to_string(s.numel()) +
                      " not finite; largest |x| " + std::to_string(x_abs);
    if (options_.bound == ScaleBound::tanh) out += "; largest learned |scale| " + std::to_string(scale_abs);
    return out;
  }

  Tensor<T> mask_, keep_, transform_;  // the mask (saved), its copy and 1 - mask as constants
  AffineCouplingOptions options_;
};

}  // namespace genmod::flows

// Explicit instantiation for the conditioner of genmod's flow models (a float DynamicSequential):
// declared extern under GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp
// (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::AffineCoupling, genmod::nn::DynamicSequential<float>)
#endif
