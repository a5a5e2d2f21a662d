#pragma once
/// \file attribute_classifier.hpp
/// A multi-label attribute classifier trained by genmod itself, to score attribute-conditional
/// generators (the CelebA setting): does a sample generated with attribute X switched on show X,
/// and does "add X" to an image leave its other attributes alone?
///
/// Like eval/feature_classifier.hpp, the judge is a small CNN trained on the same data set by a
/// fixed, seeded recipe, since no pretrained attribute network can be downloaded here; a score is
/// only as good as the judge, so its held-out per-attribute accuracy (attribute_accuracy) should be
/// printed with every agreement computed from it.
///
/// Architecture, for images [N, C, H, W] with pixels in [0, 1] and A independent binary attributes,
/// base width b (AttributeClassifierOptions::base_channels); every convolution is 3x3 with padding
/// 1 and no bias, followed by batch normalisation and a ReLU:
///
///     conv C->b,   stride 1                     [N, b,  H, W]
///     conv b->2b,  stride 2                     [N, 2b, H/2, W/2]   (sizes rounded up)
///     conv 2b->4b, stride 2                     [N, 4b, H/4, W/4]
///     conv 4b->4b, stride 2                     [N, 4b, H/8, W/8]
///     flatten, linear -> hidden, ReLU           [N, hidden]
///     linear hidden -> A                        [N, A]   one logit per attribute
///
/// The first convolution keeps full resolution: telling a small circle from a small square at 32
/// pixels takes the pixels at its corners (with a stride-2 first layer, held-out Circle accuracy
/// stayed at 84 % while the rest reached 99.8 %). The flatten (rather than a global average pool)
/// keeps where things are: attributes such as "the shape is on the right" are about position.
/// Batch normalisation made training several times faster; evaluation uses its running statistics
/// (the prediction functions switch to evaluation mode).
///
/// Loss: the attributes are independent Bernoulli variables given the image, p(a_k = 1 | x) =
/// sigmoid(l_k), so the negative log-likelihood of a row is the sum over k of the binary
/// cross-entropy with logits, softplus(l_k) - a_k l_k; training minimises its batch mean with Adam
/// (rate `lr` cosine-annealed to 0 over all steps), batches shuffled by data::Loader with the
/// training seed, weights initialised from Generator(options.seed). The same options, data and
/// thread count give the same weights bit for bit.
///
/// Saving: save_attribute_classifier writes an .npz checkpoint (io::CheckpointSet's layout,
/// atomically) whose metadata records the architecture, the options (with the attribute names), the
/// training recipe and a fingerprint of the training data; load_attribute_classifier rebuilds the
/// network from that metadata. load_or_train_attribute_classifier keeps a trained network in such
/// a cache and retrains only when asked to for a cache written with other options or data.
///
/// ```cpp
/// data::ShapesSet train = data::make_shapes({.count = 4000, .size = 32});
/// auto judge = eval::train_attribute_classifier(train.float_images(), train.attributes,
///                                              {.height = 32, .width = 32, .names = train.names}, {});
/// std::vector<double> agree = eval::attribute_agreement(judge, samples, wanted);  // per attribute
/// ```

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/dataset.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/io/model_checkpoint.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/nn/batched_eval.hpp"
#include "genmod/nn/layers/conv.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/nn/layers/norm.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/adam.hpp"
#include "genmod/optim/schedule.hpp"

