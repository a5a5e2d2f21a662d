#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/autodiff/grad_check.hpp"
#include "genmod/autodiff/ops/conv.hpp"
#include "genmod/losses/adversarial.hpp"
#include "genmod/nn/nn.hpp"
#include "support/gradcheck.hpp"

namespace losses_adversarial_test {

using namespace genmod;
using losses::AdversarialLoss;
using V = Var<double>;

namespace {

Tensor<double> values(std::initializer_list<double> v) {
  Tensor<double> t(Shape{static_cast<std::int64_t>(v.size())});
  std::int64_t i = 0;
  for (double x : v) t[i++] = x;
  return t;
}

double sigma(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// The table of adversarial.hpp, written out naively per element.
double naive_d_loss(const Tensor<double>& r, const Tensor<double>& f, AdversarialLoss k) {
  double a = 0, b = 0;
  for (double x : r) {
    switch (k) {
      case AdversarialLoss::minimax:
      case AdversarialLoss::non_saturating:
        a += -std::log(sigma(x));
        break;
      case AdversarialLoss::least_squares:
        a += 0.5 * (x - 1) * (x - 1);
        break;
      case AdversarialLoss::hinge:
        a += std::max(0.0, 1 - x);
        break;
      case AdversarialLoss::wasserstein:
        a += -x;
        break;
    }
  }
  for (double x : f) {
    switch (k) {
      case AdversarialLoss::minimax:
      case AdversarialLoss::non_saturating:
        b += -std::log(1 - sigma(x));
        break;
      case AdversarialLoss::least_squares:
        b += 0.5 * x * x;
        break;
      case AdversarialLoss::hinge:
        b += std::max(0.0, 1 + x);
        break;
      case AdversarialLoss::wasserstein:
        b += x;
        break;
    }
  }
  return a / static_cast<double>(r.numel()) + b / static_cast<double>(f.numel());
}

double naive_g_loss(const Tensor<double>& f, AdversarialLoss k) {
  double s = 0;
  for (double x : f) {
    switch (k) {
      case AdversarialLoss::minimax:
        s += std::log(1 - sigma(x));
        break;
      case AdversarialLoss::non_saturating:
        s += -std::log(sigma(x));
        break;
      case AdversarialLoss::least_squares:
        s += 0.5 * (x - 1) * (x - 1);
        break;
      case AdversarialLoss::hinge:
      case AdversarialLoss::wasserstein:
        s += -x;
        break;
    }
  }
  return s / static_cast<double>(f.numel());
}

const AdversarialLoss kAll[] = {AdversarialLoss::minimax, AdversarialLoss::non_saturating,
                                AdversarialLoss::least_squares, AdversarialLoss::hinge, AdversarialLoss::wasserstein};

}  // namespace

TEST_CASE("Adversarial losses equal the table's formulas", "[losses][gan]") {
  // Away from the hinge's kinks at +-1.
  const auto r = values({2.3, -0.4, 0.7, 1.6});
  const auto f = values({-1.8, 0.2, -0.3});
  for (auto k : kAll) {
    INFO(losses::to_string(k));
    CHECK(losses::discriminator_loss(V(r), V(f), k).item() == Approx(naive_d_loss(r, f, k)).epsilon(1e-12));
    CHECK(losses::generator_loss(V(f), k).item() == Approx(naive_g_loss(f, k)).epsilon(1e-12));
  }
  // [N, 1] outputs are accepted as [N].
  CHECK(losses::generator_loss(V(f.reshape({3, 1})), AdversarialLoss::non_saturating).item() ==
        Approx(naive_g_loss(f, AdversarialLoss::non_saturating)));
}

TEST_CASE("Probabilistic adversarial losses stay finite and exact at extreme logits", "[losses][gan]") {
  // sigma(-800) underflows to 0 in double: the naive -log sigma(r) would be inf.
  const auto r = values({-800.0});
  const auto f = values({800.0});
  const double d = losses::discriminator_loss(V(r), V(f), AdversarialLoss::non_saturating).item();
  CHECK(d == Approx(1600.0));  // softplus(800) + softplus(800)
  CHECK(losses::generator_loss(V(f), AdversarialLoss::minimax).item() == Approx(-800.0));
  CHECK(losses::generator_loss(V(values({-800.0})), AdversarialLoss::non_saturating).item() == Approx(800.0));
  // The minimax generator saturates: its gradient at a confidently rejected fake is ~0, the
  // non-saturating one's is ~-1 (seed 000's vanishing gradient, and its cure).
  for (auto [k, want] : {std::pair{AdversarialLoss::minimax, 0.0}, std::pair{AdversarialLoss::non_saturating, -1.0}}) {
    Tape<double> tape;
    V x = tape.leaf(values({-30.0}));
    V g = tape.grad(losses::generator_loss(x, k), {x})[0];
    CHECK(g.value()[0] == Approx(want).margin(1e-12));
  }
}

TEST_CASE("bce_with_logits against a constant target equals the tensor-target form", "[losses][gan]") {
  Generator gen(3);
  const auto l = randn<double>({4, 3}, gen);
  for (double t : {0.0, 1.0, 0.3}) {
    INFO("target " << t);
    Tensor<double> tt(Shape{4, 3});
    tt.fill(t);
    const auto a = losses::bce_with_logits(V(l), t).value();
    const auto b = losses::bce_with_logits(V(l), V(tt)).value();
    for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-14));
    auto fn = [t](std::span<const V> x) { return losses::bce_with_logits(x[0], t); };
    auto r1 = check_gradients(fn, {l});
    INFO(r1.report);
    CHECK(r1.ok);
    auto r2 = check_second_order(fn, {l});
    INFO(r2.report);
    CHECK(r2.ok);
  }
}

