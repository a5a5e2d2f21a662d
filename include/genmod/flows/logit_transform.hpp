#pragma once
/// \file logit_transform.hpp
/// LogitTransform: data in [0, 1] to the whole real line, as a bijector whose log-determinant
/// enters the likelihood (RealNVP's preprocessing).
///
///   p = alpha + (1 - 2 alpha) x,   y = logit(p) = log p - log(1 - p)
///   log |dy/dx| = log(1 - 2 alpha) - log p - log(1 - p)  per dimension, summed per sample
///   x = (sigmoid(y) - alpha) / (1 - 2 alpha)
/// alpha > 0 keeps the pixels at 0 and 1 at a finite distance (RealNVP used 0.05).

#include <cmath>
#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/flows/bijector.hpp"

namespace genmod::flows {

/// x in [0, 1] -> logit(alpha + (1 - 2 alpha) x) (see the file comment). No parameters.
template <class T = float>
class LogitTransform : public BijectorModule<T> {
 public:
  /// With alpha in [0, 0.5); alpha = 0 needs data strictly inside (0, 1).
  explicit LogitTransform(double alpha = 0.05) : alpha_(static_cast<T>(alpha)) {
    check_in_range("flows::LogitTransform", "alpha", alpha, 0.0, 0.5, Bounds::closed_open);
  }

  /// {logit(p), sum of log(1 - 2 alpha) - log p - log(1 - p) per sample}; ValueError if x leaves [0, 1].
  FlowResult<T> forward(const Var<T>& x) override {
    check_min_rank("flows::LogitTransform", "x", x.shape(), 2, "[N, ...]");
    const Tensor<T>& v = x.value();
    for (std::int64_t i = 0; i < v.numel(); ++i)
      if (!(v[i] >= T(0) && v[i] <= T(1)))
        check_arg(false, "flows::LogitTransform", "x", "values in [0, 1] (dequantized data)",
                  genmod::detail::check_number(static_cast<double>(v[i])) + " at index " + std::to_string(i));
    const Var<T> p = add_scalar(scale(x, T(1) - 2 * alpha_), alpha_);
    const Var<T> log_p = log(p), log_q = log(add_scalar(neg(p), T(1)));
    const T d = static_cast<T>(x.numel() / x.dim(0));
    return {sub(log_p, log_q), add_scalar(neg(sum_per_sample(add(log_p, log_q))), d * std::log(T(1) - 2 * alpha_))};
  }

  /// (sigmoid(y) - alpha) / (1 - 2 alpha).
  Var<T> inverse(const Var<T>& y) override {
    return scale(add_scalar(sigmoid(y), -alpha_), T(1) / (T(1) - 2 * alpha_));
  }

  /// alpha.
  T alpha() const noexcept { return alpha_; }

  /// No parameters.
  void visit(nn::ModuleVisitor<T>&) override {}

 private:
  T alpha_;
};

}  // namespace genmod::flows

// Explicit instantiation for the element type of genmod's models: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::flows::LogitTransform, float)
#endif