namespace genmod::eval {

/// The network's shape (all of it recorded in a checkpoint).
struct AttributeClassifierOptions {
  std::int64_t channels = 3;        ///< image channels C
  std::int64_t height = 64;         ///< image rows H, >= 8
  std::int64_t width = 64;          ///< image columns W, >= 8
  std::int64_t attributes = 8;      ///< binary attributes A (one logit each)
  std::int64_t base_channels = 32;  ///< b: the convolutions have b, 2b, 4b and 4b channels
  std::int64_t hidden = 128;        ///< units of the hidden linear layer
  std::uint64_t seed = 0;           ///< initial weights: Generator(seed, its own stream)
  /// Attribute names for reports (empty, or A names without whitespace: they are saved space-separated).
  std::vector<std::string> names = {};
};

/// How train_attribute_classifier trains.
struct AttributeClassifierTraining {
  std::int64_t epochs = 10;      ///< passes over the training images
  std::int64_t batch_size = 64;  ///< images per Adam step
  double lr = 1e-3;              ///< Adam's initial rate, cosine-annealed to 0 over all steps
  std::uint64_t seed = 0;        ///< batch order
  int threads = 0;               ///< genmod threads while training (0: leave the current setting)
};

/// How an AttributeClassifier was trained (saved in its checkpoint).
struct AttributeClassifierRecord {
  AttributeClassifierTraining training{};  ///< the recipe (threads: the count actually used)
  std::int64_t train_images = 0;           ///< images trained on (0: untrained)
  std::uint64_t data_fingerprint = 0;      ///< attribute_data_fingerprint of the training data (0: none)
};

namespace detail {

/// ValueError unless every size is positive (height and width >= 8) and the names fit.
inline void check_attribute_options(std::string_view op, const AttributeClassifierOptions& o) {
  check_positive(op, "channels", o.channels);
  check_at_least(op, "height", o.height, 8);
  check_at_least(op, "width", o.width, 8);
  check_positive(op, "attributes", o.attributes);
  check_positive(op, "base_channels", o.base_channels);
  check_positive(op, "hidden", o.hidden);
  if (!o.names.empty() && static_cast<std::int64_t>(o.names.size()) != o.attributes)
    throw ValueError(std::string(op) + ": expected names empty or one per attribute (" + std::to_string(o.attributes) +
                     "), got " + std::to_string(o.names.size()));
  for (const std::string& n : o.names)
    if (n.empty() || n.find_first_of(" \t\r\n") != std::string::npos)
      throw ValueError(std::string(op) + ": expected attribute names without whitespace, got '" + n + "'");
}

/// ValueError unless epochs, batch_size, lr > 0 (lr finite) and threads >= 0.
inline void check_attribute_training(std::string_view op, const AttributeClassifierTraining& t) {
  check_positive(op, "epochs", t.epochs);
  check_positive(op, "batch_size", t.batch_size);
  check_positive(op, "lr", t.lr);
  check_finite(op, "lr", t.lr);
  check_non_negative(op, "threads", t.threads);
}

/// Output side of a 3x3 convolution with stride 2 and padding 1: ceil(n / 2).
constexpr std::int64_t halved(std::int64_t n) noexcept {
  return (n + 1) / 2;
}

/// ShapeError unless `shape` is [N, C, H, W] of the options with N >= 1.
inline void check_attribute_images(std::string_view op, std::string_view arg, const Shape& shape,
                                   const AttributeClassifierOptions& o) {
  check_rank(op, arg, shape, 4, "[N, C, H, W]");
  check_dim_at_least(op, arg, shape, 0, 1, "images");
  check_dim(op, arg, shape, 1, o.channels, "channels");
  check_dim(op, arg, shape, 2, o.height, "rows");
  check_dim(op, arg, shape, 3, o.width, "columns");
}

/// The shape check plus: every pixel finite and in [0, 1] (a tanh output must be mapped first).
inline void check_attribute_pixels(std::string_view op, std::string_view arg, const Tensor<float>& x,
                                   const AttributeClassifierOptions& o) {
  if (!x.defined())
    throw ShapeError(std::string(op) + ": expected " + std::string(arg) + " [N, C, H, W], got an undefined tensor");
  check_attribute_images(op, arg, x.shape(), o);
  const float* p = x.data();
  for (std::int64_t i = 0; i < x.numel(); ++i)
    if (!(p[i] >= 0.f && p[i] <= 1.f))
      throw ValueError(std::string(op) + ": expected " + std::string(arg) + " with pixels in [0, 1], got " +
                       genmod::detail::check_number(p[i]) + " at element " + std::to_string(i) +
                       " (map a tanh output from [-1, 1] with (x + 1) / 2)");
}

/// ShapeError unless `a` is [n, A]; ValueError unless every value is 0 or 1.
inline void check_attribute_values(std::string_view op, std::string_view arg, const Tensor<float>& a, std::int64_t n,
                                   std::int64_t attributes) {
  const std::string expected = "[" + std::to_string(n) + ", " + std::to_string(attributes) + "] (one row per image)";
  if (!a.defined() || a.rank() != 2 || a.dim(0) != n || a.dim(1) != attributes)
    throw ShapeError(std::string(op) + ": expected " + std::string(arg) + " " + expected + ", got " +
                     (a.defined() ? a.shape().to_string() : std::string("an undefined tensor")));
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a.data()[i] != 0.f && a.data()[i] != 1.f)
      throw ValueError(std::string(op) + ": expected " + std::string(arg) + " of 0 or 1, got " +
                       genmod::detail::check_number(a.data()[i]) + " at row " + std::to_string(i / attributes) +
                       ", column " + std::to_string(i % attributes));
}

}  // namespace detail

/// The attribute CNN (see the file comment): A logits per image.
class AttributeClassifier : public nn::Module<float> {
 public:
  /// A network for `options`, initialised as PyTorch's layers are from Generator(options.seed) (a
  /// stream of its own). ValueError for bad options.
  explicit AttributeClassifier(const AttributeClassifierOptions& options)
      : AttributeClassifier(options, checked_generator(options)) {}

