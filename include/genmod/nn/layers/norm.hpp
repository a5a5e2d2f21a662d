#pragma once
/// \file norm.hpp
/// BatchNorm1d, BatchNorm2d (running statistics as buffers, momentum, evaluation mode) and
/// LayerNorm.

#include <string>

#include "genmod/autodiff/ops/norm.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// Options of BatchNorm1d and BatchNorm2d: `nn::BatchNorm2d(64, {.momentum = 0.01})`.
struct BatchNormLayerOptions {
  /// Running-statistics update: running = (1 - momentum) running + momentum batch.
  double momentum = 0.1;
  /// Added to the variance: y = (x - mean) / sqrt(var + eps) * gamma + beta.
  double eps = 1e-5;
  bool affine = true;  ///< learn gamma (weight, init 1) and beta (bias, init 0)
};

/// What every batch-norm layer holds (BatchNorm1d, BatchNorm2d, SyncBatchNorm): gamma and beta
/// when affine, the running statistics as buffers, and the options; the subclasses differ in how
/// a training batch's statistics are taken.
template <class T>
class BatchNormBase : public Layer<T> {
 public:
  /// Lists weight and bias (when affine) and the buffers running_mean and running_var.
  void visit(ModuleVisitor<T>& v) override {
    if (weight.defined()) {
      v.param("weight", weight);
      v.param("bias", bias);
    }
    v.buffer("running_mean", running_mean);
    v.buffer("running_var", running_var);
  }

  Parameter<T> weight;  ///< gamma [C]
  Parameter<T> bias;    ///< beta [C]
  /// Running mean per channel [C], a buffer (saved, not trained).
  Tensor<T> running_mean;
  /// Running unbiased variance per channel [C], a buffer.
  Tensor<T> running_var;

 protected:
  /// `channels` channels; gamma = 1, beta = 0, running mean 0 and variance 1. `layer` names the
  /// layer in error messages.
  BatchNormBase(const char* layer, std::int64_t channels, BatchNormLayerOptions o) : opt_(o) {
    check_positive(layer, "channels", channels);
    check_in_range(layer, "momentum", o.momentum, 0.0, 1.0);
    check_positive(layer, "eps", o.eps);
    if (o.affine) {
      weight = Parameter<T>(ones<T>(Shape{channels}));
      bias = Parameter<T>(zeros<T>(Shape{channels}));
    }
    running_mean = zeros<T>(Shape{channels});
    running_var = ones<T>(Shape{channels});
  }

  /// The op's options in the current mode.
  BatchNormOptions op_options() const {
    return {.training = this->is_training(), .momentum = opt_.momentum, .eps = opt_.eps};
  }
  /// gamma and beta as Vars (undefined when not affine).
  Var<T> gamma() const { return weight.defined() ? weight.var() : Var<T>(); }
  /// See gamma().
  Var<T> beta() const { return weight.defined() ? bias.var() : Var<T>(); }

  BatchNormLayerOptions opt_;  ///< as constructed
};

/// Batch normalization over channel dimension 1, for inputs of rank `Rank` (2 or 4).
template <class T, int Rank>
class BatchNormNd : public BatchNormBase<T> {
 public:
  /// Normalization of `channels` channels; gamma = 1, beta = 0, running mean 0 and variance 1.
  explicit BatchNormNd(std::int64_t channels, BatchNormLayerOptions o = {})
      : BatchNormBase<T>("BatchNorm", channels, o) {}

  /// Same shape as x. Training: batch statistics (biased variance), updating the running ones with
  /// the unbiased variance; evaluation: the running statistics.
  Var<T> forward(const Var<T>& x) override {
    const std::int64_t c = this->running_mean.numel();
    if (x.rank() != Rank || x.dim(1) != c)
      throw ShapeError(std::string(Rank == 2 ? "BatchNorm1d(" : "BatchNorm2d(") + std::to_string(c) +
                       "): expected input " + (Rank == 2 ? "[N, C]" : "[N, C, H, W]") +
                       " with C = " + std::to_string(c) + ", got " + x.shape().to_string());
    return batch_norm(x, this->gamma(), this->beta(), this->running_mean, this->running_var, this->op_options());
  }
};

// BatchNorm1d and BatchNorm2d are classes, not alias templates: class template argument deduction
// through an alias template (`nn::BatchNorm2d(128)`) is C++20 that clang 14 does not implement.

/// Batch normalization of [N, C] inputs over the batch.
template <class T = float>
class BatchNorm1d : public BatchNormNd<T, 2> {
 public:
  /// `channels` features C.
  explicit BatchNorm1d(std::int64_t channels, BatchNormLayerOptions o = {}) : BatchNormNd<T, 2>(channels, o) {}
};

/// Batch normalization of [N, C, H, W] inputs over batch and pixels.
template <class T = float>
class BatchNorm2d : public BatchNormNd<T, 4> {
 public:
  /// `channels` channels C.
  explicit BatchNorm2d(std::int64_t channels, BatchNormLayerOptions o = {}) : BatchNormNd<T, 4>(channels, o) {}
};

/// Normalizes each sample over its trailing dimensions `normalized_shape` (e.g. {C, H, W}).
template <class T = float>
class LayerNorm : public Layer<T> {
 public:
  /// Normalization over the trailing `normalized_shape`; affine adds gamma (ones) and beta (zeros) of that shape.
  LayerNorm(std::initializer_list<std::int64_t> normalized_shape, double eps = 1e-5, bool affine = true)
      : shape_(normalized_shape), eps_(eps) {
    // Constructor-time check: the shape's text is built eagerly, which costs nothing that matters here.
    check_arg(shape_.rank() > 0 && shape_.numel() > 0, "LayerNorm", "normalized_shape",
              "to be non-empty with positive extents", shape_.to_string());
    if (affine) {
      weight = Parameter<T>(ones<T>(shape_));
      bias = Parameter<T>(zeros<T>(shape_));
    }
  }

  /// Same shape as x, whose trailing dimensions must equal normalized_shape: each sample's mean 0
  /// and variance 1 over them (biased variance plus eps), then * gamma + beta.
  Var<T> forward(const Var<T>& x) override {
    const int r = shape_.rank();
    bool ok = x.rank() >= r;
    for (int i = 0; ok && i < r; ++i) ok = x.dim(x.rank() - r + i) == shape_[i];
    if (!ok)
      throw ShapeError("LayerNorm(" + shape_.to_string() + "): input " + x.shape().to_string() +
                       " does not end with the normalized shape");
    const bool affine = weight.defined();
    return layer_norm(x, r, affine ? weight.var() : Var<T>(), affine ? bias.var() : Var<T>(), eps_);
  }
  /// Lists weight and bias when affine.
  void visit(ModuleVisitor<T>& v) override {
    if (weight.defined()) {
      v.param("weight", weight);
      v.param("bias", bias);
    }
  }

  /// gamma, of the normalized shape (undefined without affine).
  Parameter<T> weight;
  /// beta, of the normalized shape (undefined without affine).
  Parameter<T> bias;

 private:
  Shape shape_;
  double eps_;
};

}  // namespace genmod::nn
