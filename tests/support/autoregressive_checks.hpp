#pragma once
// The checks every autoregressive image model passes (PixelCNN, Gated PixelCNN, PixelRNN): which
// input pixels each output pixel reads (from the tape, exactly), the likelihood by hand, cached
// sampling equal to the naive loop, the completion contract, greedy decoding at a low
// temperature, and bad input. A model M provides logits(x), log_prob(x), sample(n, options, g)
// and complete(images, mask, options, g) as models::PixelCNN does.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/data/fashion_mnist.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/models/autoregressive.hpp"
#include "genmod/optim/adam.hpp"

namespace genmod::test {

/// n images [n, 1, h, w] of valid pixels for the output kind (levels k / 255, or 0 and 1).
template <class T>
Tensor<T> random_pixels(std::int64_t n, std::int64_t h, std::int64_t w, models::PixelOutput out, std::uint64_t seed) {
  Generator g(seed);
  Tensor<T> x(Shape{n, 1, h, w});
  for (auto& v : x)
    v = out == models::PixelOutput::categorical ? static_cast<T>(static_cast<double>(g.uniform_int(256)) / 255.0)
                                                : static_cast<T>(g.uniform_int(2));
  return x;
}

/// Which input pixels the logits of each output pixel read: reads(i, j, y, x) is true when the
/// gradient of the sum of the logits at (i, j) with respect to input pixel (y, x) is not exactly 0.
struct PixelDependence {
  std::int64_t h = 0, w = 0;
  std::vector<char> nonzero;   // [(i * w + j) * h * w + y * w + x]
  std::vector<char> computed;  // [i * w + j]

  /// Whether output (i, j) reads input (y, x) (REQUIREs that (i, j) was computed).
  bool reads(std::int64_t i, std::int64_t j, std::int64_t y, std::int64_t x) const {
    REQUIRE(computed[static_cast<std::size_t>(i * w + j)]);
    return nonzero[static_cast<std::size_t>((i * w + j) * h * w + y * w + x)] != 0;
  }
};

/// PixelDependence of logits_of (x [1, 1, h, w] -> [1, L, h, w]), the union over `draws` random
/// inputs in (0.05, 0.95) (one input can switch off every ReLU on a path; a few cannot), for the
/// listed output positions (all when empty). Double, so "exactly 0" means a structural zero.
template <class F>
PixelDependence pixel_dependence(F logits_of, std::int64_t h, std::int64_t w, std::uint64_t seed,
                                 std::vector<std::pair<std::int64_t, std::int64_t>> positions = {}, int draws = 4) {
  if (positions.empty())
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j) positions.push_back({i, j});
  PixelDependence d{h, w, std::vector<char>(static_cast<std::size_t>(h * w * h * w), 0),
                    std::vector<char>(static_cast<std::size_t>(h * w), 0)};
  Generator g(seed);
  for (int draw = 0; draw < draws; ++draw) {
    Tensor<double> x0(Shape{1, 1, h, w});
    fill_uniform(x0, g, 0.05, 0.95);
    Tape<double> tape;
    const Var<double> x = tape.leaf(x0);
    const Var<double> logits = logits_of(x);
    for (auto [i, j] : positions) {
      const Tensor<double> gx = tape.grad(sum(slice(slice(logits, 2, i, 1), 3, j, 1)), {x})[0].value();
      d.computed[static_cast<std::size_t>(i * w + j)] = 1;
      for (std::int64_t p = 0; p < h * w; ++p)
        if (gx[p] != 0) d.nonzero[static_cast<std::size_t>((i * w + j) * h * w + p)] = 1;
    }
  }
  return d;
}

/// log p(x) per image from logits [N, L, H, W] by the definition: sum over pixels of
/// log softmax(logits)_k (k the level) or log sigmoid(+-logit).
inline Tensor<double> log_prob_by_hand(const Tensor<double>& logits, const Tensor<double>& x, models::PixelOutput out) {
  const std::int64_t n = x.dim(0), hw = x.dim(2) * x.dim(3), l = logits.dim(1);
  Tensor<double> lp(Shape{n});
  for (std::int64_t b = 0; b < n; ++b) {
    double s = 0;
    for (std::int64_t p = 0; p < hw; ++p) {
      const double* z = logits.data() + b * l * hw + p;
      if (out == models::PixelOutput::bernoulli) {
        const double sig = 1 / (1 + std::exp(-z[0]));
        s += x[b * hw + p] == 1 ? std::log(sig) : std::log(1 - sig);
        continue;
      }
      double m = -std::numeric_limits<double>::infinity(), tot = 0;
      for (std::int64_t c = 0; c < l; ++c) m = std::max(m, z[c * hw]);
      for (std::int64_t c = 0; c < l; ++c) tot += std::exp(z[c * hw] - m);
      const auto k = static_cast<std::int64_t>(std::lround(x[b * hw + p] * 255));
      s += z[k * hw] - m - std::log(tot);
    }
    lp[b] = s;
  }
  return lp;
}