  /// Logits [N, A] of images [N, C, H, W] (only the shape is checked: the training path), differentiable.
  Var<float> logits(const Var<float>& x);

  /// Logits [N, A] of images [N, C, H, W] with pixels in [0, 1]: no tape, evaluation mode (restored
  /// afterwards), `batch_size` images at a time so that memory stays small whatever N is.
  Tensor<float> logits(const Tensor<float>& x, std::int64_t batch_size = 250);

  /// p(attribute k present | image) = sigmoid(logit k), [N, A].
  Tensor<float> probabilities(const Tensor<float>& x, std::int64_t batch_size = 250);

  /// The attributes seen in each image, [N, A] of 0/1: 1 where the probability exceeds 0.5 (logit > 0).
  Tensor<float> predict(const Tensor<float>& x, std::int64_t batch_size = 250);

  /// The network's options (with the attribute names).
  const AttributeClassifierOptions& options() const noexcept { return options_; }
  /// Name of attribute k: options().names[k], or "attribute k" when there are no names.
  std::string name(std::int64_t k) const;

  /// The layers in one line, as recorded in a checkpoint, e.g.
  /// "conv3x3s1(3->32)-bn-relu-conv3x3s2(32->64)-bn-relu-conv3x3s2(64->128)-bn-relu-conv3x3s2(128->128)-bn-relu-
  /// linear(8192->128)-relu-linear(128->8)".
  std::string architecture() const;

  /// How the network was trained.
  const AttributeClassifierRecord& record() const noexcept { return record_; }
  /// Replaces the record (the trainer and the checkpoint loader set it).
  void set_record(const AttributeClassifierRecord& r);

  /// Lists conv1-4, bn1-4, fc1, fc2 ("conv1.weight", "bn1.running_mean", ...).
  void visit(nn::ModuleVisitor<float>& v) override;

  nn::Conv2d<float> conv1;     ///< C -> b, 3x3, stride 1, padding 1 (no bias: the batch norm's beta)
  nn::Conv2d<float> conv2;     ///< b -> 2b, 3x3, stride 2, padding 1
  nn::Conv2d<float> conv3;     ///< 2b -> 4b, 3x3, stride 2, padding 1
  nn::Conv2d<float> conv4;     ///< 4b -> 4b, 3x3, stride 2, padding 1
  nn::BatchNorm2d<float> bn1;  ///< after conv1
  nn::BatchNorm2d<float> bn2;  ///< after conv2
  nn::BatchNorm2d<float> bn3;  ///< after conv3
  nn::BatchNorm2d<float> bn4;  ///< after conv4
  nn::Linear<float> fc1;       ///< 4b (H/8) (W/8) -> hidden
  nn::Linear<float> fc2;       ///< hidden -> A: the logits

 private:
  static Generator checked_generator(const AttributeClassifierOptions& o) {
    detail::check_attribute_options("AttributeClassifier", o);
    return Generator(o.seed, 0x617474726962ULL);  // "attrib"
  }

  AttributeClassifier(const AttributeClassifierOptions& o, Generator g)
      : conv1(o.channels, o.base_channels, 3, {.stride = 1, .padding = 1, .bias = false, .generator = &g}),
        conv2(o.base_channels, 2 * o.base_channels, 3, {.stride = 2, .padding = 1, .bias = false, .generator = &g}),
        conv3(2 * o.base_channels, 4 * o.base_channels, 3, {.stride = 2, .padding = 1, .bias = false, .generator = &g}),
        conv4(4 * o.base_channels, 4 * o.base_channels, 3, {.stride = 2, .padding = 1, .bias = false, .generator = &g}),
        bn1(o.base_channels),
        bn2(2 * o.base_channels),
        bn3(4 * o.base_channels),
        bn4(4 * o.base_channels),
        fc1(4 * o.base_channels * detail::halved(detail::halved(detail::halved(o.height))) *
                detail::halved(detail::halved(detail::halved(o.width))),
            o.hidden, {.generator = &g}),
        fc2(o.hidden, o.attributes, {.generator = &g}),
        options_(o) {}

  std::int64_t flat_features() const noexcept {
    using detail::halved;
    return 4 * options_.base_channels * halved(halved(halved(options_.height))) *
           halved(halved(halved(options_.width)));
  }

