#pragma once
/// \file conditional_gan.hpp
/// A class-conditional GAN (Mirza & Osindero 2014): both networks are given the class y of each
/// sample, G(z, y) learns p(x | y) and sample(labels) generates the classes asked for. The game,
/// the objectives and the step recipe are models::GAN's (gan.hpp); the fakes of a step carry the
/// labels of the real batch, so D compares real and generated samples of the same classes.
///
/// How the networks see y:
/// - concat (Mirza & Osindero): one_hot(y) [N, K] is appended to z, and to D's input: to the
///   flattened sample for an MLP, as K constant planes [N, K, H, W] after the image channels for
///   a convolutional D (plane y all ones, the others zeros).
/// - projection (Miyato & Koyama 2018), discriminators only: with phi(x) [N, F] D's features
///   before its last Linear psi and an embedding matrix E [K, F],
///       D(x, y) = psi(phi(x)) + <E[y], phi(x)>,
///   i.e. psi's readout plus a class-specific linear readout of the same features. It is the form
///   the optimal D takes when log p(y | x) is log-linear in phi(x), and it lets y act on D's last
///   layer only, where concat makes the first layer learn the interaction.
///
/// The networks are nn::Modules with `forward(x, labels)` (ConditionalNetwork), not nn::Layers: a
/// layer takes one input. Labels are Tensor<std::int64_t> [N] of classes in [0, K); a label
/// outside is a ValueError naming it, its position and K.

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/select.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/tape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/losses/adversarial.hpp"
#include "genmod/models/dcgan.hpp"
#include "genmod/models/gan.hpp"
#include "genmod/models/mlp_gan.hpp"
#include "genmod/nn/freeze.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/embedding.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/layers/norm.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::models {

/// A network conditioned on class labels: a module with `Var<T> forward(const Var<T>& x, const
/// Tensor<std::int64_t>& labels)` (x [N, ...], labels [N] in [0, num_classes())) and num_classes().
template <class M>
concept ConditionalNetwork = nn::ModuleType<M> &&
    requires(M& m, const Var<typename M::value_type>& x, const Tensor<std::int64_t>& labels) {
  { m.forward(x, labels) } -> std::same_as<Var<typename M::value_type>>;
  { m.num_classes() } -> std::convertible_to<std::int64_t>;
};

/// How a conditional discriminator sees the class (see the file comment).
enum class ConditioningMode {
  concat,      ///< one_hot(y) appended to the input (label planes for images)
  projection,  ///< psi(phi(x)) + <E[y], phi(x)> (Miyato & Koyama 2018)
};

/// Throws unless `labels` is [n] (ShapeError; n < 0: any length >= 1) with every value a class in
/// [0, num_classes) (ValueError naming the first label outside, its position and num_classes).
/// `batch` says what n counts, for the message ("the real batch [8, 2]").
inline void check_class_labels(std::string_view op, const Tensor<std::int64_t>& labels, std::int64_t num_classes,
                               std::int64_t n = -1, std::string_view batch = {}) {
  check_rank(op, "labels", labels.shape(), 1, "[N], one class per sample");
  if (n >= 0) {
    std::string expected = "[" + std::to_string(n) + "]";
    if (!batch.empty()) expected += " (one per sample of " + std::string(batch) + ")";
    check_shape_arg(labels.dim(0) == n, op, "labels", expected, labels.shape().to_string());
  } else {
    check_shape_arg(labels.dim(0) >= 1, op, "labels", "[N] with N >= 1", labels.shape().to_string());
  }
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw ValueError(std::string(op) + ": label " + std::to_string(labels[i]) + " at position " + std::to_string(i) +
                       " is outside the classes [0, " + std::to_string(num_classes) + ")");
}

/// Labels 0, 1, ..., K-1, 0, 1, ... of length n: every class equally often (up to one).
inline Tensor<std::int64_t> cyclic_labels(std::int64_t n, std::int64_t num_classes) {
  check_positive("cyclic_labels", "n", n);
  check_positive("cyclic_labels", "num_classes", num_classes);
  Tensor<std::int64_t> labels(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) labels[i] = i % num_classes;
  return labels;
}

