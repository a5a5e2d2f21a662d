#include "support/gradcheck.hpp"

namespace autodiff_ops_conv_test {

// The convolution's adjoints as ops of their own (conv_transpose2d and every convolution backward
// are built from them; tests/nn/conv_test.cpp checks conv2d and conv_transpose2d end to end).

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("Convolution adjoints and the channel bias: gradients", "[gradcheck][ops][conv]") {
  // x [2, 2, 5, 5], w [3, 2, 3, 3], stride 2, padding 1: output [2, 3, 3, 3].
  const kernels::Conv2dGeometry g =
      conv2d_geometry_for(Shape{2, 2, 5, 5}, Shape{3, 2, 3, 3}, {.stride = 2, .padding = 1});
  REQUIRE(g.ho == 3);
  REQUIRE(g.wo == 3);
  // Bilinear: second derivatives couple the two inputs (d2/dG dW), which the second-order check sees.
  GENMOD_CHECK_GRADIENTS([g](Xs v) { return conv2d_adjoint_input(g, v[0], v[1]); }, rnd({2, 3, 3, 3}, 41),
                         rnd({3, 2, 3, 3}, 42));
  GENMOD_CHECK_GRADIENTS([g](Xs v) { return conv2d_adjoint_weight(g, v[0], v[1]); }, rnd({2, 2, 5, 5}, 43),
                         rnd({2, 3, 3, 3}, 44));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return mul(add_channel_bias(v[0], v[1]), add_channel_bias(v[0], v[1])); },
                         rnd({2, 3, 4, 4}, 45), rnd({3}, 46));
}

}  // namespace autodiff_ops_conv_test