  AttributeClassifierOptions options_;
  AttributeClassifierRecord record_;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// AttributeClassifier's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE Var<float> AttributeClassifier::logits(const Var<float>& x) {
  detail::check_attribute_images("AttributeClassifier::logits", "images", x.shape(), options_);
  Var<float> h = relu(bn1(conv1(x)));
  h = relu(bn2(conv2(h)));
  h = relu(bn3(conv3(h)));
  h = relu(bn4(conv4(h)));
  return fc2(relu(fc1(flatten(h, 1))));
}

GENMOD_DETAIL_NONTEMPLATE Tensor<float> AttributeClassifier::logits(const Tensor<float>& x, std::int64_t batch_size) {
  constexpr std::string_view op = "AttributeClassifier::logits";
  detail::check_attribute_pixels(op, "images", x, options_);
  return nn::evaluate_in_batches(op, *this, x, batch_size, [this](const Var<float>& b) { return logits(b); });
}

GENMOD_DETAIL_NONTEMPLATE Tensor<float> AttributeClassifier::probabilities(const Tensor<float>& x,
                                                                           std::int64_t batch_size) {
  Tensor<float> p = logits(x, batch_size);
  for (float& v : p) v = 1.f / (1.f + std::exp(-v));
  return p;
}

GENMOD_DETAIL_NONTEMPLATE Tensor<float> AttributeClassifier::predict(const Tensor<float>& x, std::int64_t batch_size) {
  Tensor<float> p = logits(x, batch_size);
  for (float& v : p) v = v > 0.f ? 1.f : 0.f;
  return p;
}

GENMOD_DETAIL_NONTEMPLATE std::string AttributeClassifier::name(std::int64_t k) const {
  check_in_range("AttributeClassifier::name", "k", k, 0, options_.attributes - 1);
  return options_.names.empty() ? "attribute " + std::to_string(k) : options_.names[static_cast<std::size_t>(k)];
}

GENMOD_DETAIL_NONTEMPLATE std::string AttributeClassifier::architecture() const {
  const auto conv = [](std::int64_t in, std::int64_t out, int stride) {
    return "conv3x3s" + std::to_string(stride) + "(" + std::to_string(in) + "->" + std::to_string(out) + ")-bn-relu-";
  };
  const std::int64_t b = options_.base_channels;
  return conv(options_.channels, b, 1) + conv(b, 2 * b, 2) + conv(2 * b, 4 * b, 2) + conv(4 * b, 4 * b, 2) + "linear(" +
         std::to_string(flat_features()) + "->" + std::to_string(options_.hidden) + ")-relu-linear(" +
         std::to_string(options_.hidden) + "->" + std::to_string(options_.attributes) + ")";
}

GENMOD_DETAIL_NONTEMPLATE void AttributeClassifier::set_record(const AttributeClassifierRecord& r) {
  detail::check_attribute_training("AttributeClassifier::set_record", r.training);
  check_non_negative("AttributeClassifier::set_record", "train_images", r.train_images);
  record_ = r;
}

GENMOD_DETAIL_NONTEMPLATE void AttributeClassifier::visit(nn::ModuleVisitor<float>& v) {
  v.child("conv1", conv1);
  v.child("conv2", conv2);
  v.child("conv3", conv3);
  v.child("conv4", conv4);
  v.child("bn1", bn1);
  v.child("bn2", bn2);
  v.child("bn3", bn3);
  v.child("bn4", bn4);
  v.child("fc1", fc1);
  v.child("fc2", fc2);
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

/// A 64-bit fingerprint (FNV-1a over 64-bit words) of training images and attributes: a cache
/// trained on other data is recognised as such.
GENMOD_DETAIL_NONTEMPLATE std::uint64_t attribute_data_fingerprint(const Tensor<float>& images,
                                                                   const Tensor<float>& attributes)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](const Tensor<float>& t) {
    for (const std::int64_t d : t.shape().dims()) h = (h ^ static_cast<std::uint64_t>(d)) * 0x100000001b3ULL;
    const float* p = t.data();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, p + i, sizeof bits);
      h = (h ^ bits) * 0x100000001b3ULL;
    }
  };
  mix(images);
  mix(attributes);
  return h;
}
#else
    ;
#endif

/// What train_attribute_classifier reports after each epoch.
struct AttributeClassifierEpoch {
  std::int64_t epoch = 0;     ///< epochs completed (1 after the first)
  std::int64_t epochs = 0;    ///< epochs in the run
  double loss = 0;            ///< mean training loss over the epoch: summed BCE over attributes, nats per image
  double train_accuracy = 0;  ///< fraction of (image, attribute) pairs predicted right as they were trained on
  double seconds = 0;         ///< wall time of the epoch
};

/// Called after each epoch with the network (e.g. to measure held-out accuracy) and the epoch's figures.
using AttributeClassifierProgress = std::function<void(AttributeClassifier&, const AttributeClassifierEpoch&)>;

