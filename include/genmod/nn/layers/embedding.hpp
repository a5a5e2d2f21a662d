#pragma once
/// \file embedding.hpp
/// Embedding: rows of a [num, dim] table looked up by integer index (weight initialized N(0, 1),
/// as PyTorch).

#include <cmath>
#include <string>

#include "genmod/autodiff/ops/select.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// A learned table of num_embeddings vectors of size dim, looked up by index (see the file comment).
template <class T = float>
class Embedding : public Layer<T> {
 public:
  /// A [num_embeddings, dim] table initialized N(0, 1) from generator (default_generator() when null).
  Embedding(std::int64_t num_embeddings, std::int64_t dim, Generator* generator = nullptr) {
    check_positive("Embedding", "num_embeddings", num_embeddings);
    check_positive("Embedding", "dim", dim);
    Tensor<T> w(Shape{num_embeddings, dim});
    fill_normal(w, generator ? *generator : default_generator());
    weight = Parameter<T>(w);
  }

  /// indices [N] -> [N, dim].
  Var<T> lookup(const Tensor<std::int64_t>& indices) {
    check_rank("Embedding", "indices", indices.shape(), 1, "[N]");
    const std::int64_t n = indices.numel(), d = weight.shape()[1];
    Tensor<std::int64_t> idx(Shape{n, d});
    for (std::int64_t i = 0; i < n; ++i) {
      if (indices[i] < 0 || indices[i] >= weight.shape()[0])
        throw ValueError("Embedding: index " + std::to_string(indices[i]) + " at position " + std::to_string(i) +
                         " is outside [0, " + std::to_string(weight.shape()[0]) + ")");
      std::fill(idx.data() + i * d, idx.data() + (i + 1) * d, indices[i]);
    }
    return gather(weight.var(), 0, idx);
  }

  /// As lookup, with the indices given as a [N] tensor of integral values (for use in stacks).
  Var<T> forward(const Var<T>& x) override {
    Tensor<std::int64_t> idx(x.shape());
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const T v = x.value()[i];
      if (v != std::floor(v)) throw ValueError("Embedding: index " + std::to_string(v) + " is not an integer");
      idx[i] = static_cast<std::int64_t>(v);
    }
    return lookup(idx);
  }

  /// Lists `weight`.
  void visit(ModuleVisitor<T>& v) override { v.param("weight", weight); }

  Parameter<T> weight;  ///< [num_embeddings, dim]
};

}  // namespace genmod::nn
