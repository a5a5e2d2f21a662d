// nn::ImageConditionEncoder: rows [flatten(x), c] cut back into an image for the body and a
// condition for the head; values against the pieces run by hand, gradients, shape errors.
#include <catch2/catch.hpp>

#include "genmod/nn/layers/image_condition_encoder.hpp"
#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"

namespace nn_image_condition_encoder_test {

using namespace genmod;
using V = Var<double>;
using Body = nn::DynamicSequential<double>;
using Head = nn::Linear<double>;

namespace {

// 2 channels of 4 x 4, condition of 3 values: body conv 2 -> 3, stride 2 (-> [N, 3, 2, 2]).
nn::ImageConditionEncoder<Body, Head> make_encoder() {
  Generator g(7);
  return {2,
          4,
          4,
          3,
          Body{nn::Conv2d<double>(2, 3, 3, {.stride = 2, .padding = 1, .generator = &g}), nn::Tanh<double>()},
          Head(3 * 2 * 2 + 3, 5, {.generator = &g})};
}

}  // namespace

TEST_CASE("ImageConditionEncoder: the body sees the image, the head [features, condition]", "[nn][condition]") {
  auto enc = make_encoder();
  const Tensor<double> rows = test::rnd({2, 2 * 16 + 3}, 3);
  NoGradGuard no_grad;
  const Tensor<double> y = enc(V(rows)).value();
  REQUIRE(y.shape() == Shape{2, 5});
  // By hand: the image is the first 32 columns in C-order, the condition the last 3.
  Tensor<double> image(Shape{2, 2, 4, 4}), cond(Shape{2, 3});
  for (std::int64_t n = 0; n < 2; ++n) {
    for (std::int64_t j = 0; j < 32; ++j) image[n * 32 + j] = rows(n, j);
    for (std::int64_t j = 0; j < 3; ++j) cond(n, j) = rows(n, 32 + j);
  }
  const Tensor<double> features = flatten(enc.body(V(image)), 1).value();
  const Tensor<double> want = enc.head(concat({V(features), V(cond)}, 1)).value();
  for (std::int64_t i = 0; i < y.numel(); ++i) CHECK(y[i] == Approx(want[i]).epsilon(1e-14));
  CHECK(enc.image_shape() == Shape{2, 4, 4});
  CHECK(enc.condition_dim() == 3);
  const auto names = enc.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].name == "body.0.weight");
  CHECK(names[2].name == "head.weight");
}

TEST_CASE("ImageConditionEncoder: gradients of the rows (first and second order) and of the parameters",
          "[nn][condition]") {
  auto enc = make_encoder();
  const Tensor<double> rows = test::rnd({2, 2 * 16 + 3}, 5);
  test::expect_gradients([&](std::span<const V> in) { return enc(in[0]); }, rows);
  test::expect_module_gradients(enc, [&] { return enc(V(rows)); });
}

TEST_CASE("ImageConditionEncoder: no condition, and bad shapes", "[nn][condition]") {
  Generator g(1);
  nn::ImageConditionEncoder<Body, Head> plain(1, 2, 2, 0, Body{nn::Tanh<double>()}, Head(4, 2, {.generator = &g}));
  NoGradGuard no_grad;
  CHECK(plain(V(test::rnd({3, 4}, 2))).value().shape() == Shape{3, 2});
  auto enc = make_encoder();
  CHECK_THROWS_AS(enc(V(test::rnd({2, 34}, 1))), ShapeError);
  CHECK_THROWS_WITH(enc(V(test::rnd({2, 34}, 1))), Catch::Contains("[N, 35]") &&
                                                       Catch::Contains("2x4x4 pixels + 3 condition") &&
                                                       Catch::Contains("[2, 34]"));
  CHECK_THROWS_AS(enc(V(test::rnd({35}, 1))), ShapeError);
  CHECK_THROWS_AS((nn::ImageConditionEncoder<Body, Head>(0, 2, 2, 0, Body{}, Head(4, 2))), ValueError);
  CHECK_THROWS_AS((nn::ImageConditionEncoder<Body, Head>(1, 2, 2, -1, Body{}, Head(4, 2))), ValueError);
}

}  // namespace nn_image_condition_encoder_test
