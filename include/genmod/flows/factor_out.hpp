#pragma once
/// \file factor_out.hpp
/// FactorOut: the multiscale architecture of RealNVP and Glow. At the end of a scale, half of the
/// channels are final (they go to the base distribution as they are); the rest of the flow runs
/// on the other half only, at a coarser scale.
///
///   x = [x_a, x_b] along the channels (x_a: the first `kept` channels)
///   y = [x_a, reshape(g(x_b))],  log |det| = log |det dg/dx_b|     g: the inner flow
///   x = [y_a, g^-1(reshape(y_b))]
/// The inner flow may change the shape of its input (a Squeeze does): its output, with the same
/// number of elements, is laid out again in x_b's shape (a fixed reordering, log |det| = 0), so
/// y has x's shape and a FlowModel's base sample has the data's shape at every scale. The inner
/// flow's output shape is given at construction; the inverse needs it to undo the reordering.

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/flows/masks.hpp"

namespace genmod::flows {

/// Keeps the first channels as final and applies an inner flow to the rest (see the file comment).
template <class T = float>
class FactorOut : public BijectorModule<T> {
 public:
  /// For samples of shape `event` ([C, H, W]): the first `kept` channels (0 < kept < C) are
  /// final; `inner_flow` maps the other C - kept channels to samples of shape `inner_output`
  /// (with as many elements).
  FactorOut(const Shape& event, std::int64_t kept, FlowSequence<T> inner_flow, const Shape& inner_output)
      : inner(std::move(inner_flow)), event_(event), inner_output_(inner_output), kept_(kept) {
    check_rank("flows::FactorOut", "the event shape", event, 3, "[C, H, W]");
    check_in_range("flows::FactorOut", "kept channels", kept, 1, event[0] - 1);
    const std::int64_t rest = (event[0] - kept) * event[1] * event[2];
    check_arg(inner_output.numel() == rest, "flows::FactorOut", "the inner flow's output shape",
              "as many elements as the " + std::to_string(event[0] - kept) + " remaining channels (" +
                  std::to_string(rest) + ")",
              inner_output.to_string());
  }

  /// {[x_a, reshape(g(x_b))], log |det dg/dx_b|}.
  FlowResult<T> forward(const Var<T>& x) override {
    check_batch_of("flows::FactorOut", "x", x.shape(), event_);
    const std::int64_t n = x.dim(0), c = event_[0];
    const Var<T> rest = slice(x, 1, kept_, c - kept_);
    FlowResult<T> r = detail::in_flow_step([] { return std::string("inner"); }, [&] { return inner.forward(rest); });
    if (r.y.shape() != batch_shape(n, inner_output_))
      check_shape_arg(false, "flows::FactorOut", "the inner flow's output", batch_shape(n, inner_output_).to_string(),
                      r.y.shape().to_string());
    return {concat({slice(x, 1, 0, kept_), reshape(r.y, rest.shape())}, 1), r.logdet};
  }

  /// [y_a, g^-1(reshape(y_b))].
  Var<T> inverse(const Var<T>& y) override {
    check_batch_of("flows::FactorOut::inverse", "y", y.shape(), event_);
    const std::int64_t n = y.dim(0), c = event_[0];
    const Var<T> rest = slice(y, 1, kept_, c - kept_);
    const Var<T> back = inner.inverse(reshape(rest, batch_shape(n, inner_output_)));
    return concat({slice(y, 1, 0, kept_), reshape(back, rest.shape())}, 1);
  }

  /// Visits the inner flow as "inner".
  void visit(nn::ModuleVisitor<T>& v) override { v.child("inner", inner); }

  FlowSequence<T> inner;  ///< g, the flow of the remaining channels

 private:
  Shape event_, inner_output_;
  std::int64_t kept_;
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::FactorOut, float)
#endif
