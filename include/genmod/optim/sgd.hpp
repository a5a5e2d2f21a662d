#pragma once
/// \file sgd.hpp
/// SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight
/// decay, exactly as torch.optim.SGD (maximize = false).
///
/// For each parameter p with gradient g, at its step t:
///   g <- g + weight_decay * p                              (L2 penalty, added to the gradient)
///   if momentum != 0:
///     b <- g                                   if t == 1   (no dampening on the first step)
///     b <- momentum * b + (1 - dampening) * g  otherwise
///     g <- g + momentum * b                    if nesterov
///     g <- b                                   otherwise
///   p <- p - lr * g

#include <string>
#include <utility>
#include <vector>

#include "genmod/optim/optimizer.hpp"

namespace genmod::optim {

/// Options of SGD (PyTorch's defaults).
struct SGDOptions {
  double lr = 1e-3;            ///< learning rate, > 0
  double momentum = 0;         ///< momentum factor, >= 0 (0 disables the momentum buffer)
  double dampening = 0;        ///< in [0, 1]; scales the gradient entering the buffer by 1 - dampening
  double weight_decay = 0;     ///< L2 penalty, >= 0
  bool nesterov = false;       ///< Nesterov momentum; needs momentum > 0 and dampening == 0
};

/// Stochastic gradient descent (torch.optim.SGD). State: "<param>.momentum_buffer" when
/// momentum > 0.
template <class T = float>
class SGD : public Optimizer<T> {
 public:
  /// Optimizes the named parameters (e.g. net.named_parameters()). The options come by const
  /// reference, as in every optimizer: taken by value, GCC 12.2's SLP vectorizer at -O2
  /// -march=native garbled a designated-initializer argument (tests/optim/sgd_test.cpp).
  SGD(std::vector<nn::NamedParameter<T>> params, const SGDOptions& options = {})
      : Optimizer<T>("SGD", std::move(params), validated(options).lr), options_(options) {
    if (options_.momentum != 0) this->add_buffer("momentum_buffer");
  }

  /// Optimizes unnamed parameters (e.g. net.parameters()), named "0", "1", ... in order.
  SGD(std::vector<Parameter<T>> params, const SGDOptions& options = {})
      : SGD(detail::name_by_index(std::move(params)), options) {}

  /// The options given at construction (lr as given; the current rate is lr()).
  const SGDOptions& options() const noexcept { return options_; }

 protected:
  /// One SGD step on n values (the file comment's formulas); state[0] is the momentum buffer b.
  void update_parameter(T* p, const T* g, std::int64_t n, Tensor<T>* state, std::int64_t t) override {
    const T lr = static_cast<T>(this->lr());
    const T wd = static_cast<T>(options_.weight_decay);
    const T mu = static_cast<T>(options_.momentum);
    const T keep = static_cast<T>(1 - options_.dampening);
    const bool has_momentum = options_.momentum != 0;
    const bool first = t == 1;
    const bool nesterov = options_.nesterov;
    T* b = has_momentum ? state[0].data() : nullptr;
    detail::fused_loop<T>(n, 3, [&]<class V>(std::int64_t i) {
      const V pv = detail::loadu<V>(p + i);
      V d = detail::fmadd(V(wd), pv, detail::loadu<V>(g + i));  // g + wd * p
      if (has_momentum) {
        const V bv = first ? d : detail::fmadd(V(mu), detail::loadu<V>(b + i), V(keep) * d);
        detail::storeu(b + i, bv);
        d = nesterov ? detail::fmadd(V(mu), bv, d) : bv;
      }
      detail::storeu(p + i, detail::fmadd(V(-lr), d, pv));  // p - lr * d
    });
  }

 private:
  static const SGDOptions& validated(const SGDOptions& o) {
    detail::require(o.lr > 0 && std::isfinite(o.lr), "SGD", "lr", "finite and > 0", o.lr);
    detail::require(o.momentum >= 0 && std::isfinite(o.momentum), "SGD", "momentum", "finite and >= 0", o.momentum);
    detail::require(o.dampening >= 0 && o.dampening <= 1, "SGD", "dampening", "in [0, 1]", o.dampening);
    detail::require(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "SGD", "weight_decay", "finite and >= 0",
                    o.weight_decay);
    if (o.nesterov) {
      detail::require(o.momentum > 0, "SGD", "momentum", "> 0 when nesterov is true", o.momentum);
      detail::require(o.dampening == 0, "SGD", "dampening", "= 0 when nesterov is true", o.dampening);
    }
    return o;
  }

  SGDOptions options_;
};

}  // namespace genmod::optim