/// Trains an AttributeClassifier on images [N, C, H, W] (pixels in [0, 1]) with attributes [N, A]
/// of 0/1, as the file comment describes; deterministic for fixed options, data and thread count.
/// Returns it in evaluation mode with its record filled. ShapeError / ValueError for bad inputs.
GENMOD_DETAIL_NONTEMPLATE AttributeClassifier train_attribute_classifier(
    const Tensor<float>& images, const Tensor<float>& attributes, const AttributeClassifierOptions& options,
    const AttributeClassifierTraining& training = {}, const AttributeClassifierProgress& progress = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  constexpr std::string_view op = "train_attribute_classifier";
  detail::check_attribute_options(op, options);
  detail::check_attribute_training(op, training);
  detail::check_attribute_pixels(op, "images", images, options);
  const std::int64_t n = images.dim(0), a = options.attributes;
  detail::check_attribute_values(op, "attributes", attributes, n, a);

  // The thread count matters for the exact weights (a convolution's weight gradient sums one
  // partial per thread); the caller's setting is restored however training ends.
  struct ThreadsGuard {
    int before = get_num_threads();
    ~ThreadsGuard() { set_num_threads(before); }
  } threads_guard;
  if (training.threads > 0) set_num_threads(training.threads);
  AttributeClassifier model(options);
  model.train();
  optim::Adam<float> adam(model.named_parameters(), {.lr = training.lr});
  // The loader's labels are the row indices: each batch gathers its attribute rows by them.
  Tensor<std::int64_t> rows(Shape{n});
  for (std::int64_t i = 0; i < n; ++i) rows[i] = i;
  data::Loader loader(data::Dataset(images, rows),
                      {.batch_size = training.batch_size, .shuffle = true, .seed = training.seed});
  const std::int64_t steps_per_epoch = (n + training.batch_size - 1) / training.batch_size;
  const optim::CosineAnnealing schedule(training.lr, training.epochs * steps_per_epoch);

  std::int64_t step = 0;
  for (std::int64_t e = 0; e < training.epochs; ++e) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0, correct = 0;
    for (auto& batch : loader) {
      const std::int64_t b = batch.size();
      Tensor<float> target(Shape{b, a});
      for (std::int64_t i = 0; i < b; ++i)
        std::copy(attributes.data() + batch.y[i] * a, attributes.data() + (batch.y[i] + 1) * a, target.data() + i * a);
      adam.set_lr(schedule.lr(step++));
      Tape<float> tape;
      const Var<float> logits = model.logits(Var<float>(batch.x));
      // Mean over images of the per-image sum over attributes of the BCE.
      const Var<float> loss = scale(mean(losses::bce_with_logits(logits, Var<float>(target))), static_cast<float>(a));
      tape.backward(loss);
      adam.step();
      adam.zero_grad();
      loss_sum += loss.item() * static_cast<double>(b);
      const float* l = logits.value().data();
      for (std::int64_t i = 0; i < b * a; ++i) correct += (l[i] > 0.f) == (target.data()[i] != 0.f);
    }
    if (progress) {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      progress(model, {.epoch = e + 1,
                       .epochs = training.epochs,
                       .loss = loss_sum / static_cast<double>(n),
                       .train_accuracy = correct / static_cast<double>(n * a),
                       .seconds = took.count()});
    }
  }
  model.eval();
  AttributeClassifierRecord r;
  r.training = training;
  r.training.threads = get_num_threads();
  r.train_images = n;
  r.data_fingerprint = attribute_data_fingerprint(images, attributes);
  model.set_record(r);
  return model;
}
#else
    ;
#endif

namespace detail {

/// Per attribute, the fraction of images whose predicted attribute equals `wanted`'s.
inline std::vector<double> attribute_match(std::string_view op, std::string_view images_arg,
                                           std::string_view wanted_arg, AttributeClassifier& model,
                                           const Tensor<float>& images, const Tensor<float>& wanted) {
  const AttributeClassifierOptions& o = model.options();
  detail::check_attribute_pixels(op, images_arg, images, o);
  detail::check_attribute_values(op, wanted_arg, wanted, images.dim(0), o.attributes);
  const Tensor<float> seen = model.predict(images);
  const std::int64_t n = images.dim(0), a = o.attributes;
  std::vector<double> match(static_cast<std::size_t>(a), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < a; ++k) match[static_cast<std::size_t>(k)] += seen(i, k) == wanted(i, k);
  for (double& m : match) m /= static_cast<double>(n);
  return match;
}

}  // namespace detail

