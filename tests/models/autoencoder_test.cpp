#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>

#include "genmod/data/fashion_mnist.hpp"
#include "genmod/eval/psnr.hpp"
#include "genmod/eval/subspace.hpp"
#include "genmod/losses/sparsity.hpp"
#include "genmod/models/autoencoder.hpp"
#include "genmod/models/denoising_autoencoder.hpp"
#include "genmod/models/pca.hpp"
#include "genmod/models/sparse_autoencoder.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"

namespace models_autoencoder_test {

using namespace genmod;

namespace {

Tensor<float> fmnist(data::Split split, std::int64_t n) {
  return data::FashionMNIST::load(split).float_images(data::ImageLayout::flat).rows(0, n).clone();
}

/// Full-pass epochs of Adam over x in mini-batches; returns the mean loss of the first and last epoch.
template <class Model>
std::pair<double, double> train(Model& model, const Tensor<float>& x, int epochs, std::int64_t batch, double lr) {
  optim::Adam opt{model.named_parameters(), {.lr = lr}};
  double first = 0, last = 0;
  for (int e = 0; e < epochs; ++e) {
    double total = 0;
    int steps = 0;
    for (std::int64_t s = 0; s + batch <= x.dim(0); s += batch, ++steps) {
      Tape<float> tape;
      Var<float> loss = model.loss(Var<float>(x.rows(s, batch)));
      tape.backward(loss);
      opt.step();
      opt.zero_grad();
      total += loss.item();
    }
    (e == 0 ? first : last) = total / steps;
  }
  return {first, last};
}

}  // namespace

TEST_CASE("Autoencoder: per-sample errors, their mean, and the batched helpers", "[models][autoencoder]") {
  manual_seed(0);
  models::Autoencoder ae{nn::Sequential{nn::Linear(6, 3), nn::Tanh()}, nn::Sequential{nn::Linear(3, 6)}};
  Generator g(1);
  const Tensor<float> x = rand<float>({5, 6}, g);
  const Tensor<float> out = ae.reconstruct(Var<float>(x)).value();
  const Tensor<float> err = ae.reconstruction_error(Var<float>(x)).value();
  double mean_err = 0;
  for (std::int64_t i = 0; i < 5; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < 6; ++j) s += std::pow(static_cast<double>(out(i, j)) - x(i, j), 2.0);
    CHECK(err[i] == Approx(s).epsilon(1e-5));  // squared error summed over the features
    mean_err += s / 5;
  }
  auto l = ae.loss(Var<float>(x));
  CHECK(l.loss.item() == Approx(mean_err).epsilon(1e-5));
  CHECK(l.penalty.item() == 0.f);
  // Batched helpers agree with the one-shot forms, for batch sizes that do not divide N.
  const Tensor<float> scores = ae.anomaly_score(x, 2);
  const Tensor<float> codes = ae.encode_all(x, 3);
  const Tensor<float> recon = ae.reconstruct_all(x, 4);
  CHECK(codes.shape() == (Shape{5, 3}));
  for (std::int64_t i = 0; i < 5; ++i) {
    CHECK(scores[i] == Approx(err[i]).epsilon(1e-5));
    for (std::int64_t j = 0; j < 6; ++j) CHECK(recon(i, j) == Approx(out(i, j)).epsilon(1e-5));
  }
  CHECK(ae.is_training());  // restored after the batched helpers
  CHECK_THROWS_AS(ae.anomaly_score(x, 0), ValueError);
  CHECK_THROWS_AS(ae.anomaly_score(Tensor<float>{}), ShapeError);
  // BCE: the decoder outputs logits; decode() maps them to [0, 1].
  models::Autoencoder bce{ae.encoder, ae.decoder, {.reconstruction = models::Reconstruction::bce_with_logits}};
  for (float v : bce.reconstruct_all(x)) CHECK((v > 0.f && v < 1.f));
  CHECK(bce.loss(Var<float>(x)).loss.item() > 0.f);
  // A decoder whose output does not match the input is a shape error that says so.
  models::Autoencoder bad{nn::Sequential{nn::Linear(6, 3)}, nn::Sequential{nn::Linear(3, 5)}};
  CHECK_THROWS_AS(bad.loss(Var<float>(x)), ShapeError);
  CHECK(ae.named_parameters()[0].name == "encoder.0.weight");
}