namespace detail {

/// K constant planes [N, K, h, w] for labels [N]: plane labels[i] of sample i is all ones, the
/// others zeros (one_hot broadcast over the pixels).
template <class T>
Tensor<T> label_planes(const Tensor<std::int64_t>& labels, std::int64_t num_classes, std::int64_t h, std::int64_t w) {
  const std::int64_t n = labels.numel(), plane = h * w;
  Tensor<T> planes = zeros<T>(Shape{n, num_classes, h, w});
  for (std::int64_t i = 0; i < n; ++i) {
    T* p = planes.data() + (i * num_classes + labels[i]) * plane;
    std::fill(p, p + plane, T(1));
  }
  return planes;
}

/// An embedding table [K, F] initialised as the weight of a Linear(F, K), U(-1/sqrt(F), 1/sqrt(F))
/// from the default generator: each row is a class's linear readout of the F features, beside
/// psi's, so it starts at psi's scale (nn::Embedding's N(0, 1) would make <E[y], phi> sqrt(F)
/// times larger than psi(phi) and saturate the logits at the start).
template <class T>
std::shared_ptr<nn::Embedding<T>> projection_embedding(std::int64_t num_classes, std::int64_t features) {
  Generator unused(0);  // nn::Embedding's own N(0, 1) table, replaced below
  auto e = std::make_shared<nn::Embedding<T>>(num_classes, features, &unused);
  nn::init::default_weight(e->weight.value(), default_generator());
  return e;
}

/// <E[y_i], phi_i> per sample [N] for features phi [N, F].
template <class T>
Var<T> projection_term(nn::Embedding<T>& embed, const Var<T>& phi, const Tensor<std::int64_t>& labels) {
  return sum(mul(embed.lookup(labels), phi), 1);
}

}  // namespace detail

/// The MLP generator of mlp_gan.hpp on [z, one_hot(y)]: z [N, latent] and labels [N] -> samples.
/// Its parameters carry MLPGenerator's names ("layers.0.weight", ...), the first layer K wider.
template <class T = float>
class ConditionalMLPGenerator : public nn::Module<T> {
 public:
  /// The generator of `options` (latent_dim counts z alone) for `num_classes` classes.
  explicit ConditionalMLPGenerator(MLPGeneratorOptions options = {}, std::int64_t num_classes = 10)
      : latent_(checked_latent(options.latent_dim)),
        k_(checked_classes(num_classes)),
        net_(widened(std::move(options), k_)) {}

  /// z [N, latent_dim], labels [N] -> samples [N, out] (or [N, sample_shape...]).
  Var<T> forward(const Var<T>& z, const Tensor<std::int64_t>& labels) {
    if (z.rank() != 2 || z.dim(1) != latent_ || z.dim(0) < 1)
      throw ShapeError("ConditionalMLPGenerator: expected z [N, " + std::to_string(latent_) + "], got " +
                       z.shape().to_string());
    check_class_labels("ConditionalMLPGenerator", labels, k_, z.dim(0), "z");
    return net_(concat({z, Var<T>(one_hot<T>(labels, k_))}, 1));
  }
  /// The number of classes K.
  std::int64_t num_classes() const noexcept { return k_; }
  /// z's dimensions (without the one-hot).
  std::int64_t latent_dim() const noexcept { return latent_; }
  /// The MLP's layers under MLPGenerator's names (the wrapped network adds no name segment).
  void visit(nn::ModuleVisitor<T>& v) override { v.child("", net_); }

 private:
  static std::int64_t checked_latent(std::int64_t d) {
    check_positive("ConditionalMLPGenerator", "latent_dim", d);
    return d;
  }
  static std::int64_t checked_classes(std::int64_t k) {
    check_positive("ConditionalMLPGenerator", "num_classes", k);
    return k;
  }
  static MLPGeneratorOptions widened(MLPGeneratorOptions o, std::int64_t k) {
    o.latent_dim += k;
    return o;
  }
  std::int64_t latent_, k_;
  MLPGenerator<T> net_;
};

