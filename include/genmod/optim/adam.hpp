#pragma once
/// \file adam.hpp
/// Adam and AdamW, exactly as torch.optim.Adam and torch.optim.AdamW (maximize = false).
///
/// For each parameter p with gradient g, at its step t (1 on its first update):
///   Adam:  g <- g + weight_decay * p                    (L2 penalty, added to the gradient)
///   AdamW: p <- p - lr * weight_decay * p               (decoupled decay, Loshchilov & Hutter)
///   m <- beta1 * m + (1 - beta1) * g                    ("exp_avg")
///   v <- beta2 * v + (1 - beta2) * g^2                  ("exp_avg_sq")
///   v_max <- max(v_max, v)      if amsgrad              ("max_exp_avg_sq"); then v stands for v_max
///   m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)   (bias correction)
///   p <- p - lr * m_hat / (sqrt(v_hat) + eps)
///
/// The last line is computed as p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
/// the same value with the scalar factors hoisted out of the loop (as PyTorch does).

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::optim {

/// The two decay rates of Adam's moment estimates: `.betas = {0.9, 0.999}`.
struct Betas {
  double beta1 = 0.9;    ///< decay of the first moment (mean of g), in [0, 1)
  double beta2 = 0.999;  ///< decay of the second moment (mean of g^2), in [0, 1)
};

/// Options of Adam (PyTorch's defaults).
struct AdamOptions {
  double lr = 1e-3;          ///< learning rate, > 0
  Betas betas = {};          ///< moment decay rates, each in [0, 1)
  double eps = 1e-8;         ///< added to sqrt(v_hat), > 0
  double weight_decay = 0;   ///< L2 penalty added to the gradient, >= 0
  bool amsgrad = false;      ///< use the running maximum of v (Reddi et al.)
};

/// Options of AdamW (PyTorch's defaults: note weight_decay = 0.01).
struct AdamWOptions {
  double lr = 1e-3;            ///< learning rate, > 0
  Betas betas = {};            ///< moment decay rates, each in [0, 1)
  double eps = 1e-8;           ///< added to sqrt(v_hat), > 0
  double weight_decay = 1e-2;  ///< decoupled decay: p <- p - lr * weight_decay * p, >= 0
  bool amsgrad = false;        ///< use the running maximum of v
};

namespace detail {

/// Checks Adam/AdamW options, naming the optimizer in the message.
template <class Options>
const Options& validate_adam(const Options& o, const char* name) {
  require(o.lr > 0 && std::isfinite(o.lr), name, "lr", "finite and > 0", o.lr);
  require(o.betas.beta1 >= 0 && o.betas.beta1 < 1, name, "betas.beta1", "in [0, 1)", o.betas.beta1);
  require(o.betas.beta2 >= 0 && o.betas.beta2 < 1, name, "betas.beta2", "in [0, 1)", o.betas.beta2);
  require(o.eps > 0 && std::isfinite(o.eps), name, "eps", "finite and > 0", o.eps);
  require(o.weight_decay >= 0 && std::isfinite(o.weight_decay), name, "weight_decay", "finite and >= 0",
          o.weight_decay);
  return o;
}

/// The fused Adam/AdamW update of one parameter (see the file comment for the math).
/// `decoupled` selects AdamW's decay; m, v (and vmax when amsgrad) are the state buffers.
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* vmax, std::int64_t n, std::int64_t t, double lr, Betas betas,
                 double eps, double weight_decay, bool decoupled) {
  // Scalars in double, then rounded once: the bias corrections 1 - beta^t lose digits in float.
  const double bc1 = 1 - std::pow(betas.beta1, static_cast<double>(t));
  const double bc2 = 1 - std::pow(betas.beta2, static_cast<double>(t));
  const T step_size = static_cast<T>(lr / bc1);
  const T inv_sqrt_bc2 = static_cast<T>(1 / std::sqrt(bc2));
  const T b1 = static_cast<T>(betas.beta1), c1 = static_cast<T>(1 - betas.beta1);
  const T b2 = static_cast<T>(betas.beta2), c2 = static_cast<T>(1 - betas.beta2);
  const T e = static_cast<T>(eps);
  const T l2 = decoupled ? T(0) : static_cast<T>(weight_decay);
  const T shrink = decoupled ? static_cast<T>(1 - lr * weight_decay) : T(1);  // AdamW: p * (1 - lr*wd)
  const bool amsgrad = vmax != nullptr;
  fused_loop<T>(n, 8, [&]<class V>(std::int64_t i) {
    const V pv = detail::loadu<V>(p + i);
    const V gv = detail::fmadd(V(l2), pv, detail::loadu<V>(g + i));              // g + wd * p (Adam only)
    const V mv = detail::fmadd(V(b1), detail::loadu<V>(m + i), V(c1) * gv);      // beta1 m + (1 - beta1) g
    V vv = detail::fmadd(V(b2), detail::loadu<V>(v + i), (V(c2) * gv) * gv);     // beta2 v + (1 - beta2) g^2
    detail::storeu(m + i, mv);
    detail::storeu(v + i, vv);
    if (amsgrad) {
      vv = kernels::simd::max(detail::loadu<V>(vmax + i), vv);
      detail::storeu(vmax + i, vv);
    }
    const V denom = detail::fmadd(kernels::simd::sqrt(vv), V(inv_sqrt_bc2), V(e));  // sqrt(v_hat) + eps
    detail::storeu(p + i, detail::fmadd(V(-step_size), mv / denom, pv * V(shrink)));
  });
}

}  // namespace detail