TEST_CASE("PCA: reconstructs exactly with every component, and matches the SVD of the centred data", "[models][pca]") {
  Generator g(3);
  Tensor<float> x = randn<float>({40, 6}, g);
  auto full = models::PCA<float>::fit(x, 6);
  const Tensor<float> back = full.decode(full.encode(x));
  for (std::int64_t i = 0; i < x.numel(); ++i) CHECK(back[i] == Approx(x[i]).margin(1e-4));
  auto p = models::PCA<float>::fit(x, 3);
  const auto& v = p.explained_variance();
  CHECK(v[0] >= v[1]);
  CHECK(v[1] >= v[2]);
  CHECK(p.explained_variance_ratio() < 1.0);
  Eigen::MatrixXd xc = x.matrix().cast<double>();
  xc.rowwise() -= xc.colwise().mean();
  // JacobiSVD (already instantiated by eval::principal_angles_degrees): BDCSVD alone would add
  // over a minute to this file's compile time in the sanitizer build.
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(xc, Eigen::ComputeThinV);
  const auto angles = eval::principal_angles_degrees(p.components(), Eigen::MatrixXd(svd.matrixV().leftCols(3)));
  CHECK(angles.back() < 1e-3);
  CHECK(v[0] == Approx(svd.singularValues()(0) * svd.singularValues()(0) / 39).epsilon(1e-6));
  CHECK_THROWS_AS(models::PCA<float>::fit(x, 7), ValueError);
  CHECK_THROWS_AS(models::PCA<float>::fit(x, 0), ValueError);
  CHECK_THROWS_AS(p.encode(randn<float>({2, 5}, g)), ShapeError);
  CHECK_THROWS_AS(p.decode(randn<float>({2, 4}, g)), ShapeError);
}

TEST_CASE("Principal angles: hand cases, basis independence, and tiny angles", "[eval][subspace]") {
  const double t = 0.3;  // radians
  Eigen::MatrixXd a(3, 1), b(3, 1);
  a << 1, 0, 0;
  b << std::cos(t), std::sin(t), 0;
  CHECK(eval::principal_angles_degrees(a, b)[0] == Approx(t * 180 / std::numbers::pi).epsilon(1e-12));
  // span{e1, e2} against span{e1 + e2, e2 + 1e-4 e3}: one angle 0; the other is that of e2 - e1 + 2e-4 e3
  // with the plane, atan(2e-4 / ||e2 - e1||) = atan(sqrt(2) 1e-4).
  Eigen::MatrixXd p(3, 2), q(3, 2);
  p << 1, 0, 0, 1, 0, 0;
  q << 1, 0, 1, 1, 0, 1e-4;
  const auto angles = eval::principal_angles_degrees(p, q);
  CHECK(angles[0] == Approx(0.0).margin(1e-9));
  CHECK(angles[1] == Approx(std::atan(1e-4 * std::sqrt(2.0)) * 180 / std::numbers::pi).epsilon(1e-6));
  // The same subspace in two bases: every angle 0.
  Eigen::MatrixXd r = Eigen::MatrixXd::Random(10, 4);
  Eigen::MatrixXd mix = Eigen::MatrixXd::Random(4, 4) + 4 * Eigen::MatrixXd::Identity(4, 4);
  for (double ang : eval::principal_angles_degrees(r, Eigen::MatrixXd(r * mix))) CHECK(ang < 1e-5);
  CHECK_THROWS_AS(eval::principal_angles_degrees(Eigen::MatrixXd(3, 1), Eigen::MatrixXd(4, 1)), ShapeError);
}

