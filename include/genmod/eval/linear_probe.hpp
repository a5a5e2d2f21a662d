#pragma once
/// \file linear_probe.hpp
/// How much class information do features keep? Fit a multinomial logistic regression (one Linear
/// layer, softmax cross-entropy, Adam with a cosine-annealed rate) on training features and report
/// its accuracy on test features. Used to compare autoencoder codes with PCA codes of the same size.
///
/// Features are standardized with the training set's per-dimension mean and standard deviation
/// (by default), so that codes of different scales get the same optimizer, and the comparison
/// measures the features, not their units.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/data/dataset.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/losses/classification.hpp"
#include "genmod/nn/layers/linear.hpp"
#include "genmod/optim/adam.hpp"
#include "genmod/optim/schedule.hpp"

namespace genmod::eval {

/// How linear_probe trains its softmax classifier on frozen features (Adam, cosine-annealed rate).
struct ProbeOptions {
  std::int64_t epochs = 30;       ///< passes over the training features
  std::int64_t batch_size = 256;  ///< samples per step
  double lr = 1e-2;               ///< Adam's initial rate, annealed to 0 by a cosine
  double weight_decay = 0;        ///< L2 penalty on the weights (Adam's coupled form)
  bool standardize = true;        ///< scale each feature to zero mean, unit variance (train statistics)
  std::uint64_t seed = 0;         ///< initialization and shuffling
};

/// Accuracy and loss of the trained probe: how linearly separable the classes are in the features.
struct ProbeResult {
  double train_accuracy = 0;  ///< fraction of training samples classified correctly
  double test_accuracy = 0;   ///< fraction of test samples classified correctly
  double test_loss = 0;       ///< mean cross-entropy on the test set, nats per sample
};

namespace detail {

inline void check_features(const Tensor<float>& x, const Tensor<std::int64_t>& y, const char* which) {
  if (!x.defined() || x.rank() != 2 || x.dim(0) == 0)
    throw ShapeError(std::string("linear_probe: expected ") + which + " features [N, K], got " +
                     (x.defined() ? x.shape().to_string() : std::string("an undefined tensor")));
  if (!y.defined() || y.rank() != 1 || y.dim(0) != x.dim(0))
    throw ShapeError(std::string("linear_probe: expected ") + which + " labels [" + std::to_string(x.dim(0)) +
                     "], got " + (y.defined() ? y.shape().to_string() : std::string("an undefined tensor")));
}

}  // namespace detail

/// Trains a logistic-regression probe on (train_x, train_y) and evaluates it on (test_x, test_y).
/// Labels are class indices in [0, C) with C = 1 + the largest training label.
GENMOD_DETAIL_NONTEMPLATE ProbeResult linear_probe(const Tensor<float>& train_x, const Tensor<std::int64_t>& train_y,
                                                   const Tensor<float>& test_x, const Tensor<std::int64_t>& test_y,
                                                   ProbeOptions o = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  detail::check_features(train_x, train_y, "training");
  detail::check_features(test_x, test_y, "test");
  check_dim("linear_probe", "test features", test_x.shape(), 1, train_x.dim(1), "K, as in the training features");
  check_positive("linear_probe", "epochs", o.epochs);
  check_positive("linear_probe", "batch_size", o.batch_size);
  check_positive("linear_probe", "lr", o.lr);
  const std::int64_t k = train_x.dim(1);
  std::int64_t classes = 0;
  for (std::int64_t v : train_y) classes = std::max(classes, v + 1);
  if (classes < 2) throw ValueError("linear_probe: expected at least 2 classes in the training labels");

  // Standardization from the training set only.
  std::vector<double> mu(static_cast<std::size_t>(k), 0.0), sd(static_cast<std::size_t>(k), 1.0);
  if (o.standardize) {
    const std::int64_t n = train_x.dim(0);
    std::vector<double> sq(static_cast<std::size_t>(k), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < k; ++j) mu[static_cast<std::size_t>(j)] += train_x(i, j);
    for (auto& m : mu) m /= static_cast<double>(n);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < k; ++j) {
        const double d = train_x(i, j) - mu[static_cast<std::size_t>(j)];
        sq[static_cast<std::size_t>(j)] += d * d;
      }
    for (std::size_t j = 0; j < sd.size(); ++j) sd[j] = std::max(std::sqrt(sq[j] / static_cast<double>(n)), 1e-12);
  }
  const auto standardized = [&](const Tensor<float>& x) {
    Tensor<float> out(x.shape());
    for (std::int64_t i = 0; i < x.dim(0); ++i)
      for (std::int64_t j = 0; j < k; ++j)
        out(i, j) = static_cast<float>((x(i, j) - mu[static_cast<std::size_t>(j)]) / sd[static_cast<std::size_t>(j)]);
    return out;
  };
  const Tensor<float> xtr = standardized(train_x), xte = standardized(test_x);

  Generator init(o.seed, 0x70726F6265ULL);
  nn::Linear<float> probe(k, classes, {.generator = &init});
  optim::Adam<float> opt(probe.named_parameters(), {.lr = o.lr, .weight_decay = o.weight_decay});
  data::Loader loader(data::Dataset(xtr, train_y), {.batch_size = o.batch_size, .shuffle = true, .seed = o.seed});
  const std::int64_t total_steps = o.epochs * ((train_x.dim(0) + o.batch_size - 1) / o.batch_size);
  const optim::CosineAnnealing schedule(o.lr, total_steps);
  std::int64_t step = 0;
  for (std::int64_t e = 0; e < o.epochs; ++e)
    for (auto& batch : loader) {
      opt.set_lr(schedule.lr(step++));
      Tape<float> tape;
      Var<float> loss = mean(losses::cross_entropy(probe(Var<float>(batch.x)), batch.y));
      tape.backward(loss);
      opt.step();
      opt.zero_grad();
    }

  ProbeResult r;
  NoGradGuard no_grad;
  r.train_accuracy = losses::accuracy(probe(Var<float>(xtr)).value(), train_y);
  const Tensor<float> logits = probe(Var<float>(xte)).value();
  r.test_accuracy = losses::accuracy(logits, test_y);
  const Tensor<float> ce = losses::cross_entropy(Var<float>(logits), test_y).value();
  double s = 0;
  for (float v : ce) s += v;
  r.test_loss = s / static_cast<double>(ce.numel());
  return r;
}
#else
    ;
#endif

}  // namespace genmod::eval