/// The cached sampler and the naive loop give identical images from the same generator state
/// (at temperature 1 and 0.7) and leave the generator at the same place.
template <class M>
void expect_cached_equals_naive(M& model, std::int64_t n, std::int64_t h, std::int64_t w) {
  using T = typename M::value_type;
  for (double tau : {1.0, 0.7}) {
    Generator g1(42), g2(42);
    const Tensor<T> a = model.sample(n, {.temperature = tau, .cached = true}, g1);
    const Tensor<T> b = model.sample(n, {.temperature = tau, .cached = false}, g2);
    REQUIRE(a.shape() == Shape{n, 1, h, w});
    std::int64_t differ = 0, distinct_levels = 0;
    std::vector<char> seen(256, 0);
    for (std::int64_t i = 0; i < a.numel(); ++i) {
      differ += a[i] != b[i];
      const auto k = static_cast<std::size_t>(std::lround(static_cast<double>(a[i]) * 255));
      if (!seen[k]) seen[k] = 1, ++distinct_levels;
    }
    INFO("temperature " << tau << ": " << differ << " of " << a.numel() << " pixels differ");
    CHECK(differ == 0);
    CHECK(g1.state().offset == g2.state().offset);
    CHECK(distinct_levels >= 2);  // not a constant image
  }
}

/// complete(): known pixels kept bit for bit, unknown ones drawn (valid levels) exactly as the
/// naive loop draws them; a mask with nothing unknown returns the images and draws nothing; an
/// all-unknown mask is sample() with the same draws.
template <class M>
void expect_completion_contract(M& model, std::int64_t h, std::int64_t w, models::PixelOutput out) {
  using T = typename M::value_type;
  const std::int64_t hw = h * w;
  const Tensor<T> images = random_pixels<T>(4, h, w, out, 77);
  Tensor<T> mask = ones<T>(images.shape());
  Generator scatter(5);
  for (std::int64_t p = 0; p < hw; ++p) {
    const std::int64_t y = p / w, x = p % w;
    if (y >= h / 2) mask[0 * hw + p] = 0;                                  // bottom half occluded
    if (y >= 2 && y < h - 2 && x >= 1 && x < w - 2) mask[1 * hw + p] = 0;  // a rectangle
    if (scatter.uniform() < 0.3) mask[2 * hw + p] = 0;                     // scattered pixels
  }                                                                        // image 3: everything known
  Generator g1(8), g2(8);
  const Tensor<T> a = model.complete(images, mask, {.cached = true}, g1);
  const Tensor<T> b = model.complete(images, mask, {.cached = false}, g2);
  std::int64_t differ = 0, changed = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    differ += a[i] != b[i];
    if (mask[i] == 1)
      REQUIRE(a[i] == images[i]);
    else
      changed += a[i] != images[i];
  }
  CHECK(differ == 0);
  CHECK(changed > 0);
  CHECK(g1.state().offset == g2.state().offset);
  (void)models::detail::pixel_levels("completion", a, out);  // throws on an invalid level

  Generator g3(9);
  const auto before = g3.state().offset;
  const Tensor<T> same = model.complete(images, ones<T>(images.shape()), g3);
  for (std::int64_t i = 0; i < same.numel(); ++i) REQUIRE(same[i] == images[i]);
  CHECK(g3.state().offset == before);

  Generator g4(10), g5(10);
  const Tensor<T> filled = model.complete(images, zeros<T>(images.shape()), g4);
  const Tensor<T> sampled = model.sample(4, g5);
  for (std::int64_t i = 0; i < filled.numel(); ++i) REQUIRE(filled[i] == sampled[i]);
}

/// At temperature 1e-6 every drawn pixel is the most likely one given the pixels before it.
template <class M>
void expect_greedy_at_low_temperature(M& model, models::PixelOutput out) {
  using T = typename M::value_type;
  Generator g(3);
  const Tensor<T> s = model.sample(2, {.temperature = 1e-6}, g);
  NoGradGuard no_grad;
  const Tensor<T> logits = model.logits(Var<T>(s)).value();
  const std::int64_t hw = s.dim(2) * s.dim(3), l = logits.dim(1);
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t p = 0; p < hw; ++p) {
      const T* z = logits.data() + b * l * hw + p;
      double expected = 0;
      if (out == models::PixelOutput::bernoulli) {
        expected = z[0] > 0 ? 1 : 0;
      } else {
        std::int64_t best = 0;
        for (std::int64_t c = 1; c < l; ++c)
          if (z[c * hw] > z[best * hw]) best = c;
        expected = static_cast<double>(best) / 255.0;
      }
      INFO("image " << b << " pixel " << p);
      REQUIRE(static_cast<double>(s[b * hw + p]) == Approx(expected).margin(1e-6));
    }
}

