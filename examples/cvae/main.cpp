// A class-conditional VAE on Fashion-MNIST: the encoder sees [image, one-hot class], the decoder
// [z, one-hot class].
//
//   cvae [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N] [--seed S]
//        [--resume PATH] [--latent Z] [--lr X]
//
// train::Trainer runs the loop: after every epoch the test negative ELBO given the true classes
// (eval::negative_elbo's conditional overload) goes to OUT/metrics.jsonl and OUT/loss.svg, and
// OUT/checkpoint.npz is saved (--resume continues from one). Then the program writes
// OUT/class_samples.png (one row per class, the same 10 codes in every row) and OUT/attribute.png
// (test sandals, then their codes decoded while the condition moves along the class-difference
// direction "sneaker - sandal", alpha 0 to 1). --data may name any directory of IDX files in
// Fashion-MNIST's format (MNIST, say): classes 5 and 7 are then whatever those labels mean.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <genmod/genmod.hpp>

using namespace genmod;

namespace {

constexpr std::int64_t kClasses = data::FashionMNIST::kClasses;
using Net = nn::Sequential<nn::Linear<float>, nn::ReLU<float>, nn::Linear<float>, nn::ReLU<float>, nn::Linear<float>>;
using CVAE = models::ConditionalVAE<Net, Net, dist::Bernoulli>;

Tensor<float> class_rows(std::int64_t n, std::int64_t c) {
  Tensor<std::int64_t> labels(Shape{n});
  labels.fill(c);
  return one_hot<float>(labels, kClasses);
}

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args(
      "cvae", "Trains a class-conditional VAE on Fashion-MNIST; writes class_samples.png and attribute.png.",
      {.out = "cvae-out", .epochs = 10, .batch_size = 128});
  std::int64_t latent = 16;
  double lr = 1e-3;
  args.add_option("--latent", latent, "latent dimensions", 1);
  args.add_option("--lr", lr, "Adam learning rate");
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  if (!(lr > 0)) throw ValueError("expected --lr > 0");
  const std::string out_dir = args.out;
  const auto train = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test = data::FashionMNIST::load(data::Split::test, args.data);
  const Tensor<float> test_x = test.float_images(data::ImageLayout::flat);
  const Tensor<float> test_c = one_hot<float>(test.labels, kClasses);

