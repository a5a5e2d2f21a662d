// nn::Residual: y = x + body(x), its parameters under "body", and a body that changes the shape.
#include <catch2/catch.hpp>

#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"

namespace nn_residual_test {

using namespace genmod;
using V = Var<double>;

TEST_CASE("Residual: x + body(x), gradients, shape errors", "[nn][residual]") {
  nn::Residual<double> block(nn::DynamicSequential<double>{nn::Linear<double>(3, 4), nn::Tanh<double>(),
                                                           nn::Linear<double>(4, 3)});
  auto names = block.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].name == "body.0.weight");
  const Tensor<double> x = test::rnd({2, 3}, 1);
  {
    NoGradGuard no_grad;
    const Tensor<double> y = block(V(x)).value(), b = block.body(V(x)).value();
    for (std::int64_t i = 0; i < 6; ++i) CHECK(y[i] == Approx(x[i] + b[i]).epsilon(1e-15));
  }
  test::expect_module_gradients(block, [&] { return block(V(x)); });
  nn::Residual<double> wrong(nn::DynamicSequential<double>{nn::Linear<double>(3, 2)});
  CHECK_THROWS_WITH(wrong(V(x)), Catch::Contains("nn::Residual") && Catch::Contains("the input's shape [2, 3]") &&
                                     Catch::Contains("[2, 2]"));
}

}  // namespace nn_residual_test
