#pragma once
/// \file nice.hpp
/// NICE (Dinh, Krueger and Bengio 2014) on flattened images, as a FlowModel.
///
///   preprocess: Dequantize (8-bit pixels to (0, 1), the paper's uniform noise and rescaling)
///   flow:       K additive couplings (alternating partition: even positions kept at even k, odd
///               positions at odd k), each conditioner D -> hidden -> ... -> hidden -> D with
///               ReLU; then a learned diagonal Scaling, initialised from the first training batch
///               (flows::ScalingOptions::data_init; without it NICE starts near 10 bits/dim and
///               Adam needs thousands of steps to move the scales where the data are)
///   base:       the standard logistic
/// The paper's MNIST model: K = 4 couplings, 5 hidden layers of 1000 units.

#include <cstdint>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/additive_coupling.hpp"
#include "genmod/flows/base_distribution.hpp"
#include "genmod/flows/conditioners.hpp"
#include "genmod/flows/dequantize.hpp"
#include "genmod/flows/masks.hpp"
#include "genmod/flows/scaling.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/models/flow_model.hpp"
#include "genmod/nn/any_module.hpp"
#include "genmod/nn/layers/activation.hpp"
#include "genmod/nn/layers/linear.hpp"

namespace genmod::models {

/// Options of NICE (defaults: the paper's MNIST model on 784 dimensions).
struct NICEOptions {
  std::int64_t dim = 784;         ///< D, dimensions per sample
  int couplings = 4;              ///< K, the number of additive coupling steps
  std::int64_t hidden = 1000;     ///< width of the conditioners' hidden layers
  int hidden_layers = 5;          ///< hidden layers per conditioner
  std::int64_t levels = 256;      ///< pixel levels of the data (dequantization)
  std::uint64_t noise_seed = 0;   ///< seed of the dequantization noise
  bool scaling_data_init = true;  ///< initialise the final scaling from the first training batch
};

/// NICE (see the file comment); conditioner weights from genmod's default generator.
template <class T = float>
class NICE : public FlowModel<T, flows::StandardLogistic<T>> {
 public:
  /// The element type's conditioner network.
  using Net = nn::DynamicSequential<T>;
  /// One coupling step.
  using Coupling = flows::AdditiveCoupling<Net>;

  /// The model of `options` (ValueError for a dimension below 2 or a non-positive size).
  explicit NICE(NICEOptions options = {})
      : FlowModel<T, flows::StandardLogistic<T>>(Shape{checked_dim(options)}), options_(options) {
    check_positive("models::NICE", "couplings", options.couplings);
    check_positive("models::NICE", "hidden", options.hidden);
    check_positive("models::NICE", "hidden_layers", options.hidden_layers);
    this->preprocess.push_back(flows::Dequantize<T>({.levels = options.levels, .seed = options.noise_seed}));
    const Tensor<T> even = flows::alternating_mask<T>(options.dim);
    for (int k = 0; k < options.couplings; ++k)
      this->flow.push_back(Coupling(conditioner(options), k % 2 == 0 ? even.clone() : flows::complement(even)));
    this->flow.push_back(flows::Scaling<T>(Shape{options.dim}, {.data_init = options.scaling_data_init}));
  }

  /// The k-th coupling step (k < couplings).
  Coupling& coupling(std::size_t k) { return static_cast<Coupling&>(this->flow[k]); }
  /// The final diagonal scaling.
  flows::Scaling<T>& scaling() { return static_cast<flows::Scaling<T>&>(this->flow[this->flow.size() - 1]); }
  /// The options it was built with.
  const NICEOptions& options() const noexcept { return options_; }

 private:
  static std::int64_t checked_dim(const NICEOptions& o) {
    check_at_least("models::NICE", "dim", o.dim, 2);
    return o.dim;
  }

  // D -> hidden (ReLU) x hidden_layers -> D.
  static Net conditioner(const NICEOptions& o) {
    return flows::mlp_conditioner<T>(o.dim, o.hidden, o.hidden_layers, o.dim, false);
  }

  NICEOptions options_;
};

static_assert(GenerativeModel<NICE<float>> && DensityModel<NICE<float>>);

}  // namespace genmod::models

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::models::NICE, float)
#endif
