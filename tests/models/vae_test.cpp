#include <catch2/catch.hpp>

#include "genmod/data/fashion_mnist.hpp"
#include "genmod/eval/elbo.hpp"
#include "genmod/models/conditional_vae.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"

namespace models_vae_test {

using namespace genmod;

namespace {

auto make_vae(std::int64_t z = 8) {
  return models::VAE{nn::Sequential{nn::Linear(784, 128), nn::ReLU(), nn::Linear(128, 2 * z)},
                     nn::Sequential{nn::Linear(z, 128), nn::ReLU(), nn::Linear(128, 784)}, dist::Bernoulli{}};
}

Tensor<float> fmnist_slice(std::int64_t n) {
  return data::FashionMNIST::load(data::Split::test).float_images(data::ImageLayout::flat).rows(0, n).clone();
}

}  // namespace

TEST_CASE("VAE loss terms: signs, reductions and the negative ELBO", "[models][vae]") {
  manual_seed(0);
  auto vae = make_vae();
  CHECK(vae.latent_dim() == 8);
  auto names = vae.named_parameters();
  CHECK(names[0].name == "encoder.0.weight");
  CHECK(names.back().name == "decoder.2.bias");
  Generator g(1);
  Tensor<float> x = rand<float>({16, 784}, g);
  Generator g1(5), g2(5);
  auto out = vae.loss(Var<float>(x), g1);
  CHECK(out.reconstruction.item() > 0);
  CHECK(out.kl.item() >= 0);
  CHECK(out.loss.item() == Approx(out.reconstruction.item() + out.kl.item()));
  // negative_elbo per sample, with the same noise, averages to the loss.
  auto per = vae.negative_elbo(Var<float>(x), g2).value();
  double m = 0;
  for (float v : per) m += v;
  CHECK(m / 16 == Approx(out.loss.item()).epsilon(1e-5));
  // beta weights the KL term.
  auto beta_vae = models::VAE{vae.encoder, vae.decoder, dist::Bernoulli{}, {.beta = 4.0}};
  Generator g3(5);
  auto b = beta_vae.loss(Var<float>(x), g3);
  CHECK(b.loss.item() == Approx(b.reconstruction.item() + 4.0f * b.kl.item()));
}

TEST_CASE("VAE trains on a Fashion-MNIST slice: the negative ELBO falls", "[models][vae][slow]") {
  manual_seed(1);
  auto vae = make_vae(8);
  optim::Adam opt{vae.named_parameters(), {.lr = 1e-3}};
  const Tensor<float> x = fmnist_slice(512);
  Generator ge(2);
  const double before = eval::negative_elbo(vae, x, ge);
  for (int epoch = 0; epoch < 8; ++epoch)
    for (std::int64_t s = 0; s < 512; s += 64) {
      Tape<float> tape;
      Var<float> loss = vae.loss(Var<float>(x.rows(s, 64)));
      tape.backward(loss);
      opt.step();
      opt.zero_grad();
    }
  const double after = eval::negative_elbo(vae, x, ge);
  INFO("negative ELBO before " << before << " after " << after);
  CHECK(after < before - 100);  // 543 nats at init, ~350 after these 64 steps
  // The IWAE bound is tighter than the ELBO on average, and both are finite.
  const double iwae = eval::iwae_nll(vae, x.rows(0, 32).clone(), 50, ge);
  const double elbo32 = eval::negative_elbo(vae, x.rows(0, 32).clone(), ge);
  INFO("iwae " << iwae << " elbo " << elbo32);
  CHECK(std::isfinite(iwae));
  CHECK(iwae < elbo32 + 1.0);
  // Samples and reconstructions are images in [0, 1].
  auto samples = vae.sample(4);
  CHECK(samples.shape() == (Shape{4, 784}));
  for (float v : samples) CHECK((v >= 0.f && v <= 1.f));
  auto interp = vae.interpolate(x.rows(0, 1), x.rows(1, 1), 5, models::Interpolation::spherical);
  CHECK(interp.shape() == (Shape{5, 784}));
  auto rec_first = vae.reconstruct(Var<float>(x.rows(0, 1))).value();
  for (std::int64_t i = 0; i < 784; ++i) CHECK(interp[i] == Approx(rec_first[i]).margin(1e-5));
}

TEST_CASE("IWAE with k = 1 equals the ELBO in expectation, and more samples tighten it", "[eval][iwae]") {
  manual_seed(3);
  auto vae = make_vae(4);
  Generator g(4);
  Tensor<float> x = rand<float>({8, 784}, g);
  for (auto& v : x) v = v > 0.5f ? 1.f : 0.f;
  Generator g1(7), g2(7), g3(8);
  const double iw1 = eval::iwae_nll(vae, x, 1, g1, {.chunk = 1});
  // k = 1 draws the same z as negative_elbo with the same generator state (mean codes encoded once).
  double elbo = 0;
  for (int r = 0; r < 200; ++r) elbo += eval::negative_elbo(vae, x, g2);
  elbo /= 200;
  const double iw100 = eval::iwae_nll(vae, x, 100, g3);
  INFO("iwae1 " << iw1 << " elbo(avg) " << elbo << " iwae100 " << iw100);
  CHECK(iw1 == Approx(elbo).epsilon(0.01));
  CHECK(iw100 <= elbo);
  CHECK_THROWS_AS(eval::iwae_nll(vae, x, 0, g3), ValueError);
}

TEST_CASE("Conditional VAE: condition shapes, class samples and attribute arithmetic", "[models][cvae]") {
  manual_seed(5);
  const std::int64_t z = 4, c = 10;
  models::ConditionalVAE cvae{nn::Sequential{nn::Linear(784 + c, 64), nn::ReLU(), nn::Linear(64, 2 * z)},
                              nn::Sequential{nn::Linear(z + c, 64), nn::ReLU(), nn::Linear(64, 784)}, dist::Bernoulli{},
                              {.latent_dim = z}};
  Generator g(6);
  Tensor<float> x = rand<float>({6, 784}, g);
  Tensor<float> cond = one_hot<float>(from_data<std::int64_t>({6}, {0, 1, 2, 3, 4, 5}), c);
  auto out = cvae.loss(Var<float>(x), Var<float>(cond));
  CHECK(out.loss.item() == Approx(out.reconstruction.item() + out.kl.item()));
  auto s = cvae.sample(cond);
  CHECK(s.shape() == (Shape{6, 784}));
  CHECK_THROWS_AS(cvae.loss(Var<float>(x), Var<float>(zeros<float>({5, c}))), ShapeError);
  // attribute arithmetic
  auto with = from_data<float>({2, 2}, {1, 2, 3, 4});
  auto without = from_data<float>({1, 2}, {0, 1});
  auto v = models::attribute_vector(with, without);
  CHECK(v[0] == 2.f);
  CHECK(v[1] == 2.f);
  auto moved = models::apply_attribute(without, v, 0.5);
  CHECK(moved(0, 1) == 2.f);
  CHECK_THROWS_AS(models::attribute_vector(with, zeros<float>({1, 3})), ShapeError);
}

}  // namespace models_vae_test
