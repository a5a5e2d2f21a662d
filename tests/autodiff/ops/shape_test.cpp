#include "support/gradcheck.hpp"

namespace autodiff_ops_shape_test {

using namespace genmod;
using genmod::test::rnd;
using V = Var<double>;
using Xs = std::span<const V>;

TEST_CASE("reshape, flatten, transpose, permute", "[gradcheck][ops][shape]") {
  auto x = rnd({2, 3, 4}, 1);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return reshape(v[0], Shape{4, 6}); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return flatten(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return transpose(v[0]); }, x);
  GENMOD_CHECK_GRADIENTS(
      [](Xs v) {
        const int p[] = {2, 0, 1};
        return permute(v[0], p);
      },
      x);
  GENMOD_CHECK_GRADIENTS(
      [](Xs v) {
        const int p[] = {3, 1, 0, 2};
        return permute(v[0], p);
      },
      rnd({2, 3, 2, 2}, 2));
}

TEST_CASE("concat, slice, split", "[gradcheck][ops][shape]") {
  auto a = rnd({2, 3}, 3), b = rnd({2, 2}, 4), c = rnd({1, 3}, 5);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return concat({v[0], v[1]}, 1); }, a, b);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return concat({v[0], v[1], v[0]}, 0); }, a, c);
  GENMOD_CHECK_GRADIENTS([](Xs v) { return slice(v[0], 1, 1, 2); }, rnd({2, 4, 3}, 6));
  GENMOD_CHECK_GRADIENTS(
      [](Xs v) {
        auto parts = split(v[0], -1, {1, 3});
        return mul(parts[0], sum(parts[1], -1, true));
      },
      rnd({3, 4}, 7));
}

TEST_CASE("Shape op values and errors", "[ops][shape]") {
  V x(from_data<double>({2, 3}, {1, 2, 3, 4, 5, 6}));
  auto t = transpose(x).value();
  CHECK(t.shape() == (Shape{3, 2}));
  CHECK(t(2, 1) == 6);
  auto s = slice(x, 1, 1, 2).value();
  CHECK(s(1, 0) == 5);
  auto c = concat({x, x}, 0).value();
  CHECK(c.shape() == (Shape{4, 3}));
  CHECK(c(3, 2) == 6);
  CHECK_THROWS_AS(reshape(x, Shape{4}), ShapeError);
  CHECK_THROWS_AS(slice(x, 1, 2, 2), ShapeError);
  CHECK_THROWS_WITH(concat({x, V(zeros<double>({2, 2}))}, 0), Catch::Contains("concat") && Catch::Contains("[2, 2]"));
  CHECK_THROWS_AS(split(x, 1, {1, 1}), ShapeError);
}

TEST_CASE("space_to_depth, depth_to_space", "[gradcheck][ops][shape]") {
  GENMOD_CHECK_GRADIENTS([](Xs v) { return space_to_depth(v[0], 2); }, rnd({2, 3, 4, 6}, 8));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return depth_to_space(v[0], 2); }, rnd({2, 8, 2, 3}, 9));
  GENMOD_CHECK_GRADIENTS([](Xs v) { return mul(space_to_depth(v[0], 3), space_to_depth(v[0], 3)); },
                         rnd({1, 2, 3, 3}, 10));
}

TEST_CASE("space_to_depth: the layout of the blocks, the inverse, errors", "[ops][shape]") {
  // One 4 x 4 channel with values 0..15: the top-left 2 x 2 block {0, 1, 4, 5} goes to channel
  // positions (0, 0) of channels 0, 1, 2, 3.
  Tensor<double> x({1, 1, 4, 4});
  for (std::int64_t i = 0; i < 16; ++i) x[i] = static_cast<double>(i);
  const Tensor<double> y = space_to_depth(V(x), 2).value();
  REQUIRE(y.shape() == (Shape{1, 4, 2, 2}));
  CHECK(y(0, 0, 0, 0) == 0);
  CHECK(y(0, 1, 0, 0) == 1);
  CHECK(y(0, 2, 0, 0) == 4);
  CHECK(y(0, 3, 0, 0) == 5);
  CHECK(y(0, 0, 1, 1) == 10);
  CHECK(y(0, 3, 1, 1) == 15);
  const Tensor<double> z = rnd({2, 3, 6, 4}, 11);
  const Tensor<double> back = depth_to_space(space_to_depth(V(z), 2), 2).value();
  for (std::int64_t i = 0; i < z.numel(); ++i) CHECK(back[i] == z[i]);
  CHECK_THROWS_WITH(space_to_depth(V(zeros<double>({1, 1, 5, 4})), 2), Catch::Contains("multiples of the factor 2"));
  CHECK_THROWS_WITH(depth_to_space(V(zeros<double>({1, 3, 2, 2})), 2), Catch::Contains("multiple of factor^2 = 4"));
  CHECK_THROWS_WITH(space_to_depth(V(zeros<double>({4, 4})), 2), Catch::Contains("[N, C, H, W]"));
}

}  // namespace autodiff_ops_shape_test
