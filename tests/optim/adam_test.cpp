// Adam and AdamW against the update rules published in the PyTorch documentation (and in Kingma &
// Ba, Loshchilov & Hutter), computed element by element in double precision.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "genmod/optim/adam.hpp"

namespace optim_adam_test {

using namespace genmod;

namespace {

// 11 elements: full SIMD registers and a scalar tail for every register width up to AVX-512.
const std::vector<double> kP0 = {0.5, -1.25, 2.0, 0.0, 3.0, -0.75, 1e-3, -4.0, 0.25, 1.5, -2.5};
const std::vector<double> kG1 = {0.1, -0.4, 1.5, -2.0, 0.0, 0.3, -1e-4, 0.8, -0.05, 2.5, -1.0};
const std::vector<double> kG2 = {-0.2, 0.1, 1.0, 0.5, 0.25, -0.3, 2e-4, 0.6, 0.05, -1.5, 0.75};

struct AdamRef {
  double lr, beta1, beta2, eps, wd;
  bool decoupled, amsgrad = false;
};

// The published rule, literally: one step of every element at step t.
void adam_reference(const AdamRef& h, std::vector<double>& p, const std::vector<double>& grad, std::vector<double>& m,
                    std::vector<double>& v, std::vector<double>& vmax, int t) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    double g = grad[i];
    if (h.decoupled) p[i] = p[i] - h.lr * h.wd * p[i];
    else g = g + h.wd * p[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
    double vv = v[i];
    if (h.amsgrad) vv = vmax[i] = std::max(vmax[i], v[i]);
    const double m_hat = m[i] / (1 - std::pow(h.beta1, t));
    const double v_hat = vv / (1 - std::pow(h.beta2, t));
    p[i] = p[i] - h.lr * m_hat / (std::sqrt(v_hat) + h.eps);
  }
}

Parameter<double> make_param(const std::vector<double>& values) {
  return Parameter<double>(from_data<double>(Shape{static_cast<std::int64_t>(values.size())}, std::span<const double>(values)));
}

void set_grad(Parameter<double>& p, const std::vector<double>& g) {
  for (std::size_t i = 0; i < g.size(); ++i) p.grad()[static_cast<std::int64_t>(i)] = g[i];
}

template <class Opt>
void check_against_reference(Opt& opt, Parameter<double>& p, const AdamRef& h) {
  std::vector<double> ref = kP0, m(kP0.size(), 0.0), v(kP0.size(), 0.0), vmax(kP0.size(), 0.0);
  int t = 0;
  for (const auto* g : {&kG1, &kG2}) {
    ++t;
    set_grad(p, *g);
    opt.step();
    adam_reference(h, ref, *g, m, v, vmax, t);
    for (std::size_t i = 0; i < ref.size(); ++i) {
      INFO("step " << t << ", element " << i);
      CHECK(p.value()[static_cast<std::int64_t>(i)] == Approx(ref[i]).epsilon(1e-12).margin(1e-15));
    }
  }
  // The moments are the documented ones too (state by name).
  auto state = opt.state();
  CHECK(state[2].first == "0.exp_avg");
  CHECK(state[3].first == "0.exp_avg_sq");
  for (std::size_t i = 0; i < m.size(); ++i) {
    CHECK(state[2].second[static_cast<std::int64_t>(i)] == Approx(m[i]).epsilon(1e-13));
    CHECK(state[3].second[static_cast<std::int64_t>(i)] == Approx(v[i]).epsilon(1e-13));
  }
  CHECK(opt.step_count() == 2);
}

}  // namespace

TEST_CASE("One Adam step (and a second) follows the published rule, L2 decay added to the gradient", "[optim][adam]") {
  auto p = make_param(kP0);
  optim::Adam opt{std::vector<Parameter<double>>{p}, {.lr = 0.1, .betas = {0.8, 0.95}, .eps = 1e-6, .weight_decay = 0.05}};
  static_assert(std::is_same_v<decltype(opt), optim::Adam<double>>);
  check_against_reference(opt, p, {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .wd = 0.05, .decoupled = false});
}

TEST_CASE("One AdamW step (and a second) follows the published rule, decoupled decay", "[optim][adam]") {
  auto p = make_param(kP0);
  optim::AdamW opt{std::vector<Parameter<double>>{p}, {.lr = 0.1, .betas = {0.8, 0.95}, .eps = 1e-6, .weight_decay = 0.05}};
  check_against_reference(opt, p, {.lr = 0.1, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .wd = 0.05, .decoupled = true});
}

TEST_CASE("AMSGrad keeps the running maximum of the second moment", "[optim][adam]") {
  auto p = make_param(kP0);
  optim::Adam opt{std::vector<Parameter<double>>{p}, {.lr = 0.05, .betas = {0.5, 0.5}, .amsgrad = true}};
  check_against_reference(opt, p,
                          {.lr = 0.05, .beta1 = 0.5, .beta2 = 0.5, .eps = 1e-8, .wd = 0, .decoupled = false, .amsgrad = true});
  CHECK(opt.state()[4].first == "0.max_exp_avg_sq");
}

TEST_CASE("Adam's first step moves each element by about lr against its gradient's sign", "[optim][adam]") {
  // At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps): literally checkable.
  Parameter<float> w(from_data<float>(Shape{3}, {1.f, 1.f, 1.f}));
  w.grad()[0] = 2.f;
  w.grad()[1] = -0.5f;
  w.grad()[2] = 0.f;
  optim::Adam opt{std::vector{w}, {.lr = 0.01}};
  static_assert(std::is_same_v<decltype(opt), optim::Adam<float>>);
  opt.step();
  CHECK(w.value()[0] == Approx(0.99f));
  CHECK(w.value()[1] == Approx(1.01f));
  CHECK(w.value()[2] == 1.f);
}

TEST_CASE("AdamW with a zero gradient only decays the weights", "[optim][adam]") {
  Parameter<float> w(from_data<float>(Shape{2}, {2.f, -4.f}));
  optim::AdamW opt{std::vector{w}, {.lr = 0.1, .weight_decay = 0.5}};
  opt.step();  // p <- p (1 - 0.1 * 0.5); the Adam term is 0 / (0 + eps) = 0
  CHECK(w.value()[0] == Approx(1.9f));
  CHECK(w.value()[1] == Approx(-3.8f));
}

TEST_CASE("Large parameters (threaded, unaligned chunks) update exactly as on one thread", "[optim][adam]") {
  auto run = [](int threads) {
    const int saved = get_num_threads();
    set_num_threads(threads);
    Generator g(11);
    Parameter<float> w(randn<float>(Shape{70001}, g));
    optim::AdamW opt{std::vector{w}, {.lr = 0.01, .amsgrad = true}};
    for (int t = 0; t < 3; ++t) {
      fill_normal(w.grad(), g);
      opt.step();
    }
    set_num_threads(saved);
    return w.value();
  };
  const auto one = run(1), two = run(2);
  CHECK(allclose(one, two, 0.0, 0.0));
}

}  // namespace optim_adam_test
