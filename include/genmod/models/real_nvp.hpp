#pragma once
/// \file real_nvp.hpp
/// RealNVPMLP: RealNVP's affine couplings over flattened images with MLP conditioners (the
/// `realnvp_mlp` reference workload), as a FlowModel.
///
///   preprocess: Dequantize (8-bit pixels, u ~ U[0, 1)), LogitTransform(alpha = 0.05)
///   flow:       K affine couplings; coupling k keeps the checkerboard (i + j even) of the H x W
///               image when k is even, its complement when k is odd; each conditioner is
///               D -> hidden -> ... -> hidden -> 2D with ReLU, its last layer zero (so every step
///               starts as the identity); s = tanh(r) * scale by default
///   base:       N(0, I)
/// log p(x) is the pixel-space density of the 8-bit data (the preprocessing log-dets included),
/// reported as bits/dim.

#include <cstdint>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/flows/affine_coupling.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/dequantize.hpp"
#include "genmod/flows/logit_transform.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/models/flow_model.hpp"
#include "genmod/nn/any_module.hpp"
#include "genmod/nn/layers/activation.hpp"
#include "genmod/nn/layers/linear.hpp"

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
                                    {.bound = options.bound}));
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
    Net net;
    std::int64_t in = d;
    for (int l = 0; l < o.hidden_layers; ++l) {
      net.push_back(nn::Linear<T>(in, o.hidden));
      net.push_back(nn::ReLU<T>());
      in = o.hidden;
    }
    nn::Linear<T> last(in, 2 * d);
    last.weight.value().fill(T(0));
    last.bias.value().fill(T(0));
    net.push_back(std::move(last));
    return net;
  }

  RealNVPMLPOptions options_;
};

}  // namespace genmod::models