TEST_CASE("Adversarial losses: first and second derivatives against finite differences", "[losses][gan][gradcheck]") {
  const auto r = values({2.3, -0.4, 0.7, 1.6});
  const auto f = values({-1.8, 0.2, -0.3});
  for (auto k : kAll) {
    INFO(losses::to_string(k));
    auto d = [k](std::span<const V> x) { return losses::discriminator_loss(x[0], x[1], k); };
    auto g = [k](std::span<const V> x) { return losses::generator_loss(x[0], k); };
    auto r1 = check_gradients(d, {r, f});
    INFO(r1.report);
    CHECK(r1.ok);
    auto r2 = check_second_order(d, {r, f});
    INFO(r2.report);
    CHECK(r2.ok);
    auto r3 = check_gradients(g, {f});
    INFO(r3.report);
    CHECK(r3.ok);
    auto r4 = check_second_order(g, {f});
    INFO(r4.report);
    CHECK(r4.ok);
  }
}

TEST_CASE("Adversarial losses reject outputs that are not one per sample", "[losses][gan]") {
  const V bad(zeros<double>({4, 2}));
  const V ok(zeros<double>({4}));
  CHECK_THROWS_AS(losses::discriminator_loss(bad, ok, AdversarialLoss::hinge), ShapeError);
  CHECK_THROWS_WITH(losses::generator_loss(bad, AdversarialLoss::wasserstein),
                    Catch::Contains("expected fake outputs of one value per sample") && Catch::Contains("[4, 2]"));
}

namespace {

// A small convolutional critic from ops: Conv2d(C -> 3, 3x3, pad 1), LeakyReLU(0.2), Linear(3*H*W -> 1).
struct ConvCritic {
  V w, b, fw, fb;
  V operator()(const V& x) const {
    V h = leaky_relu(conv2d(x, w, b, {.stride = 1, .padding = 1}), 0.2);
    return linear(flatten(h, 1), fw, fb);  // [N, 1]
  }
};

// Images [N, 2, 3, 3]: two channels, so a norm over channels only differs from the full norm.
const Shape kImages{3, 2, 3, 3};

std::vector<Tensor<double>> critic_params(std::uint64_t seed) {
  Generator g(seed);
  return {randn<double>({3, 2, 3, 3}, g), randn<double>({3}, g), randn<double>({1, 27}, g), randn<double>({1}, g)};
}

}  // namespace

TEST_CASE("Gradient penalty: one alpha per sample and the norm over all of a sample's elements", "[losses][gan]") {
  Generator data(11);
  const auto real = randn<double>(kImages, data);
  const auto fake = randn<double>(kImages, data);
  const auto p = critic_params(5);
  const ConvCritic critic{V(p[0]), V(p[1]), V(p[2]), V(p[3])};
  Generator gen(42);
  Generator twin = gen;  // the same draws, for the computation by hand

  Tape<double> tape;
  const auto gp = losses::gradient_penalty_terms(critic, real, fake, gen, {.weight = 10.0});

  // By hand: N uniforms for alpha, the input gradient of sum D(x_hat) per sample.
  Tensor<double> alpha(Shape{3});
  fill_uniform(alpha, twin);
  CHECK(gen.state().offset == twin.state().offset);  // exactly N draws, none per element
  Tensor<double> x_hat(kImages);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 18; ++j)
      x_hat[i * 18 + j] = alpha[i] * real[i * 18 + j] + (1 - alpha[i]) * fake[i * 18 + j];
  const V xv = tape.leaf(x_hat);
  const Tensor<double> gx = tape.grad(sum(critic(xv)), {xv})[0].value();
  double want = 0, channel_only = 0;
  for (std::int64_t i = 0; i < 3; ++i) {
    double sq = 0;
    for (std::int64_t j = 0; j < 18; ++j) sq += gx[i * 18 + j] * gx[i * 18 + j];
    CHECK(gp.norms[i] == Approx(std::sqrt(sq)).epsilon(1e-12));
    want += (std::sqrt(sq) - 1) * (std::sqrt(sq) - 1);
    // The mistake the issue names: the norm over the channel axis alone, per pixel.
    for (std::int64_t px = 0; px < 9; ++px) {
      const double a = gx[i * 18 + px], b = gx[i * 18 + 9 + px];
      channel_only += (std::sqrt(a * a + b * b) - 1) * (std::sqrt(a * a + b * b) - 1) / 9;
    }
  }
  want = 10.0 * want / 3;
  channel_only = 10.0 * channel_only / 3;
  CHECK(gp.penalty.item() == Approx(want).epsilon(1e-12));
  CHECK(std::abs(channel_only - want) > 1e-3 * want);  // the check above tells the two apart

  // Per-element alpha would give another x_hat, hence another penalty.
  Generator elementwise = Generator(42);
  Tensor<double> alpha_e(kImages);
  fill_uniform(alpha_e, elementwise);
  Tensor<double> x_e(kImages);
  for (std::int64_t k = 0; k < x_e.numel(); ++k) x_e[k] = alpha_e[k] * real[k] + (1 - alpha_e[k]) * fake[k];
  const V xe = tape.leaf(x_e);
  const Tensor<double> ge = tape.grad(sum(critic(xe)), {xe})[0].value();
  double per_element = 0;
  for (std::int64_t i = 0; i < 3; ++i) {
    double sq = 0;
    for (std::int64_t j = 0; j < 18; ++j) sq += ge[i * 18 + j] * ge[i * 18 + j];
    per_element += (std::sqrt(sq) - 1) * (std::sqrt(sq) - 1);
  }
  per_element = 10.0 * per_element / 3;
  CHECK(std::abs(per_element - want) > 1e-3 * want);
}

