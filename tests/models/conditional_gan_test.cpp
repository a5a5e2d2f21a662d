#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "genmod/core/parallel.hpp"
#include "genmod/io/model_checkpoint.hpp"
#include "genmod/models/conditional_gan.hpp"
#include "genmod/optim/adam.hpp"
#include "genmod/optim/sgd.hpp"
#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"

namespace models_conditional_gan_test {

using namespace genmod;
using models::ConditioningMode;
using models::GanObjective;

namespace {

using MLPCGAN =
    models::ConditionalGAN<models::ConditionalMLPGenerator<float>, models::ConditionalMLPDiscriminator<float>>;
using DCCGAN =
    models::ConditionalGAN<models::ConditionalDCGANGenerator<float>, models::ConditionalDCGANDiscriminator<float>>;
static_assert(models::ConditionalNetwork<models::ConditionalMLPGenerator<float>>);
static_assert(models::ConditionalNetwork<models::ConditionalDCGANDiscriminator<double>>);
static_assert(!nn::LayerType<models::ConditionalMLPGenerator<float>>);
static_assert(models::ConditionalAdversarialModel<MLPCGAN>);
static_assert(models::ConditionalAdversarialModel<DCCGAN>);

Tensor<std::int64_t> labels_of(std::initializer_list<std::int64_t> v) {
  return from_data<std::int64_t>(Shape{static_cast<std::int64_t>(v.size())}, v);
}

// The 2-D ring of 8 Gaussians of gan_test.cpp, the label being the mode: centre k at angle
// 2 pi k / 8 on the circle of radius 2, standard deviation kSigma (3-sigma discs disjoint).
constexpr int kModes = 8;
constexpr double kRadius = 2.0, kSigma = 0.1;

double centre(std::int64_t k, int axis) {
  const double a = 2 * std::numbers::pi * static_cast<double>(k) / kModes;
  return kRadius * (axis == 0 ? std::cos(a) : std::sin(a));
}

Tensor<std::int64_t> random_modes(std::int64_t n, Generator& g) {
  Tensor<std::int64_t> y(Shape{n});
  for (auto& v : y) v = static_cast<std::int64_t>(g.uniform_int(kModes));
  return y;
}

Tensor<float> ring_batch(const Tensor<std::int64_t>& modes, Generator& g) {
  const std::int64_t n = modes.numel();
  Tensor<float> x(Shape{n, 2});
  Tensor<float> noise(Shape{n, 2});
  fill_normal(noise, g);
  for (std::int64_t i = 0; i < n; ++i)
    for (int a = 0; a < 2; ++a) x[2 * i + a] = static_cast<float>(centre(modes[i], a) + kSigma * noise[2 * i + a]);
  return x;
}

struct RequestedModeHits {
  double fraction = 0;     // samples within 3 sigma of the centre of the mode they were asked for
  double worst_class = 1;  // the same, for the class where it is lowest
  double spread = 0;       // rms per-axis distance to that centre of the hits (sigma if exact)
};

RequestedModeHits requested_mode_hits(const Tensor<float>& s, const Tensor<std::int64_t>& modes) {
  std::vector<int> hits(kModes, 0), asked(kModes, 0);
  double sq = 0;
  int total = 0;
  for (std::int64_t i = 0; i < modes.numel(); ++i) {
    const double dx = s[2 * i] - centre(modes[i], 0), dy = s[2 * i + 1] - centre(modes[i], 1);
    const auto k = static_cast<std::size_t>(modes[i]);
    ++asked[k];
    if (std::sqrt(dx * dx + dy * dy) <= 3 * kSigma) {
      ++hits[k];
      ++total;
      sq += (dx * dx + dy * dy) / 2;
    }
  }
  RequestedModeHits r;
  r.fraction = static_cast<double>(total) / static_cast<double>(modes.numel());
  for (std::size_t k = 0; k < hits.size(); ++k)
    r.worst_class = std::min(r.worst_class, static_cast<double>(hits[k]) / std::max(asked[k], 1));
  r.spread = total ? std::sqrt(sq / total) : 0.0;
  return r;
}

RequestedModeHits train_conditional_ring(ConditioningMode mode, int steps, std::uint64_t seed) {
  manual_seed(seed);
  models::ConditionalMLPGenerator<float> g(
      {.latent_dim = 2, .hidden = 64, .layers = 2, .out = 2, .activation = models::OutputActivation::none}, kModes);
  models::ConditionalMLPDiscriminator<float> d({.in = 2, .hidden = 64, .layers = 2}, kModes, mode);
  MLPCGAN gan(g, d, {.objective = GanObjective::non_saturating, .latent_dim = 2, .noise_seed = seed});
  optim::Adam<float> og{gan.generator().named_parameters(), {.lr = 1e-3, .betas = {0.5, 0.999}}};
  optim::Adam<float> od{gan.discriminator().named_parameters(), {.lr = 1e-3, .betas = {0.5, 0.999}}};
  Generator data(seed, 99);
  for (int step = 0; step < steps; ++step) {
    const auto modes = random_modes(256, data);
    gan.train_step(ring_batch(modes, data), modes, od, og);
  }
  Generator eval(seed, 7);
  const auto asked = random_modes(2000, eval);
  return requested_mode_hits(gan.sample(asked, eval), asked);
}

MLPCGAN small_mlp_cgan(models::GANOptions options = {.latent_dim = 4}, std::int64_t d_classes = 3) {
  return MLPCGAN(models::ConditionalMLPGenerator<float>({.latent_dim = 4, .hidden = 16, .layers = 1, .out = 6}, 3),
                 models::ConditionalMLPDiscriminator<float>({.in = 6, .hidden = 16, .layers = 1}, d_classes), options);
}

}  // namespace

// Measured after 600 generator steps (256 per batch, 1 thread, about 0.6 s each at -O2), seeds
// 1-8: of the samples within 3 sigma of the requested centre (the exact Gaussian puts 0.989
// there), concat D 0.971-0.999 overall and 0.856-0.996 for the worst class, projection D
// 0.985-0.996 and 0.896-0.992; the hits' spread 0.071-0.099 against sigma = 0.1 (a little narrow,
// as GANs are). Seed 1: concat 0.9985 (worst class 0.991, spread 0.075), projection 0.9895
// (0.972, 0.071). The untrained generator puts about 0.001 there; trained against a concat D
// blind to the label (zeros for one_hot), 0.003.
// [slow]: seconds in a Release build, minutes in the Debug + sanitizer build, which leaves [slow] out.
TEST_CASE("ConditionalGAN on a ring of 8 Gaussians puts the samples on the requested mode",
          "[models][gan][cgan][slow]") {
  const int threads = get_num_threads();
  set_num_threads(1);  // 64-wide layers: a second thread costs more than it gives
  for (ConditioningMode mode : {ConditioningMode::concat, ConditioningMode::projection}) {
    const RequestedModeHits r = train_conditional_ring(mode, 600, 1);
    INFO((mode == ConditioningMode::concat ? "concat" : "projection")
         << ": on the requested mode " << r.fraction << ", worst class " << r.worst_class << ", spread " << r.spread);
    CHECK(r.fraction >= 0.9);
    CHECK(r.worst_class >= 0.75);
    // Not collapsed onto the centres, not smeared over the ring.
    CHECK(r.spread > 0.5 * kSigma);
    CHECK(r.spread < 1.5 * kSigma);
  }
  set_num_threads(threads);
}

TEST_CASE("ConditionalGAN generator step freezes D: no gradient reaches D's parameters", "[models][gan][cgan]") {
  manual_seed(3);
  MLPCGAN gan = small_mlp_cgan();
  optim::SGD<float> og{gan.generator().named_parameters(), {.lr = 0.1}};
  optim::SGD<float> od{gan.discriminator().named_parameters(), {.lr = 0.1}};
  Generator data(5);
  const auto labels = labels_of({0, 1, 2, 0, 1, 2, 2, 2});
  gan.discriminator_step(randn<float>({8, 6}, data), labels, od);
  std::vector<Tensor<float>> d_grads, d_values, g_values;
  for (auto& p : gan.discriminator().parameters())
    d_grads.push_back(p.grad().clone()), d_values.push_back(p.value().clone());
  for (auto& p : gan.generator().parameters()) g_values.push_back(p.value().clone());
  const auto s = gan.generator_step(labels, og);
  CHECK(std::isfinite(s.g_loss));
  CHECK(s.generator_updated);
  auto dp = gan.discriminator().parameters();
  for (std::size_t i = 0; i < dp.size(); ++i) {
    for (std::int64_t k = 0; k < dp[i].numel(); ++k) {
      REQUIRE(dp[i].grad()[k] == d_grads[i][k]);  // nothing accumulated into D
      REQUIRE(dp[i].value()[k] == d_values[i][k]);
    }
    CHECK(dp[i].requires_grad());  // the freeze is undone after the step
  }
  bool g_moved = false;
  auto gp = gan.generator().parameters();
  for (std::size_t i = 0; i < gp.size(); ++i)
    for (std::int64_t k = 0; k < gp[i].numel(); ++k) g_moved |= gp[i].value()[k] != g_values[i][k];
  CHECK(g_moved);
}

TEST_CASE("ConditionalGAN train_step with n_critic = 1 generates the fakes once", "[models][gan][cgan]") {
  manual_seed(3);
  MLPCGAN gan = small_mlp_cgan({.latent_dim = 4, .noise_seed = 9});
  optim::SGD<float> og{gan.generator().named_parameters(), {.lr = 0.1}};
  optim::SGD<float> od{gan.discriminator().named_parameters(), {.lr = 0.1}};
  Generator data(5);
  Generator twin = gan.noise();
  gan.draw_latent(8, twin);  // one z batch
  const auto s = gan.train_step(randn<float>({8, 6}, data), labels_of({2, 1, 0, 0, 1, 2, 1, 0}), od, og);
  CHECK(s.generator_updated);
  CHECK(std::isfinite(s.d_loss));
  CHECK(std::isfinite(s.g_loss));
  CHECK(gan.noise().state().offset == twin.state().offset);
}

TEST_CASE("ConditionalGAN n_critic rhythm survives a checkpoint", "[models][gan][cgan]") {
  manual_seed(3);
  auto make = [] { return small_mlp_cgan({.objective = GanObjective::wgan, .latent_dim = 4, .n_critic = 3}); };
  MLPCGAN gan = make();
  optim::SGD<float> og{gan.generator().named_parameters(), {.lr = 0.01}};
  optim::SGD<float> od{gan.discriminator().named_parameters(), {.lr = 0.01}};
  Generator data(5);
  const auto labels = labels_of({0, 1, 2, 0, 1, 2, 0, 1});
  std::vector<bool> updated;
  for (int i = 0; i < 4; ++i)
    updated.push_back(gan.train_step(randn<float>({8, 6}, data), labels, od, og).generator_updated);
  CHECK(updated == std::vector<bool>{false, false, true, false});
  for (auto& p : gan.discriminator().parameters())
    for (float w : p.value()) REQUIRE(std::abs(w) <= 0.01f);  // WGAN's clamp
  test::TempDir dir("cgan_test");
  const std::string path = dir.file("cgan.npz");
  io::save_checkpoint(path, gan);
  MLPCGAN back = make();
  io::load_checkpoint(path, back);
  optim::SGD<float> og2{back.generator().named_parameters(), {.lr = 0.01}};
  optim::SGD<float> od2{back.discriminator().named_parameters(), {.lr = 0.01}};
  CHECK_FALSE(back.train_step(randn<float>({8, 6}, data), labels, od2, og2).generator_updated);
  CHECK(back.train_step(randn<float>({8, 6}, data), labels, od2, og2).generator_updated);
}

TEST_CASE("ConditionalGAN rejects labels outside the classes and of the wrong size", "[models][gan][cgan]") {
  manual_seed(3);
  MLPCGAN gan = small_mlp_cgan();
  optim::SGD<float> og{gan.generator().named_parameters(), {.lr = 0.1}};
  optim::SGD<float> od{gan.discriminator().named_parameters(), {.lr = 0.1}};
  Generator g(1);
  const auto real = randn<float>({4, 6}, g);
  const auto offset = gan.noise().state().offset;
  CHECK_THROWS_WITH(gan.train_step(real, labels_of({0, 1, 3, 2}), od, og),
                    Catch::Contains("ConditionalGAN: label 3 at position 2 is outside the classes [0, 3)"));
  CHECK_THROWS_AS(gan.train_step(real, labels_of({0, 1, 2, 3}), od, og), ValueError);
  CHECK_THROWS_WITH(gan.discriminator_step(real, labels_of({-1, 0, 0, 0}), od),
                    Catch::Contains("label -1 at position 0"));
  CHECK_THROWS_WITH(gan.generator_step(labels_of({0, 5}), og),
                    Catch::Contains("label 5 at position 1") && Catch::Contains("[0, 3)"));
  CHECK_THROWS_WITH(gan.sample(labels_of({1, 7}), g), Catch::Contains("label 7 at position 1"));
  CHECK(gan.noise().state().offset == offset);  // a refused step draws nothing
  // Wrong sizes are shape errors naming the batch.
  CHECK_THROWS_WITH(gan.train_step(real, labels_of({0, 1, 2}), od, og),
                    Catch::Contains("expected labels [4] (one per sample of the real batch [4, 6]), got [3]"));
  CHECK_THROWS_AS(gan.discriminator_step(real, labels_of({0, 1, 2, 0, 1}), od), ShapeError);
  CHECK_THROWS_WITH(gan.train_step(real, from_data<std::int64_t>({4, 1}, {0, 1, 2, 0}), od, og),
                    Catch::Contains("expected labels of rank 1"));
  CHECK_THROWS_AS(gan.sample(Tensor<std::int64_t>(Shape{0}), g), ShapeError);
  CHECK_THROWS_AS(gan.sample(0, g), ValueError);
  CHECK_THROWS_WITH(gan.generate(Var<float>(zeros<float>({2, 4})), labels_of({0})),
                    Catch::Contains("expected labels [2] (one per sample of z), got [1]"));
  // The networks check on their own too.
  models::ConditionalMLPDiscriminator<float> d({.in = 6, .hidden = 4, .layers = 1}, 3, ConditioningMode::projection);
  CHECK_THROWS_WITH(
      d.forward(Var<float>(zeros<float>({2, 6})), labels_of({0, 3})),
      Catch::Contains("ConditionalMLPDiscriminator: label 3 at position 1 is outside the classes [0, 3)"));
  models::ConditionalDCGANGenerator<float> dg({.latent_dim = 4, .width = 2}, 10);
  CHECK_THROWS_WITH(
      dg.forward(Var<float>(zeros<float>({1, 4})), labels_of({10})),
      Catch::Contains("ConditionalDCGANGenerator: label 10 at position 0 is outside the classes [0, 10)"));
}

TEST_CASE("ConditionalGAN rejects bad options, mismatched networks and shapes", "[models][gan][cgan]") {
  CHECK_THROWS_WITH(small_mlp_cgan({.latent_dim = 4, .n_critic = 0}), Catch::Contains("expected n_critic >= 1, got 0"));
  CHECK_THROWS_WITH(small_mlp_cgan({.objective = GanObjective::wgan, .latent_dim = 4, .clip = 0}),
                    Catch::Contains("expected a clip value > 0"));
  CHECK_THROWS_WITH(small_mlp_cgan({.objective = GanObjective::wgan_gp, .latent_dim = 4, .penalty = {.weight = -1}}),
                    Catch::Contains("gradient-penalty weight >= 0, got -1"));
  CHECK_THROWS_WITH(small_mlp_cgan({.latent_dim = 4}, 4),
                    Catch::Contains("the generator has 3 classes but the discriminator 4"));
  CHECK_THROWS_AS(models::ConditionalMLPGenerator<float>({}, 0), ValueError);
  CHECK_THROWS_AS(models::ConditionalDCGANDiscriminator<float>({}, -2), ValueError);

  MLPCGAN gan = small_mlp_cgan();
  CHECK(gan.num_classes() == 3);
  optim::SGD<float> og{gan.generator().named_parameters(), {.lr = 0.1}};
  optim::SGD<float> od{gan.discriminator().named_parameters(), {.lr = 0.1}};
  const auto labels = labels_of({0, 1});
  CHECK_THROWS_WITH(gan.discriminator_step(zeros<float>({2, 7}), labels, od),
                    Catch::Contains("generator makes samples [2, 6]") && Catch::Contains("[2, 7]"));
  CHECK_THROWS_WITH(gan.train_step(zeros<float>({2}), labels, od, og),
                    Catch::Contains("expected a real batch [N, ...]"));
  CHECK_THROWS_WITH(gan.generate(Var<float>(zeros<float>({2, 5})), labels), Catch::Contains("expected z [N, 4]"));
  // A discriminator that does not take the generator's samples.
  MLPCGAN wrong(models::ConditionalMLPGenerator<float>({.latent_dim = 4, .hidden = 8, .layers = 1, .out = 6}, 3),
                models::ConditionalMLPDiscriminator<float>({.in = 5, .hidden = 8, .layers = 1}, 3), {.latent_dim = 4});
  optim::SGD<float> og2{wrong.generator().named_parameters(), {.lr = 0.1}};
  CHECK_THROWS_WITH(wrong.generator_step(labels, og2),
                    Catch::Contains("the discriminator does not accept the generator's samples [2, 6]"));
  // Sampling cycles through the classes.
  Generator g(2);
  CHECK(gan.sample(7, g).shape() == Shape{7, 6});
  const auto cyc = models::cyclic_labels(7, 3);
  CHECK(std::vector<std::int64_t>(cyc.begin(), cyc.end()) == std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0});
}