/// Per attribute, the fraction of images [N, C, H, W] (pixels in [0, 1]) whose attribute the
/// classifier predicts right, against attributes [N, A] of 0/1: its held-out accuracy.
GENMOD_DETAIL_NONTEMPLATE std::vector<double> attribute_accuracy(AttributeClassifier& model,
                                                                 const Tensor<float>& images,
                                                                 const Tensor<float>& attributes)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  return detail::attribute_match("attribute_accuracy", "images", "attributes", model, images, attributes);
}
#else
    ;
#endif

/// For images generated with chosen attributes: per attribute, the fraction of the generated
/// images [N, C, H, W] (pixels in [0, 1]) in which the classifier sees the attribute as it was
/// wanted (`wanted` [N, A] of 0/1, the generator's condition). Read it next to the classifier's own
/// attribute_accuracy on real images: agreement cannot be trusted beyond the judge's accuracy.
GENMOD_DETAIL_NONTEMPLATE std::vector<double> attribute_agreement(AttributeClassifier& model,
                                                                  const Tensor<float>& generated,
                                                                  const Tensor<float>& wanted)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  return detail::attribute_match("attribute_agreement", "generated", "wanted", model, generated, wanted);
}
#else
    ;
#endif

/// How an attribute edit ("add X" to images) reads to the classifier (see attribute_edit_score).
struct AttributeEditScore {
  double changed = 0;      ///< fraction of edited images in which the classifier sees X as requested
  double others_kept = 0;  ///< fraction of images whose every other attribute is seen the same before and after
};

/// Scores an edit of attribute `attribute` to `value` (1: "add X", 0: "remove X") that turned
/// `before` into `after` (both [N, C, H, W], pixels in [0, 1], image i of one the edit of image i
/// of the other): how often X is seen as requested afterwards, and how often the classifier sees
/// all the other attributes unchanged (its predictions on the image before, not the true
/// attributes, are the reference, so its own mistakes on the originals do not count against the edit).
GENMOD_DETAIL_NONTEMPLATE AttributeEditScore attribute_edit_score(AttributeClassifier& model,
                                                                  const Tensor<float>& before,
                                                                  const Tensor<float>& after, std::int64_t attribute,
                                                                  bool value = true)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  constexpr std::string_view op = "attribute_edit_score";
  const AttributeClassifierOptions& o = model.options();
  detail::check_attribute_pixels(op, "before", before, o);
  detail::check_attribute_pixels(op, "after", after, o);
  check_same_shape(op, "before", before.shape(), "after", after.shape());
  check_in_range(op, "attribute", attribute, 0, o.attributes - 1);
  const Tensor<float> seen_before = model.predict(before), seen_after = model.predict(after);
  const std::int64_t n = before.dim(0), a = o.attributes;
  double changed = 0, kept = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    changed += (seen_after(i, attribute) != 0.f) == value;
    bool same = true;
    for (std::int64_t k = 0; k < a; ++k)
      if (k != attribute && seen_after(i, k) != seen_before(i, k)) same = false;
    kept += same;
  }
  return {changed / static_cast<double>(n), kept / static_cast<double>(n)};
}
#else
    ;
#endif

namespace detail {

/// Prefix of the checkpoint's metadata entries.
inline constexpr std::string_view kAttributeMetaPrefix = "attribute_classifier.";

inline std::string attribute_key(std::string_view name) {
  return std::string(kAttributeMetaPrefix) + std::string(name);
}

/// The names joined by single spaces.
inline std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) s += (i ? " " : "") + names[i];
  return s;
}

/// Space-separated names split back into a vector (empty text: no names).
inline std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find(' ', start), text.size());
    if (end > start) names.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

}  // namespace detail

/// Saves the network with its options, names and record to `path`, atomically (io::CheckpointSet).
GENMOD_DETAIL_NONTEMPLATE void save_attribute_classifier(const std::string& path, AttributeClassifier& model)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  using detail::attribute_key;
  using genmod::detail::check_number;
  const AttributeClassifierOptions& o = model.options();
  const AttributeClassifierRecord& r = model.record();
  io::Metadata meta;
  meta[attribute_key("architecture")] = model.architecture();
  meta[attribute_key("channels")] = check_number(o.channels);
  meta[attribute_key("height")] = check_number(o.height);
  meta[attribute_key("width")] = check_number(o.width);
  meta[attribute_key("attributes")] = check_number(o.attributes);
  meta[attribute_key("base_channels")] = check_number(o.base_channels);
  meta[attribute_key("hidden")] = check_number(o.hidden);
  meta[attribute_key("seed")] = check_number(o.seed);
  meta[attribute_key("names")] = detail::join_names(o.names);
  meta[attribute_key("epochs")] = check_number(r.training.epochs);
  meta[attribute_key("batch_size")] = check_number(r.training.batch_size);
  meta[attribute_key("lr")] = check_number(r.training.lr);
  meta[attribute_key("train_seed")] = check_number(r.training.seed);
  meta[attribute_key("threads")] = check_number(r.training.threads);
  meta[attribute_key("train_images")] = check_number(r.train_images);
  meta[attribute_key("data_fingerprint")] = check_number(r.data_fingerprint);
  io::CheckpointSet<float> set;
  set.add("model", model);
  const std::int64_t steps_per_epoch = (r.train_images + r.training.batch_size - 1) / r.training.batch_size;
  set.save(path, r.training.epochs * steps_per_epoch, r.training.epochs, meta);
}
#else
    ;
