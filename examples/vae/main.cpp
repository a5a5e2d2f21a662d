// The flagship: a variational autoencoder trained on Fashion-MNIST.
//
//   vae [--arch mlp|conv] [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N]
//       [--seed S] [--resume PATH] [--latent Z] [--lr X] [--beta B] [--iwae-k K]
//
// --arch mlp is ../shared/ref's mlp_vae (784-512-256-(2x32) / 32-256-512-784), --arch conv its
// conv_vae. Every epoch prints the training loss and the test negative ELBO (nats per image:
// Bernoulli likelihood on [0,1] pixels, one z sample) and appends them to OUT/metrics.jsonl; at the
// end the importance-weighted bound with K samples is added (test_iwae_nll). Writes
// OUT/samples.png, OUT/reconstructions.png, OUT/interpolation.png, OUT/loss.svg and
// OUT/checkpoint.npz (after every epoch; --resume continues from one).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <genmod/genmod.hpp>
#include <genmod/eval/elbo.hpp>
#include <genmod/models/vae.hpp>

using namespace genmod;

namespace {

/// The options beyond the shared ones of train::ExampleArgs.
struct Options {
  std::string arch = "mlp";
  std::int64_t latent = 32;
  double lr = 1e-3;
  double beta = 1.0;
  std::int64_t iwae_k = 100;
  std::uint64_t seed = 0;
};

using DynVAE = models::VAE<nn::DynamicSequential<float>, nn::DynamicSequential<float>, dist::Bernoulli>;

DynVAE build(const Options& o) {
  nn::DynamicSequential<float> enc, dec;
  const std::int64_t z = o.latent;
  if (o.arch == "mlp") {
    enc = {nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 256), nn::ReLU(), nn::Linear(256, 2 * z)};
    dec = {nn::Linear(z, 256), nn::ReLU(), nn::Linear(256, 512), nn::ReLU(), nn::Linear(512, 784)};
  } else {
    enc = {nn::Conv2d(1, 32, 4, {.stride = 2, .padding = 1}), nn::ReLU(), nn::Conv2d(32, 64, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(), nn::Flatten(), nn::Linear(3136, 2 * z)};
    dec = {nn::Linear(z, 3136), nn::ReLU(), nn::Reshape({64, 7, 7}),
           nn::ConvTranspose2d(64, 32, 4, {.stride = 2, .padding = 1}), nn::ReLU(),
           nn::ConvTranspose2d(32, 1, 4, {.stride = 2, .padding = 1})};
  }
  return DynVAE(enc, dec, dist::Bernoulli{}, {.beta = o.beta, .latent_dim = z, .seed = o.seed});
}

Tensor<float> as_images(const Tensor<float>& x) { return x.reshape({x.dim(0), 1, 28, 28}); }

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("vae", "Trains a VAE on Fashion-MNIST and writes metrics, pictures and a checkpoint.",
                          {.out = "vae-out", .epochs = 10, .batch_size = 128});
  Options opt;
  args.add_option("--arch", opt.arch, "mlp (the reference's mlp_vae) or conv (its conv_vae)");
  args.add_option("--latent", opt.latent, "latent dimensions", 1);
  args.add_option("--lr", opt.lr, "Adam learning rate");
  args.add_option("--beta", opt.beta, "weight of the KL term (1: the negative ELBO)");
  args.add_option("--iwae-k", opt.iwae_k, "importance samples for the final test bound (0: skip)", 0);
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  opt.seed = args.seed;
  if (opt.arch != "mlp" && opt.arch != "conv") throw ValueError("--arch: expected mlp or conv, got '" + opt.arch + "'");
  if (!(opt.lr > 0) || !(opt.beta >= 0)) throw ValueError("expected --lr > 0 and --beta >= 0");
  const std::string out_dir = args.out;
  std::filesystem::create_directories(out_dir);
  const auto layout = opt.arch == "mlp" ? data::ImageLayout::flat : data::ImageLayout::nchw;
  const auto train = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test = data::FashionMNIST::load(data::Split::test, args.data);
  const data::Dataset train_set = train.to_dataset(layout);
  const Tensor<float> test_x = test.float_images(layout);

