#include <cmath>
#include <limits>

#include "support/gradcheck.hpp"
#include "genmod/losses/sparsity.hpp"

namespace losses_sparsity_test {

using namespace genmod;
using V = Var<double>;
using Xs = std::span<const V>;
using test::away_from_zero;
using test::uni;

TEST_CASE("l1_activation_penalty: gradients away from the kink", "[gradcheck][losses][sparsity]") {
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::l1_activation_penalty(v[0]); }, away_from_zero({3, 4}, 1));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::l1_activation_penalty(v[0]); }, away_from_zero({2, 2, 3}, 2));
}

TEST_CASE("l1_activation_penalty: sum over features, mean over the batch", "[losses][sparsity]") {
  // a = [[1, -2], [0, 3]]: (|1| + |-2| + |0| + |3|) / 2 = 6 / 2 = 3.
  Tape<double> tape;
  auto a = tape.leaf(from_data<double>({2, 2}, {1.0, -2.0, 0.0, 3.0}));
  auto p = losses::l1_activation_penalty(a);
  REQUIRE(p.rank() == 0);
  CHECK(p.item() == Approx(3.0));
  // d/da = sign(a) / N, and 0 at a = 0 (the subgradient abs uses).
  auto g = tape.grad(p, {a})[0].value();
  CHECK(g[0] == Approx(0.5));
  CHECK(g[1] == Approx(-0.5));
  CHECK(g[2] == 0.0);
  CHECK(g[3] == Approx(0.5));
  // Rank 1 [N]: (1 + 2 + 3) / 3 = 2; rank 4 [2, 1, 2, 2] of ones: 8 / 2 = 4. Float works too.
  CHECK(losses::l1_activation_penalty(Var<float>(from_data<float>({3}, {-1.f, 2.f, -3.f}))).item() == Approx(2.0));
  CHECK(losses::l1_activation_penalty(V(ones<double>({2, 1, 2, 2}))).item() == Approx(4.0));
}

TEST_CASE("l1_activation_penalty: a scalar or an empty batch is a ShapeError", "[losses][sparsity]") {
  CHECK_THROWS_AS(losses::l1_activation_penalty(V(scalar<double>(1.0))), ShapeError);
  CHECK_THROWS_AS(losses::l1_activation_penalty(V(zeros<double>({0, 3}))), ShapeError);
}

TEST_CASE("kl_sparsity_penalty: gradients for activations in (0, 1)", "[gradcheck][losses][sparsity]") {
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::kl_sparsity_penalty(v[0], 0.2); }, uni({5, 3}, 3, 0.1, 0.9));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return losses::kl_sparsity_penalty(v[0], 0.05); }, uni({4, 6}, 4, 0.01, 0.99));
}

TEST_CASE("kl_sparsity_penalty: the Bernoulli KL of a hand-computed case", "[losses][sparsity]") {
  // a = [[0.2, 0.6], [0.4, 0.2]]: rho_hat = [0.3, 0.4]; rho = 0.1:
  //   KL_0 = 0.1 log(0.1/0.3) + 0.9 log(0.9/0.7) = -0.1098612 + 0.2261830 = 0.1163218
  //   KL_1 = 0.1 log(0.1/0.4) + 0.9 log(0.9/0.6) = -0.1386294 + 0.3649186 = 0.2262892
  //   total 0.3426109
  Tape<double> tape;
  auto a = tape.leaf(from_data<double>({2, 2}, {0.2, 0.6, 0.4, 0.2}));
  auto p = losses::kl_sparsity_penalty(a, 0.1);
  REQUIRE(p.rank() == 0);
  const auto kl = [](double rho, double r) {
    return rho * std::log(rho / r) + (1 - rho) * std::log((1 - rho) / (1 - r));
  };
  CHECK(p.item() == Approx(kl(0.1, 0.3) + kl(0.1, 0.4)));
  CHECK(p.item() == Approx(0.3426109).epsilon(1e-6));
  // d/da[i, j] = (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)) / N:
  //   column 0: (-0.1/0.3 + 0.9/0.7) / 2 = 0.4761905;  column 1: (-0.1/0.4 + 0.9/0.6) / 2 = 0.625.
  auto g = tape.grad(p, {a})[0].value();
  CHECK(g[0] == Approx(0.4761905).epsilon(1e-6));
  CHECK(g[2] == Approx(0.4761905).epsilon(1e-6));
  CHECK(g[1] == Approx(0.625));
  CHECK(g[3] == Approx(0.625));
  // The same in float.
  Var<float> af(from_data<float>({2, 2}, {0.2f, 0.6f, 0.4f, 0.2f}));
  CHECK(losses::kl_sparsity_penalty(af, 0.1).item() == Approx(0.3426109).epsilon(1e-5));
}

