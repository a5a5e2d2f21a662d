#include <array>
#include <vector>

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

TEST_CASE("permute's values: rotations (a tiled transpose) and other orders, against the index formula",
          "[ops][shape]") {
  // Extents that are not multiples of the 32 x 32 tile, so that partial tiles are covered.
  const Tensor<double> x = rnd({3, 5, 7, 37}, 8);
  const std::vector<std::array<int, 4>> orders{{3, 0, 1, 2}, {1, 2, 3, 0}, {2, 3, 0, 1}, {0, 2, 1, 3}, {3, 1, 0, 2}};
  for (const auto& p : orders) {
    INFO("perm " << p[0] << p[1] << p[2] << p[3]);
    const Tensor<double> y = permute(V(x), std::span<const int>(p.data(), 4)).value();
    std::array<std::int64_t, 4> idx{};  // y's index
    for (idx[0] = 0; idx[0] < y.dim(0); ++idx[0])
      for (idx[1] = 0; idx[1] < y.dim(1); ++idx[1])
        for (idx[2] = 0; idx[2] < y.dim(2); ++idx[2])
          for (idx[3] = 0; idx[3] < y.dim(3); ++idx[3]) {
            std::array<std::int64_t, 4> xi{};
            for (std::size_t a = 0; a < 4; ++a) xi[static_cast<std::size_t>(p[a])] = idx[a];
            const double want = x[((xi[0] * 5 + xi[1]) * 7 + xi[2]) * 37 + xi[3]];
            REQUIRE(y[((idx[0] * y.dim(1) + idx[1]) * y.dim(2) + idx[2]) * y.dim(3) + idx[3]] == want);
          }
  }
  const Tensor<double> m = rnd({45, 70}, 9);
  const int t[] = {1, 0};
  const Tensor<double> mt = permute(V(m), t).value();
  for (std::int64_t i = 0; i < 45; ++i)
    for (std::int64_t j = 0; j < 70; ++j) REQUIRE(mt[j * 45 + i] == m[i * 70 + j]);
}

TEST_CASE("slice's gradient added in place into a shared gradient: each slice's block, the rest untouched",
          "[ops][shape]") {
  // Several slices of one input (the column sweep of a recurrence): their gradients land in their
  // blocks of one gradient, also when a block is added twice or the gradient was set by another op.
  const Tensor<double> x = rnd({2, 3, 5}, 10);
  Tape<double> tape;
  const V v = tape.leaf(x);
  const V y = add(sum(mul(slice(v, 2, 1, 1), V(rnd({2, 3, 1}, 11)))),
                  add(sum(mul(slice(v, 2, 1, 3), V(rnd({2, 3, 3}, 12)))), sum(mul(v, V(rnd({2, 3, 5}, 13))))));
  const Tensor<double> g = tape.grad(y, {v})[0].value();
  const Tensor<double> w1 = rnd({2, 3, 1}, 11), w3 = rnd({2, 3, 3}, 12), wf = rnd({2, 3, 5}, 13);
  for (std::int64_t o = 0; o < 6; ++o)
    for (std::int64_t k = 0; k < 5; ++k) {
      double want = wf[o * 5 + k];
      if (k == 1) want += w1[o];
      if (k >= 1 && k < 4) want += w3[o * 3 + k - 1];
      REQUIRE(g[o * 5 + k] == Approx(want).epsilon(1e-15));
    }
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
