#pragma once
/// \file image_condition_encoder.hpp
/// ImageConditionEncoder: the encoder of a conditional model on images. A ConditionalVAE hands
/// its encoder one row per image, [flatten(x), c]: the pixels followed by the condition (a
/// one-hot class, a multi-hot attribute vector). A convolutional network needs the pixels as an
/// image, and a condition broadcast over every pixel would cost a channel per attribute at every
/// layer. This layer cuts each row back into the image [N, C, H, W] and the condition [N, A],
/// runs a convolutional `body` on the image alone and a `head` on [flatten(body(x)), c]: the
/// condition joins where the features are flat (Sohn et al. 2015's convolutional CVAE does the
/// same).
///
/// Gradients: the slices and the reshape are differentiable ops, so d/d(row) is the body's
/// gradient in the pixel columns and the head's gradient in the condition columns.

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/nn/layer.hpp"

namespace genmod::nn {

/// Splits rows [flatten(x), c] into the image x [N, C, H, W] and the condition c, and returns
/// head([flatten(body(x)), c]) (see the file comment).
template <class Body, class Head>
class ImageConditionEncoder : public Layer<typename Body::value_type> {
 public:
  /// The scalar type.
  using T = typename Body::value_type;
  static_assert(LayerType<Body> && LayerType<Head>,
                "ImageConditionEncoder: body and head must be nn::Layer types (Var<T> forward(const Var<T>&))");
  static_assert(std::is_same_v<T, typename Head::value_type>,
                "ImageConditionEncoder: body and head must share a value type");

  /// An encoder for images of `channels` x `height` x `width` followed by a condition of
  /// `condition_dim` values. ValueError for a non-positive extent or a negative condition_dim.
  ImageConditionEncoder(std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t condition_dim,
                        Body body_, Head head_)
      : body(std::move(body_)),
        head(std::move(head_)),
        channels_(channels),
        height_(height),
        width_(width),
        condition_(condition_dim) {
    check_positive("ImageConditionEncoder", "channels", channels);
    check_positive("ImageConditionEncoder", "height", height);
    check_positive("ImageConditionEncoder", "width", width);
    check_non_negative("ImageConditionEncoder", "condition_dim", condition_dim);
  }

  /// rows [N, C H W + A] -> head([flatten(body(x)), c]); ShapeError when the rows are not
  /// [N, C H W + A].
  Var<T> forward(const Var<T>& rows) override {
    const std::int64_t pixels = channels_ * height_ * width_;
    if (rows.rank() != 2 || rows.dim(1) != pixels + condition_)
      throw ShapeError("ImageConditionEncoder: expected rows [N, " + std::to_string(pixels + condition_) + "] (" +
                       std::to_string(channels_) + "x" + std::to_string(height_) + "x" + std::to_string(width_) +
                       " pixels + " + std::to_string(condition_) + " condition values), got " +
                       rows.shape().to_string());
    const std::int64_t n = rows.dim(0);
    Var<T> image = reshape(slice(rows, 1, 0, pixels), Shape{n, channels_, height_, width_});
    Var<T> features = flatten(body(image), 1);
    if (condition_ == 0) return head(features);
    return head(concat({features, slice(rows, 1, pixels, condition_)}, 1));
  }

  /// Visits the body as "body" and the head as "head".
  void visit(ModuleVisitor<T>& v) override {
    v.child("body", body);
    v.child("head", head);
  }

  /// The image shape [C, H, W] the rows hold.
  Shape image_shape() const { return Shape{channels_, height_, width_}; }
  /// The number of condition values after the pixels.
  std::int64_t condition_dim() const noexcept { return condition_; }

  Body body;  ///< the convolutional part, on x [N, C, H, W]
  Head head;  ///< on [flatten(body(x)), c]

 private:
  std::int64_t channels_, height_, width_, condition_;
};

}  // namespace genmod::nn
