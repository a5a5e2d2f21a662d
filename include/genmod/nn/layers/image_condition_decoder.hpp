#pragma once
/// \file image_condition_decoder.hpp
/// ImageConditionDecoder: a decoder of a conditional model on images that sees the condition at
/// every scale. A ConditionalVAE hands its decoder one row per image, [z, c]: the code followed by
/// the condition. A decoder that takes the row only at its input (a Linear on [z, c], then
/// upsampling) must carry the condition through every layer in its features, and at a fine scale
/// the condition has been mixed with everything else. This layer runs a `stem` on the whole row
/// (to [N, C0, H0, W0]) and then each `stage` on its input with the condition appended as A
/// constant channels:
///
///   h_0 = stem([z, c]),   h_{k+1} = stage_k(concat(h_k, broadcast(c, [N, A, H_k, W_k]), axis 1))
///
/// so every stage's first layer takes C_k + A input channels. The broadcast costs A channels per
/// stage (a handful for an attribute vector), against a channel per attribute at every layer for a
/// condition broadcast over the pixels from the start. Mirza and Osindero 2014 and the CVAE of Sohn
/// et al. 2015 join the condition at the input; joining it at every scale is what conditional image
/// generators since (for example the conditional DCGAN's per-layer label maps) do for attributes
/// that are drawn at a fine scale (a texture, an outline).
///
/// Gradients: slice, reshape, broadcast_to (whose adjoint is sum_to) and concat are differentiable
/// ops, so d/d(row) is the stem's gradient plus, in the condition columns, every stage's gradient
/// in its condition channels summed over their pixels.

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::nn {

/// Rows [z, c] -> the last stage's output, with c appended as constant channels before every
/// stage (see the file comment).
template <class Stem, class Stage>
class ImageConditionDecoder : public Layer<typename Stem::value_type> {
 public:
  /// The scalar type.
  using T = typename Stem::value_type;
  static_assert(LayerType<Stem> && LayerType<Stage>,
                "ImageConditionDecoder: stem and stages must be nn::Layer types (Var<T> forward(const Var<T>&))");
  static_assert(std::is_same_v<T, typename Stage::value_type>,
                "ImageConditionDecoder: stem and stages must share a value type");

  /// A decoder for rows whose last `condition_dim` values are the condition. The stem takes the
  /// whole row and returns [N, C0, H0, W0]; stage k takes [N, C_k + condition_dim, H_k, W_k].
  /// ValueError for a negative condition_dim.
  ImageConditionDecoder(std::int64_t condition_dim, Stem stem_, std::vector<Stage> stages_)
      : stem(std::move(stem_)), condition_(condition_dim) {
    check_non_negative("ImageConditionDecoder", "condition_dim", condition_dim);
    for (auto& s : stages_) stages.push_back(std::move(s));
  }

  /// rows [N, D] with D > condition_dim -> the last stage's output. ShapeError when the rows are
  /// not a matrix with more columns than the condition, or the stem does not return [N, C, H, W].
  Var<T> forward(const Var<T>& rows) override {
    if (rows.rank() != 2 || rows.dim(1) <= condition_)
      throw ShapeError("ImageConditionDecoder: expected rows [N, D] of a code and " + std::to_string(condition_) +
                       " condition values (D > " + std::to_string(condition_) + "), got " + rows.shape().to_string());
    const std::int64_t n = rows.dim(0);
    // Every stage takes images; the stem's output is checked even when there is no stage.
    const auto check_images = [n](const Var<T>& h, const std::string& what) {
      if (h.rank() != 4 || h.dim(0) != n)
        throw ShapeError("ImageConditionDecoder: expected " + what + " to return [" + std::to_string(n) +
                         ", C, H, W], got " + h.shape().to_string());
    };
    Var<T> h = stem(rows);
    check_images(h, "the stem");
    const Var<T> c = condition_ > 0
                         ? reshape(slice(rows, 1, rows.dim(1) - condition_, condition_), Shape{n, condition_, 1, 1})
                         : Var<T>();
    for (std::size_t k = 0; k < stages.size(); ++k) {
      if (k > 0) check_images(h, "stage " + std::to_string(k - 1));
      h = stages[k](condition_ > 0 ? concat({h, broadcast_to(c, Shape{n, condition_, h.dim(2), h.dim(3)})}, 1) : h);
    }
    return h;
  }

  /// Visits the stem as "stem" and the stages as "stages".
  void visit(ModuleVisitor<T>& v) override {
    v.child("stem", stem);
    v.child("stages", stages);
  }

  /// The number of condition values at the end of each row.
  std::int64_t condition_dim() const noexcept { return condition_; }

  Stem stem;                 ///< on the whole row [z, c], to [N, C0, H0, W0]
  ModuleList<Stage> stages;  ///< each on [h, c broadcast to h's pixels]

 private:
  std::int64_t condition_;
};

}  // namespace genmod::nn