#endif

/// Loads a network saved by save_attribute_classifier: rebuilt from the options in its metadata,
/// weights read and checked name by name and shape by shape. IOError naming the file for a missing,
/// truncated or corrupt file, one without the attribute classifier's metadata, or one whose
/// architecture does not match its options.
GENMOD_DETAIL_NONTEMPLATE AttributeClassifier load_attribute_classifier(const std::string& path)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  const io::TensorFile file = io::load_tensors(path);
  using detail::attribute_key;
  const auto arch = file.metadata.find(attribute_key("architecture"));
  if (arch == file.metadata.end())
    throw genmod::detail::io_error(
        path, "is not an attribute classifier checkpoint: no metadata '" + attribute_key("architecture") + "'");
  std::string problems;
  std::uint64_t channels = 0, height = 0, width = 0, attributes = 0, base = 0, hidden = 0, seed = 0;
  std::uint64_t epochs = 0, batch = 0, train_seed = 0, threads = 0, train_images = 0, fingerprint = 0;
  double lr = 0;
  const io::Metadata& m = file.metadata;
  io::detail::read_u64(m, attribute_key("channels"), channels, problems);
  io::detail::read_u64(m, attribute_key("height"), height, problems);
  io::detail::read_u64(m, attribute_key("width"), width, problems);
  io::detail::read_u64(m, attribute_key("attributes"), attributes, problems);
  io::detail::read_u64(m, attribute_key("base_channels"), base, problems);
  io::detail::read_u64(m, attribute_key("hidden"), hidden, problems);
  io::detail::read_u64(m, attribute_key("seed"), seed, problems);
  io::detail::read_u64(m, attribute_key("epochs"), epochs, problems);
  io::detail::read_u64(m, attribute_key("batch_size"), batch, problems);
  io::detail::read_double(m, attribute_key("lr"), lr, problems);
  io::detail::read_u64(m, attribute_key("train_seed"), train_seed, problems);
  io::detail::read_u64(m, attribute_key("threads"), threads, problems);
  io::detail::read_u64(m, attribute_key("train_images"), train_images, problems);
  io::detail::read_u64(m, attribute_key("data_fingerprint"), fingerprint, problems);
  const auto names = m.find(attribute_key("names"));
  if (names == m.end()) problems += "\n  missing metadata: '" + attribute_key("names") + "'";
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
  for (const std::uint64_t v :
       {channels, height, width, attributes, base, hidden, epochs, batch, threads, train_images})
    if (v > kMax) problems += "\n  a size in the attribute classifier metadata is beyond 2^31 - 1";
  if (!problems.empty()) throw genmod::detail::io_error(path, "attribute classifier metadata is invalid:" + problems);

  AttributeClassifierOptions o;
  o.channels = static_cast<std::int64_t>(channels);
  o.height = static_cast<std::int64_t>(height);
  o.width = static_cast<std::int64_t>(width);
  o.attributes = static_cast<std::int64_t>(attributes);
  o.base_channels = static_cast<std::int64_t>(base);
  o.hidden = static_cast<std::int64_t>(hidden);
  o.seed = seed;
  o.names = detail::split_names(names->second);
  AttributeClassifierRecord r;
  r.training.epochs = static_cast<std::int64_t>(epochs);
  r.training.batch_size = static_cast<std::int64_t>(batch);
  r.training.lr = lr;
  r.training.seed = train_seed;
  r.training.threads = static_cast<int>(threads);
  r.train_images = static_cast<std::int64_t>(train_images);
  r.data_fingerprint = fingerprint;
  try {
    detail::check_attribute_options("load_attribute_classifier", o);
  } catch (const ValueError& e) {
    throw genmod::detail::io_error(path, std::string("attribute classifier metadata is invalid: ") + e.what());
  }
  AttributeClassifier model(o);
  if (arch->second != model.architecture())
    throw genmod::detail::io_error(path, "holds an attribute classifier of architecture '" + arch->second +
                                             "', but its options describe '" + model.architecture() + "'");
  io::CheckpointSet<float> set;
  set.add("model", model);
  set.load(file, path);  // every tensor, name and shape checked before anything is copied
  model.eval();
  try {
    model.set_record(r);
  } catch (const ValueError& e) {
    throw genmod::detail::io_error(path, std::string("attribute classifier metadata is invalid: ") + e.what());
  }
  return model;
}
#else
    ;