TEST_CASE("Conditional DCGAN networks: shapes in both conditioning modes, label planes, WGAN-GP step",
          "[models][gan][cgan]") {
  manual_seed(4);
  constexpr std::int64_t w = 4, k = 10;
  models::ConditionalDCGANGenerator<float> g({.latent_dim = 8, .width = w}, k);
  // The DCGAN generator's names, its fc K inputs wider.
  bool found_fc = false;
  for (auto& np : g.named_parameters())
    if (np.name == "fc.weight") found_fc = np.parameter.value().shape() == Shape{2 * w * 49, 8 + k};
  CHECK(found_fc);
  Generator gen(1);
  const auto labels = labels_of({3, 0, 9});
  const Var<float> x = g.forward(Var<float>(randn<float>({3, 8}, gen)), labels);
  CHECK(x.shape() == Shape{3, 1, 28, 28});

  // Plane y of each sample is all ones, the others zeros.
  const auto planes = models::detail::label_planes<float>(labels, k, 28, 28);
  REQUIRE(planes.shape() == Shape{3, k, 28, 28});
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t c = 0; c < k; ++c)
      for (std::int64_t p = 0; p < 28 * 28; ++p)
        REQUIRE(planes[(i * k + c) * 784 + p] == (c == labels[i] ? 1.0f : 0.0f));

  for (ConditioningMode mode : {ConditioningMode::concat, ConditioningMode::projection}) {
    models::ConditionalDCGANDiscriminator<float> d({.width = w, .norm = models::CriticNorm::layer}, k, mode);
    INFO((mode == ConditioningMode::concat ? "concat" : "projection"));
    CHECK(d.c1.weight.shape() == Shape{w, 1 + (mode == ConditioningMode::concat ? k : 0), 4, 4});
    CHECK(static_cast<bool>(d.embed) == (mode == ConditioningMode::projection));
    const auto images = randn<float>({3, 1, 28, 28}, gen);
    const Var<float> out = d.forward(Var<float>(images), labels);
    REQUIRE(out.shape() == Shape{3});
    // Each sample is scored with its own label: the batch agrees with the samples one by one.
    for (std::int64_t i = 0; i < 3; ++i) {
      Tensor<float> one(Shape{1, 1, 28, 28});
      std::copy(images.data() + i * 784, images.data() + (i + 1) * 784, one.data());
      const float alone = d.forward(Var<float>(one), labels_of({labels[i]})).value()[0];
      CHECK(alone == Approx(out.value()[i]).epsilon(1e-5).margin(1e-6));
    }
    if (mode == ConditioningMode::projection) {
      // logit = psi(phi) + <E[y], phi>, with phi not depending on y.
      const Var<float> phi = d.features(Var<float>(images), labels);
      REQUIRE(phi.shape() == Shape{3, 2 * w * 49});
      const Var<float> psi = d.fc(phi);
      for (std::int64_t i = 0; i < 3; ++i) {
        double dot = 0;
        for (std::int64_t f = 0; f < phi.dim(1); ++f)
          dot += static_cast<double>(d.embed->weight.value()(labels[i], f)) * phi.value()(i, f);
        CHECK(out.value()[i] == Approx(psi.value()[i] + dot).epsilon(1e-5).margin(1e-5));
      }
    }
    CHECK_THROWS_WITH(d.forward(Var<float>(zeros<float>({2, 1, 28, 27})), labels_of({0, 1})),
                      Catch::Contains("expected images [N, 1, 28, 28]"));
    CHECK_THROWS_WITH(d.forward(Var<float>(zeros<float>({2, 1, 28, 28})), labels_of({0})),
                      Catch::Contains("expected labels [2]"));
  }

  // WGAN-GP refuses the BatchNorm critic; one step with LayerNorm (concat) and with no
  // normalisation (projection) reports the penalty of the critic at the batch's labels.
  CHECK_THROWS_WITH(DCCGAN(g, models::ConditionalDCGANDiscriminator<float>({.width = w}, k),
                           {.objective = GanObjective::wgan_gp, .latent_dim = 8}),
                    Catch::Contains("critic holds a BatchNorm ('bn2')"));
  for (auto [norm, mode] : {std::pair{models::CriticNorm::layer, ConditioningMode::concat},
                            std::pair{models::CriticNorm::none, ConditioningMode::projection}}) {
    DCCGAN wgan(models::ConditionalDCGANGenerator<float>({.latent_dim = 8, .width = w}, k),
                models::ConditionalDCGANDiscriminator<float>({.width = w, .norm = norm}, k, mode),
                {.objective = GanObjective::wgan_gp, .latent_dim = 8, .n_critic = 5});
    optim::Adam<float> og{wgan.generator().named_parameters(), {.lr = 1e-4}};
    optim::Adam<float> od{wgan.discriminator().named_parameters(), {.lr = 1e-4}};
    const auto st = wgan.train_step(randn<float>({4, 1, 28, 28}, gen), labels_of({1, 2, 3, 9}), od, og);
    CHECK(std::isfinite(st.penalty));
    CHECK(st.gradient_norm > 0);
    CHECK_FALSE(st.generator_updated);
    wgan.eval();
    const auto s = wgan.sample(labels_of({5, 5}), gen);
    CHECK(s.shape() == Shape{2, 1, 28, 28});
  }
}