/// A fully connected conditional discriminator with LeakyReLU(0.2), as MLPDiscriminator:
///   concat:     [flatten(x), one_hot(y)] -> (Linear LReLU) x layers -> Linear -> [N]
///   projection: phi = (Linear LReLU) x layers on flatten(x);  psi(phi) + <E[y], phi> -> [N]
template <class T = float>
class ConditionalMLPDiscriminator : public nn::Module<T> {
 public:
  /// The discriminator of `options` for `num_classes` classes, conditioned as `mode` says.
  explicit ConditionalMLPDiscriminator(MLPDiscriminatorOptions options = {}, std::int64_t num_classes = 10,
                                       ConditioningMode mode = ConditioningMode::concat)
      : o_(options), k_(num_classes), mode_(mode) {
    check_positive("ConditionalMLPDiscriminator", "in", o_.in);
    check_positive("ConditionalMLPDiscriminator", "hidden", o_.hidden);
    check_positive("ConditionalMLPDiscriminator", "layers", o_.layers);
    check_positive("ConditionalMLPDiscriminator", "num_classes", k_);
    std::int64_t in = o_.in + (mode_ == ConditioningMode::concat ? k_ : 0);
    for (int i = 0; i < o_.layers; ++i, in = o_.hidden) layers_.push_back(nn::Linear<T>(in, o_.hidden));
    layers_.push_back(nn::Linear<T>(in, 1));
    if (mode_ == ConditioningMode::projection) embed = detail::projection_embedding<T>(k_, o_.hidden);
  }

  /// phi [N, hidden]: the last hidden layer's activations (in concat mode, of [x, one_hot(y)]).
  Var<T> features(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    if (x.rank() < 2 || x.dim(0) < 1 || x.numel() != x.dim(0) * o_.in)
      throw ShapeError("ConditionalMLPDiscriminator: expected samples of " + std::to_string(o_.in) + " elements, [N, " +
                       std::to_string(o_.in) + "] or [N, ...], got " + x.shape().to_string());
    check_class_labels("ConditionalMLPDiscriminator", labels, k_, x.dim(0), "the samples");
    Var<T> h = x.rank() == 2 ? x : flatten(x, 1);
    if (mode_ == ConditioningMode::concat) h = concat({h, Var<T>(one_hot<T>(labels, k_))}, 1);
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = leaky_relu(layers_[i](h), T(0.2));
    return h;
  }
  /// x [N, ...] with `in` elements per sample, labels [N] -> one logit per sample [N].
  Var<T> forward(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    const Var<T> phi = features(x, labels);
    Var<T> out = reshape(layers_[layers_.size() - 1](phi), Shape{x.dim(0)});
    if (embed) out = out + detail::projection_term(*embed, phi, labels);
    return out;
  }
  /// The number of classes K.
  std::int64_t num_classes() const noexcept { return k_; }
  /// How the class enters.
  ConditioningMode mode() const noexcept { return mode_; }
  /// The layers as "layers.0", "layers.1", ..., the last one psi; "embed" with projection.
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("layers", layers_);
    if (embed) v.child("embed", *embed);
  }

 private:
  MLPDiscriminatorOptions o_;
  std::int64_t k_;
  ConditioningMode mode_;
  nn::ModuleList<nn::Linear<T>> layers_;

 public:
  std::shared_ptr<nn::Embedding<T>> embed;  ///< E [K, hidden], with ConditioningMode::projection
};

/// The DCGAN generator of dcgan.hpp on [z, one_hot(y)]: z [N, latent] and labels [N] -> images
/// [N, C, 28, 28]. Its parameters carry DCGANGenerator's names (fc, bn0, t1, bn1, t2), fc K wider.
template <class T = float>
class ConditionalDCGANGenerator : public nn::Module<T> {
 public:
  /// The generator of `options` (latent_dim counts z alone) for `num_classes` classes.
  explicit ConditionalDCGANGenerator(DCGANGeneratorOptions options = {}, std::int64_t num_classes = 10)
      : o_(checked(options, num_classes)),
        k_(num_classes),
        net_({.latent_dim = o_.latent_dim + k_, .width = o_.width, .channels = o_.channels}) {}

