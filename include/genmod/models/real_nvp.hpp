#pragma once
/// \file real_nvp.hpp
/// RealNVP (Dinh, Sohl-Dickstein and Bengio 2017) as FlowModels: RealNVPMLP, affine couplings over
/// flattened images with MLP conditioners (the `realnvp_mlp` reference workload), and RealNVP, the
/// paper's multiscale convolutional architecture.
///
/// RealNVPMLP:
///   preprocess: Dequantize (8-bit pixels, u ~ U[0, 1)), LogitTransform(alpha = 0.05)
///   flow:       K affine couplings; coupling k keeps the checkerboard (i + j even) of the H x W
///               image when k is even, its complement when k is odd; each conditioner is
///               D -> hidden -> ... -> hidden -> 2D with ReLU, its last layer zero (so every step
///               starts as the identity); s = tanh(r) * scale by default
///   base:       N(0, I)
/// log p(x) is the pixel-space density of the 8-bit data (the preprocessing log-dets included),
/// reported as bits/dim.
///
/// RealNVP (multiscale, images [N, C, H, W]), with the same preprocessing and base:
///   a scale:     3 checkerboard couplings, Squeeze, 3 channel couplings, then FactorOut: half of
///                the channels are final, the next scale runs on the other half
///   final scale: 4 checkerboard couplings
///   conditioner: conv 3x3 C -> hidden, ReLU, `blocks` residual blocks (conv 3x3, ReLU, conv 3x3;
///                ReLU after the sum), conv 3x3 hidden -> 2C starting at zero
/// With `scales` = 2, [1, 28, 28] images are squeezed to [4, 14, 14] and [8, 7, 7]; the codes have
/// the shape after the first squeeze, [4, 14, 14].

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/affine_coupling.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/conditioners.hpp"
#include "genmod/flows/dequantize.hpp"
#include "genmod/flows/factor_out.hpp"
#include "genmod/flows/logit_transform.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/flows/squeeze.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/models/flow_model.hpp"
#include "genmod/nn/any_module.hpp"
#include "genmod/nn/layers/activation.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/layers/residual.hpp"

namespace genmod::models {

/// Options of RealNVPMLP (defaults: the realnvp_mlp workload on 28 x 28 images).
struct RealNVPMLPOptions {
  std::int64_t height = 28;                           ///< image rows (samples are flattened: D = height * width)
  std::int64_t width = 28;                            ///< image columns
  int couplings = 8;                                  ///< K, the number of affine coupling steps
  std::int64_t hidden = 1024;                         ///< width of the conditioners' hidden layers
  int hidden_layers = 2;                              ///< hidden layers per conditioner
  double alpha = 0.05;                                ///< of the logit transform
  flows::ScaleBound bound = flows::ScaleBound::tanh;  ///< how each coupling bounds its log-scale
  std::int64_t levels = 256;                          ///< pixel levels of the data (dequantization)
  std::uint64_t noise_seed = 0;                       ///< seed of the dequantization noise
  bool fused_coupling = true;  ///< false: couplings by generic ops (AffineCouplingOptions::fused)
};

/// RealNVP with MLP couplings on flattened images (see the file comment); the conditioners'
/// weights are drawn from genmod's default generator (seed it with manual_seed).
template <class T = float>
class RealNVPMLP : public FlowModel<T, flows::StandardNormal<T>> {
 public:
  /// The element type's conditioner network.
  using Net = nn::DynamicSequential<T>;
  /// One coupling step.
  using Coupling = flows::AffineCoupling<Net>;

  /// The model of `options` (ValueError for a non-positive size or fewer than one coupling).
  explicit RealNVPMLP(RealNVPMLPOptions options = {})
      : FlowModel<T, flows::StandardNormal<T>>(Shape{checked_dim(options)}), options_(options) {
    check_positive("models::RealNVPMLP", "couplings", options.couplings);
    check_positive("models::RealNVPMLP", "hidden", options.hidden);
    check_positive("models::RealNVPMLP", "hidden_layers", options.hidden_layers);
    this->preprocess.push_back(flows::Dequantize<T>({.levels = options.levels, .seed = options.noise_seed}));
    this->preprocess.push_back(flows::LogitTransform<T>(options.alpha));
    const std::int64_t d = options.height * options.width;
    const Tensor<T> board = flows::checkerboard_mask<T>(Shape{options.height, options.width}).reshape({d});
    for (int k = 0; k < options.couplings; ++k)
      this->flow.push_back(Coupling(conditioner(d, options), k % 2 == 0 ? board.clone() : flows::complement(board),
                                    {.bound = options.bound, .fused = options.fused_coupling}));
  }

  /// The k-th coupling step.
  Coupling& coupling(std::size_t k) { return static_cast<Coupling&>(this->flow[k]); }
  /// The options it was built with.
  const RealNVPMLPOptions& options() const noexcept { return options_; }

 private:
  static std::int64_t checked_dim(const RealNVPMLPOptions& o) {
    check_positive("models::RealNVPMLP", "height", o.height);
    check_positive("models::RealNVPMLP", "width", o.width);
    return o.height * o.width;
  }

  // D -> hidden (ReLU) x hidden_layers -> 2D, the last layer zero.
  static Net conditioner(std::int64_t d, const RealNVPMLPOptions& o) {
    return flows::mlp_conditioner<T>(d, o.hidden, o.hidden_layers, 2 * d, true);
  }

