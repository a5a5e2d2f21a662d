#pragma once
/// \file coupling.hpp
/// affine_coupling: the transform of RealNVP's affine coupling step (flows/affine_coupling.hpp)
/// as one op, forward and first-order backward each one pass of kernels/coupling.hpp. With the
/// conditioner's output rt = (r, t) [N, 2C, ...] for x [N, C, ...] and the transform mask m
/// (1 where the step transforms):
///   s = bound(r) m,  y = x e^s + t m,  logdet = per-sample sum of s
///   bound: tanh: scale tanh(r);  sigmoid: log sigmoid(r + 2);  exp: r
/// When the backward is itself recorded (create_graph) it is written with differentiable ops
/// instead (slice, tanh, exp, mul, ...: the composed form of the same math), so second derivatives
/// stay exact.
///
/// Two outputs, one backward pass. The tape records one node per output and calls each node's
/// backward with that output's gradient only, so the op records two: first `logdet` (inputs x, rt,
/// scale), whose backward does all the work, then `y`, whose only input is logdet. Nodes run in
/// reverse order, so y's backward runs first, once y's gradient is complete: it hands that
/// gradient to the logdet node through a pointer in the tape's arena and adds a zero [N] to
/// logdet's gradient, so that logdet's backward runs even when the loss does not use logdet. That
/// backward then has both gradients and writes gx, grt and gscale in one pass. (y does not depend
/// on logdet; the edge only orders the two backward calls, and the zero it adds is exact.)

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "genmod/autodiff/custom_op.hpp"
#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/kernels/coupling.hpp"