  /// z [N, latent_dim], labels [N] -> [N, C, 28, 28] in (-1, 1).
  Var<T> forward(const Var<T>& z, const Tensor<std::int64_t>& labels) {
    if (z.rank() != 2 || z.dim(1) != o_.latent_dim || z.dim(0) < 1)
      throw ShapeError("ConditionalDCGANGenerator: expected z [N, " + std::to_string(o_.latent_dim) + "], got " +
                       z.shape().to_string());
    check_class_labels("ConditionalDCGANGenerator", labels, k_, z.dim(0), "z");
    return net_(concat({z, Var<T>(one_hot<T>(labels, k_))}, 1));
  }
  /// The number of classes K.
  std::int64_t num_classes() const noexcept { return k_; }
  /// The sizes it was built with (latent_dim counts z alone).
  const DCGANGeneratorOptions& options() const noexcept { return o_; }
  /// The wrapped DCGAN generator (its fc takes latent_dim + K inputs).
  DCGANGenerator<T>& net() noexcept { return net_; }
  /// DCGANGenerator's children under their own names (the wrapped network adds no segment).
  void visit(nn::ModuleVisitor<T>& v) override { v.child("", net_); }

 private:
  static DCGANGeneratorOptions checked(DCGANGeneratorOptions o, std::int64_t k) {
    check_positive("ConditionalDCGANGenerator", "latent_dim", o.latent_dim);
    check_positive("ConditionalDCGANGenerator", "num_classes", k);
    return o;
  }
  DCGANGeneratorOptions o_;
  std::int64_t k_;
  DCGANGenerator<T> net_;
};

/// The DCGAN discriminator of dcgan.hpp conditioned on y: images [N, C, 28, 28] and labels [N]
/// -> one logit each [N].
///   concat:     [x, label planes] [N, C + K, 28, 28] -> the DCGAN convolutions -> phi -> fc
///   projection: phi(x) = the DCGAN convolutions' flattened output [N, 2w * 49];
///               fc(phi) + <E[y], phi>
template <class T = float>
class ConditionalDCGANDiscriminator : public nn::Module<T> {
 public:
  /// The discriminator of `options` (CriticNorm as DCGANDiscriminator) for `num_classes` classes,
  /// conditioned as `mode` says.
  explicit ConditionalDCGANDiscriminator(DCGANDiscriminatorOptions options = {}, std::int64_t num_classes = 10,
                                         ConditioningMode mode = ConditioningMode::concat)
      : o_(checked(options, num_classes)),
        k_(num_classes),
        mode_(mode),
        c1(o_.channels + (mode == ConditioningMode::concat ? k_ : 0), o_.width, 4, {.stride = 2, .padding = 1}),
        c2(o_.width, 2 * o_.width, 4, {.stride = 2, .padding = 1}),
        fc(2 * o_.width * 49, 1) {
    if (o_.norm == CriticNorm::batch) bn2 = std::make_shared<nn::BatchNorm2d<T>>(2 * o_.width);
    if (o_.norm == CriticNorm::layer)
      ln2 = std::make_shared<nn::LayerNorm<T>>(std::initializer_list<std::int64_t>{2 * o_.width, 7, 7});
    if (mode_ == ConditioningMode::projection) embed = detail::projection_embedding<T>(k_, 2 * o_.width * 49);
  }

