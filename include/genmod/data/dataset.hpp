#pragma once
/// \file dataset.hpp
/// Dataset: N float samples of any shape (the first dimension indexes samples) plus optional
/// int64 labels. Shallow like Tensor: copying a Dataset shares its buffers.

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

/// Samples `x` [N, ...] and optional labels `y` [N].
class Dataset {
 public:
  /// An empty dataset (size 0).
  Dataset() = default;

  /// Samples along dimension 0 of x, labels (optional: an undefined tensor) of shape [N].
  explicit Dataset(Tensor<float> x, Tensor<std::int64_t> y = {});

  /// Number of samples.
  std::int64_t size() const noexcept { return x_.defined() ? x_.dim(0) : 0; }
  /// True when labels are present.
  bool has_labels() const noexcept { return y_.defined(); }
  /// All samples [N, ...].
  const Tensor<float>& x() const noexcept { return x_; }
  /// All labels [N] (undefined when there are none).
  const Tensor<std::int64_t>& y() const noexcept { return y_; }
  /// Shape of one sample (the samples' shape without dimension 0).
  Shape sample_shape() const {
    const auto d = x_.shape().dims();
    return Shape(d.subspan(1));
  }

  /// Samples [start, start + count) as a view (no copy): e.g. a validation split.
  Dataset slice(std::int64_t start, std::int64_t count) const {
    if (start < 0 || count < 0 || start + count > size())
      throw ShapeError("Dataset::slice: range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                       ") is outside a dataset of " + std::to_string(size()) + " samples");
    return Dataset(x_.rows(start, count), y_.defined() ? y_.rows(start, count) : Tensor<std::int64_t>{});
  }

 private:
  Tensor<float> x_;
  Tensor<std::int64_t> y_;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// Dataset's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE Dataset::Dataset(Tensor<float> x, Tensor<std::int64_t> y)
    : x_(std::move(x)), y_(std::move(y)) {
  check_min_rank("Dataset", "samples", x_.shape(), 1, "[N, ...]");  // an undefined tensor has rank 0
  if (y_.defined() && (y_.rank() != 1 || y_.dim(0) != x_.dim(0)))
    throw ShapeError("Dataset: labels of shape " + y_.shape().to_string() + " do not match samples of shape " +
                     x_.shape().to_string() + " (expected [" + std::to_string(x_.dim(0)) + "])");
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

}  // namespace genmod::data
