// nn::ImageConditionDecoder: rows [z, c] through a stem, then stages that each see c broadcast
// as constant channels; values against the pieces run by hand, gradients, shape errors.
#include <catch2/catch.hpp>

#include "genmod/nn/layers/image_condition_decoder.hpp"
#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"

namespace nn_image_condition_decoder_test {

using namespace genmod;
using V = Var<double>;
using Net = nn::DynamicSequential<double>;

namespace {

// Code of 3, condition of 2: stem [N, 5] -> [N, 4, 2, 2]; stage 0 (4 + 2 -> 3 channels, x2) to
// [N, 3, 4, 4]; stage 1 (3 + 2 -> 1 channel, same size).
nn::ImageConditionDecoder<Net, Net> make_decoder() {
  Generator g(11);
  Net stem{nn::Linear<double>(5, 16, {.generator = &g}), nn::Tanh<double>(), nn::Reshape<double>({4, 2, 2})};
  std::vector<Net> stages;
  stages.push_back(
      Net{nn::ConvTranspose2d<double>(6, 3, 4, {.stride = 2, .padding = 1, .generator = &g}), nn::Tanh<double>()});
  stages.push_back(Net{nn::Conv2d<double>(5, 1, 3, {.padding = 1, .generator = &g})});
  return {2, std::move(stem), std::move(stages)};
}

// c [N, A] repeated over an H x W grid: [N, A, H, W], by hand.
Tensor<double> planes(const Tensor<double>& c, std::int64_t h, std::int64_t w) {
  Tensor<double> out(Shape{c.dim(0), c.dim(1), h, w});
  for (std::int64_t n = 0; n < c.dim(0); ++n)
    for (std::int64_t a = 0; a < c.dim(1); ++a)
      for (std::int64_t i = 0; i < h * w; ++i) out[((n * c.dim(1)) + a) * h * w + i] = c(n, a);
  return out;
}

}  // namespace

TEST_CASE("ImageConditionDecoder: the stem sees the row, every stage its input and the condition", "[nn][condition]") {
  auto dec = make_decoder();
  const Tensor<double> rows = test::rnd({3, 5}, 4);
  NoGradGuard no_grad;
  const Tensor<double> y = dec(V(rows)).value();
  REQUIRE(y.shape() == Shape{3, 1, 4, 4});
  // By hand: the condition is the last two columns.
  Tensor<double> cond(Shape{3, 2});
  for (std::int64_t n = 0; n < 3; ++n)
    for (std::int64_t j = 0; j < 2; ++j) cond(n, j) = rows(n, 3 + j);
  const V h0 = dec.stem(V(rows));
  const V h1 = dec.stages[0](concat({h0, V(planes(cond, 2, 2))}, 1));
  const Tensor<double> want = dec.stages[1](concat({h1, V(planes(cond, 4, 4))}, 1)).value();
  for (std::int64_t i = 0; i < y.numel(); ++i) CHECK(y[i] == Approx(want[i]).epsilon(1e-14));
  // A different condition changes the output even with the same code.
  Tensor<double> other = rows.clone();
  other(0, 4) += 1.0;
  CHECK(dec(V(other)).value()[0] != Approx(y[0]).epsilon(1e-9));
  CHECK(dec.condition_dim() == 2);
  const auto names = dec.named_parameters();
  REQUIRE(names.size() == 6);
  CHECK(names[0].name == "stem.0.weight");
  CHECK(names[2].name == "stages.0.0.weight");
  CHECK(names[4].name == "stages.1.0.weight");
}

TEST_CASE("ImageConditionDecoder: gradients of the rows (first and second order) and of the parameters",
          "[nn][condition]") {
  auto dec = make_decoder();
  const Tensor<double> rows = test::rnd({2, 5}, 6);
  test::expect_gradients([&](std::span<const V> in) { return dec(in[0]); }, rows);
  test::expect_module_gradients(dec, [&] { return dec(V(rows)); });
}

TEST_CASE("ImageConditionDecoder: no condition, and bad shapes", "[nn][condition]") {
  Generator g(2);
  std::vector<Net> stages;
  stages.push_back(Net{nn::Conv2d<double>(1, 1, 1, {.generator = &g})});
  nn::ImageConditionDecoder<Net, Net> plain(0, Net{nn::Reshape<double>({1, 2, 2})}, std::move(stages));
  NoGradGuard no_grad;
  CHECK(plain(V(test::rnd({3, 4}, 2))).value().shape() == Shape{3, 1, 2, 2});
  auto dec = make_decoder();
  CHECK_THROWS_WITH(
      dec(V(test::rnd({2, 2}, 1))),
      Catch::Contains("expected rows [N, D] of a code and 2 condition values") && Catch::Contains("got [2, 2]"));
  CHECK_THROWS_AS(dec(V(test::rnd({5}, 1))), ShapeError);
  // A stem that does not return images.
  nn::ImageConditionDecoder<Net, Net> flat(1, Net{nn::Tanh<double>()}, {});
  CHECK_THROWS_WITH(flat(V(test::rnd({2, 3}, 1))),
                    Catch::Contains("expected the stem to return [2, C, H, W], got [2, 3]"));
  CHECK_THROWS_AS((nn::ImageConditionDecoder<Net, Net>(-1, Net{}, {})), ValueError);
}

}  // namespace nn_image_condition_decoder_test
