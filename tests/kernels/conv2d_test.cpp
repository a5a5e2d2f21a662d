// The convolution ops (autodiff/ops/conv.hpp) over the kernels: their options, shapes, errors and
// the adjoint relation of the transposed convolution. Every kernel path itself is held to the
// plain-loop reference in conv2d_reference_test.cpp.
#include <catch2/catch.hpp>

#include "genmod/autodiff/ops/conv.hpp"
#include "genmod/kernels/conv2d_reference.hpp"

namespace kernels_conv2d_test {

using namespace genmod;

namespace {

Tensor<double> rnd(const Shape& s, std::uint64_t seed) {
  Generator g(seed);
  return randn<double>(s, g);
}

}  // namespace

TEST_CASE("conv2d follows its options: strides, paddings, dilations and the output extent", "[kernels][conv]") {
  struct Case {
    std::int64_t n, c, h, w, o, k, s, p, d;
  };
  for (const Case& t :
       {Case{2, 3, 7, 6, 4, 3, 1, 1, 1}, Case{2, 1, 28, 28, 8, 4, 2, 1, 1}, Case{1, 4, 9, 9, 2, 3, 2, 0, 2},
        Case{3, 5, 5, 5, 6, 1, 1, 0, 1}, Case{1, 2, 6, 8, 3, 5, 3, 2, 1}, Case{2, 2, 25, 24, 3, 3, 3, 1, 2}}) {
    INFO("n c h w o k s p d = " << t.n << " " << t.c << " " << t.h << " " << t.w << " " << t.o << " " << t.k << " "
                                << t.s << " " << t.p << " " << t.d);
    auto x = rnd({t.n, t.c, t.h, t.w}, 1), w = rnd({t.o, t.c, t.k, t.k}, 2), b = rnd({t.o}, 3);
    auto y = conv2d(Var<double>(x), Var<double>(w), Var<double>(b), {.stride = t.s, .padding = t.p, .dilation = t.d});
    // PyTorch's extent: floor((H + 2p - d (k - 1) - 1) / s) + 1.
    const auto extent = [&](std::int64_t in) { return (in + 2 * t.p - t.d * (t.k - 1) - 1) / t.s + 1; };
    REQUIRE(y.shape() == (Shape{t.n, t.o, extent(t.h), extent(t.w)}));
    const auto g = conv2d_geometry_for(x.shape(), w.shape(), {.stride = t.s, .padding = t.p, .dilation = t.d});
    CHECK(allclose(y.value(), kernels::reference::conv2d_forward(g, x, w, b), 1e-10, 1e-10));
  }
}

TEST_CASE("Transposed convolution is the adjoint of convolution", "[kernels][conv][transpose]") {
  // <C(x, W), y> == <x, Cx*(y, W)> for random x, y.
  auto w = rnd({4, 3, 4, 4}, 6);  // ConvT(4 -> 3) weight [Cin_T, Cout_T, k, k]
  auto yin = rnd({2, 4, 7, 7}, 7);
  auto out = conv_transpose2d(Var<double>(yin), Var<double>(w), Var<double>(), {.stride = 2, .padding = 1});
  CHECK(out.shape() == (Shape{2, 3, 14, 14}));
  auto x = rnd({2, 3, 14, 14}, 8);
  auto cx = conv2d(Var<double>(x), Var<double>(w), Var<double>(), {.stride = 2, .padding = 1});
  double lhs = 0, rhs = 0;
  for (std::int64_t i = 0; i < cx.numel(); ++i) lhs += cx.value()[i] * yin[i];
  for (std::int64_t i = 0; i < x.numel(); ++i) rhs += x[i] * out.value()[i];
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
  // Output padding adds a row and column.
  auto op = conv_transpose2d(Var<double>(yin), Var<double>(w), Var<double>(),
                             {.stride = 2, .padding = 1, .output_padding = 1});
  CHECK(op.shape() == (Shape{2, 3, 15, 15}));
}

TEST_CASE("Hand-computed convolution and transposed convolution values", "[kernels][conv]") {
  // 1x1x3x3 input 1..9, 2x2 kernel of ones, stride 1: window sums.
  auto x = from_data<double>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  auto w = ones<double>({1, 1, 2, 2});
  auto y = conv2d(Var<double>(x), Var<double>(w)).value();
  CHECK(y.shape() == (Shape{1, 1, 2, 2}));
  CHECK(y[0] == 12);
  CHECK(y[1] == 16);
  CHECK(y[2] == 24);
  CHECK(y[3] == 28);
  // Transposed, stride 2: each input pixel paints a 2x2 block scaled by its value.
  auto t = conv_transpose2d(Var<double>(from_data<double>({1, 1, 1, 2}, {1, 2})), Var<double>(w), Var<double>(),
                            {.stride = 2})
               .value();
  CHECK(t.shape() == (Shape{1, 1, 2, 4}));
  const double expect[] = {1, 1, 2, 2, 1, 1, 2, 2};
  for (int i = 0; i < 8; ++i) CHECK(t[i] == expect[i]);
}

TEST_CASE("Convolution shape errors name the op and the shapes", "[kernels][conv][errors]") {
  Var<double> x(zeros<double>({1, 3, 4, 4}));
  CHECK_THROWS_WITH(conv2d(x, Var<double>(zeros<double>({2, 4, 3, 3}))),
                    Catch::Contains("3 channels") && Catch::Contains("[2, 4, 3, 3]"));
  CHECK_THROWS_WITH(conv2d(x, Var<double>(zeros<double>({2, 3, 7, 7}))),
                    Catch::Contains("larger than the input") && Catch::Contains("[1, 3, 4, 4]"));
  CHECK_THROWS_AS(conv2d(x, Var<double>(zeros<double>({2, 3, 3, 3})), Var<double>(), {.stride = 0}), ValueError);
  CHECK_THROWS_AS(conv2d(Var<double>(zeros<double>({3, 4, 4})), Var<double>(zeros<double>({2, 3, 3, 3}))), ShapeError);
  CHECK_THROWS_AS(
      conv_transpose2d(x, Var<double>(zeros<double>({3, 2, 3, 3})), Var<double>(), {.stride = 2, .output_padding = 2}),
      ValueError);
}

}  // namespace kernels_conv2d_test