namespace genmod {

/// How affine_coupling bounds its log-scale (kernels/coupling.hpp; flows::ScaleBound names the same).
using CouplingBound = kernels::CouplingBound;

namespace detail {

// The checks of affine_coupling; returns the sample shape [C, ...].
template <class T>
Shape check_affine_coupling(const Var<T>& x, const Var<T>& rt, const Var<T>& scale, const Tensor<T>& transform,
                            CouplingBound bound) {
  constexpr const char* op = "affine_coupling";
  check_min_rank(op, "x", x.shape(), 2, "[N, C, ...]");
  const Shape sample(x.shape().dims().subspan(1));
  check_shape(op, "rt (r and t stacked along dimension 1)", rt.shape(), x.shape().with_dim(1, 2 * x.dim(1)));
  check_shape(op, "the transform mask (one sample's shape)", transform.shape(), sample);
  for (std::int64_t i = 0; i < transform.numel(); ++i)
    if (transform[i] != T(0) && transform[i] != T(1)) {
      std::string found = std::to_string(transform[i]);
      found.append(" at index ").append(std::to_string(i));
      check_arg(false, op, "the transform mask's entries", "0 or 1", found);
    }
  if (bound == CouplingBound::tanh)
    check_shape(op, "scale (the tanh bound's, one sample's shape)", scale.shape(), sample);
  else if (scale.defined())  // the message is built only on failure: this runs in every step
    check_arg(false, op, "scale", "undefined for the sigmoid and exp bounds (tanh only)",
              "a tensor of shape " + scale.shape().to_string());
  return sample;
}

// The composed (recorded) form of the backward: the gradients of the file comment's math with
// respect to x, rt and scale, from gy (undefined: zero) and glogdet, written with differentiable
// ops so that they can be differentiated again.
template <class T>
void affine_coupling_composed_backward(const Var<T>& x, const Var<T>& rt, const Var<T>& scale,
                                       const Tensor<T>& transform, CouplingBound bound, const Var<T>& gy,
                                       const Var<T>& glogdet, GradSink<T>& sink) {
  const std::int64_t c = x.dim(1);
  const Var<T> m(transform);
  const Var<T> r = slice(rt, 1, 0, c);
  Var<T> th, b;
  switch (bound) {
    case CouplingBound::tanh:
      th = tanh(r);
      b = mul(th, scale);
      break;
    case CouplingBound::sigmoid:
      b = log_sigmoid(add_scalar(r, T(2)));
      break;
    case CouplingBound::exp:
      b = r;
      break;
  }
  const Var<T> e = exp(mul(b, m));
  // d loss / d s per element: gy x e + glogdet (broadcast over the sample), then through s = b m.
  Shape per_sample = x.shape();
  for (int i = 1; i < per_sample.rank(); ++i) per_sample = per_sample.with_dim(i, 1);
  Var<T> gs = reshape(glogdet, per_sample);
  if (gy.defined()) gs = add(mul(mul(gy, x), e), gs);
  const Var<T> gb = mul(gs, m);
  if (sink.needs(0) && gy.defined()) sink.add(0, mul(gy, e));
  if (sink.needs(1)) {
    Var<T> gr;
    switch (bound) {
      case CouplingBound::tanh:
        gr = mul(gb, mul(scale, T(1) - square(th)));
        break;
      case CouplingBound::sigmoid:
        gr = mul(gb, sigmoid(neg(add_scalar(r, T(2)))));
        break;
      case CouplingBound::exp:
        gr = gb;
        break;
    }
    const Var<T> gt = gy.defined() ? mul(gy, m) : Var<T>(zeros<T>(x.shape()));
    const std::array<Var<T>, 2> halves{gr, gt};
    sink.add(1, concat(std::span<const Var<T>>(halves), 1));
  }
  if (bound == CouplingBound::tanh && sink.needs(2)) sink.add(2, sum(mul(gb, th), 0));
}

}  // namespace detail

/// y = x e^s + t m and `logdet` = the per-sample sum of s [N], s = bound(r) m, for x [N, C, ...],
/// the conditioner's output rt = (r, t) [N, 2C, ...] (r: channels 0..C-1), the transform mask m of
/// one sample's shape [C, ...] (entries 0 or 1; 1 = transformed), and `scale` [C, ...] for the tanh
/// bound (undefined for the others). See the file comment; d/dx = e^s, d/dt = m, d/dr = (d/ds) m
/// dbound/dr, d/dscale = (d/ds) m tanh(r), with d/ds = gy x e^s + glogdet.
template <class T>
Var<T> affine_coupling(const Var<T>& x, const Var<T>& rt, const Var<T>& scale, const Tensor<T>& transform,
                       CouplingBound bound, Var<T>& logdet) {
  detail::check_affine_coupling(x, rt, scale, transform, bound);
  const std::int64_t n = x.dim(0);
  const kernels::CouplingLayout l{n, n > 0 ? x.numel() / n : 0};
  Tape<T>* tape = Tape<T>::current();
  const bool record = tape && grad_enabled() && (x.requires_grad() || rt.requires_grad() || scale.requires_grad());
  Tensor<T> y(x.shape()), ld(Shape{n}), e, th;
  if (record) {
    e = Tensor<T>(x.shape());
    if (bound == CouplingBound::tanh) th = Tensor<T>(x.shape());
  }
  kernels::affine_coupling_forward<T>(l, bound,
                                      {.x = x.value().data(),
                                       .rt = rt.value().data(),
                                       .scale = scale.defined() ? scale.value().data() : nullptr,
                                       .transform = transform.data(),
                                       .y = y.data(),
                                       .logdet = ld.data(),
                                       .e = e.defined() ? e.data() : nullptr,
                                       .th = th.defined() ? th.data() : nullptr});
  if (!record) {
    logdet = Var<T>(std::move(ld));
    return Var<T>(std::move(y));
  }
  // y's gradient, handed from y's node to logdet's within a sweep (see the file comment).
  Var<T>** relay = tape->template arena_array<Var<T>*>(1);
  *relay = nullptr;
  auto logdet_backward = [x, rt, scale, transform, bound, e, th, l, relay](const Var<T>&, const Var<T>& glogdet,
                                                                           GradSink<T>& sink) {
    Var<T> gy;
    if (*relay) {
      gy = std::move(**relay);
      *relay = nullptr;
    }
    if (grad_enabled()) {  // recorded backward: the composed form
      detail::affine_coupling_composed_backward(x, rt, scale, transform, bound, gy, glogdet, sink);
      return;
    }
    const bool want_x = sink.needs(0) && gy.defined(), want_rt = sink.needs(1);
    const bool want_scale = bound == CouplingBound::tanh && sink.needs(2);
    if (!want_x && !want_rt && !want_scale) return;
    Tensor<T> gx, grt, gscale;
    if (want_x) gx = Tensor<T>(x.shape());
    if (want_rt) grt = Tensor<T>(rt.shape());
    // gscale accumulates straight into the parameter's gradient buffer when the tape allows it.
    Tensor<T>* gscale_buffer = want_scale ? sink.parameter_gradient(2, scale.shape()) : nullptr;
    if (want_scale && !gscale_buffer) gscale = zeros<T>(scale.shape());
    kernels::affine_coupling_backward<T>(l, bound,
                                         {.gy = gy.defined() ? gy.value().data() : nullptr,
                                          .glogdet = glogdet.value().data(),
                                          .x = x.value().data(),
                                          .scale = scale.defined() ? scale.value().data() : nullptr,
                                          .transform = transform.data(),
                                          .e = e.data(),
                                          .th = th.defined() ? th.data() : nullptr,
                                          .gx = want_x ? gx.data() : nullptr,
                                          .grt = want_rt ? grt.data() : nullptr,
                                          .gscale = gscale_buffer ? gscale_buffer->data()
                                                    : want_scale  ? gscale.data()
                                                                  : nullptr});
    if (want_x) sink.add(0, Var<T>(std::move(gx)));
    if (want_rt) sink.add(1, Var<T>(std::move(grt)));
    if (gscale.defined()) sink.add(2, Var<T>(std::move(gscale)));
  };
  logdet = record_op("affine_coupling.logdet", std::move(ld), std::move(logdet_backward), x, rt, scale);
  auto y_backward = [relay, n, stash = Var<T>()](const Var<T>&, const Var<T>& gy, GradSink<T>& sink) mutable {
    if (!sink.needs(0)) return;  // nothing upstream needs a gradient
    stash = gy;
    *relay = &stash;
    sink.add(0, Var<T>(zeros<T>(Shape{n})));
  };
  return record_op("affine_coupling", std::move(y), std::move(y_backward), logdet);
}

}  // namespace genmod

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::affine_coupling, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::affine_coupling, double)
#endif
