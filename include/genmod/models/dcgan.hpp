#pragma once
/// \file dcgan.hpp
/// The convolutional generator and discriminator of the `dcgan` reference workload (Radford et
/// al. 2016's recipe at 28 x 28): strided (transposed) convolutions instead of pooling, BatchNorm
/// in the generator, LeakyReLU(0.2) in the discriminator, tanh output in [-1, 1].
///
///   G: z [N, latent] -> Linear(latent, 2w*7*7) BN1d ReLU -> [2w, 7, 7]
///        -> ConvT(2w, w, 4, s2, p1) BN2d ReLU -> [w, 14, 14] -> ConvT(w, C, 4, s2, p1) tanh -> [C, 28, 28]
///   D: x [N, C, 28, 28] -> Conv(C, w, 4, s2, p1) LReLU -> [w, 14, 14]
///        -> Conv(w, 2w, 4, s2, p1) norm LReLU -> [2w, 7, 7] -> Linear(2w*7*7, 1) -> [N]
///
/// With w = 64 and C = 1 these are exactly the reference's networks (691,330 parameters in all).
/// The discriminator's normalisation is an option because WGAN-GP must not use BatchNorm there
/// (the penalty is per sample): LayerNorm over [2w, 7, 7] or none instead.

#include <cstdint>
#include <memory>
#include <string>

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/layers/norm.hpp"

namespace genmod::models {

/// Sizes of the DCGAN generator.
struct DCGANGeneratorOptions {
  std::int64_t latent_dim = 64;  ///< z dimensions
  std::int64_t width = 64;       ///< w: channels at 14 x 14 (2w at 7 x 7)
  std::int64_t channels = 1;     ///< image channels C
};

/// The DCGAN generator (see the file comment): z [N, latent] -> images [N, C, 28, 28] in (-1, 1).
template <class T = float>
class DCGANGenerator : public nn::Layer<T> {
 public:
  /// Builds the layers (PyTorch's default initialisation, from the default generator).
  explicit DCGANGenerator(DCGANGeneratorOptions o = {})
      : o_(checked(o)),
        fc(o_.latent_dim, 2 * o_.width * 49),
        bn0(2 * o_.width * 49),
        t1(2 * o_.width, o_.width, 4, {.stride = 2, .padding = 1}),
        bn1(o_.width),
        t2(o_.width, o_.channels, 4, {.stride = 2, .padding = 1}) {}

  /// z [N, latent] -> [N, C, 28, 28].
  Var<T> forward(const Var<T>& z) override {
    Var<T> h = reshape(relu(bn0(fc(z))), Shape{z.dim(0), 2 * o_.width, 7, 7});
    h = relu(bn1(t1(h)));
    return tanh(t2(h));
  }
  /// Children fc, bn0, t1, bn1, t2.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("fc", fc);
    v.child("bn0", bn0);
    v.child("t1", t1);
    v.child("bn1", bn1);
    v.child("t2", t2);
  }
  /// The sizes it was built with.
  const DCGANGeneratorOptions& options() const noexcept { return o_; }

 private:
  static DCGANGeneratorOptions checked(DCGANGeneratorOptions o) {
    check_positive("DCGANGenerator", "latent_dim", o.latent_dim);
    check_positive("DCGANGenerator", "width", o.width);
    check_positive("DCGANGenerator", "channels", o.channels);
    return o;
  }
  DCGANGeneratorOptions o_;

 public:
  nn::Linear<T> fc;           ///< latent -> 2w * 7 * 7
  nn::BatchNorm1d<T> bn0;     ///< over the 2w * 7 * 7 features
  nn::ConvTranspose2d<T> t1;  ///< 2w -> w, 7 -> 14
  nn::BatchNorm2d<T> bn1;     ///< over w channels
  nn::ConvTranspose2d<T> t2;  ///< w -> C, 14 -> 28
};

/// The normalisation after the discriminator's second convolution.
enum class CriticNorm { batch, layer, none };

/// Sizes of the DCGAN discriminator.
struct DCGANDiscriminatorOptions {
  std::int64_t width = 64;              ///< w: channels at 14 x 14 (2w at 7 x 7)
  std::int64_t channels = 1;            ///< image channels C
  CriticNorm norm = CriticNorm::batch;  ///< BatchNorm as the reference; layer or none for WGAN-GP
};

/// The DCGAN discriminator (see the file comment): images [N, C, 28, 28] -> one logit each [N].
template <class T = float>
class DCGANDiscriminator : public nn::Layer<T> {
 public:
  /// Builds the layers (PyTorch's default initialisation, from the default generator).
  explicit DCGANDiscriminator(DCGANDiscriminatorOptions o = {})
      : o_(checked(o)),
        c1(o_.channels, o_.width, 4, {.stride = 2, .padding = 1}),
        c2(o_.width, 2 * o_.width, 4, {.stride = 2, .padding = 1}),
        fc(2 * o_.width * 49, 1) {
    if (o_.norm == CriticNorm::batch) bn2 = std::make_shared<nn::BatchNorm2d<T>>(2 * o_.width);
    if (o_.norm == CriticNorm::layer)
      ln2 = std::make_shared<nn::LayerNorm<T>>(std::initializer_list<std::int64_t>{2 * o_.width, 7, 7});
  }

  /// x [N, C, 28, 28] -> logits [N].
  Var<T> forward(const Var<T>& x) override {
    if (x.rank() != 4 || x.dim(1) != o_.channels || x.dim(2) != 28 || x.dim(3) != 28)
      throw ShapeError("DCGANDiscriminator: expected images [N, " + std::to_string(o_.channels) + ", 28, 28], got " +
                       x.shape().to_string());
    Var<T> h = leaky_relu(c1(x), T(0.2));
    h = c2(h);
    if (bn2) h = (*bn2)(h);
    if (ln2) h = (*ln2)(h);
    h = leaky_relu(h, T(0.2));
    return reshape(fc(flatten(h, 1)), Shape{x.dim(0)});
  }
  /// Children c1, c2, the normalisation (bn2 or ln2, when present), fc.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("c1", c1);
    v.child("c2", c2);
    if (bn2) v.child("bn2", *bn2);
    if (ln2) v.child("ln2", *ln2);
    v.child("fc", fc);
  }
  /// The sizes it was built with.
  const DCGANDiscriminatorOptions& options() const noexcept { return o_; }

 private:
  static DCGANDiscriminatorOptions checked(DCGANDiscriminatorOptions o) {
    check_positive("DCGANDiscriminator", "width", o.width);
    check_positive("DCGANDiscriminator", "channels", o.channels);
    return o;
  }
  DCGANDiscriminatorOptions o_;

 public:
  nn::Conv2d<T> c1;                         ///< C -> w, 28 -> 14
  nn::Conv2d<T> c2;                         ///< w -> 2w, 14 -> 7
  std::shared_ptr<nn::BatchNorm2d<T>> bn2;  ///< with CriticNorm::batch
  std::shared_ptr<nn::LayerNorm<T>> ln2;    ///< with CriticNorm::layer
  nn::Linear<T> fc;                         ///< 2w * 7 * 7 -> 1
};

}  // namespace genmod::models