TEST_CASE("Conditional MLP discriminator: projection formula and gradients to second order",
          "[models][gan][cgan][gradcheck]") {
  using V = Var<double>;
  manual_seed(6);
  const auto labels = labels_of({2, 0, 1, 2});
  for (ConditioningMode mode : {ConditioningMode::concat, ConditioningMode::projection}) {
    INFO((mode == ConditioningMode::concat ? "concat" : "projection"));
    models::ConditionalMLPDiscriminator<double> d({.in = 3, .hidden = 5, .layers = 2}, 3, mode);
    // D(x, y) as a function of x: first and second derivatives (the penalty differentiates twice).
    GENMOD_CHECK_GRADIENTS([&](std::span<const V> v) { return d.forward(v[0], labels); }, test::rnd({4, 3}, 7));
    // The WGAN-GP penalty with the labels held fixed, w.r.t. every parameter of D (double backward).
    const auto real = test::rnd({4, 3}, 8), fake = test::rnd({4, 3}, 9);
    test::expect_module_gradients(d, [&] {
      Generator alpha(11);  // the same alpha in every evaluation
      return losses::gradient_penalty([&](const V& x) { return d.forward(x, labels); }, real, fake, alpha);
    });
    if (mode == ConditioningMode::projection) {
      // D(x, a) - D(x, b) = <E[a] - E[b], phi(x)>: the class enters through the embedding only.
      const auto x = test::rnd({4, 3}, 10);
      const auto other = labels_of({0, 1, 2, 0});
      const V phi = d.features(V(x), labels);
      const V da = d.forward(V(x), labels), db = d.forward(V(x), other);
      for (std::int64_t i = 0; i < 4; ++i) {
        double diff = 0;
        for (std::int64_t f = 0; f < 5; ++f)
          diff += (d.embed->weight.value()(labels[i], f) - d.embed->weight.value()(other[i], f)) * phi.value()(i, f);
        CHECK(da.value()[i] - db.value()[i] == Approx(diff).epsilon(1e-12).margin(1e-12));
      }
    }
  }
}

}  // namespace models_conditional_gan_test
