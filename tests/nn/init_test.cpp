#include <catch2/catch.hpp>

#include "genmod/nn/init.hpp"

namespace nn_init_test {

using namespace genmod;

TEST_CASE("init::orthogonal: orthonormal rows or columns, scaled by gain, seeded", "[nn][init]") {
  Generator g(1);
  Tensor<double> tall(Shape{50, 8}), wide(Shape{8, 50}), conv(Shape{4, 2, 3, 3});
  nn::init::orthogonal(tall, g);
  nn::init::orthogonal(wide, g, 2.0);
  nn::init::orthogonal(conv, g);
  const Eigen::MatrixXd a = tall.matrix();
  CHECK((a.transpose() * a - Eigen::MatrixXd::Identity(8, 8)).norm() < 1e-12);
  const Eigen::MatrixXd b = wide.matrix();
  CHECK((b * b.transpose() - 4 * Eigen::MatrixXd::Identity(8, 8)).norm() < 1e-12);
  const Eigen::MatrixXd c = conv.matrix();  // [4, 18]: orthonormal rows
  CHECK((c * c.transpose() - Eigen::MatrixXd::Identity(4, 4)).norm() < 1e-12);
  Generator g1(9), g2(9);
  Tensor<float> x(Shape{6, 6}), y(Shape{6, 6});
  nn::init::orthogonal(x, g1);
  nn::init::orthogonal(y, g2);
  for (std::int64_t i = 0; i < 36; ++i) CHECK(x[i] == y[i]);
  Tensor<float> v(Shape{5});
  CHECK_THROWS_AS(nn::init::orthogonal(v, g), ShapeError);
}

}  // namespace nn_init_test
