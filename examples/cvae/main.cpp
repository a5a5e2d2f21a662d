// A class-conditional VAE on Fashion-MNIST: the encoder sees [image, one-hot class], the decoder
// [z, one-hot class].
//
//   cvae [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N] [--seed S]
//        [--resume PATH] [--latent Z] [--lr X]
//
// Writes OUT/class_samples.png (one row per class, the same 10 codes in every row),
// OUT/attribute.png (test sandals, then their codes decoded while the condition moves along the
// class-difference direction "sneaker - sandal", alpha 0 to 1), OUT/metrics.jsonl and
// OUT/checkpoint.npz.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <genmod/genmod.hpp>
#include <genmod/eval/elbo.hpp>
#include <genmod/models/conditional_vae.hpp>

using namespace genmod;

namespace {

constexpr std::int64_t kClasses = 10;
using Net = nn::Sequential<nn::Linear<float>, nn::ReLU<float>, nn::Linear<float>, nn::ReLU<float>, nn::Linear<float>>;
using CVAE = models::ConditionalVAE<Net, Net, dist::Bernoulli>;

Tensor<float> class_rows(std::int64_t n, std::int64_t c) {
  Tensor<std::int64_t> labels(Shape{n});
  labels.fill(c);
  return one_hot<float>(labels, kClasses);
}

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("cvae", "Trains a class-conditional VAE on Fashion-MNIST; writes class_samples.png and attribute.png.",
                          {.out = "cvae-out", .epochs = 10, .batch_size = 128});
  std::int64_t latent = 16;
  double lr = 1e-3;
  args.add_option("--latent", latent, "latent dimensions", 1);
  args.add_option("--lr", lr, "Adam learning rate");
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  if (!(lr > 0)) throw ValueError("expected --lr > 0");
  const std::string out_dir = args.out;
  std::filesystem::create_directories(out_dir);
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
  const std::string metrics_path = out_dir + "/metrics.jsonl", ckpt = out_dir + "/checkpoint.npz";
  int first = 1;
  std::int64_t step = 0;
  if (!args.resume.empty()) {
    const auto st = io::load_checkpoint(args.resume, cvae, &adam);
    first = static_cast<int>(st.epoch) + 1;
    step = st.step;
    if (st.has_rng) cvae.rng.set_state(st.rng);
    loader.set_epoch(st.epoch);
  } else {
    std::ofstream(metrics_path, std::ios::trunc);
  }
  Generator eval_rng(args.seed, 0x6576616cULL);
  for (int epoch = first; epoch <= args.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    double sum = 0;
    std::int64_t seen = 0;
    for (const auto& batch : loader) {
      Tape<float> tape;
      const Tensor<float> c = one_hot<float>(batch.y, kClasses);
      const auto out = cvae.loss(Var<float>(batch.x), Var<float>(c));
      if (!std::isfinite(out.loss.item()))
        throw NumericError("non-finite loss at epoch " + std::to_string(epoch) + ", step " + std::to_string(step + 1));
      tape.backward(out.loss);
      adam.step();
      adam.zero_grad();
      ++step;
      sum += static_cast<double>(out.loss.item()) * static_cast<double>(batch.size());
      seen += batch.size();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double test_loss = 0;
    {
      NoGradGuard no_grad;
      for (std::int64_t s = 0; s < test_x.dim(0); s += 500) {
        const Tensor<float> per =
            cvae.negative_elbo(Var<float>(test_x.rows(s, 500)), Var<float>(test_c.rows(s, 500)), eval_rng).value();
        for (float v : per) test_loss += v;
      }
      test_loss /= static_cast<double>(test_x.dim(0));
    }
    std::printf("epoch %d  train_loss %.2f  test_nelbo %.2f nats/image  %.1f s\n", epoch, sum / static_cast<double>(seen),
                test_loss, secs);
    std::ofstream(metrics_path, std::ios::app) << "{\"epoch\": " << epoch << ", \"train_loss\": " << sum / static_cast<double>(seen)
                                               << ", \"test_loss\": " << test_loss << ", \"seconds\": " << secs << "}\n";
    io::save_checkpoint(ckpt, cvae, &adam, {.step = step, .epoch = epoch, .has_rng = true, .rng = cvae.rng.state()});
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
      for (std::size_t r = 0; r < count; ++r) std::copy(t.data() + idx[r] * w, t.data() + (idx[r] + 1) * w, out.data() + r * w);
      return out;
    };
    const Tensor<float> direction = models::attribute_vector(rows_of(test_c, sneakers, sneakers.size()),
                                                             rows_of(test_c, sandals, sandals.size()));
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
  }
  std::printf("wrote %s/{class_samples.png, attribute.png, metrics.jsonl, checkpoint.npz}\n", out_dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "cvae: %s\n", e.what());
  return 1;
}
