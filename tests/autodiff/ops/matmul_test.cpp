#include "support/gradcheck.hpp"

namespace autodiff_ops_matmul_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("matmul 2-D and its transposed forms", "[gradcheck][ops][matmul]") {
  GENMOD_CHECK_GRADIENTS([](Xs x) { return matmul(x[0], x[1]); }, rnd({3, 4}, 1), rnd({4, 5}, 2));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return matmul_t(x[0], x[1], true, false); }, rnd({4, 3}, 3), rnd({4, 5}, 4));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return matmul_t(x[0], x[1], false, true); }, rnd({3, 4}, 5), rnd({5, 4}, 6));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return matmul_t(x[0], x[1], true, true); }, rnd({4, 3}, 7), rnd({5, 4}, 8));
}

TEST_CASE("matmul batched and with a shared right operand", "[gradcheck][ops][matmul]") {
  GENMOD_CHECK_GRADIENTS([](Xs x) { return matmul(x[0], x[1]); }, rnd({2, 3, 4}, 9), rnd({2, 4, 2}, 10));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return bmm_t(x[0], x[1], true, true); }, rnd({2, 4, 3}, 11), rnd({2, 2, 4}, 12));
  GENMOD_CHECK_GRADIENTS([](Xs x) { return matmul(x[0], x[1]); }, rnd({2, 3, 4}, 13), rnd({4, 5}, 14));
}

TEST_CASE("matmul values match Eigen on a large product, with threads", "[ops][matmul]") {
  Generator g(3);
  auto a = randn<double>({130, 70}, g), b = randn<double>({70, 90}, g);
  auto c = matmul(V(a), V(b)).value();
  Eigen::MatrixXd ref = a.matrix() * b.matrix();
  CHECK((ref - Eigen::MatrixXd(c.matrix())).cwiseAbs().maxCoeff() < 1e-10);
}

TEST_CASE("matmul shape errors", "[ops][matmul][errors]") {
  V a(zeros<double>({3, 4})), b(zeros<double>({5, 2}));
  CHECK_THROWS_WITH(matmul(a, b), Catch::Contains("matmul") && Catch::Contains("[3, 4]") && Catch::Contains("[5, 2]"));
  CHECK_THROWS_AS(matmul(V(zeros<double>({4})), b), ShapeError);
}

}  // namespace autodiff_ops_matmul_test
