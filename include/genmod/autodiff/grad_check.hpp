#pragma once
/// \file grad_check.hpp
/// Finite-difference proof of gradients (Stan Math's expect_ad, in one generic helper).
///
/// check_gradients(f, inputs) differentiates L(x) = sum(w * f(x)) for fixed random weights w
/// (so every output element is covered) on the tape, and compares each input element's gradient
/// with the central difference (L(x + h) - L(x - h)) / 2h in double precision.
/// check_second_order(f, inputs) does the same for H(x) = sum(v * dL/dx), whose gradient runs
/// the backward formulas through the tape a second time (double backward).
/// The error of an element is |analytic - numeric| / max(1, |analytic|, |numeric|).

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/tape.hpp"

namespace genmod {

/// How grad_check compares the tape's gradients with central differences (f(x+h) - f(x-h)) / 2h.
struct GradCheckOptions {
  double step = 1e-6;         ///< finite-difference step h
  double tolerance = 1e-6;    ///< largest accepted error
  std::uint64_t seed = 1234;  ///< for the projection weights
};

/// Outcome of grad_check: pass/fail and where the analytic and numeric gradients differ most.
struct GradCheckResult {
  /// True when every checked element's error is within the tolerance.
  bool ok = true;
  /// Largest error seen, relative to max(1, |analytic|, |numeric|).
  double max_error = 0;
  /// Position in the input list of the worst element (-1 when nothing was checked).
  int worst_input = -1;
  /// Flat index of the worst element within that input.
  std::int64_t worst_index = -1;
  ///@{
  /// The tape's (analytic) and the finite-difference (numeric) derivative at the worst element.
  double analytic = 0, numeric = 0;
  ///@}
  /// Number of input elements perturbed.
  std::int64_t elements_checked = 0;
  /// One line naming the worst element, for test output.
  std::string report;
  /// Same as ok, so `REQUIRE(grad_check(...))` reads naturally.
  explicit operator bool() const noexcept { return ok; }
};

/// The function under test: Vars in, one Var out (any shape).
using GradCheckFn = std::function<Var<double>(std::span<const Var<double>>)>;

namespace detail {

inline Var<double> projected(const GradCheckFn& f, std::span<const Var<double>> xs, std::vector<Tensor<double>>& w,
                             std::uint64_t seed) {
  Var<double> y = f(xs);
  if (w.empty()) {
    Generator g(seed);
    w.push_back(randn<double>(y.shape(), g));
  }
  if (!(w[0].shape() == y.shape()))
    throw ShapeError("check_gradients: the function's output shape changed from " + w[0].shape().to_string() + " to " +
                     y.shape().to_string());
  return sum(mul(y, Var<double>(w[0])));
}

inline GradCheckResult compare(const std::vector<Tensor<double>>& analytic,
                               const std::function<double(std::size_t, std::int64_t, double)>& eval_at,
                               const std::vector<Tensor<double>>& inputs, const GradCheckOptions& o, const char* what) {
  GradCheckResult r;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    for (std::int64_t k = 0; k < inputs[i].numel(); ++k) {
      const double x0 = inputs[i][k];
      const double up = eval_at(i, k, x0 + o.step);
      const double down = eval_at(i, k, x0 - o.step);
      const double num = (up - down) / (2 * o.step);
      const double ana = analytic[i][k];
      const double err = std::abs(ana - num) / std::max({1.0, std::abs(ana), std::abs(num)});
      ++r.elements_checked;
      if (!(err <= r.max_error) || r.worst_input < 0) {
        if (!(err <= r.max_error)) r.max_error = std::isnan(err) ? INFINITY : err;
        r.worst_input = static_cast<int>(i);
        r.worst_index = k;
        r.analytic = ana;
        r.numeric = num;
      }
    }
  }
  r.ok = r.max_error <= o.tolerance;
  std::ostringstream s;
  s << what << ": worst error " << r.max_error << " at input " << r.worst_input << " element " << r.worst_index
    << " (analytic " << r.analytic << ", numeric " << r.numeric << ") over " << r.elements_checked
    << " elements; tolerance " << o.tolerance;
  r.report = s.str();
  return r;
}

}  // namespace detail

