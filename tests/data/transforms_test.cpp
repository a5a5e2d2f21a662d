#include <catch2/catch.hpp>

#include <cmath>

#include "genmod/data/transforms.hpp"

namespace data_transforms_test {

using namespace genmod;

TEST_CASE("scale_pixels maps 0..255 to the unit or the symmetric interval", "[data][transforms]") {
  const auto px = from_data<std::uint8_t>({3}, {0, 51, 255});
  const auto u = data::scale_pixels(px);
  CHECK(u[0] == 0.f);
  CHECK(u[1] == Approx(0.2f));
  CHECK(u[2] == 1.f);
  const auto s = data::scale_pixels(px, data::PixelRange::symmetric);
  CHECK(s[0] == -1.f);
  CHECK(s[2] == Approx(1.f));
  CHECK(data::unit_to_symmetric(u)[1] == Approx(-0.6f));
  CHECK(data::symmetric_to_unit(s)[1] == Approx(0.2f));
}

TEST_CASE("Static binarization thresholds, and dynamic binarization samples Bernoulli(x)", "[data][transforms]") {
  const auto x = from_data<float>({4}, {0.f, 0.49f, 0.51f, 1.f});
  const auto b = data::binarize(x);
  CHECK(b[1] == 0.f);
  CHECK(b[2] == 1.f);
  Generator g(3);
  const auto p = full<float>({20000}, 0.3f);
  const auto d = data::binarize_dynamic(p, g);
  double mean = 0;
  for (std::int64_t i = 0; i < d.numel(); ++i) {
    REQUIRE((d[i] == 0.f || d[i] == 1.f));
    mean += d[i];
  }
  CHECK(mean / 20000 == Approx(0.3).margin(0.015));
  // Extremes are deterministic, and the same generator state gives the same sample.
  const auto e = data::binarize_dynamic(from_data<float>({2}, {0.f, 1.f}), g);
  CHECK(e[0] == 0.f);
  CHECK(e[1] == 1.f);
  Generator g1(5), g2(5);
  CHECK(allclose(data::binarize_dynamic(p, g1), data::binarize_dynamic(p, g2), 0, 0));
}

TEST_CASE("Uniform dequantization gives (k + u) / 256 between k/256 and (k+1)/256", "[data][transforms]") {
  Generator g(1);
  Tensor<std::uint8_t> px(Shape{256, 8});
  for (std::int64_t i = 0; i < px.numel(); ++i) px[i] = static_cast<std::uint8_t>(i / 8);
  const auto d = data::dequantize(px, g);
  for (std::int64_t i = 0; i < d.numel(); ++i) {
    const float k = static_cast<float>(px[i]);
    REQUIRE(d[i] >= k / 256.f);
    REQUIRE(d[i] < (k + 1.f) / 256.f + 1e-7f);
    REQUIRE(d[i] < 1.f);
  }
  // From [0, 1] floats: k is recovered by rounding 255 x.
  const auto f = data::dequantize(data::scale_pixels(px), g);
  for (std::int64_t i = 0; i < f.numel(); ++i) REQUIRE(std::floor(f[i] * 256.f) == static_cast<float>(px[i]));
}

TEST_CASE("Corruptions for denoising autoencoders", "[data][transforms]") {
  Generator g(11);
  const auto x = full<float>({10000}, 0.5f);
  const auto gauss = data::add_gaussian_noise(x, 0.2f, g);
  double m = 0, v = 0;
  for (std::int64_t i = 0; i < gauss.numel(); ++i) m += gauss[i];
  m /= 10000;
  for (std::int64_t i = 0; i < gauss.numel(); ++i) v += (gauss[i] - m) * (gauss[i] - m);
  CHECK(m == Approx(0.5).margin(0.01));
  CHECK(std::sqrt(v / 10000) == Approx(0.2).margin(0.01));
  const auto masked = data::mask_noise(x, 0.25f, g);
  int zeros_count = 0;
  for (std::int64_t i = 0; i < masked.numel(); ++i) {
    REQUIRE((masked[i] == 0.f || masked[i] == 0.5f));
    zeros_count += masked[i] == 0.f;
  }
  CHECK(zeros_count / 10000.0 == Approx(0.25).margin(0.02));
  const auto sp = data::corrupt(x, {.kind = data::Corruption::salt_and_pepper, .level = 0.4f}, g);
  int salt = 0, pepper = 0;
  for (std::int64_t i = 0; i < sp.numel(); ++i) {
    salt += sp[i] == 1.f;
    pepper += sp[i] == 0.f;
  }
  CHECK(salt / 10000.0 == Approx(0.2).margin(0.02));
  CHECK(pepper / 10000.0 == Approx(0.2).margin(0.02));
  CHECK(x[0] == 0.5f);  // inputs are never modified
  CHECK_THROWS_AS(data::mask_noise(x, 1.5f, g), ValueError);
  CHECK_THROWS_AS(data::add_gaussian_noise(x, -1.f, g), ValueError);
  CHECK_THROWS_AS(data::salt_and_pepper_noise(x, NAN, g), ValueError);
}

TEST_CASE("one_hot encodes labels and names a bad one", "[data][transforms]") {
  const auto oh = data::one_hot(from_data<std::int64_t>({3}, {2, 0, 1}), 3);
  REQUIRE(oh.shape() == (Shape{3, 3}));
  CHECK(oh(0, 2) == 1.f);
  CHECK(oh(0, 0) == 0.f);
  CHECK(oh(1, 0) == 1.f);
  CHECK_THROWS_WITH(data::one_hot(from_data<std::int64_t>({2}, {1, 7}), 3),
                    Catch::Contains("label 7") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(data::one_hot(zeros<std::int64_t>({2, 2}), 3), ShapeError);
}

}  // namespace data_transforms_test