  /// phi [N, 2w * 49]: the convolutions' flattened output (in concat mode, of [x, label planes]).
  Var<T> features(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    if (x.rank() != 4 || x.dim(0) < 1 || x.dim(1) != o_.channels || x.dim(2) != 28 || x.dim(3) != 28)
      throw ShapeError("ConditionalDCGANDiscriminator: expected images [N, " + std::to_string(o_.channels) +
                       ", 28, 28], got " + x.shape().to_string());
    check_class_labels("ConditionalDCGANDiscriminator", labels, k_, x.dim(0), "the images");
    Var<T> h = x;
    if (mode_ == ConditioningMode::concat) h = concat({h, Var<T>(detail::label_planes<T>(labels, k_, 28, 28))}, 1);
    h = leaky_relu(c1(h), T(0.2));
    h = c2(h);
    if (bn2) h = (*bn2)(h);
    if (ln2) h = (*ln2)(h);
    return flatten(leaky_relu(h, T(0.2)), 1);
  }
  /// x [N, C, 28, 28], labels [N] -> logits [N].
  Var<T> forward(const Var<T>& x, const Tensor<std::int64_t>& labels) {
    const Var<T> phi = features(x, labels);
    Var<T> out = reshape(fc(phi), Shape{x.dim(0)});
    if (embed) out = out + detail::projection_term(*embed, phi, labels);
    return out;
  }
  /// The number of classes K.
  std::int64_t num_classes() const noexcept { return k_; }
  /// How the class enters.
  ConditioningMode mode() const noexcept { return mode_; }
  /// The sizes it was built with.
  const DCGANDiscriminatorOptions& options() const noexcept { return o_; }
  /// Children c1, c2, the normalisation (bn2 or ln2, when present), fc, embed (projection).
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("c1", c1);
    v.child("c2", c2);
    if (bn2) v.child("bn2", *bn2);
    if (ln2) v.child("ln2", *ln2);
    v.child("fc", fc);
    if (embed) v.child("embed", *embed);
  }

 private:
  static DCGANDiscriminatorOptions checked(DCGANDiscriminatorOptions o, std::int64_t k) {
    check_positive("ConditionalDCGANDiscriminator", "width", o.width);
    check_positive("ConditionalDCGANDiscriminator", "channels", o.channels);
    check_positive("ConditionalDCGANDiscriminator", "num_classes", k);
    return o;
  }
  DCGANDiscriminatorOptions o_;
  std::int64_t k_;
  ConditioningMode mode_;

 public:
  nn::Conv2d<T> c1;                         ///< C (+ K label planes with concat) -> w, 28 -> 14
  nn::Conv2d<T> c2;                         ///< w -> 2w, 14 -> 7
  std::shared_ptr<nn::BatchNorm2d<T>> bn2;  ///< with CriticNorm::batch
  std::shared_ptr<nn::LayerNorm<T>> ln2;    ///< with CriticNorm::layer
  nn::Linear<T> fc;                         ///< psi: 2w * 7 * 7 -> 1
  std::shared_ptr<nn::Embedding<T>> embed;  ///< E [K, 2w * 49], with ConditioningMode::projection
};

/// A class-conditional GAN over conditional networks G(z, y) and D(x, y) (see the file comment):
/// models::GAN's steps, objectives and options, with labels [N] beside every batch.
template <class G, class D>
requires ConditionalNetwork<G> && ConditionalNetwork<D> && std::same_as<typename G::value_type, typename D::value_type>
class ConditionalGAN : public nn::Module<typename G::value_type> {
 public:
  using T = typename G::value_type;  ///< the scalar type

  /// The model over the two networks (held by value; copies of modules share parameters). They
  /// must agree on the number of classes; the options are checked as GAN's.
  ConditionalGAN(G generator, D discriminator, GANOptions options = {})
      : g_(std::move(generator)), d_(std::move(discriminator)), opt_(options), noise_(options.noise_seed) {
    detail::check_gan_options("ConditionalGAN", opt_);
    detail::check_penalty_critic<T>("ConditionalGAN", opt_, d_);
    k_ = static_cast<std::int64_t>(g_.num_classes());
    if (static_cast<std::int64_t>(d_.num_classes()) != k_)
      throw ValueError("ConditionalGAN: the generator has " + std::to_string(k_) + " classes but the discriminator " +
                       std::to_string(static_cast<std::int64_t>(d_.num_classes())));
  }