TEST_CASE("kl_sparsity_penalty: zero when every mean activation equals rho", "[losses][sparsity]") {
  // Columns average to 0.25 exactly: (0.1 + 0.4) / 2 and (0.25 + 0.25) / 2.
  V a(from_data<double>({2, 2}, {0.1, 0.25, 0.4, 0.25}));
  CHECK(losses::kl_sparsity_penalty(a, 0.25).item() == Approx(0.0).margin(1e-14));
  Var<float> af(full<float>({8, 16}, 0.05f));
  CHECK(losses::kl_sparsity_penalty(af, 0.05).item() == Approx(0.0).margin(1e-5));
  // And positive otherwise.
  CHECK(losses::kl_sparsity_penalty(a, 0.3).item() > 0.0);
}

TEST_CASE("kl_sparsity_penalty: dead and saturated units stay finite with a zero gradient", "[losses][sparsity]") {
  // rho_hat = 0 is clamped to eps = 1e-12 (double): 0.1 log(0.1/1e-12) + 0.9 log(0.9/(1 - 1e-12)) per unit.
  Tape<double> tape;
  auto dead = tape.leaf(zeros<double>({3, 2}));
  auto p = losses::kl_sparsity_penalty(dead, 0.1);
  const double eps = 1e-12;
  CHECK(p.item() == Approx(2 * (0.1 * std::log(0.1 / eps) + 0.9 * std::log(0.9 / (1 - eps)))));
  auto g = tape.grad(p, {dead})[0].value();
  for (double x : g) CHECK(x == 0.0);
  auto saturated = tape.leaf(ones<double>({3, 2}));
  auto q = losses::kl_sparsity_penalty(saturated, 0.1);
  CHECK(std::isfinite(q.item()));
  auto gs = tape.grad(q, {saturated})[0].value();
  for (double x : gs) CHECK(x == 0.0);
  // Float, eps = 1e-6.
  CHECK(std::isfinite(losses::kl_sparsity_penalty(Var<float>(zeros<float>({2, 3})), 0.05).item()));
  CHECK(std::isfinite(losses::kl_sparsity_penalty(Var<float>(ones<float>({2, 3})), 0.05).item()));
}

TEST_CASE("kl_sparsity_penalty: rho outside (0, 1) and bad shapes throw", "[losses][sparsity]") {
  V a(full<double>({2, 3}, 0.5));
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(a, 0.0), ValueError);
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(a, 1.0), ValueError);
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(a, -0.1), ValueError);
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(a, std::numeric_limits<double>::quiet_NaN()), ValueError);
  CHECK_THROWS_WITH(losses::kl_sparsity_penalty(a, 1.5),
                    Catch::Contains("kl_sparsity_penalty") && Catch::Contains("(0, 1)"));
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(V(full<double>({6}, 0.5)), 0.1), ShapeError);
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(V(full<double>({2, 3, 1}, 0.5)), 0.1), ShapeError);
  CHECK_THROWS_AS(losses::kl_sparsity_penalty(V(zeros<double>({0, 3})), 0.1), ShapeError);
}

TEST_CASE("sparsity_stats: mean activation and near-zero fraction", "[losses][sparsity]") {
  // mean = (0 + 0.005 - 0.02 + 0.5) / 4 = 0.12125; |a| < 0.01 for 0 and 0.005: 2 / 4.
  auto a = from_data<float>({2, 2}, {0.f, 0.005f, -0.02f, 0.5f});
  const losses::SparsityStats s = losses::sparsity_stats(a);
  CHECK(s.mean_activation == Approx(0.12125));
  CHECK(s.near_zero_fraction == 0.5);
  CHECK(losses::sparsity_stats(a, 0.03).near_zero_fraction == 0.75);
  CHECK(losses::sparsity_stats(a, 0.0).near_zero_fraction == 0.0);  // |a| < 0 never holds
  CHECK_THROWS_AS(losses::sparsity_stats(a, -1.0), ValueError);
  CHECK_THROWS_AS(losses::sparsity_stats(zeros<float>({0, 4})), ShapeError);
}

}  // namespace losses_sparsity_test
