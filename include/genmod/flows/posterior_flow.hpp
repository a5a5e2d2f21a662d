#pragma once
/// \file posterior_flow.hpp
/// The contract of a flow on a VAE's latent code, and PosteriorFlow, a chain of such steps.
///
/// A posterior flow step maps a code z [N, Z] to z' [N, Z] given a context h [N, H] that the
/// encoder produced for each sample (Kingma et al. 2016; H = 0 for a step that reads none, h is
/// then ignored and may be undefined):
///   forward(z, h) -> {z' = f(z; h), logdet_i = log |det dz'/dz (z_i; h_i)|}   logdet per sample, [N]
/// A VAE's posterior is z_0 ~ q_0(z | x) = N(mu, sigma^2), z_K = f_K(... f_1(z_0)), and
///   log q_K(z_K | x) = log q_0(z_0 | x) - sum_k log |det dz_k / dz_(k-1)|
/// (change of variables in the forward direction). Only the forward pass is needed for the ELBO and
/// for importance sampling, so a step need not have a closed-form inverse (planar and radial flows
/// have none; IAF's inverse is sequential). A step reports its code size `dim()` and the context
/// size it reads `context_dim()`; flows::PosteriorFlowType checks the members at compile time.

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/flows/bijector.hpp"
#include "genmod/nn/init.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::flows {

/// A flow step on latent codes given a per-sample context (see the file comment).
template <class F>
concept PosteriorFlowType = nn::ModuleType<F> && requires(F& f, const Var<typename F::value_type>& z) {
  { f.forward(z, z) } -> std::same_as<FlowResult<typename F::value_type>>;
  { f.dim() } -> std::convertible_to<std::int64_t>;
  { f.context_dim() } -> std::convertible_to<std::int64_t>;
};

/// Base class of the posterior flow steps PosteriorFlow holds: forward as a virtual member.
template <class T = float>
class PosteriorFlowStep : public nn::Module<T> {
 public:
  /// z' = f(z; h) and log |det dz'/dz| per sample; h [N, context_dim()] (ignored when context_dim() is 0).
  virtual FlowResult<T> forward(const Var<T>& z, const Var<T>& h) = 0;
  /// Z, the size of the codes it maps.
  virtual std::int64_t dim() const = 0;
  /// H, the size of the context it reads (0: none).
  virtual std::int64_t context_dim() const { return 0; }

 protected:
  /// Only subclasses construct steps.
  PosteriorFlowStep() = default;
  /// Copies share the parameters' buffers.
  PosteriorFlowStep(const PosteriorFlowStep&) = default;
  /// Moves the handles.
  PosteriorFlowStep(PosteriorFlowStep&&) noexcept = default;
  /// Copies share the parameters' buffers.
  PosteriorFlowStep& operator=(const PosteriorFlowStep&) = default;
  /// Moves the handles.
  PosteriorFlowStep& operator=(PosteriorFlowStep&&) noexcept = default;
};

/// Options of the posterior steps whose parameters may be global or amortized (PlanarFlow, RadialFlow).
struct PosteriorStepOptions {
  /// 0: global parameters, learned and the same for every sample; H > 0: parameters produced per
  /// sample from the encoder's context h [N, H] by a linear map (amortized, as Sylvester flows).
  std::int64_t context_dim = 0;
};

/// The parameters of a step with `k` numbers per sample: global ([1, k], learned) or amortized
/// ([N, k] = h W^T + b from a context h [N, H], W [k, H] and b [k] initialized as nn::Linear).
/// Children of the step's visit as "theta" (global) or "weight" and "bias" (amortized).
template <class T = float>
class StepParameters {
 public:
  /// `k` parameters per sample, global when context_dim is 0 (initial values `global_init` [1, k]).
  StepParameters(std::int64_t k, std::int64_t context_dim, Tensor<T> global_init) : context_(context_dim) {
    if (context_ > 0) {
      Generator& g = default_generator();
      Tensor<T> w(Shape{k, context_}), b(Shape{k});
      nn::init::default_weight(w, g);
      nn::init::default_bias(b, g, context_);
      weight = Parameter<T>(std::move(w));
      bias = Parameter<T>(std::move(b));
    } else {
      theta = Parameter<T>(std::move(global_init));
    }
  }

  /// H (0: global).
  std::int64_t context_dim() const noexcept { return context_; }

  /// [1, k] (global) or [N, k] for the context h [N, H] (amortized).
  Var<T> at(const Var<T>& h) const { return context_ > 0 ? linear(h, weight.var(), bias.var()) : theta.var(); }

