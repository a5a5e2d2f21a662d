#pragma once
/// \file flow_model.hpp
/// FlowModel: a density model made of a normalizing flow over a base distribution, with the exact
/// log-likelihood (the change of variables) and sampling by the inverse.
///
///   h = preprocess(x)              data -> the real line (dequantization, logit), log-det l0
///   z = flow(h)                    the learned steps, log-det l1
///   log p(x) = log p_z(z) + l0 + l1                              nats per sample
///   bits/dim = -log p(x) / (D ln 2)                              D = dimensions per sample
///   sample:  z ~ p_z (scaled by a temperature), x = preprocess^-1(flow^-1(z))
/// Both chains are flows::FlowSequence; the preprocessing steps' log-determinants are part of the
/// likelihood, so the convention of a reported number (for 8-bit images: uniform dequantization,
/// bits/dim of the pixel-space density) is stated by the steps themselves.

#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::models {

/// A normalizing flow over samples of shape `event` with base distribution `Base` (see the file
/// comment). Satisfies models::GenerativeModel and models::DensityModel.
template <class T = float, class Base = flows::StandardNormal<T>>
requires flows::BaseDistribution<Base, T>
class FlowModel : public nn::Module<T> {
 public:
  /// An empty model (both chains the identity) over samples of shape `event`; fill `preprocess`
  /// and `flow` with push_back.
  explicit FlowModel(Shape event, Base base_ = {}) : FlowModel(event, event, std::move(base_)) {}

  /// As above, for a flow whose codes have shape `latent` (as many elements as `event`): a flow
  /// that starts with a Squeeze maps [1, 28, 28] images to [4, 14, 14] codes.
  FlowModel(Shape event, Shape latent, Base base_ = {})
      : base(std::move(base_)), event_(std::move(event)), latent_(std::move(latent)) {
    check_arg(event_.rank() >= 1 && event_.numel() >= 1, "models::FlowModel", "the event shape",
              "at least one dimension", event_.to_string());
    check_arg(latent_.numel() == event_.numel(), "models::FlowModel", "the latent shape",
              "as many elements as the event shape " + event_.to_string(), latent_.to_string());
  }

  /// log p(x) per sample [N], in nats, for x [N, event...]. Under a checking tape a NaN or Inf
  /// raises flows::FlowStepError naming the step ("flow.steps.3") and the op.
  Var<T> log_prob(const Var<T>& x) {
    flows::check_batch_of("models::FlowModel::log_prob", "x", x.shape(), event_);
    flows::FlowResult<T> pre =
        flows::detail::in_flow_step([] { return std::string("preprocess"); }, [&] { return preprocess.forward(x); });
    flows::FlowResult<T> f =
        flows::detail::in_flow_step([] { return std::string("flow"); }, [&] { return flow.forward(pre.y); });
    return add(add(base.log_prob(f.y), f.logdet), pre.logdet);
  }

  /// -log p(x) / (D ln 2) per sample [N]: bits per dimension.
  Var<T> bits_per_dim(const Var<T>& x) { return scale(log_prob(x), T(-1) / bits_divisor()); }

  /// The training objective: the batch mean of bits_per_dim(x) (nats scaled by 1 / (D ln 2)).
  Var<T> loss(const Var<T>& x) { return mean(bits_per_dim(x)); }

  /// -log p(x) per sample [N], in nats: the density-based anomaly score (higher = more unusual).
  Var<T> anomaly_score(const Var<T>& x) { return neg(log_prob(x)); }

  /// z = flow(preprocess(x)), the base-space code of x.
  Var<T> encode(const Var<T>& x) {
    flows::check_batch_of("models::FlowModel::encode", "x", x.shape(), event_);
    return flow.forward(preprocess.forward(x).y).y;
  }

  /// x = preprocess^-1(flow^-1(z)).
  Var<T> decode(const Var<T>& z) {
    flows::check_batch_of("models::FlowModel::decode", "z", z.shape(), latent_);
    return preprocess.inverse(flow.inverse(z));
  }

  /// n samples [n, event...] from the base scaled by `temperature` (> 0; below 1 trades diversity
  /// for typical samples), decoded without recording a graph.
  Tensor<T> sample(std::int64_t n, Generator& g, T temperature = T(1)) {
    check_positive("models::FlowModel::sample", "n", n);
    NoGradGuard no_grad;
    return decode(Var<T>(base.sample(flows::batch_shape(n, latent_), g, temperature))).value();
  }

  /// The codes of the straight line from encode(a) to encode(b) at `steps` points, decoded:
  /// [steps, event...] for single samples a and b [1, event...].
  Tensor<T> interpolate(const Tensor<T>& a, const Tensor<T>& b, std::int64_t steps) {
    check_at_least("models::FlowModel::interpolate", "steps", steps, 2);
    check_shape("models::FlowModel::interpolate", "a", a.shape(), flows::batch_shape(1, event_));
    check_shape("models::FlowModel::interpolate", "b", b.shape(), flows::batch_shape(1, event_));
    NoGradGuard no_grad;
    const Tensor<T> za = encode(Var<T>(a)).value(), zb = encode(Var<T>(b)).value();
    const std::int64_t d = za.numel();
    Tensor<T> z(flows::batch_shape(steps, latent_));
    for (std::int64_t k = 0; k < steps; ++k) {
      const T w = static_cast<T>(k) / static_cast<T>(steps - 1);
      for (std::int64_t i = 0; i < d; ++i) z[k * d + i] = (T(1) - w) * za[i] + w * zb[i];
    }
    return decode(Var<T>(std::move(z))).value();
  }

  /// The shape of one sample.
  const Shape& event_shape() const noexcept { return event_; }
  /// The shape of one code z (the event shape unless the flow reshapes).
  const Shape& latent_shape() const noexcept { return latent_; }
  /// D, the number of dimensions of one sample.
  std::int64_t dimension() const noexcept { return event_.numel(); }

  /// Visits "preprocess" and "flow".
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("preprocess", preprocess);
    v.child("flow", flow);
  }

  flows::FlowSequence<T> preprocess;  ///< data -> the flow's input space; log-dets in the likelihood
  flows::FlowSequence<T> flow;        ///< the learned steps, towards the base distribution
  Base base;                          ///< p_z

 private:
  T bits_divisor() const { return static_cast<T>(static_cast<double>(event_.numel()) * std::numbers::ln2); }

  Shape event_, latent_;
};

static_assert(GenerativeModel<FlowModel<float>> && DensityModel<FlowModel<float>>);

}  // namespace genmod::models

// Explicit instantiations for float, with either base distribution: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_TEMPLATE class genmod::models::FlowModel<float, genmod::flows::StandardNormal<float>>;
GENMOD_DETAIL_TEMPLATE class genmod::models::FlowModel<float, genmod::flows::StandardLogistic<float>>;
#endif