#endif

/// The classifier for `options` and `training` on `images` / `attributes`: read from `cache_path`
/// when that file exists and was trained with the same options, recipe (threads aside) and data
/// (attribute_data_fingerprint), otherwise trained and saved there atomically (its directory
/// created when missing). A cache that differs is an IOError naming each difference unless
/// `retrain_on_mismatch`, which retrains and replaces it. An empty `cache_path` trains without
/// caching. Progress goes to `log` when given.
GENMOD_DETAIL_NONTEMPLATE AttributeClassifier load_or_train_attribute_classifier(
    const std::string& cache_path, const Tensor<float>& images, const Tensor<float>& attributes,
    const AttributeClassifierOptions& options, const AttributeClassifierTraining& training = {},
    std::ostream* log = nullptr, bool retrain_on_mismatch = false)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  constexpr std::string_view op = "load_or_train_attribute_classifier";
  detail::check_attribute_options(op, options);
  detail::check_attribute_training(op, training);
  detail::check_attribute_pixels(op, "images", images, options);
  detail::check_attribute_values(op, "attributes", attributes, images.dim(0), options.attributes);
  const std::uint64_t fingerprint = attribute_data_fingerprint(images, attributes);
  if (!cache_path.empty() && std::filesystem::exists(cache_path)) {
    AttributeClassifier cached = load_attribute_classifier(cache_path);
    const AttributeClassifierOptions& c = cached.options();
    const AttributeClassifierTraining& t = cached.record().training;
    std::string diff;
    const auto compare = [&diff](const char* name, const std::string& have, const std::string& want) {
      if (have != want) diff += "\n  " + std::string(name) + ": " + have + " in the cache, " + want + " requested";
    };
    using genmod::detail::check_number;
    compare("channels", check_number(c.channels), check_number(options.channels));
    compare("height", check_number(c.height), check_number(options.height));
    compare("width", check_number(c.width), check_number(options.width));
    compare("attributes", check_number(c.attributes), check_number(options.attributes));
    compare("base_channels", check_number(c.base_channels), check_number(options.base_channels));
    compare("hidden", check_number(c.hidden), check_number(options.hidden));
    compare("seed", check_number(c.seed), check_number(options.seed));
    compare("names", "'" + detail::join_names(c.names) + "'", "'" + detail::join_names(options.names) + "'");
    compare("epochs", check_number(t.epochs), check_number(training.epochs));
    compare("batch_size", check_number(t.batch_size), check_number(training.batch_size));
    compare("lr", check_number(t.lr), check_number(training.lr));
    compare("train seed", check_number(t.seed), check_number(training.seed));
    compare("training images", check_number(cached.record().train_images), check_number(images.dim(0)));
    compare("data fingerprint", check_number(cached.record().data_fingerprint), check_number(fingerprint));
    if (diff.empty()) {
      if (log) *log << "attribute classifier: loaded " << cache_path << "\n";
      return cached;
    }
    if (!retrain_on_mismatch)
      throw genmod::detail::io_error(cache_path, "attribute classifier cache was trained otherwise:" + diff +
                                                     "\n  delete it, choose another cache path, or ask to retrain");
    if (log) *log << "attribute classifier: " << cache_path << " was trained otherwise; retraining:" << diff << "\n";
  }
  const auto report = [log](AttributeClassifier&, const AttributeClassifierEpoch& e) {
    if (!log) return;
    char line[160];
    std::snprintf(line, sizeof line,  // NOLINT: bounded
                  "attribute classifier: epoch %lld/%lld  loss %.4f  train accuracy %.2f %%  (%.1f s)\n",
                  static_cast<long long>(e.epoch), static_cast<long long>(e.epochs), e.loss, 100.0 * e.train_accuracy,
                  e.seconds);
    *log << line << std::flush;
  };
  AttributeClassifier model = train_attribute_classifier(images, attributes, options, training, report);
  if (!cache_path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(cache_path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) throw genmod::detail::io_error(cache_path, "cannot create its directory: " + ec.message());
    save_attribute_classifier(cache_path, model);
    if (log) *log << "attribute classifier: saved to " << cache_path << "\n";
  }
  return model;
}
#else
    ;
#endif

}  // namespace genmod::eval