  /// The generator network.
  G& generator() noexcept { return g_; }
  /// The discriminator (critic) network.
  D& discriminator() noexcept { return d_; }
  /// The options the model was built with.
  const GANOptions& options() const noexcept { return opt_; }
  /// The number of classes K (the networks').
  std::int64_t num_classes() const noexcept { return k_; }
  /// The generator of z and of the penalty's alpha (register it for exact resume).
  Generator& noise() noexcept { return noise_; }

  /// Trains data-parallel, as GAN::set_data_parallel: the critic's gradients through
  /// `discriminator`, the generator's through `generator` (nullptr: plain backward).
  void set_data_parallel(distributed::DataParallel<T>* discriminator, distributed::DataParallel<T>* generator) {
    d_dp_ = discriminator;
    g_dp_ = generator;
  }

  /// z [n, latent_dim] ~ N(0, I) drawn from `gen`.
  Tensor<T> draw_latent(std::int64_t n, Generator& gen) const {
    check_positive("ConditionalGAN::draw_latent", "n", n);
    Tensor<T> z(Shape{n, opt_.latent_dim});
    fill_normal(z, gen);
    return z;
  }

  /// G(z, labels) for z [N, latent_dim] and labels [N], recorded when a tape is.
  Var<T> generate(const Var<T>& z, const Tensor<std::int64_t>& labels) {
    if (z.rank() != 2 || z.dim(1) != opt_.latent_dim || z.dim(0) < 1)
      throw ShapeError("ConditionalGAN::generate: expected z [N, " + std::to_string(opt_.latent_dim) + "], got " +
                       z.shape().to_string());
    check_class_labels("ConditionalGAN::generate", labels, k_, z.dim(0), "z");
    return g_.forward(z, labels);
  }

  /// One sample of each class in `labels` [n], z ~ N(0, I) from `gen`, without recording, in the
  /// generator's current mode (call eval() first for BatchNorm's running statistics).
  Tensor<T> sample(const Tensor<std::int64_t>& labels, Generator& gen) {
    check_class_labels("ConditionalGAN::sample", labels, k_);
    NoGradGuard no_grad;
    return generate(Var<T>(draw_latent(labels.dim(0), gen)), labels).value();
  }
  /// n samples of the classes 0, 1, ..., K-1, 0, ... in turn (cyclic_labels).
  Tensor<T> sample(std::int64_t n, Generator& gen) {
    check_positive("ConditionalGAN::sample", "n", n);
    return sample(cyclic_labels(n, k_), gen);
  }

  /// One critic update on `real` [N, ...] of classes `labels` [N] with the discriminator's
  /// optimizer `d_opt` (over D's parameters only), against N fresh fakes of the same classes.
  GanStepStats discriminator_step(const Tensor<T>& real, const Tensor<std::int64_t>& labels,
                                  optim::Optimizer<T>& d_opt) {
    check_batch(real, labels);
    Tape<T> tape;
    Tensor<T> fake;
    {
      NoGradGuard no_grad;  // G is not trained here: its forward pass records nothing
      fake = generate(Var<T>(draw_latent(real.dim(0), noise_)), labels).value();
    }
    return critic_update(real, labels, fake, d_opt);
  }

  /// One generator update on one fresh fake per entry of `labels` [N], of that class, with the
  /// generator's optimizer `g_opt` (over G's parameters only); D is frozen for the step.
  GanStepStats generator_step(const Tensor<std::int64_t>& labels, optim::Optimizer<T>& g_opt) {
    check_class_labels("ConditionalGAN::generator_step", labels, k_);
    Tape<T> tape;
    const Var<T> fake = generate(Var<T>(draw_latent(labels.dim(0), noise_)), labels);
    return generator_update(fake, labels, g_opt);
  }