// The claim of seed 002: a linear autoencoder trained with squared error finds the principal
// subspace. Its global minima are exactly the rank-k projections on the top-k PCA subspace
// (Baldi & Hornik 1989); the test shows our tape and optimizer get there on real data. The
// 16th/17th eigenvalues of these 3000 images differ by 8 %, which is what makes the last angle
// slow to close: an orthogonal initialization (no plateau of small weights) and Adam at 1e-2
// reach about 0.4 degrees in 3000 full-batch steps (~20 s in a Release build).
TEST_CASE("A linear autoencoder learns the PCA subspace of Fashion-MNIST", "[models][autoencoder][pca][slow]") {
  constexpr std::int64_t n = 3000, k = 16;
  constexpr int steps = 3000;
  const Tensor<float> x = fmnist(data::Split::train, n);
  // The reference subspace: the top eigenvectors of the centred data's Gram matrix (its right
  // singular vectors), formed with Eigen's own product rather than PCA::fit's blocked covariance.
  Eigen::MatrixXd xc = x.matrix().cast<double>();
  xc.rowwise() -= xc.colwise().mean();
  const Eigen::MatrixXd gram = xc.transpose() * xc;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);  // eigenvalues ascending
  const Eigen::MatrixXd top = eig.eigenvectors().rightCols(k);
  // PCA::fit agrees with it.
  auto pca = models::PCA<float>::fit(x, k);
  CHECK(eval::principal_angles_degrees(pca.components(), top).back() < 1e-3);

  Generator g(11);
  models::Autoencoder ae{nn::Sequential{nn::Linear(784, k)}, nn::Sequential{nn::Linear(k, 784)}};
  nn::init::orthogonal(ae.decoder.get<0>().weight.value(), g);
  ae.encoder.get<0>().weight.value().matrix() = ae.decoder.get<0>().weight.value().matrix().transpose();
  optim::Adam opt{ae.named_parameters(), {.lr = 1e-2}};
  const Var<float> all(x);
  double loss = 0;
  for (int s = 0; s < steps; ++s) {
    constexpr int flat = steps * 4 / 5;  // constant rate, then a cosine to zero
    opt.set_lr(s < flat ? 1e-2 : 0.5e-2 * (1 + std::cos(std::numbers::pi * (s - flat) / (steps - flat))));
    Tape<float> tape;
    Var<float> l = ae.loss(all);
    tape.backward(l);
    opt.step();
    opt.zero_grad();
    loss = l.item();
  }
  const auto angles =
      eval::principal_angles_degrees(Eigen::MatrixXd(ae.decoder.get<0>().weight.value().matrix().cast<double>()), top);
  INFO("principal angles: first " << angles.front() << ", median " << angles[k / 2] << ", last " << angles.back());
  CHECK(angles.back() <= 1.0);
  // Its error is PCA's: the variance outside the top-k subspace, per image.
  const double tail = eig.eigenvalues().head(eig.eigenvalues().size() - k).sum() / n;
  INFO("autoencoder loss " << loss << ", PCA residual " << tail);
  CHECK(loss == Approx(tail).epsilon(2e-3));
}

