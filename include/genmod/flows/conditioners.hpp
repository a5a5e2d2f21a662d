#pragma once
/// \file conditioners.hpp
/// Building blocks of coupling conditioners: an MLP of a given depth, and a layer whose weights
/// and bias start at zero (so that a coupling step starts as the identity map, the usual
/// initialisation of RealNVP and Glow).

#include <cstdint>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/nn/any_module.hpp"
#include "genmod/nn/layers/activation.hpp"
#include "genmod/nn/layers/linear.hpp"

namespace genmod::flows {

/// `layer` with its weight and bias set to zero (any layer with `weight` and `bias` parameters).
template <class L>
L zero_initialized(L layer) {
  layer.weight.value().fill(typename L::value_type(0));
  if (layer.bias.defined()) layer.bias.value().fill(typename L::value_type(0));
  return layer;
}

/// in -> hidden (ReLU) x hidden_layers -> out, fully connected; the last layer zero when
/// `zero_last` (weights from genmod's default generator otherwise).
template <class T>
nn::DynamicSequential<T> mlp_conditioner(std::int64_t in, std::int64_t hidden, int hidden_layers, std::int64_t out,
                                         bool zero_last) {
  check_positive("flows::mlp_conditioner", "hidden", hidden);
  check_positive("flows::mlp_conditioner", "hidden_layers", hidden_layers);
  nn::DynamicSequential<T> net;
  std::int64_t width = in;
  for (int l = 0; l < hidden_layers; ++l) {
    net.push_back(nn::Linear<T>(width, hidden));
    net.push_back(nn::ReLU<T>());
    width = hidden;
  }
  nn::Linear<T> last(width, out);
  net.push_back(zero_last ? zero_initialized(std::move(last)) : std::move(last));
  return net;
}

}  // namespace genmod::flows