TEST_CASE("Gradient penalty's gradient w.r.t. a convolutional critic's parameters (double backward)",
          "[losses][gan][double-backward][gradcheck]") {
  Generator data(11);
  const auto real = randn<double>(kImages, data);
  const auto fake = randn<double>(kImages, data);
  // The penalty as a function of the critic's parameters; each call draws the same alpha.
  auto f = [&](std::span<const V> p) {
    Generator gen(7);
    const ConvCritic critic{p[0], p[1], p[2], p[3]};
    return losses::gradient_penalty(critic, real, fake, gen, {.weight = 10.0});
  };
  auto r1 = check_gradients(f, critic_params(5));
  INFO(r1.report);
  CHECK(r1.ok);
  // And the critic's full WGAN-GP loss: mean D(fake) - mean D(real) + penalty.
  auto full = [&](std::span<const V> p) {
    Generator gen(7);
    const ConvCritic critic{p[0], p[1], p[2], p[3]};
    V loss = losses::discriminator_loss(critic(V(real)), critic(V(fake)), AdversarialLoss::wasserstein);
    return loss + losses::gradient_penalty(critic, real, fake, gen);
  };
  auto r2 = check_gradients(full, critic_params(6));
  INFO(r2.report);
  CHECK(r2.ok);
}

TEST_CASE("Gradient penalty rejects bad input", "[losses][gan]") {
  Generator gen(1);
  const auto p = critic_params(5);
  const ConvCritic critic{V(p[0]), V(p[1]), V(p[2]), V(p[3])};
  const auto a = zeros<double>(kImages);
  CHECK_THROWS_AS(losses::gradient_penalty(critic, a, zeros<double>({2, 2, 3, 3}), gen), ShapeError);
  CHECK_THROWS_WITH(losses::gradient_penalty(critic, a, a, gen, {.weight = -1.0}),
                    Catch::Contains("expected weight >= 0, got -1"));
  auto wide = [](const V& x) { return flatten(x, 1); };  // 18 outputs per sample
  CHECK_THROWS_WITH(losses::gradient_penalty(wide, a, a, gen), Catch::Contains("one value per sample"));
}

TEST_CASE("Gradient penalty through a spectrally normalised convolutional critic (double backward)",
          "[losses][gan][double-backward][gradcheck]") {
  Generator g(35);
  auto critic =
      nn::Sequential{nn::spectral_norm(nn::Conv2d<double>(2, 3, 3, {.padding = 1, .generator = &g}), {.generator = &g}),
                     nn::LeakyReLU<double>(0.2), nn::Flatten<double>(),
                     nn::spectral_norm(nn::Linear<double>(27, 1, {.generator = &g}), {.generator = &g})};
  Generator data(11);
  const auto real = randn<double>(kImages, data);
  const auto fake = randn<double>(kImages, data);
  for (int i = 0; i < 3; ++i) critic(V(real));  // a few power iterations, then u and v stay fixed
  critic.eval();
  // The penalty's gradient w.r.t. every parameter (W of both layers, their biases), perturbing each
  // in place: the spectral normalisation, the conv and the linear layer are differentiated twice.
  test::expect_module_gradients(critic, [&] {
    Generator alpha(7);
    return losses::gradient_penalty(critic, real, fake, alpha, {.weight = 10.0});
  });
}

}  // namespace losses_adversarial_test
