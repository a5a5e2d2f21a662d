#include "support/gradcheck.hpp"
#include "genmod/dist/likelihood.hpp"
#include "genmod/dist/normal.hpp"
#include "genmod/losses/kl.hpp"
#include "genmod/losses/reconstruction.hpp"

namespace losses_losses_test {

using namespace genmod;
using V = Var<double>;
using Xs = std::span<const V>;
using test::rnd;
using test::uni;

TEST_CASE("bce_with_logits: gradients, stable values at +-80, and the textbook formula", "[gradcheck][losses]") {
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::bce_with_logits(v[0], v[1]); }, rnd({3, 5}, 1, 3.0),
                         uni({3, 5}, 2, 0.0, 1.0));
  Var<float> l(from_data<float>({4}, {-80.f, 80.f, 0.5f, -2.f}));
  Var<float> t(from_data<float>({4}, {1.f, 0.f, 0.3f, 0.f}));
  auto y = losses::bce_with_logits(l, t).value();
  CHECK(y[0] == Approx(80.0));
  CHECK(y[1] == Approx(80.0));
  const double s = 1.0 / (1.0 + std::exp(-0.5));
  CHECK(y[2] == Approx(-(0.3 * std::log(s) + 0.7 * std::log(1 - s))));
  CHECK(y[3] == Approx(std::log1p(std::exp(-2.0))));
  CHECK_THROWS_AS(losses::bce_with_logits(l, Var<float>(zeros<float>({3}))), ShapeError);
}

TEST_CASE("Gaussian KL terms: gradients, zero at the prior, and the closed form", "[gradcheck][losses][kl]") {
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::gaussian_kl_standard(v[0], v[1]); }, rnd({2, 3}, 3), rnd({2, 3}, 4));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::gaussian_kl(v[0], v[1], v[2], v[3]); }, rnd({4}, 5), rnd({4}, 6),
                         rnd({4}, 7), rnd({4}, 8));
  // KL(N(0,1) || N(0,1)) = 0; KL(N(1, e^0.5) || N(0,1)) = 1/2 (e^0.5 + 1 - 1 - 0.5).
  V mu(from_data<double>({2}, {0.0, 1.0})), lv(from_data<double>({2}, {0.0, 0.5}));
  auto kl = losses::gaussian_kl_standard(mu, lv).value();
  CHECK(kl[0] == Approx(0.0).margin(1e-15));
  CHECK(kl[1] == Approx(0.5 * (std::exp(0.5) + 1.0 - 1.0 - 0.5)));
  // The general form reduces to the standard one against N(0, 1).
  auto kl2 = losses::gaussian_kl(mu, lv, V(zeros<double>({2})), V(zeros<double>({2}))).value();
  CHECK(kl2[1] == Approx(kl[1]));
}

TEST_CASE("Normal: reparameterized samples carry gradients to mean and log-variance only", "[dist][normal]") {
  Tape<double> tape;
  auto mu = tape.leaf(from_data<double>({1, 2}, {0.5, -1.0}));
  auto lv = tape.leaf(from_data<double>({1, 2}, {0.2, -0.4}));
  dist::Normal<double> q(mu, lv);
  Generator g(3);
  auto z = q.rsample(g);
  auto grads = tape.grad(sum(z), {mu, lv});
  CHECK(grads[0].value()[0] == 1.0);  // dz/dmu = 1
  // dz/dlogvar = 0.5 * sigma * eps = 0.5 * (z - mu)
  CHECK(grads[1].value()[1] == Approx(0.5 * (z.value()[1] - (-1.0))));
  // log_prob matches the density formula and its gradients are right.
  auto lp = q.log_prob(V(from_data<double>({1, 2}, {0.0, 0.0}))).value();
  CHECK(lp[0] == Approx(-0.5 * (std::log(2 * M_PI) + 0.2 + 0.25 * std::exp(-0.2))));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return dist::Normal<double>(v[0], v[1]).log_prob(v[2]); }, rnd({3}, 9), rnd({3}, 10),
                         rnd({3}, 11));
  // Moments of many samples.
  dist::Normal<double> wide(V(full<double>({20000}, 2.0)), V(full<double>({20000}, std::log(9.0))));
  auto s = wide.rsample(g).value();
  double m = 0, v = 0;
  for (double x : s) m += x;
  m /= 20000;
  for (double x : s) v += (x - m) * (x - m);
  v /= 20000;
  CHECK(m == Approx(2.0).margin(0.06));
  CHECK(v == Approx(9.0).epsilon(0.05));
}

TEST_CASE("Likelihoods sum log-probabilities per sample", "[dist][likelihood]") {
  V logits(from_data<double>({2, 2}, {0.0, 1.0, -1.0, 2.0}));
  V x(from_data<double>({2, 2}, {1.0, 0.0, 0.5, 1.0}));
  auto lp = dist::Bernoulli{}.log_prob(logits, x).value();
  REQUIRE(lp.shape() == (Shape{2}));
  const auto ls = [](double a) { return -std::log1p(std::exp(-a)); };  // log sigmoid
  CHECK(lp[0] == Approx(ls(0.0) + ls(-1.0)));
  CHECK(lp[1] == Approx(0.5 * ls(-1.0) + 0.5 * ls(1.0) + ls(2.0)));
  dist::Gaussian fixed{.variance = 0.25};
  auto lg = fixed.log_prob(V(zeros<double>({1, 3})), V(ones<double>({1, 3}))).value();
  CHECK(lg[0] == Approx(3 * (-0.5 * (std::log(2 * M_PI) + std::log(0.25) + 4.0))));
  dist::Gaussian learned{.learned = true};
  auto ll = learned.log_prob(V(zeros<double>({1, 4})), V(ones<double>({1, 2}))).value();
  CHECK(ll[0] == Approx(2 * (-0.5 * (std::log(2 * M_PI) + 1.0))));
  CHECK_THROWS_AS(learned.log_prob(V(zeros<double>({1, 3})), V(ones<double>({1, 1}))), ShapeError);
}

}  // namespace losses_losses_test
