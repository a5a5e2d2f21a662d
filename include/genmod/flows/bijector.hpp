#pragma once
/// \file bijector.hpp
/// The contract of a normalizing-flow step, and FlowSequence, a chain of steps.
///
/// A bijector f is an invertible map with a tractable Jacobian determinant:
///   forward(x) -> {y = f(x), logdet_i = log |det df/dx (x_i)|}   logdet per sample, [N]
///   inverse(y) -> x = f^-1(y)
/// A chain f = f_K o ... o f_1 has log|det| = sum_k log|det df_k/dh_(k-1)| (the chain rule of
/// determinants), which is what FlowSequence returns. Change of variables: when forward maps data
/// to the base distribution (density flows), log p(x) = log p_z(f(x)) + logdet; when forward maps a
/// base sample onward (a VAE's flow posterior), log q(z_K) = log q_0(z_0) - logdet.
///
/// A step is an nn::Module (parameters, train/eval) with those two members: the concept
/// flows::Bijector checks it at compile time. FlowSequence holds steps of different classes
/// through the base class flows::BijectorModule, whose two members are virtual.

#include <string>
#include <type_traits>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/config.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/nn/module_list.hpp"

namespace genmod::flows {

/// The output of a bijector's forward pass.
template <class T = float>
struct FlowResult {
  Var<T> y;       ///< f(x), the shape of x
  Var<T> logdet;  ///< log |det df/dx| per sample, [N]
};

/// A NaN or Inf inside a flow step, with the dotted path of the step in the model
/// ("flow.steps.7.inner.steps.2", as in the parameter names) and the cause (the op that produced
/// it, and what the step adds: an affine coupling reports its log-scale statistics). Raised when a
/// tape checks values (Tape::set_check_finite, as train::Trainer's replay of a non-finite loss does).
class FlowStepError : public NumericError {
 public:
  /// The step at `path` failed with `cause`.
  FlowStepError(std::string path, std::string cause)
      : NumericError("non-finite value in flow step '" + path + "': " + cause),
        path_(std::move(path)),
        cause_(std::move(cause)) {}
  /// The dotted path of the step.
  const std::string& path() const noexcept { return path_; }
  /// What went wrong inside it.
  const std::string& cause() const noexcept { return cause_; }

 private:
  std::string path_, cause_;
};

namespace detail {
/// f(), with a NumericError from inside it re-raised as a FlowStepError whose path starts with
/// `name` (name() is only called on that path: no string is built in the normal case).
template <class Name, class F>
decltype(auto) in_flow_step(Name name, F&& f) {
  try {
    return f();
  } catch (const FlowStepError& e) {
    throw FlowStepError(name() + "." + e.path(), e.cause());
  } catch (const NumericError& e) {
    throw FlowStepError(name(), e.what());
  }
}
}  // namespace detail

/// The sum of x [N, ...] over every dimension but the first: [N]. A step's log-determinant is this
/// sum of its elementwise log-scales.
template <class T>
Var<T> sum_per_sample(const Var<T>& x) {
  if (x.rank() < 1) throw ShapeError("flows::sum_per_sample: expected a batch [N, ...], got " + x.shape().to_string());
  if (x.rank() == 1) return x;
  return sum(x.rank() == 2 ? x : flatten(x, 1), 1);
}

/// An invertible module with a per-sample log-determinant (see the file comment).
template <class B>
concept Bijector = nn::ModuleType<B> && requires(B& b, const Var<typename B::value_type>& x) {
  { b.forward(x) } -> std::same_as<FlowResult<typename B::value_type>>;
  { b.inverse(x) } -> std::same_as<Var<typename B::value_type>>;
};

/// Base class of the flow steps FlowSequence holds: forward and inverse as virtual members.
template <class T = float>
class BijectorModule : public nn::Module<T> {
 public:
  /// y = f(x) and log |det df/dx| per sample.
  virtual FlowResult<T> forward(const Var<T>& x) = 0;
  /// x = f^-1(y).
  virtual Var<T> inverse(const Var<T>& y) = 0;

 protected:
  /// Only subclasses construct flow steps.
  BijectorModule() = default;
  /// Copies share the parameters' buffers.
  BijectorModule(const BijectorModule&) = default;
  /// Moves the handles.
  BijectorModule(BijectorModule&&) noexcept = default;
  /// Copies share the parameters' buffers.
  BijectorModule& operator=(const BijectorModule&) = default;
  /// Moves the handles.
  BijectorModule& operator=(BijectorModule&&) noexcept = default;
};

/// f_K o ... o f_1: forward applies the steps in order and sums their log-determinants, inverse
/// applies the inverses in reverse order. Steps are children "steps.0", "steps.1", ...; a NaN or
/// Inf found inside step k (by a checking tape) is re-raised as a FlowStepError naming "steps.k".
template <class T = float>
class FlowSequence : public BijectorModule<T> {
 public:
  /// An empty chain (the identity, log-determinant 0).
  FlowSequence() = default;

  /// Appends a step (any BijectorModule<T> subclass); returns it.
  template <class B>
  std::decay_t<B>& push_back(B&& step) {
    using S = std::decay_t<B>;
    static_assert(Bijector<S> && std::is_base_of_v<BijectorModule<T>, S>,
                  "FlowSequence<T>::push_back: a step must derive from flows::BijectorModule<T> and satisfy "
                  "flows::Bijector (forward(x) -> FlowResult<T>{y, logdet [N]}, inverse(y) -> Var<T>)");
    return steps_.push_back(std::forward<B>(step));
  }

  /// Number of steps.
  std::size_t size() const noexcept { return steps_.size(); }
  /// The i-th step.
  BijectorModule<T>& operator[](std::size_t i) const { return steps_[i]; }

  /// {f(x), sum of the steps' log|det|}; the identity with logdet 0 when empty.
  FlowResult<T> forward(const Var<T>& x) override {
    if (x.rank() < 1) throw ShapeError("FlowSequence: expected a batch [N, ...], got " + x.shape().to_string());
    Var<T> h = x, logdet;
    for (std::size_t k = 0; k < steps_.size(); ++k) {
      FlowResult<T> r =
          detail::in_flow_step([k] { return "steps." + std::to_string(k); }, [&] { return steps_[k].forward(h); });
      if (!(r.logdet.shape() == Shape{x.dim(0)}))
        throw ShapeError("FlowSequence: a step returned a log-determinant of shape " + r.logdet.shape().to_string() +
                         ", expected one per sample [" + std::to_string(x.dim(0)) + "]");
      h = r.y;
      logdet = logdet.defined() ? add(logdet, r.logdet) : r.logdet;
    }
    if (!logdet.defined()) logdet = Var<T>(zeros<T>(Shape{x.dim(0)}));
    return {h, logdet};
  }

  /// f^-1(y): the steps' inverses, last step first.
  Var<T> inverse(const Var<T>& y) override {
    Var<T> h = y;
    for (std::size_t i = steps_.size(); i-- > 0;) h = steps_[i].inverse(h);
    return h;
  }

  /// Visits the steps as "steps.0", "steps.1", ...
  void visit(nn::ModuleVisitor<T>& v) override { v.child("steps", steps_); }

 private:
  nn::ModuleList<BijectorModule<T>> steps_;
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::FlowSequence, float)
#endif