  /// Lists "theta" or "weight" and "bias".
  void visit(nn::ModuleVisitor<T>& v) {
    if (context_ > 0) {
      v.param("weight", weight);
      v.param("bias", bias);
    } else {
      v.param("theta", theta);
    }
  }

  Parameter<T> theta;   ///< [1, k], global only
  Parameter<T> weight;  ///< [k, H], amortized only
  Parameter<T> bias;    ///< [k], amortized only

 private:
  std::int64_t context_;
};

/// Throws ShapeError unless z is [N, dim] and, when context_dim > 0, h is [N, context_dim].
template <class T>
void check_posterior_flow_input(std::string_view op, const Var<T>& z, const Var<T>& h, std::int64_t dim,
                                std::int64_t context_dim) {
  check_rank(op, "z", z.shape(), 2, "[N, Z]");
  check_dim(op, "z", z.shape(), 1, dim, "the flow's code size Z");
  if (context_dim == 0) return;
  if (!h.defined())  // the message is built only on failure: this runs in every training step
    check_shape_arg(false, op, "h", "a context [N, " + std::to_string(context_dim) + "]", "none");
  check_rank(op, "h", h.shape(), 2, "[N, H]");
  check_dim(op, "h", h.shape(), 0, z.dim(0), "one context row per code");
  check_dim(op, "h", h.shape(), 1, context_dim, "the flow's context size H");
}

/// f_K o ... o f_1 on codes [N, Z], every step given the same context h: forward applies the steps
/// in order and sums their log-determinants. Empty, it is the identity (the diagonal Normal
/// posterior of a plain VAE). Steps are children "steps.0", "steps.1", ...; a NaN or Inf found
/// inside step k by a checking tape is re-raised as a FlowStepError naming "steps.k".
template <class T = float>
class PosteriorFlow : public PosteriorFlowStep<T> {
 public:
  /// An empty chain on codes of size `dim` (ValueError unless dim >= 1).
  explicit PosteriorFlow(std::int64_t dim) : dim_(dim) { check_positive("flows::PosteriorFlow", "dim", dim); }

  /// Appends a step (a PosteriorFlowStep<T> subclass); ValueError when its code size is not the
  /// chain's or its context size differs from an earlier step's (every step reads the same h).
  template <class S>
  std::decay_t<S>& push_back(S&& step) {
    using Step = std::decay_t<S>;
    static_assert(PosteriorFlowType<Step> && std::is_base_of_v<PosteriorFlowStep<T>, Step>,
                  "PosteriorFlow<T>::push_back: a step must derive from flows::PosteriorFlowStep<T> (forward(z, h) "
                  "-> FlowResult<T>, dim(), context_dim())");
    check_arg(step.dim() == dim_, "flows::PosteriorFlow::push_back", "the step's code size",
              std::to_string(dim_) + " (the chain's)", std::to_string(step.dim()));
    if (step.context_dim() > 0) {
      check_arg(context_ == 0 || step.context_dim() == context_, "flows::PosteriorFlow::push_back",
                "the step's context size", std::to_string(context_) + " (an earlier step's)",
                std::to_string(step.context_dim()));
      context_ = step.context_dim();
    }
    return steps_.push_back(std::forward<S>(step));
  }

  /// Number of steps.
  std::size_t size() const noexcept { return steps_.size(); }
  /// The i-th step.
  PosteriorFlowStep<T>& operator[](std::size_t i) const { return steps_[i]; }

  /// {f(z; h), sum of the steps' log|det|}; the identity with logdet 0 when empty.
  FlowResult<T> forward(const Var<T>& z, const Var<T>& h) override {
    check_posterior_flow_input("flows::PosteriorFlow", z, h, dim_, context_);
    Var<T> w = z, logdet;
    for (std::size_t k = 0; k < steps_.size(); ++k) {
      FlowResult<T> r =
          detail::in_flow_step([k] { return "steps." + std::to_string(k); }, [&] { return steps_[k].forward(w, h); });
      w = r.y;
      logdet = logdet.defined() ? add(logdet, r.logdet) : r.logdet;
    }
    if (!logdet.defined()) logdet = Var<T>(zeros<T>(Shape{z.dim(0)}));
    return {w, logdet};
  }

  /// Z.
  std::int64_t dim() const override { return dim_; }
  /// H: the context size of the steps that read one (0 when none does).
  std::int64_t context_dim() const override { return context_; }

  /// Visits the steps as "steps.0", "steps.1", ...
  void visit(nn::ModuleVisitor<T>& v) override { v.child("steps", steps_); }

 private:
  nn::ModuleList<PosteriorFlowStep<T>> steps_;
  std::int64_t dim_ = 0, context_ = 0;
};

}  // namespace genmod::flows
