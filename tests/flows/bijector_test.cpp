// The Bijector contract and FlowSequence: log-determinants summed along the chain agree with a
// brute-force Jacobian of the composed map, and inverse undoes forward.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>

#include "genmod/flows/bijector.hpp"
#include "genmod/nn/layer.hpp"

namespace flows_bijector_test {

using namespace genmod;

namespace {

// y = x * e^s + t per dimension (s, t learned [D]); log|det| = sum s for every sample.
class ElementwiseAffine : public flows::BijectorModule<double> {
 public:
  ElementwiseAffine(Tensor<double> s, Tensor<double> t) : s_(std::move(s)), t_(std::move(t)) {}
  flows::FlowResult<double> forward(const Var<double>& x) override {
    Var<double> y = add(mul(x, exp(s_.var())), t_.var());
    Var<double> ld = add(mul(sum(x, 1), Var<double>(zeros<double>({x.dim(0)}))), sum(s_.var()));  // [N]
    return {y, ld};
  }
  Var<double> inverse(const Var<double>& y) override { return mul(sub(y, t_.var()), exp(neg(s_.var()))); }
  void visit(nn::ModuleVisitor<double>& v) override {
    v.param("s", s_);
    v.param("t", t_);
  }

 private:
  Parameter<double> s_, t_;
};

// A coupling step on [N, 2h]: y1 = x1, y2 = x2 * e^tanh(a x1) + b x1 (a, b scalars);
// the Jacobian is triangular, log|det| = sum_j tanh(a x1_j).
class TinyCoupling : public flows::BijectorModule<double> {
 public:
  TinyCoupling(double a, double b) : a_(a), b_(b) {}
  flows::FlowResult<double> forward(const Var<double>& x) override {
    const std::int64_t h = x.dim(1) / 2;
    Var<double> x1 = slice(x, 1, 0, h), x2 = slice(x, 1, h, h);
    Var<double> s = tanh(scale(x1, a_));
    Var<double> y2 = add(mul(x2, exp(s)), scale(x1, b_));
    return {concat({x1, y2}, 1), sum(s, 1)};
  }
  Var<double> inverse(const Var<double>& y) override {
    const std::int64_t h = y.dim(1) / 2;
    Var<double> y1 = slice(y, 1, 0, h), y2 = slice(y, 1, h, h);
    Var<double> x2 = mul(sub(y2, scale(y1, b_)), exp(neg(tanh(scale(y1, a_)))));
    return concat({y1, x2}, 1);
  }
  void visit(nn::ModuleVisitor<double>&) override {}

 private:
  double a_, b_;
};

// Swaps the two halves: a permutation, log|det| = 0.
class SwapHalves : public flows::BijectorModule<double> {
 public:
  flows::FlowResult<double> forward(const Var<double>& x) override {
    const std::int64_t h = x.dim(1) / 2;
    return {concat({slice(x, 1, h, h), slice(x, 1, 0, h)}, 1), Var<double>(zeros<double>({x.dim(0)}))};
  }
  Var<double> inverse(const Var<double>& y) override { return forward(y).y; }
  void visit(nn::ModuleVisitor<double>&) override {}
};

struct NotABijector : nn::Module<double> {
  Var<double> forward(const Var<double>& x) { return x; }
  void visit(nn::ModuleVisitor<double>&) override {}
};

}  // namespace

TEST_CASE("Bijector concept", "[flows][concepts]") {
  STATIC_REQUIRE(flows::Bijector<ElementwiseAffine>);
  STATIC_REQUIRE(flows::Bijector<flows::FlowSequence<double>>);
  STATIC_REQUIRE_FALSE(flows::Bijector<NotABijector>);
  STATIC_REQUIRE_FALSE(nn::LayerType<flows::FlowSequence<double>>);
}

TEST_CASE("FlowSequence: log-determinant against a brute-force Jacobian, and inverse", "[flows][jacobian]") {
  const std::int64_t n = 3, d = 4;
  flows::FlowSequence<double> flow;
  flow.push_back(ElementwiseAffine(from_data<double>({d}, {0.3, -0.2, 0.1, 0.5}),
                                   from_data<double>({d}, {1.0, 0.0, -1.0, 0.5})));
  flow.push_back(TinyCoupling(0.8, -0.6));
  flow.push_back(SwapHalves());
  flow.push_back(TinyCoupling(-1.1, 0.4));
  REQUIRE(flow.size() == 4);
  auto names = flow.named_parameters();
  REQUIRE(names.size() == 2);
  CHECK(names[0].name == "steps.0.s");

  Generator g(4);
  Tensor<double> x = randn<double>({n, d}, g);
  NoGradGuard no_grad;
  auto [y, logdet] = flow.forward(Var<double>(x));
  REQUIRE(logdet.shape() == (Shape{n}));

  // Brute force: central differences of the whole map, one sample at a time.
  const double h = 1e-6;
  for (std::int64_t i = 0; i < n; ++i) {
    Eigen::MatrixXd jac(d, d);
    for (std::int64_t j = 0; j < d; ++j) {
      Tensor<double> xp = x.rows(i, 1).clone(), xm = x.rows(i, 1).clone();
      xp(0, j) += h;
      xm(0, j) -= h;
      const Tensor<double> yp = flow.forward(Var<double>(xp)).y.value(), ym = flow.forward(Var<double>(xm)).y.value();
      for (std::int64_t r = 0; r < d; ++r) jac(r, j) = (yp(0, r) - ym(0, r)) / (2 * h);
    }
    INFO("sample " << i);
    CHECK(logdet.value()[i] == Approx(std::log(std::abs(jac.determinant()))).margin(1e-7));
  }

  // inverse(forward(x)) == x and forward(inverse(y)) == y.
  const Tensor<double> back = flow.inverse(y).value();
  for (std::int64_t k = 0; k < x.numel(); ++k) CHECK(back[k] == Approx(x[k]).margin(1e-12));
  const Tensor<double> again = flow.forward(Var<double>(back)).y.value();
  for (std::int64_t k = 0; k < x.numel(); ++k) CHECK(again[k] == Approx(y.value()[k]).margin(1e-12));

  // The empty chain is the identity with log|det| = 0.
  flows::FlowSequence<double> empty;
  auto id = empty.forward(Var<double>(x));
  CHECK(id.logdet.value()[0] == 0.0);
  CHECK(id.y.value()[5] == x[5]);
}

}  // namespace flows_bijector_test