/// Adam (torch.optim.Adam): bias-corrected moment estimates, L2 weight decay added to the
/// gradient. State: "<param>.exp_avg", "<param>.exp_avg_sq" (and "<param>.max_exp_avg_sq" with
/// amsgrad).
template <class T = float>
class Adam : public Optimizer<T> {
 public:
  /// Optimizes the named parameters (e.g. net.named_parameters()).
  Adam(std::vector<nn::NamedParameter<T>> params, const AdamOptions& options = {})
      : Optimizer<T>("Adam", std::move(params), detail::validate_adam(options, "Adam").lr), options_(options) {
    this->add_buffer("exp_avg");
    this->add_buffer("exp_avg_sq");
    if (options_.amsgrad) this->add_buffer("max_exp_avg_sq");
  }

  /// Optimizes unnamed parameters (e.g. net.parameters()), named "0", "1", ... in order.
  Adam(std::vector<Parameter<T>> params, const AdamOptions& options = {})
      : Adam(detail::name_by_index(std::move(params)), options) {}

  /// The options given at construction (lr as given; the current rate is lr()).
  const AdamOptions& options() const noexcept { return options_; }

 protected:
  /// One Adam step on n values (the file comment's formulas); state: exp_avg, exp_avg_sq[, max_exp_avg_sq].
  void update_parameter(T* p, const T* g, std::int64_t n, Tensor<T>* state, std::int64_t t) override {
    detail::adam_update(p, g, state[0].data(), state[1].data(), options_.amsgrad ? state[2].data() : nullptr, n, t,
                        this->lr(), options_.betas, options_.eps, options_.weight_decay, /*decoupled=*/false);
  }

 private:
  AdamOptions options_;
};

/// AdamW (torch.optim.AdamW): Adam with decoupled weight decay p <- p - lr * weight_decay * p,
/// applied before the Adam step and kept out of the moment estimates. Same state names as Adam.
template <class T = float>
class AdamW : public Optimizer<T> {
 public:
  /// Optimizes the named parameters (e.g. net.named_parameters()).
  AdamW(std::vector<nn::NamedParameter<T>> params, const AdamWOptions& options = {})
      : Optimizer<T>("AdamW", std::move(params), detail::validate_adam(options, "AdamW").lr), options_(options) {
    this->add_buffer("exp_avg");
    this->add_buffer("exp_avg_sq");
    if (options_.amsgrad) this->add_buffer("max_exp_avg_sq");
  }

  /// Optimizes unnamed parameters (e.g. net.parameters()), named "0", "1", ... in order.
  AdamW(std::vector<Parameter<T>> params, const AdamWOptions& options = {})
      : AdamW(detail::name_by_index(std::move(params)), options) {}

  /// The options given at construction (lr as given; the current rate is lr()).
  const AdamWOptions& options() const noexcept { return options_; }

 protected:
  /// One AdamW step on n values: decoupled decay, then the Adam step; same state as Adam.
  void update_parameter(T* p, const T* g, std::int64_t n, Tensor<T>* state, std::int64_t t) override {
    detail::adam_update(p, g, state[0].data(), state[1].data(), options_.amsgrad ? state[2].data() : nullptr, n, t,
                        this->lr(), options_.betas, options_.eps, options_.weight_decay, /*decoupled=*/true);
  }

 private:
  AdamWOptions options_;
};

}  // namespace genmod::optim

// Explicit instantiations: declared extern under GENMOD_EXTERN_TEMPLATES, defined in
// genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::optim::detail::adam_update, float)
GENMOD_DETAIL_INSTANTIATE_OP(genmod::optim::detail::adam_update, double)
#endif
