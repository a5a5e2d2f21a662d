#include <catch2/catch.hpp>

#include "support/gradcheck.hpp"
#include "genmod/nn/nn.hpp"

namespace nn_conv_test {

using namespace genmod;
using V = Var<double>;
using Xs = std::span<const V>;
using test::rnd;

TEST_CASE("conv2d gradients over stride, padding and dilation (first and second order)", "[gradcheck][conv]") {
  struct Case {
    std::int64_t s, p, d, k;
  };
  for (const Case& c : {Case{1, 0, 1, 3}, Case{1, 1, 1, 3}, Case{2, 1, 1, 4}, Case{2, 0, 2, 2}, Case{1, 2, 1, 5}}) {
    INFO("stride " << c.s << " padding " << c.p << " dilation " << c.d << " kernel " << c.k);
    const Conv2dOptions o{.stride = c.s, .padding = c.p, .dilation = c.d};
    GENMOD_CHECK_GRADIENTS([o](Xs v) { return conv2d(v[0], v[1], v[2], o); }, rnd({2, 2, 7, 6}, 1),
                           rnd({3, 2, c.k, c.k}, 2), rnd({3}, 3));
  }
}

TEST_CASE("conv_transpose2d gradients, with output padding", "[gradcheck][conv][transpose]") {
  for (auto o : {ConvTranspose2dOptions{.stride = 2, .padding = 1}, ConvTranspose2dOptions{.stride = 2, .padding = 1, .output_padding = 1},
                 ConvTranspose2dOptions{.stride = 1, .padding = 0}, ConvTranspose2dOptions{.stride = 3, .padding = 1, .dilation = 2}}) {
    INFO("stride " << o.stride << " padding " << o.padding << " output_padding " << o.output_padding << " dilation "
                   << o.dilation);
    GENMOD_CHECK_GRADIENTS([o](Xs v) { return conv_transpose2d(v[0], v[1], v[2], o); }, rnd({2, 3, 4, 3}, 4),
                           rnd({3, 2, 4, 4}, 5), rnd({2}, 6));
  }
}

TEST_CASE("Masked convolutions A and B: gradients and the skipped taps", "[gradcheck][conv][masked]") {
  for (auto type : {nn::MaskType::A, nn::MaskType::B}) {
    for (std::int64_t k : {3, 5}) {
      INFO("mask " << (type == nn::MaskType::A ? "A" : "B") << " kernel " << k);
      const auto keep = nn::MaskedConv2d<double>::mask(type, k);
      kernels::Conv2dGeometry g = conv2d_geometry_for(Shape{2, 2, 5, 5}, Shape{3, 2, k, k}, {.padding = k / 2});
      g.set_mask(std::span<const bool>(keep.data(), static_cast<std::size_t>(k * k)));
      const std::int64_t c = k / 2;
      CHECK(g.num_taps() == c * k + c + (type == nn::MaskType::B ? 1 : 0));
      GENMOD_CHECK_GRADIENTS([g](Xs v) { return conv2d_geometry(g, v[0], v[1], v[2]); }, rnd({2, 2, 5, 5}, 7),
                             rnd({3, 2, k, k}, 8), rnd({3}, 9));
    }
  }
}

TEST_CASE("A masked layer's output at a pixel depends only on pixels before it", "[nn][conv][masked]") {
  manual_seed(0);
  nn::MaskedConv2d<double> a(nn::MaskType::A, 1, 4, 7, {.padding = 3});
  nn::MaskedConv2d<double> b(nn::MaskType::B, 4, 4, 3, {.padding = 1});
  // Perturb pixel (3, 3): outputs at raster positions <= (3,3) for A (strictly before for the
  // first layer), and only those after it may change.
  Tensor<double> x = rnd({1, 1, 7, 7}, 10);
  auto y0 = b(a(V(x))).value();
  Tensor<double> x2 = x.clone();
  x2(0, 0, 3, 3) += 1.0;
  auto y1 = b(a(V(x2))).value();
  for (std::int64_t i = 0; i < 7; ++i)
    for (std::int64_t j = 0; j < 7; ++j) {
      const bool before_or_at = i < 3 || (i == 3 && j <= 3);
      double diff = 0;
      for (std::int64_t o = 0; o < 4; ++o) diff += std::abs(y1(0, o, i, j) - y0(0, o, i, j));
      if (before_or_at) CHECK(diff == 0.0);
    }
  // Masked weights get no gradient.
  Tape<double> tape;
  tape.backward(sum(a(V(x))));
  CHECK(a.weight.grad()(0, 0, 3, 3) == 0.0);  // the centre is masked in A
  CHECK(a.weight.grad()(0, 0, 6, 0) == 0.0);  // rows below the centre are masked
  CHECK(a.weight.grad()(0, 0, 0, 0) != 0.0);
}

TEST_CASE("Conv layers: shapes, PyTorch init bounds, and errors naming the layer", "[nn][conv]") {
  manual_seed(1);
  nn::Conv2d<float> c1(1, 32, 4, {.stride = 2, .padding = 1});
  nn::ConvTranspose2d<float> t1(64, 32, 4, {.stride = 2, .padding = 1});
  CHECK(c1(Var<float>(zeros<float>({5, 1, 28, 28}))).shape() == (Shape{5, 32, 14, 14}));
  CHECK(t1(Var<float>(zeros<float>({5, 64, 7, 7}))).shape() == (Shape{5, 32, 14, 14}));
  for (float v : c1.weight.value()) CHECK(std::abs(v) <= 1.0f / 4.0f);               // 1/sqrt(1*4*4)
  for (float v : t1.weight.value()) CHECK(std::abs(v) <= 1.0f / std::sqrt(512.0f));  // fan_in = 32*4*4
  auto named = c1.named_parameters();
  CHECK(named[0].name == "weight");
  CHECK(named[1].name == "bias");
  CHECK_THROWS_WITH(c1(Var<float>(zeros<float>({1, 3, 28, 28}))),
                    Catch::Contains("Conv2d([32, 1, 4, 4])") && Catch::Contains("[1, 3, 28, 28]"));
  CHECK_THROWS_WITH(c1(Var<float>(zeros<float>({1, 1, 1, 1}))), Catch::Contains("larger than the input"));
  CHECK_THROWS_AS(nn::Conv2d<float>(0, 4, 3), ValueError);
  CHECK_THROWS_AS(nn::MaskedConv2d<float>(nn::MaskType::A, 1, 4, 4), ValueError);
}

}  // namespace nn_conv_test