  RealNVPMLPOptions options_;
};

/// Options of RealNVP (defaults: 1-channel 28 x 28 images, sized for a CPU).
struct RealNVPOptions {
  std::int64_t channels = 1;                          ///< C of the images
  std::int64_t height = 28;                           ///< H (divisible by 2^scales)
  std::int64_t width = 28;                            ///< W (divisible by 2^scales)
  int scales = 2;                                     ///< squeeze-and-factor-out levels before the final scale
  std::int64_t hidden = 64;                           ///< channels of the conditioners
  int blocks = 2;                                     ///< residual blocks per conditioner
  double alpha = 0.05;                                ///< of the logit transform
  flows::ScaleBound bound = flows::ScaleBound::tanh;  ///< how each coupling bounds its log-scale
  std::int64_t levels = 256;                          ///< pixel levels of the data (dequantization)
  std::uint64_t noise_seed = 0;                       ///< seed of the dequantization noise
};

/// RealNVP's multiscale convolutional flow on images [N, C, H, W] (see the file comment);
/// conditioner weights from genmod's default generator.
template <class T = float>
class RealNVP : public FlowModel<T, flows::StandardNormal<T>> {
 public:
  /// The element type's conditioner network.
  using Net = nn::DynamicSequential<T>;
  /// One coupling step.
  using Coupling = flows::AffineCoupling<Net>;

  /// The model of `options`; ValueError for sizes that are not positive or not divisible by 2^scales.
  explicit RealNVP(RealNVPOptions options = {})
      : FlowModel<T, flows::StandardNormal<T>>(checked_event(options), latent_of(options)), options_(options) {
    this->preprocess.push_back(flows::Dequantize<T>({.levels = options.levels, .seed = options.noise_seed}));
    this->preprocess.push_back(flows::LogitTransform<T>(options.alpha));
    this->flow = scale_flow(this->event_shape(), options.scales);
  }

  /// The options it was built with.
  const RealNVPOptions& options() const noexcept { return options_; }

 private:
  static Shape checked_event(const RealNVPOptions& o) {
    check_positive("models::RealNVP", "channels", o.channels);
    check_at_least("models::RealNVP", "scales", o.scales, 0);
    check_positive("models::RealNVP", "hidden", o.hidden);
    check_at_least("models::RealNVP", "blocks", o.blocks, 0);
    flows::check_squeezable("models::RealNVP", o.height, o.width, o.scales);
    return Shape{o.channels, o.height, o.width};
  }
  static Shape latent_of(const RealNVPOptions& o) {
    return o.scales == 0 ? Shape{o.channels, o.height, o.width} : Shape{4 * o.channels, o.height / 2, o.width / 2};
  }

  // The flow of one scale on samples of shape `event`, with `remaining` squeeze levels to go.
  flows::FlowSequence<T> scale_flow(const Shape& event, int remaining) const {
    flows::FlowSequence<T> seq;
    const std::int64_t c = event[0], h = event[1], w = event[2];
    const int checkerboards = remaining == 0 ? 4 : 3;
    for (int k = 0; k < checkerboards; ++k)
      seq.push_back(Coupling(conditioner(c), flows::checkerboard_mask<T>(event, parity(k)), {.bound = options_.bound}));
    if (remaining == 0) return seq;
    seq.push_back(flows::Squeeze<T>());
    const Shape squeezed{4 * c, h / 2, w / 2};
    for (int k = 0; k < 3; ++k)
      seq.push_back(
          Coupling(conditioner(4 * c), flows::channel_mask<T>(squeezed, parity(k)), {.bound = options_.bound}));
    const Shape next{2 * c, h / 2, w / 2};
    const Shape next_out = remaining == 1 ? next : Shape{8 * c, h / 4, w / 4};
    seq.push_back(flows::FactorOut<T>(squeezed, 2 * c, scale_flow(next, remaining - 1), next_out));
    return seq;
  }

  static flows::MaskParity parity(int k) { return k % 2 == 0 ? flows::MaskParity::first : flows::MaskParity::second; }

  // conv 3x3 c -> hidden, ReLU, residual blocks, conv 3x3 hidden -> 2c (zero).
  Net conditioner(std::int64_t c) const {
    const std::int64_t h = options_.hidden;
    Net net{nn::Conv2d<T>(c, h, 3, {.padding = 1}), nn::ReLU<T>()};
    for (int b = 0; b < options_.blocks; ++b) {
      net.push_back(nn::Residual<T>(
          Net{nn::Conv2d<T>(h, h, 3, {.padding = 1}), nn::ReLU<T>(), nn::Conv2d<T>(h, h, 3, {.padding = 1})}));
      net.push_back(nn::ReLU<T>());
    }
    net.push_back(flows::zero_initialized(nn::Conv2d<T>(h, 2 * c, 3, {.padding = 1})));
    return net;
  }

  RealNVPOptions options_;
};

static_assert(GenerativeModel<RealNVPMLP<float>> && DensityModel<RealNVPMLP<float>>);
static_assert(GenerativeModel<RealNVP<float>> && DensityModel<RealNVP<float>>);

}  // namespace genmod::models

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::models::RealNVPMLP, float)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::models::RealNVP, float)
#endif