/// Bad shapes, pixel values, masks, counts and temperatures are errors naming what was expected.
template <class M>
void expect_bad_input_errors(M& model, std::int64_t h, std::int64_t w, models::PixelOutput out) {
  using T = typename M::value_type;
  Generator g(1);
  CHECK_THROWS_AS(model.log_prob(Var<T>(zeros<T>(Shape{2, 1, h + 1, w}))), ShapeError);
  CHECK_THROWS_AS(model.log_prob(Var<T>(zeros<T>(Shape{2, 2, h, w}))), ShapeError);
  CHECK_THROWS_AS(model.log_prob(Var<T>(zeros<T>(Shape{2, h, w}))), ShapeError);
  Tensor<T> bad = zeros<T>(Shape{2, 1, h, w});
  bad[5] = out == models::PixelOutput::categorical ? T(0.5004) : T(0.5);
  CHECK_THROWS_WITH(model.log_prob(Var<T>(bad)), Catch::Contains("expected pixels"));
  bad[5] = T(1.5);
  CHECK_THROWS_AS(model.log_prob(Var<T>(bad)), ValueError);
  CHECK_THROWS_AS(model.sample(0, g), ValueError);
  for (double tau : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()})
    CHECK_THROWS_WITH(model.sample(1, {.temperature = tau}, g), Catch::Contains("temperature"));
  const Tensor<T> images = zeros<T>(Shape{2, 1, h, w});
  CHECK_THROWS_AS(model.complete(images, ones<T>(Shape{2, 1, h, w + 1}), g), ShapeError);
  CHECK_THROWS_AS(model.complete(images, ones<T>(Shape{1, 1, h, w}), g), ShapeError);
  Tensor<T> half = ones<T>(images.shape());
  half[3] = T(0.5);
  CHECK_THROWS_WITH(model.complete(images, half, g), Catch::Contains("known_mask"));
  Tensor<T> wrong = zeros<T>(images.shape());
  wrong[0] = T(2);
  CHECK_THROWS_AS(model.complete(wrong, ones<T>(images.shape()), g), ValueError);
  wrong[0] = T(0);
  wrong[1] = T(7);  // an unknown pixel's old value does not matter
  Tensor<T> mask = ones<T>(images.shape());
  mask[1] = T(0);
  CHECK_NOTHROW(model.complete(wrong, mask, g));
  CHECK_THROWS_AS(model.complete(zeros<T>(Shape{2, 1, h, w + 1}), ones<T>(Shape{2, 1, h, w + 1}), g), ShapeError);
}

/// Mean test bits/dim of a model before and after training on a Fashion-MNIST slice.
struct SliceBitsPerDim {
  double before = 0;  ///< at initialization
  double after = 0;   ///< after training
};

/// The family's [slow] protocol: the first 1024 training images, 3 epochs of batch 32 (shuffled,
/// loader seed 1), Adam 1e-3 on model.loss; mean bits/dim of the first 256 test images before and
/// after.
template <class M>
SliceBitsPerDim train_on_fashion_slice(M& model) {
  const auto train =
      data::FashionMNIST::load(data::Split::train).float_images(data::ImageLayout::nchw).rows(0, 1024).clone();
  const auto test_x =
      data::FashionMNIST::load(data::Split::test).float_images(data::ImageLayout::nchw).rows(0, 256).clone();
  const auto test_bpd = [&] {
    NoGradGuard no_grad;
    return static_cast<double>(mean(model.bits_per_dim(Var<float>(test_x))).item());
  };
  SliceBitsPerDim r;
  r.before = test_bpd();
  optim::Adam<float> adam(model.named_parameters(), {.lr = 1e-3});
  data::Loader loader(data::Dataset(train), {.batch_size = 32, .shuffle = true, .seed = 1});
  for (int epoch = 0; epoch < 3; ++epoch)
    for (const auto& batch : loader) {
      Tape<float> tape;
      adam.zero_grad();
      tape.backward(model.loss(Var<float>(batch.x)));
      adam.step();
    }
  r.after = test_bpd();
  return r;
}

}  // namespace genmod::test