  /// One training step of the alternating game on the real batch and its labels: a critic step,
  /// and a generator step (on fakes of the batch's labels) when this is the n_critic-th critic
  /// step since the last one. With n_critic = 1 the fakes are generated once for both halves.
  GanStepStats train_step(const Tensor<T>& real, const Tensor<std::int64_t>& labels, optim::Optimizer<T>& d_opt,
                          optim::Optimizer<T>& g_opt) {
    check_batch(real, labels);
    if (opt_.n_critic == 1) {
      Tape<T> tape;
      const Var<T> fake = generate(Var<T>(draw_latent(real.dim(0), noise_)), labels);
      GanStepStats s = critic_update(real, labels, fake.value(), d_opt);
      const GanStepStats gs = generator_update(fake, labels, g_opt);
      s.g_loss = gs.g_loss;
      s.generator_updated = true;
      return s;
    }
    GanStepStats s = discriminator_step(real, labels, d_opt);
    if (schedule_.generator_step_due(opt_.n_critic)) {
      const GanStepStats gs = generator_step(labels, g_opt);
      s.g_loss = gs.g_loss;
      s.generator_updated = true;
    }
    return s;
  }

  /// The type of the n_critic rhythm's state.
  using Schedule = GanSchedule<T>;
  /// The n_critic rhythm's state (see GanSchedule).
  Schedule& schedule() noexcept { return schedule_; }

  /// Children "generator", "discriminator" and "schedule" (see GanSchedule).
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("generator", g_);
    v.child("discriminator", d_);
    v.child("schedule", schedule_);
  }

 private:
  void check_batch(const Tensor<T>& real, const Tensor<std::int64_t>& labels) const {
    check_class_labels("ConditionalGAN", labels, k_, detail::real_batch_size("ConditionalGAN", real),
                       "the real batch " + real.shape().to_string());
  }

  // The shared updates of gan.hpp, with D's labels bound: the critic of class y_i scores sample i,
  // and under WGAN-GP the penalty is on grad_x D(x, y) with y held fixed (real sample i, fake i
  // and their interpolate share label i).
  GanStepStats critic_update(const Tensor<T>& real, const Tensor<std::int64_t>& labels, const Tensor<T>& fake,
                             optim::Optimizer<T>& d_opt) {
    const auto critic = [&](const Var<T>& x) { return d_.forward(x, labels); };
    return detail::critic_update<T>("ConditionalGAN", critic, d_, real, fake, opt_, noise_, d_opt, d_dp_);
  }
  GanStepStats generator_update(const Var<T>& fake, const Tensor<std::int64_t>& labels, optim::Optimizer<T>& g_opt) {
    const auto critic = [&](const Var<T>& x) { return d_.forward(x, labels); };
    return detail::generator_update<T>("ConditionalGAN", critic, d_frozen_, fake, opt_, g_opt, noise_, g_dp_);
  }

  G g_;
  D d_;
  GANOptions opt_;
  Generator noise_;
  std::int64_t k_ = 0;
  Schedule schedule_;
  detail::ParameterFreezer<T> d_frozen_{d_};
  distributed::DataParallel<T>* d_dp_ = nullptr;  // set_data_parallel
  distributed::DataParallel<T>* g_dp_ = nullptr;
};

/// A conditional model trained as a two-player game: a critic step on real samples with their
/// labels, a generator step on fakes of given labels (each with its own optimizer), sample(labels,
/// g) of the classes asked for and sample(n, g) cycling through the classes.
template <class M>
concept ConditionalAdversarialModel = nn::ModuleType<M> &&
    requires(M& m, const Tensor<typename M::value_type>& real, const Tensor<std::int64_t>& labels,
             optim::Optimizer<typename M::value_type>& opt, std::int64_t n, Generator& g) {
  m.discriminator_step(real, labels, opt);
  m.generator_step(labels, opt);
  { m.sample(labels, g) } -> std::same_as<Tensor<typename M::value_type>>;
  { m.sample(n, g) } -> std::same_as<Tensor<typename M::value_type>>;
  { m.num_classes() } -> std::convertible_to<std::int64_t>;
};

}  // namespace genmod::models
