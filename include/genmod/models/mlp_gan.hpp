#pragma once
/// \file mlp_gan.hpp
/// Fully connected GAN networks, for vectors (a 2-D toy mixture) or flattened images:
///
///   MLPGenerator:     z [N, latent] -> (Linear ReLU) x layers -> Linear -> output activation
///                     -> [N, out] or, with a sample shape, [N, shape...]
///   MLPDiscriminator: x [N, ...] flattened -> (Linear LeakyReLU(0.2)) x layers -> Linear -> [N]
///
/// Goodfellow et al.'s original GAN used such networks; the discriminator has no normalisation,
/// so every objective (WGAN-GP included) accepts it.

#include <cstdint>
#include <string>
#include <vector>

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::models {

/// The generator's last activation: none for unbounded data, tanh for [-1, 1], sigmoid for [0, 1].
enum class OutputActivation { none, tanh, sigmoid };

/// Sizes of MLPGenerator.
struct MLPGeneratorOptions {
  std::int64_t latent_dim = 64;                          ///< z dimensions
  std::int64_t hidden = 256;                             ///< width of each hidden layer
  int layers = 2;                                        ///< hidden layers (>= 1)
  std::int64_t out = 784;                                ///< output features
  std::vector<std::int64_t> sample_shape = {};           ///< e.g. {1, 28, 28}; empty: [N, out]
  OutputActivation activation = OutputActivation::tanh;  ///< applied to the last layer
};

/// A fully connected generator (see the file comment).
template <class T = float>
class MLPGenerator : public nn::Layer<T> {
 public:
  /// Builds the layers (PyTorch's default initialisation, from the default generator).
  explicit MLPGenerator(MLPGeneratorOptions o = {}) : o_(std::move(o)) {
    check_positive("MLPGenerator", "latent_dim", o_.latent_dim);
    check_positive("MLPGenerator", "hidden", o_.hidden);
    check_positive("MLPGenerator", "layers", o_.layers);
    check_positive("MLPGenerator", "out", o_.out);
    std::int64_t per_sample = 1;
    for (std::int64_t d : o_.sample_shape) per_sample *= d;
    if (!o_.sample_shape.empty() && (per_sample != o_.out || o_.sample_shape.size() + 1 > kMaxRank))
      throw ValueError("MLPGenerator: expected a sample shape of " + std::to_string(o_.out) + " elements and at most " +
                       std::to_string(kMaxRank - 1) + " dimensions, got " + std::to_string(o_.sample_shape.size()) +
                       " dimensions holding " + std::to_string(per_sample));
    std::int64_t in = o_.latent_dim;
    for (int i = 0; i < o_.layers; ++i, in = o_.hidden) layers_.push_back(nn::Linear<T>(in, o_.hidden));
    layers_.push_back(nn::Linear<T>(in, o_.out));
  }

  /// z [N, latent] -> samples.
  Var<T> forward(const Var<T>& z) override {
    Var<T> h = z;
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = relu(layers_[i](h));
    h = layers_[layers_.size() - 1](h);
    if (o_.activation == OutputActivation::tanh) h = tanh(h);
    if (o_.activation == OutputActivation::sigmoid) h = sigmoid(h);
    if (o_.sample_shape.empty()) return h;
    std::vector<std::int64_t> dims{z.dim(0)};
    dims.insert(dims.end(), o_.sample_shape.begin(), o_.sample_shape.end());
    return reshape(h, Shape(std::span<const std::int64_t>(dims)));
  }
  /// The layers as "layers.0", "layers.1", ...
  void visit(nn::ModuleVisitor<T>& v) override { v.child("layers", layers_); }

 private:
  MLPGeneratorOptions o_;
  nn::ModuleList<nn::Linear<T>> layers_;
};

/// Sizes of MLPDiscriminator.
struct MLPDiscriminatorOptions {
  std::int64_t in = 784;      ///< input features (each sample flattened)
  std::int64_t hidden = 256;  ///< width of each hidden layer
  int layers = 2;             ///< hidden layers (>= 1)
};

/// A fully connected discriminator with LeakyReLU(0.2) (see the file comment): [N, ...] -> [N].
template <class T = float>
class MLPDiscriminator : public nn::Layer<T> {
 public:
  /// Builds the layers (PyTorch's default initialisation, from the default generator).
  explicit MLPDiscriminator(MLPDiscriminatorOptions o = {}) : o_(o) {
    check_positive("MLPDiscriminator", "in", o_.in);
    check_positive("MLPDiscriminator", "hidden", o_.hidden);
    check_positive("MLPDiscriminator", "layers", o_.layers);
    std::int64_t in = o_.in;
    for (int i = 0; i < o_.layers; ++i, in = o_.hidden) layers_.push_back(nn::Linear<T>(in, o_.hidden));
    layers_.push_back(nn::Linear<T>(in, 1));
  }

  /// x [N, ...] with in elements per sample -> one logit per sample [N].
  Var<T> forward(const Var<T>& x) override {
    if (x.rank() < 2 || x.numel() != x.dim(0) * o_.in)
      throw ShapeError("MLPDiscriminator: expected samples of " + std::to_string(o_.in) + " elements, [N, " +
                       std::to_string(o_.in) + "] or [N, ...], got " + x.shape().to_string());
    Var<T> h = x.rank() == 2 ? x : flatten(x, 1);
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = leaky_relu(layers_[i](h), T(0.2));
    return reshape(layers_[layers_.size() - 1](h), Shape{x.dim(0)});
  }
  /// The layers as "layers.0", "layers.1", ...
  void visit(nn::ModuleVisitor<T>& v) override { v.child("layers", layers_); }

 private:
  MLPDiscriminatorOptions o_;
  nn::ModuleList<nn::Linear<T>> layers_;
};

}  // namespace genmod::models