  manual_seed(args.seed);
  const std::int64_t z = latent;
  CVAE cvae(Net(nn::Linear(784 + kClasses, 512), nn::ReLU(), nn::Linear(512, 256), nn::ReLU(), nn::Linear(256, 2 * z)),
            Net(nn::Linear(z + kClasses, 256), nn::ReLU(), nn::Linear(256, 512), nn::ReLU(), nn::Linear(512, 784)),
            dist::Bernoulli{}, {.latent_dim = z, .seed = args.seed});
  optim::Adam adam{cvae.named_parameters(), {.lr = lr}};
  data::Loader loader(train.to_dataset(data::ImageLayout::flat),
                      {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
  Generator eval_rng(args.seed, 0x6576616cULL);  // the evaluation's z samples, apart from training's

  train::TrainerOptions topt = args.trainer_options();
  topt.metadata["latent"] = std::to_string(latent);
  topt.plot_options = {.title = "class-conditional VAE", .x_label = "epoch", .y_label = "nats per image"};
  train::Trainer trainer(topt);
  trainer.add_model("model", cvae, &adam).add_generator(cvae.rng).add_generator(eval_rng, "eval_rng");
  trainer.set_evaluate([&] {
    const double nelbo = eval::negative_elbo(cvae, test_x, test_c, eval_rng);
    return train::Metrics{{"test_loss", nelbo}, {"test_nelbo", nelbo}};
  });
  std::printf("conditional VAE (z = %lld, %lld parameters), %d threads\ntrain: %s\ntest: %s\n",
              static_cast<long long>(z), static_cast<long long>(cvae.num_parameters()), get_num_threads(),
              train.description().c_str(), test.description().c_str());
  std::fflush(stdout);
  // The condition of each image is its one-hot class.
  const train::FitResult result = trainer.fit(
      loader,
      [&](const data::Batch& b) { return cvae.loss(Var<float>(b.x), Var<float>(one_hot<float>(b.y, kClasses))).loss; },
      adam);
  if (result.interrupted) {
    std::printf("interrupted: continue with --resume %s\n", trainer.checkpoint_path().c_str());
    return 130;
  }

  // One row per class, the same 10 codes in every row: the class controls the garment, the code
  // its style.
  Generator g(args.seed + 1);
  const Tensor<float> codes = randn<float>(Shape{10, z}, g);
  Tensor<float> grid(Shape{kClasses * 10, 1, 28, 28});
  for (std::int64_t c = 0; c < kClasses; ++c) {
    const Tensor<float> row = cvae.generate(codes, class_rows(10, c));
    std::copy(row.begin(), row.end(), grid.data() + c * 10 * 784);
  }
  io::save_image_grid(out_dir + "/class_samples.png", grid, {.columns = 10});
  std::string rows;
  for (std::int64_t c = 0; c < kClasses; ++c) rows += (c ? ", " : "") + test.class_label(c);
  std::printf("class_samples.png, one row per class: %s\n", rows.c_str());

  // Attribute arithmetic on the condition: the direction from the mean condition of sandals (5)
  // to that of sneakers (7), added with growing alpha to sandals' conditions while each keeps its
  // own code (its style, encoded with its true class): the garment turns into a sneaker and keeps
  // its shade and proportions.
  {
    NoGradGuard no_grad;
    std::vector<std::int64_t> sandals, sneakers;
    for (std::int64_t i = 0; i < test.size(); ++i) {
      if (test.labels[i] == 5) sandals.push_back(i);
      if (test.labels[i] == 7) sneakers.push_back(i);
    }
    auto rows_of = [](const Tensor<float>& t, const std::vector<std::int64_t>& idx, std::size_t count) {
      const std::int64_t w = t.numel() / t.dim(0);
      Tensor<float> out(t.shape().with_dim(0, static_cast<std::int64_t>(count)));
      for (std::size_t r = 0; r < count; ++r)
        std::copy(t.data() + idx[r] * w, t.data() + (idx[r] + 1) * w, out.data() + r * w);
      return out;
    };
    const Tensor<float> direction =
        models::attribute_vector(rows_of(test_c, sneakers, sneakers.size()), rows_of(test_c, sandals, sandals.size()));
    const std::size_t shown = 8;
    const std::int64_t steps = 6;
    const Tensor<float> x = rows_of(test_x, sandals, shown), c = rows_of(test_c, sandals, shown);
    const Tensor<float> codes_s = cvae.encode(Var<float>(x), Var<float>(c)).first.value();
    Tensor<float> pic(Shape{static_cast<std::int64_t>(shown) * (steps + 1), 1, 28, 28});
    for (std::size_t r = 0; r < shown; ++r)
      std::copy(x.data() + r * 784, x.data() + (r + 1) * 784, pic.data() + r * (steps + 1) * 784);
    for (std::int64_t s = 0; s < steps; ++s) {
      const Tensor<float> moved = models::apply_attribute(c, direction, static_cast<double>(s) / (steps - 1));
      const Tensor<float> imgs = cvae.generate(codes_s, moved);
      for (std::size_t r = 0; r < shown; ++r)
        std::copy(imgs.data() + r * 784, imgs.data() + (r + 1) * 784, pic.data() + (r * (steps + 1) + s + 1) * 784);
    }
    io::save_image_grid(out_dir + "/attribute.png", pic, {.columns = steps + 1});
    std::printf("attribute.png: test images of class %s moved towards class %s\n", test.class_label(5).c_str(),
                test.class_label(7).c_str());
  }
  std::printf("wrote %s/{class_samples.png, attribute.png, metrics.jsonl, loss.svg, checkpoint.npz}\n",
              out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "cvae: %s\n", e.what());
  return 1;
}