TEST_CASE("SparseAutoencoder: the KL penalty pulls mean activations to rho, L1 silences units",
          "[models][autoencoder][sparse][slow]") {
  const Tensor<float> x = fmnist(data::Split::test, 1024);
  auto encoder = [] { return nn::Sequential{nn::Linear(784, 64), nn::Sigmoid()}; };
  auto decoder = [] { return nn::Sequential{nn::Linear(64, 784)}; };
  manual_seed(4);
  models::Autoencoder plain{encoder(), decoder()};
  manual_seed(4);
  models::SparseAutoencoder kl{
      encoder(), decoder(), {.penalty = models::SparsityPenalty::bernoulli_kl, .weight = 10.0, .rho = 0.05}};
  manual_seed(4);
  models::SparseAutoencoder l1{encoder(), decoder(), {.penalty = models::SparsityPenalty::l1, .weight = 0.3}};
  const auto [p0, p1] = train(plain, x, 40, 64, 3e-3);
  const auto [k0, k1] = train(kl, x, 40, 64, 3e-3);
  const auto [l0, l1_end] = train(l1, x, 40, 64, 3e-3);
  CHECK(p1 < p0);
  CHECK(k1 < k0);
  CHECK(l1_end < l0);
  const auto s_plain = losses::sparsity_stats(plain.encode_all(x));
  const auto s_kl = losses::sparsity_stats(kl.encode_all(x));
  const auto s_l1 = losses::sparsity_stats(l1.encode_all(x));
  INFO("mean activation: plain " << s_plain.mean_activation << ", KL " << s_kl.mean_activation << ", L1 "
                                 << s_l1.mean_activation << "; near zero: plain " << s_plain.near_zero_fraction
                                 << ", KL " << s_kl.near_zero_fraction << ", L1 " << s_l1.near_zero_fraction);
  CHECK(std::abs(s_kl.mean_activation - 0.05) < 0.02);
  CHECK(std::abs(s_kl.mean_activation - 0.05) < 0.25 * std::abs(s_plain.mean_activation - 0.05));
  CHECK(s_l1.near_zero_fraction > s_plain.near_zero_fraction + 0.2);
  // The reported penalty is the weighted one.
  auto out = kl.loss(Var<float>(x.rows(0, 64)));
  CHECK(out.penalty.item() == Approx(10.0 * kl.penalty(kl.encode(Var<float>(x.rows(0, 64)))).item()).epsilon(1e-5));
  CHECK(out.loss.item() == Approx(out.reconstruction.item() + out.penalty.item()).epsilon(1e-5));
  CHECK_THROWS_AS(models::SparseAutoencoder(encoder(), decoder(), {.rho = 1.0}), ValueError);
  CHECK_THROWS_AS(models::SparseAutoencoder(encoder(), decoder(), {.weight = -1.0}), ValueError);
}

TEST_CASE("DenoisingAutoencoder: trained on Gaussian noise, it raises the PSNR of noisy images",
          "[models][autoencoder][denoising][slow]") {
  const Tensor<float> train_x = fmnist(data::Split::train, 2048);
  const Tensor<float> test_x = fmnist(data::Split::test, 256);
  manual_seed(5);
  models::DenoisingAutoencoder dae{nn::Sequential{nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 64), nn::ReLU()},
                                   nn::Sequential{nn::Linear(64, 256), nn::ReLU(), nn::Linear(256, 784)},
                                   {.reconstruction = models::Reconstruction::bce_with_logits,
                                    .corruption = {.kind = data::Corruption::gaussian, .level = 0.3f},
                                    .seed = 6}};
  const auto [first, last] = train(dae, train_x, 8, 64, 1e-3);
  CHECK(last < first);
  Generator g(7);
  const Tensor<float> noisy = dae.corrupt(test_x, g);
  const double before = eval::mean_psnr_per_sample(test_x, noisy);
  const double after = eval::mean_psnr_per_sample(test_x, dae.denoise(noisy));
  INFO("PSNR noisy " << before << " dB, denoised " << after << " dB");
  CHECK(before == Approx(10.5).margin(0.5));  // sigma = 0.3 on [0, 1]: 10 log10(1 / 0.09) = 10.46 dB
  CHECK(after > before + 5.0);
  // The corruption is the policy's: masking zeroes about p of the values.
  models::DenoisingAutoencoder masked{
      dae.encoder, dae.decoder, {.corruption = {.kind = data::Corruption::masking, .level = 0.5f}}};
  const Tensor<float> ones = full<float>({100, 784}, 1.f);
  double zeros_seen = 0;
  for (float v : masked.corrupt(ones, g)) zeros_seen += v == 0.f;
  CHECK(zeros_seen / ones.numel() == Approx(0.5).margin(0.01));
  CHECK_THROWS_AS(models::DenoisingAutoencoder(dae.encoder, dae.decoder,
                                               {.corruption = {.kind = data::Corruption::masking, .level = 1.5f}}),
                  ValueError);
}

}  // namespace models_autoencoder_test
