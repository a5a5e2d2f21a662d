#pragma once
/// \file rmsprop.hpp
/// RMSprop, exactly as torch.optim.RMSprop (maximize = false).
///
/// For each parameter p with gradient g:
///   g <- g + weight_decay * p                          (L2 penalty, added to the gradient)
///   v <- alpha * v + (1 - alpha) * g^2                 ("square_avg")
///   if centered:
///     a <- alpha * a + (1 - alpha) * g                 ("grad_avg")
///     v~ = v - a^2                                     (a variance estimate)
///   else v~ = v
///   if momentum > 0:
///     b <- momentum * b + g / (sqrt(v~) + eps)         ("momentum_buffer")
///     p <- p - lr * b
///   else
///     p <- p - lr * g / (sqrt(v~) + eps)
///
/// Note eps is added after the square root (TensorFlow adds it inside). With centered, v - a^2 is
/// mathematically >= 0 (Jensen) but may round below zero; it is clamped at 0, where PyTorch would
/// produce NaN.

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "genmod/optim/optimizer.hpp"

namespace genmod::optim {

/// Options of RMSprop (PyTorch's defaults).
struct RMSpropOptions {
  double lr = 1e-2;          ///< learning rate, > 0
  double alpha = 0.99;       ///< smoothing constant of the squared-gradient average, in [0, 1)
  double eps = 1e-8;         ///< added to the root-mean-square, > 0
  double weight_decay = 0;   ///< L2 penalty added to the gradient, >= 0
  double momentum = 0;       ///< momentum factor, >= 0 (0 disables the buffer)
  bool centered = false;     ///< normalize by the variance estimate v - a^2 instead of v
};

/// RMSprop (torch.optim.RMSprop). State: "<param>.square_avg", "<param>.grad_avg" (centered) and
/// "<param>.momentum_buffer" (momentum > 0).
template <class T = float>
class RMSprop : public Optimizer<T> {
 public:
  /// Optimizes the named parameters (e.g. net.named_parameters()).
  RMSprop(std::vector<nn::NamedParameter<T>> params, const RMSpropOptions& options = {})
      : Optimizer<T>("RMSprop", std::move(params), validated(options).lr), options_(options) {
    square_avg_ = this->add_buffer("square_avg");
    if (options_.centered) grad_avg_ = this->add_buffer("grad_avg");
    if (options_.momentum > 0) momentum_buffer_ = this->add_buffer("momentum_buffer");
  }

  /// Optimizes unnamed parameters (e.g. net.parameters()), named "0", "1", ... in order.
  RMSprop(std::vector<Parameter<T>> params, const RMSpropOptions& options = {})
      : RMSprop(detail::name_by_index(std::move(params)), options) {}

  /// The options given at construction (lr as given; the current rate is lr()).
  const RMSpropOptions& options() const noexcept { return options_; }

 protected:
  /// One RMSprop step on n values (the file comment's formulas); state: square_avg[, grad_avg][, momentum_buffer].
  void update_parameter(T* p, const T* g, std::int64_t n, Tensor<T>* state, std::int64_t) override {
    const T lr = static_cast<T>(this->lr());
    const T wd = static_cast<T>(options_.weight_decay);
    const T alpha = static_cast<T>(options_.alpha), c = static_cast<T>(1 - options_.alpha);
    const T eps = static_cast<T>(options_.eps);
    const T mu = static_cast<T>(options_.momentum);
    T* v = state[square_avg_].data();
    T* a = options_.centered ? state[grad_avg_].data() : nullptr;
    T* b = options_.momentum > 0 ? state[momentum_buffer_].data() : nullptr;
    detail::fused_loop<T>(n, 8, [&]<class V>(std::int64_t i) {
      const V pv = detail::loadu<V>(p + i);
      const V gv = detail::fmadd(V(wd), pv, detail::loadu<V>(g + i));        // g + wd * p
      const V vv = detail::fmadd(V(alpha), detail::loadu<V>(v + i), (V(c) * gv) * gv);
      detail::storeu(v + i, vv);
      V var = vv;
      if (a) {
        const V av = detail::fmadd(V(alpha), detail::loadu<V>(a + i), V(c) * gv);
        detail::storeu(a + i, av);
        var = kernels::simd::max(detail::fmadd(-av, av, vv), V(T(0)));  // v - a^2, clamped at 0
      }
      V d = gv / (kernels::simd::sqrt(var) + V(eps));
      if (b) {
        d = detail::fmadd(V(mu), detail::loadu<V>(b + i), d);
        detail::storeu(b + i, d);
      }
      detail::storeu(p + i, detail::fmadd(V(-lr), d, pv));
    });
  }

 private:
  static const RMSpropOptions& validated(const RMSpropOptions& o) {
    detail::require(o.lr > 0 && std::isfinite(o.lr), "RMSprop", "lr", "finite and > 0", o.lr);
    detail::require(o.alpha >= 0 && o.alpha < 1, "RMSprop", "alpha", "in [0, 1)", o.alpha);
    detail::require(o.eps > 0 && std::isfinite(o.eps), "RMSprop", "eps", "finite and > 0", o.eps);
    detail::require(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "RMSprop", "weight_decay",
                    "finite and >= 0", o.weight_decay);
    detail::require(o.momentum >= 0 && std::isfinite(o.momentum), "RMSprop", "momentum", "finite and >= 0",
                    o.momentum);
    return o;
  }

  RMSpropOptions options_;
  std::size_t square_avg_ = 0, grad_avg_ = 0, momentum_buffer_ = 0;
};

}  // namespace genmod::optim
