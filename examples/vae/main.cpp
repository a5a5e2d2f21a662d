// The flagship: a variational autoencoder trained on Fashion-MNIST with train::Trainer.
//
//   vae [--arch mlp|conv] [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N]
//       [--seed S] [--resume PATH] [--latent Z] [--lr X] [--beta B] [--iwae-k K]
//
// --arch mlp is the mlp_vae reference workload (784-512-256-(2x32) / 32-256-512-784), --arch conv
// the conv_vae one. The Trainer runs the loop: after every epoch it evaluates the test negative ELBO
// (nats per image: Bernoulli likelihood on [0,1] pixels, one z sample), appends it to
// OUT/metrics.jsonl, redraws OUT/loss.svg and saves OUT/checkpoint.npz (--resume continues from
// one, exactly: the model's noise and the evaluation's are saved too); once training ends it adds
// the importance-weighted bound with K samples (test_iwae_nll) as the final record. Then the
// program writes OUT/samples.png, OUT/reconstructions.png and OUT/interpolation.png. --data may
// name any directory of IDX files in Fashion-MNIST's format (MNIST, say).
#include <algorithm>
#include <cstdio>
#include <string>

#include <genmod/genmod.hpp>

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
    enc = {nn::Conv2d(1, 32, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(),
           nn::Conv2d(32, 64, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(),
           nn::Flatten(),
           nn::Linear(3136, 2 * z)};
    dec = {nn::Linear(z, 3136),
           nn::ReLU(),
           nn::Reshape({64, 7, 7}),
           nn::ConvTranspose2d(64, 32, 4, {.stride = 2, .padding = 1}),
           nn::ReLU(),
           nn::ConvTranspose2d(32, 1, 4, {.stride = 2, .padding = 1})};
  }
  return DynVAE(enc, dec, dist::Bernoulli{}, {.beta = o.beta, .latent_dim = z, .seed = o.seed});
}

Tensor<float> as_images(const Tensor<float>& x) {
  return x.reshape({x.dim(0), 1, 28, 28});
}

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
  const auto layout = opt.arch == "mlp" ? data::ImageLayout::flat : data::ImageLayout::nchw;
  const auto train = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test = data::FashionMNIST::load(data::Split::test, args.data);
  const Tensor<float> test_x = test.float_images(layout);

  manual_seed(opt.seed);
  DynVAE vae = build(opt);
  optim::Adam adam{vae.named_parameters(), {.lr = opt.lr}};
  data::Loader loader(train.to_dataset(layout), {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
  Generator eval_rng(opt.seed, 0x6576616cULL);  // the evaluation's z samples, apart from training's

  train::TrainerOptions topt = args.trainer_options();
  topt.metadata["arch"] = opt.arch;
  topt.metadata["latent"] = std::to_string(opt.latent);
  topt.plot_options = {.title = "VAE (" + opt.arch + ")", .x_label = "epoch", .y_label = "nats per image"};
  train::Trainer trainer(topt);
  // "model" and "rng" are io::save_checkpoint's names: io::load_checkpoint(path, vae) reads the file.
  trainer.add_model("model", vae, &adam).add_generator(vae.rng).add_generator(eval_rng, "eval_rng");
  trainer.set_evaluate([&] {
    const double nelbo = eval::negative_elbo(vae, test_x, eval_rng);
    return train::Metrics{{"test_loss", nelbo}, {"test_nelbo", nelbo}};
  });
  if (opt.iwae_k > 0)
    trainer.set_final_evaluate([&] {
      return train::Metrics{{"test_iwae_nll", eval::iwae_nll(vae, test_x, opt.iwae_k, eval_rng)},
                            {"iwae_k", static_cast<double>(opt.iwae_k)}};
    });
  std::printf("VAE (%s, z = %lld, %lld parameters), %d threads\ntrain: %s\ntest: %s\n", opt.arch.c_str(),
              static_cast<long long>(opt.latent), static_cast<long long>(vae.num_parameters()), get_num_threads(),
              train.description().c_str(), test.description().c_str());
  std::fflush(stdout);
  const train::FitResult result = trainer.fit(
      loader, [&](const data::Batch& b) { return vae.loss(Var<float>(b.x)).loss; }, adam);
  if (result.interrupted) {
    std::printf("interrupted: continue with --resume %s\n", trainer.checkpoint_path().c_str());
    return 130;
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
      const Tensor<float> line =
          vae.interpolate(test_x.rows(2 * r, 1), test_x.rows(2 * r + 1, 1), 10, models::Interpolation::spherical);
      std::copy(line.begin(), line.end(), rows.data() + r * 10 * 784);
    }
    io::save_image_grid(out_dir + "/interpolation.png", rows, {.columns = 10});
  }
  std::printf(
      "wrote %s/{metrics.jsonl, samples.png, reconstructions.png, interpolation.png, loss.svg, checkpoint.npz}\n",
      out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "vae: %s\n", e.what());
  return 1;
}
