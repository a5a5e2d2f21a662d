// The networks of the cvae example's attribute mode (attributes.cpp), in a header of their own
// so that benchmarks/bench_images.cpp times the same training step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <genmod/genmod.hpp>

namespace cvae_attributes {

using namespace genmod;

using Net = nn::DynamicSequential<float>;
using Encoder = nn::ImageConditionEncoder<Net, Net>;
using CVAE = models::ConditionalVAE<Encoder, Net, dist::Bernoulli>;

// Strided stages from S down to 4 x 4: S = 4 * 2^k with k >= 2.
inline std::int64_t stages_for(std::int64_t size) {
  std::int64_t k = 0;
  for (std::int64_t s = size; s > 4; s /= 2) {
    if (s % 2 != 0) break;
    ++k;
  }
  if (k < 2 || (std::int64_t{4} << k) != size)
    throw ValueError("--image-size: expected 4 * 2^k with k >= 2 (16, 32, 64, 128, ...), got " + std::to_string(size));
  return k;
}

inline std::int64_t width_of(std::int64_t stage) {
  return std::min<std::int64_t>(32 << stage, 256);
}

// Encoder: k stride-2 4 x 4 convolutions (32, 64, 128, 256, 256, ... channels) down to 4 x 4,
// then [features, c] -> 256 -> [mu, log sigma^2].
inline Encoder make_encoder(std::int64_t size, std::int64_t attrs, std::int64_t z) {
  const std::int64_t k = stages_for(size);
  Net body;
  for (std::int64_t s = 0; s < k; ++s) {
    body.push_back(nn::Conv2d(s == 0 ? 3 : width_of(s - 1), width_of(s), 4, {.stride = 2, .padding = 1}));
    body.push_back(nn::ReLU());
  }
  const std::int64_t features = width_of(k - 1) * 16;
  Net head{nn::Linear(features + attrs, 256), nn::ReLU(), nn::Linear(256, 2 * z)};
  return Encoder(3, size, size, attrs, std::move(body), std::move(head));
}

// Decoder: [z, c] -> 256 -> C x 4 x 4, then k stride-2 transposed convolutions to 3 x S x S logits.
// With every_scale, each transposed convolution also sees c as `attrs` constant channels
// (nn::ImageConditionDecoder), instead of c reaching the upsampling only through the first layers.
inline Net make_decoder(std::int64_t size, std::int64_t attrs, std::int64_t z, bool every_scale = false) {
  const std::int64_t k = stages_for(size);
  const std::int64_t top = width_of(k - 1);
  Net stem{nn::Linear(z + attrs, 256), nn::ReLU(), nn::Linear(256, top * 16), nn::ReLU(), nn::Reshape({top, 4, 4})};
  const std::int64_t extra = every_scale ? attrs : 0;
  std::vector<Net> stages;
  for (std::int64_t s = k - 1; s >= 0; --s) {
    Net stage;
    stage.push_back(
        nn::ConvTranspose2d(width_of(s) + extra, s == 0 ? 3 : width_of(s - 1), 4, {.stride = 2, .padding = 1}));
    if (s > 0) stage.push_back(nn::ReLU());
    stages.push_back(std::move(stage));
  }
  Net dec;
  if (every_scale) {
    dec.push_back(nn::ImageConditionDecoder<Net, Net>(attrs, std::move(stem), std::move(stages)));
    return dec;
  }
  dec = std::move(stem);
  for (auto& stage : stages)
    for (std::size_t i = 0; i < stage.size(); ++i) dec.push_back(stage[i]);
  return dec;
}

}  // namespace cvae_attributes
