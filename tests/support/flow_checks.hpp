#pragma once
// The checks every flow step takes (tests/flows/, tests/models/flow_model_test.cpp): the inverse
// undoes the forward pass, and the log-determinant is log |det| of the tape's whole Jacobian.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "genmod/flows/bijector.hpp"
#include "support/gradcheck.hpp"
#include "support/jacobian.hpp"

namespace genmod::test {

/// Every parameter of a module redrawn N(0, scale^2), parameter k from seed + k (so that a
/// zero-initialised last layer, which makes a coupling the identity, is not zero).
template <class M>
void randomize_parameters(M& m, std::uint64_t seed, double scale) {
  for (auto& p : m.named_parameters()) p.parameter.value().copy_from(rnd(p.parameter.shape(), ++seed, scale));
}

/// inverse(forward(x)) = x to 1e-10, and each sample's log-determinant against the tape's
/// Jacobian to 1e-9; the largest |log-det| over the samples must reach min_abs_logdet (a step
/// that may start as the identity is checked away from it).
template <class B>
void check_bijector(B& step, const Tensor<double>& x, double min_abs_logdet = 0) {
  using V = Var<double>;
  flows::FlowResult<double> r;
  {
    NoGradGuard no_grad;
    r = step.forward(V(x));
  }
  REQUIRE(r.y.numel() == x.numel());
  REQUIRE(r.logdet.shape() == (Shape{x.dim(0)}));
  const std::vector<double> brute = tape_log_abs_det([&](const V& xi) { return step.forward(xi).y; }, x);
  double largest = 0;
  for (std::int64_t i = 0; i < x.dim(0); ++i) {
    INFO("sample " << i);
    CHECK(r.logdet.value()[i] == Approx(brute[static_cast<std::size_t>(i)]).margin(1e-9));
    largest = std::max(largest, std::abs(r.logdet.value()[i]));
  }
  CHECK(largest >= min_abs_logdet);
  NoGradGuard no_grad;
  const Tensor<double> back = step.inverse(r.y).value();
  REQUIRE(back.shape() == x.shape());
  double worst = 0;
  for (std::int64_t k = 0; k < x.numel(); ++k) worst = std::max(worst, std::abs(back[k] - x[k]));
  CHECK(worst < 1e-10);
}

/// A posterior flow step (forward(z, h) only): each sample's log-determinant against the tape's
/// Jacobian of z -> f(z; h_i) to 1e-9, h_i held fixed (h undefined or [N, H]); the largest |log-det|
/// must reach min_abs_logdet.
template <class S>
void check_posterior_step(S& step, const Tensor<double>& z, const Tensor<double>& h, double min_abs_logdet = 0) {
  using V = Var<double>;
  flows::FlowResult<double> r;
  {
    NoGradGuard no_grad;
    r = step.forward(V(z), h.defined() ? V(h) : V());
  }
  REQUIRE(r.y.shape() == z.shape());
  REQUIRE(r.logdet.shape() == (Shape{z.dim(0)}));
  double largest = 0;
  for (std::int64_t i = 0; i < z.dim(0); ++i) {
    INFO("sample " << i);
    const V hi = h.defined() ? V(h.rows(i, 1).clone()) : V();
    const std::vector<double> brute =
        tape_log_abs_det([&](const V& zi) { return step.forward(zi, hi).y; }, z.rows(i, 1).clone());
    CHECK(r.logdet.value()[i] == Approx(brute[0]).margin(1e-9));
    largest = std::max(largest, std::abs(r.logdet.value()[i]));
  }
  CHECK(largest >= min_abs_logdet);
}

}  // namespace genmod::test
