#pragma once
/// \file glow.hpp
/// Glow (Kingma and Dhariwal 2018) as a FlowModel: steps of ActNorm, an invertible 1x1
/// convolution and an affine coupling, in RealNVP's multiscale architecture.
///
///   preprocess:  Dequantize (8-bit pixels), LogitTransform(alpha)
///   a scale:     Squeeze, then K steps of flow, then (except at the last scale) FactorOut: half of
///                the channels are final, the next scale runs on the other half
///   a step:      ActNorm (data-dependent initialisation), Invertible1x1Conv (LU), AffineCoupling
///                with the channel mask (alternating halves) and Glow's sigmoid scale bound
///   conditioner: conv 3x3 C -> hidden, ReLU, conv 1x1 hidden -> hidden, ReLU, conv 3x3 -> 2C
///                starting at zero (each coupling starts as the identity)
///   base:        N(0, I)
/// The paper puts Glow's own preprocessing (x - 1/2) instead of the logit; the logit transform
/// keeps this model's bits/dim comparable with RealNVP's. With 2 scales, [1, 28, 28] images are
/// squeezed to [4, 14, 14] and [8, 7, 7]; the codes have the shape after the first squeeze.

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/actnorm.hpp"
#include "genmod/flows/affine_coupling.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/conditioners.hpp"
#include "genmod/flows/dequantize.hpp"
#include "genmod/flows/factor_out.hpp"
#include "genmod/flows/invertible_1x1_conv.hpp"
#include "genmod/flows/logit_transform.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/flows/squeeze.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/models/flow_model.hpp"
#include "genmod/nn/any_module.hpp"
#include "genmod/nn/layers/activation.hpp"
#include "genmod/nn/layers/conv.hpp"

namespace genmod::models {

/// Options of Glow (defaults: 1-channel 28 x 28 images, sized for a CPU).
struct GlowOptions {
  std::int64_t channels = 1;                             ///< C of the images
  std::int64_t height = 28;                              ///< H (divisible by 2^scales)
  std::int64_t width = 28;                               ///< W (divisible by 2^scales)
  int scales = 2;                                        ///< L, the number of squeezes (at least 1)
  int steps = 8;                                         ///< K, steps of flow per scale
  std::int64_t hidden = 64;                              ///< channels of the conditioners
  double alpha = 0.05;                                   ///< of the logit transform
  flows::ScaleBound bound = flows::ScaleBound::sigmoid;  ///< how each coupling bounds its log-scale
  std::int64_t levels = 256;                             ///< pixel levels of the data (dequantization)
  std::uint64_t noise_seed = 0;                          ///< seed of the dequantization noise
};

/// Glow on images [N, C, H, W] (see the file comment); weights from genmod's default generator.
template <class T = float>
class Glow : public FlowModel<T, flows::StandardNormal<T>> {
 public:
  /// The element type's conditioner network.
  using Net = nn::DynamicSequential<T>;
  /// The coupling of a step.
  using Coupling = flows::AffineCoupling<Net>;

  /// The model of `options`; ValueError for sizes that are not positive or not divisible by 2^scales.
  explicit Glow(GlowOptions options = {})
      : FlowModel<T, flows::StandardNormal<T>>(checked_event(options),
                                               Shape{4 * options.channels, options.height / 2, options.width / 2}),
        options_(options) {
    this->preprocess.push_back(flows::Dequantize<T>({.levels = options.levels, .seed = options.noise_seed}));
    this->preprocess.push_back(flows::LogitTransform<T>(options.alpha));
    this->flow = scale_flow(this->event_shape(), options.scales);
  }

  /// The options it was built with.
  const GlowOptions& options() const noexcept { return options_; }

 private:
  static Shape checked_event(const GlowOptions& o) {
    check_positive("models::Glow", "channels", o.channels);
    check_at_least("models::Glow", "scales", o.scales, 1);
    check_positive("models::Glow", "steps", o.steps);
    check_positive("models::Glow", "hidden", o.hidden);
    flows::check_squeezable("models::Glow", o.height, o.width, o.scales);
    return Shape{o.channels, o.height, o.width};
  }

  // Squeeze, K steps, and (unless last) factor-out with the next scale inside, on samples `event`.
  flows::FlowSequence<T> scale_flow(const Shape& event, int remaining) const {
    flows::FlowSequence<T> seq;
    const std::int64_t c = 4 * event[0], h = event[1] / 2, w = event[2] / 2;
    const Shape squeezed{c, h, w};
    seq.push_back(flows::Squeeze<T>());
    for (int k = 0; k < options_.steps; ++k) {
      seq.push_back(flows::ActNorm<T>(squeezed));
      seq.push_back(flows::Invertible1x1Conv<T>(squeezed));
      const auto parity = k % 2 == 0 ? flows::MaskParity::first : flows::MaskParity::second;
      seq.push_back(Coupling(conditioner(c), flows::channel_mask<T>(squeezed, parity), {.bound = options_.bound}));
    }
    if (remaining == 1) return seq;
    const Shape next{c / 2, h, w};
    seq.push_back(flows::FactorOut<T>(squeezed, c / 2, scale_flow(next, remaining - 1), Shape{2 * c, h / 2, w / 2}));
    return seq;
  }

  // conv 3x3 c -> hidden, ReLU, conv 1x1, ReLU, conv 3x3 hidden -> 2c (zero).
  Net conditioner(std::int64_t c) const {
    const std::int64_t h = options_.hidden;
    return Net{nn::Conv2d<T>(c, h, 3, {.padding = 1}), nn::ReLU<T>(), nn::Conv2d<T>(h, h, 1), nn::ReLU<T>(),
               flows::zero_initialized(nn::Conv2d<T>(h, 2 * c, 3, {.padding = 1}))};
  }

  GlowOptions options_;
};

static_assert(GenerativeModel<Glow<float>> && DensityModel<Glow<float>>);

}  // namespace genmod::models

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::models::Glow, float)
#endif