  manual_seed(opt.seed);
  DynVAE vae = build(opt);
  optim::Adam adam{vae.named_parameters(), {.lr = opt.lr}};
  data::Loader loader(train_set, {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
  Generator eval_rng(opt.seed, 0x6576616cULL);
  int first_epoch = 1;
  std::int64_t step = 0;
  const std::string metrics_path = out_dir + "/metrics.jsonl";
  const std::string ckpt_path = out_dir + "/checkpoint.npz";
  if (!args.resume.empty()) {
    const io::TrainingState st = io::load_checkpoint(args.resume, vae, &adam);
    first_epoch = static_cast<int>(st.epoch) + 1;
    step = st.step;
    if (st.has_rng) vae.rng.set_state(st.rng);
    loader.set_epoch(st.epoch);
    std::printf("resumed from %s at epoch %lld, step %lld\n", args.resume.c_str(), static_cast<long long>(st.epoch),
                static_cast<long long>(st.step));
  } else {
    std::ofstream(metrics_path, std::ios::trunc);
  }
  std::printf("VAE (%s, z = %lld, %lld parameters) on %lld Fashion-MNIST images, %d threads\n", opt.arch.c_str(),
              static_cast<long long>(opt.latent), static_cast<long long>(vae.num_parameters()),
              static_cast<long long>(train.size()), get_num_threads());

  std::vector<double> epochs_axis, train_curve, test_curve;
  for (int epoch = first_epoch; epoch <= args.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    train::ProgressBar progress;
    progress.start("epoch " + std::to_string(epoch), loader.num_batches());
    double loss_sum = 0;
    std::int64_t seen = 0, i = 0;
    for (const auto& batch : loader) {
      Tape<float> tape;
      const models::VAELoss<float> out = vae.loss(Var<float>(batch.x));
      const float l = out.loss.item();
      if (!std::isfinite(l))
        throw NumericError("the loss became " + std::to_string(l) + " at epoch " + std::to_string(epoch) + ", step " +
                           std::to_string(step + 1) + "; the last good checkpoint is " + ckpt_path);
      tape.backward(out.loss);
      adam.step();
      adam.zero_grad();
      ++step;
      loss_sum += static_cast<double>(l) * static_cast<double>(batch.size());
      seen += batch.size();
      progress.update(++i, batch.size(), loss_sum / static_cast<double>(seen));
    }
    progress.finish("");
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double train_loss = loss_sum / static_cast<double>(seen);
    const double test_nelbo = eval::negative_elbo(vae, test_x, eval_rng);
    std::printf("epoch %d  train_loss %.2f  test_nelbo %.2f nats/image  %.1f s\n", epoch, train_loss, test_nelbo, secs);
    std::ofstream(metrics_path, std::ios::app) << "{\"epoch\": " << epoch << ", \"train_loss\": " << train_loss
                                               << ", \"test_loss\": " << test_nelbo << ", \"test_nelbo\": " << test_nelbo
                                               << ", \"seconds\": " << secs << "}\n";
    io::save_checkpoint(ckpt_path, vae, &adam,
                        {.step = step, .epoch = epoch, .has_rng = true, .rng = vae.rng.state(),
                         .extra = {{"arch", opt.arch}, {"latent", std::to_string(opt.latent)}}});
    epochs_axis.push_back(epoch);
    train_curve.push_back(train_loss);
    test_curve.push_back(test_nelbo);
  }

  if (opt.iwae_k > 0) {
    const auto t0 = std::chrono::steady_clock::now();
    const double iwae = eval::iwae_nll(vae, test_x, opt.iwae_k, eval_rng);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("test_iwae_nll (k = %lld) %.2f nats/image  (%.1f s)\n", static_cast<long long>(opt.iwae_k), iwae, secs);
    std::ofstream(metrics_path, std::ios::app) << "{\"epoch\": " << args.epochs << ", \"test_iwae_nll\": " << iwae
                                               << ", \"iwae_k\": " << opt.iwae_k << "}\n";
  }

  // Pictures: samples, test images over their reconstructions, interpolations between test pairs.
  io::save_image_grid(out_dir + "/samples.png", as_images(vae.sample(64)), {.columns = 8});
  {
    NoGradGuard no_grad;
    const Tensor<float> originals = test_x.rows(0, 16);
    const Tensor<float> rec = vae.reconstruct(Var<float>(originals)).value();
    Tensor<float> both(Shape{32, 1, 28, 28});
    std::copy(originals.begin(), originals.end(), both.data());
    std::copy(rec.begin(), rec.end(), both.data() + 16 * 784);
    io::save_image_grid(out_dir + "/reconstructions.png", both, {.columns = 16});
    Tensor<float> rows(Shape{6 * 10, 1, 28, 28});
    for (int r = 0; r < 6; ++r) {
      const Tensor<float> line = vae.interpolate(test_x.rows(2 * r, 1), test_x.rows(2 * r + 1, 1), 10,
                                                 models::Interpolation::spherical);
      std::copy(line.begin(), line.end(), rows.data() + r * 10 * 784);
    }
    io::save_image_grid(out_dir + "/interpolation.png", rows, {.columns = 10});
  }
  if (!epochs_axis.empty())
    io::save_line_plot_svg(out_dir + "/loss.svg",
                           {io::Series{"train loss", train_curve, epochs_axis}, io::Series{"test -ELBO", test_curve, epochs_axis}},
                           {.title = "VAE on Fashion-MNIST", .x_label = "epoch", .y_label = "nats per image"});
  std::printf("wrote %s/{metrics.jsonl, samples.png, reconstructions.png, interpolation.png, loss.svg, checkpoint.npz}\n",
              out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "vae: %s\n", e.what());
  return 1;
}