/// First derivatives of f at `inputs` against central finite differences.
inline GradCheckResult check_gradients(const GradCheckFn& f, std::vector<Tensor<double>> inputs,
                                       GradCheckOptions options = {}) {
  std::vector<Tensor<double>> w;
  std::vector<Tensor<double>> analytic;
  {
    Tape<double> tape;
    std::vector<Var<double>> xs;
    for (auto& t : inputs) xs.push_back(tape.leaf(t));
    Var<double> L = detail::projected(f, xs, w, options.seed);
    if (L.requires_grad()) {
      // allow_unused: an input f ignores has a zero gradient, which the finite differences check.
      for (auto& g : tape.grad(L, std::span<const Var<double>>(xs), {.allow_unused = true}))
        analytic.push_back(g.value().clone());
    } else {
      for (auto& t : inputs) analytic.push_back(zeros<double>(t.shape()));
    }
  }
  std::vector<Tensor<double>> work;
  for (auto& t : inputs) work.push_back(t.clone());
  auto eval_at = [&](std::size_t i, std::int64_t k, double v) {
    const double saved = work[i][k];
    work[i][k] = v;
    std::vector<Var<double>> xs(work.begin(), work.end());
    const double L = detail::projected(f, xs, w, options.seed).item();
    work[i][k] = saved;
    return L;
  };
  return detail::compare(analytic, eval_at, inputs, options, "check_gradients");
}

/// Second derivatives: the gradient of H(x) = sum_i sum(v_i * dL/dx_i), computed by running the
/// backward pass with create_graph and differentiating it, against finite differences of H.
inline GradCheckResult check_second_order(const GradCheckFn& f, std::vector<Tensor<double>> inputs,
                                          GradCheckOptions options = {}) {
  std::vector<Tensor<double>> w;
  std::vector<Tensor<double>> v;
  Generator gv(options.seed + 1);
  for (auto& t : inputs) v.push_back(randn<double>(t.shape(), gv));
  // H(x) and, when wanted, its gradient.
  auto eval_h = [&](const std::vector<Tensor<double>>& at, std::vector<Tensor<double>>* grad_out) {
    Tape<double> tape;
    std::vector<Var<double>> xs;
    for (auto& t : at) xs.push_back(tape.leaf(t));
    Var<double> L = detail::projected(f, xs, w, options.seed);
    if (!L.requires_grad()) {
      if (grad_out)
        for (auto& t : at) grad_out->push_back(zeros<double>(t.shape()));
      return 0.0;
    }
    // allow_unused: an input may not reach L, or (below) reach H only through constant gradients
    // (f linear in it); its zero derivative is then what the finite differences check.
    auto gs =
        tape.grad(L, std::span<const Var<double>>(xs), {.create_graph = grad_out != nullptr, .allow_unused = true});
    Var<double> H(scalar<double>(0.0));
    for (std::size_t i = 0; i < gs.size(); ++i) H = add(H, sum(mul(gs[i], Var<double>(v[i]))));
    if (grad_out) {
      if (H.requires_grad()) {
        for (auto& g : tape.grad(H, std::span<const Var<double>>(xs), {.allow_unused = true}))
          grad_out->push_back(g.value().clone());
      } else {
        for (auto& t : at) grad_out->push_back(zeros<double>(t.shape()));
      }
    }
    return H.item();
  };
  std::vector<Tensor<double>> analytic;
  eval_h(inputs, &analytic);
  std::vector<Tensor<double>> work;
  for (auto& t : inputs) work.push_back(t.clone());
  auto eval_at = [&](std::size_t i, std::int64_t k, double x) {
    const double saved = work[i][k];
    work[i][k] = x;
    const double h = eval_h(work, nullptr);
    work[i][k] = saved;
    return h;
  };
  return detail::compare(analytic, eval_at, inputs, options, "check_second_order");
}

}  // namespace genmod
