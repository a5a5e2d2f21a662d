// A class-conditional VAE on Fashion-MNIST: the encoder sees [image, one-hot class], the decoder
// [z, one-hot class]. With --attributes FILE it runs its second mode instead (attributes.cpp): a
// convolutional conditional VAE on the colour images under --data, conditioned on their binary
// attributes (CelebA's layout), scored by an attribute classifier; see docs/vae.md.
//
//   cvae [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N] [--seed S]
//        [--resume PATH] [--latent Z] [--lr X] [--prior learned|standard] [--beta B]
//        [--eval-samples N] [--classifier PATH] [--temperature T]
//        attribute mode: --attributes FILE [--image-size S] [--decoder-condition input|every-scale] ...
//
// --prior: p(z | c) learned per class (the default) or N(0, I) for every class (see
// models/conditional_vae.hpp for why the standard prior lets codes overrule the class).
// --temperature: samples draw z = mean + T sigma eps from the prior (default 0.7); a diagonal
// Gaussian prior's tails reach codes between the posteriors where no training image lives, and
// the decoder's images there are ambiguous (docs/vae.md has the agreement at T = 1 and 0.7).
//
// train::Trainer runs the loop: after every epoch the test negative ELBO given the true classes
// (eval::negative_elbo's conditional overload) and the class agreement (the fraction of
// --eval-samples prior samples, the same number per class, that eval::FeatureClassifier puts in
// the class they were generated for) go to OUT/metrics.jsonl and OUT/loss.svg, and
// OUT/checkpoint.npz is saved (--resume continues from one). The classifier is genmod's
// Fashion-MNIST feature network (the gan example's), read from --classifier (default
// $GENMOD_CACHE_DIR or ~/.cache/genmod) or trained once and cached there. Then the program writes
// OUT/class_samples.png (one row per class, the same 10 noise vectors in every row, at the
// temperature) and OUT/attribute.png
// (test sandals, then their codes decoded while the condition moves along the class-difference
// direction "sneaker - sandal", alpha 0 to 1). --data may name any directory of IDX files in
// Fashion-MNIST's format (MNIST, say): classes 5 and 7 are then whatever those labels mean, and
// --eval-samples 0 turns the class agreement off (the classifier knows Fashion-MNIST's classes only).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <genmod/genmod.hpp>

#include "attributes.hpp"

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
  double beta = 1.0;
  std::string prior = "learned";
  std::int64_t eval_samples = 10000;
  std::string classifier_path;
  double temperature = 0.7;
  args.add_option("--latent", latent, "latent dimensions", 1);
  args.add_option("--lr", lr, "Adam learning rate");
  args.add_option("--prior", prior, "p(z | c): learned (a Gaussian per class) or standard (N(0, I))");
  args.add_option("--beta", beta, "weight of the KL term");
  args.add_option("--eval-samples", eval_samples, "prior samples the classifier scores after every epoch (0: none)");
  args.add_option("--classifier", classifier_path, "cache of the feature classifier (empty: the default cache)");
  args.add_option("--temperature", temperature, "samples: z = mean + T sigma eps under p(z | c)");
  // The attribute mode (attributes.hpp): colour images from --data with the attribute table.
  AttributeModeOptions am;
  args.add_option("--attributes", am.attributes,
                  "attribute mode: a table of binary attributes (CelebA's list_attr_celeba.txt layout or CSV) for "
                  "the images under --data");
  args.add_option("--image-size", am.image_size, "attribute mode: images resized to S x S (16, 32, 64, 128)", 16);
  args.add_option("--crop", am.crop, "attribute mode: centre crop to C x C before resizing (0: none)", 0);
  args.add_option("--select", am.select, "attribute mode: attributes to condition on, A,B,... (empty: all)");
  args.add_option("--show", am.show, "attribute mode: attributes of the pictures, A,B,... (empty: all)");
  args.add_option("--cache", am.cache, "attribute mode: the decoded images (.npy; empty: OUT/images-S.npy)");
  args.add_option("--test-fraction", am.test_fraction, "attribute mode: the last fraction of the files held out");
  args.add_option("--eval-images", am.eval_images, "attribute mode: held-out images scored every epoch", 1);
  args.add_option("--classifier-epochs", am.classifier_epochs, "attribute mode: training of the attribute classifier",
                  1);
  args.add_option("--strength", am.strength, "attribute mode: how far \"add attribute\" moves a code");
  args.add_option(
      "--flip", am.flip,
      "attribute mode: probability of a horizontal flip while training (leave 0 when left/right is an attribute)");
  std::string decoder_condition = "input";
  args.add_option("--decoder-condition", decoder_condition,
                  "attribute mode: where the decoder sees the attributes: input (with z) or every-scale (also as "
                  "constant channels before every upsampling stage)");
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  if (!(lr > 0)) throw ValueError("expected --lr > 0, got " + std::to_string(lr));
  if (!(beta >= 0)) throw ValueError("expected --beta >= 0, got " + std::to_string(beta));
  if (!(temperature >= 0)) throw ValueError("expected --temperature >= 0, got " + std::to_string(temperature));
  if (prior != "learned" && prior != "standard")
    throw ValueError("--prior: expected learned or standard, got '" + prior + "'");
  if (!am.attributes.empty()) {
    am.latent = latent;
    am.lr = lr;
    am.beta = beta;
    am.learned_prior = prior == "learned";
    am.temperature = temperature;
    if (decoder_condition != "input" && decoder_condition != "every-scale")
      throw ValueError("--decoder-condition: expected input or every-scale, got '" + decoder_condition + "'");
    am.every_scale = decoder_condition == "every-scale";
    am.classifier = classifier_path;
    if (eval_samples < 0) throw ValueError("--eval-samples: expected >= 0, got " + std::to_string(eval_samples));
    am.eval_samples = eval_samples;
#ifdef GENMOD_CVAE_ATTRIBUTES
    return run_attribute_mode(args, am);
#else
    throw ValueError("--attributes: this cvae was built without genmod::images (stb_image; Debian: libstb-dev)");
#endif
  }
  if (eval_samples < 0 || eval_samples % kClasses != 0)
    throw ValueError("--eval-samples: expected a non-negative multiple of " + std::to_string(kClasses) + ", got " +
                     std::to_string(eval_samples));
  if (classifier_path.empty()) classifier_path = eval::default_feature_classifier_cache();
  const std::string out_dir = args.out;
  const auto train = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test = data::FashionMNIST::load(data::Split::test, args.data);
  const Tensor<float> test_x = test.float_images(data::ImageLayout::flat);
  const Tensor<float> test_c = one_hot<float>(test.labels, kClasses);
  std::optional<eval::FeatureClassifier> classifier;
  if (eval_samples > 0) {
    classifier.emplace(eval::load_or_train_feature_classifier(classifier_path, args.data, {}, &std::cout));
    std::printf("%s\n", classifier->summary().c_str());
  }
  // The requested classes of the scored samples: eval_samples / 10 of each, in class order.
  Tensor<std::int64_t> requested(Shape{eval_samples});
  for (std::int64_t i = 0; i < eval_samples; ++i) requested[i] = i / (eval_samples / kClasses);
  const Tensor<float> requested_c = one_hot<float>(requested, kClasses);

  manual_seed(args.seed);
  const std::int64_t z = latent;
  CVAE cvae(Net(nn::Linear(784 + kClasses, 512), nn::ReLU(), nn::Linear(512, 256), nn::ReLU(), nn::Linear(256, 2 * z)),
            Net(nn::Linear(z + kClasses, 256), nn::ReLU(), nn::Linear(256, 512), nn::ReLU(), nn::Linear(512, 784)),
            dist::Bernoulli{}, {.beta = beta, .latent_dim = z, .seed = args.seed},
            {.condition_dim = prior == "learned" ? kClasses : 0});
  optim::Adam adam{cvae.named_parameters(), {.lr = lr}};
  data::Loader loader(train.to_dataset(data::ImageLayout::flat),
                      {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
  Generator eval_rng(args.seed, 0x6576616cULL);  // the evaluation's z samples, apart from training's

  train::TrainerOptions topt = args.trainer_options();
  topt.metadata["latent"] = std::to_string(latent);
  topt.metadata["prior"] = prior;
  topt.metadata["beta"] = std::to_string(beta);
  topt.metadata["temperature"] = std::to_string(temperature);
  topt.plot_options = {.title = "class-conditional VAE", .x_label = "epoch", .y_label = "nats per image"};
  train::Trainer trainer(topt);
  trainer.add_model("model", cvae, &adam).add_generator(cvae.rng).add_generator(eval_rng, "eval_rng");
  trainer.set_evaluate([&] {
    const double nelbo = eval::negative_elbo(cvae, test_x, test_c, eval_rng);
    train::Metrics m{{"test_loss", nelbo}, {"test_nelbo", nelbo}};
    if (classifier) {
      // At the sampling temperature, and at 1 (the prior itself) when that is another.
      const auto agreement = [&](double t) {
        const Tensor<float> samples = cvae.sample(requested_c, t, eval_rng).reshape(Shape{eval_samples, 1, 28, 28});
        return eval::class_agreement(classifier->predict(samples), std::span(requested.data(), requested.numel()));
      };
      m["class_agreement"] = agreement(temperature);
      if (temperature != 1.0) m["class_agreement_t1"] = agreement(1.0);
    }
    return m;
  });
  std::printf("conditional VAE (z = %lld, %s prior, beta %g, %lld parameters), %d threads\ntrain: %s\ntest: %s\n",
              static_cast<long long>(z), prior.c_str(), beta, static_cast<long long>(cvae.num_parameters()),
              get_num_threads(), train.description().c_str(), test.description().c_str());
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

  // One row per class, the same 10 noise vectors in every row (codes at the same place of each
  // class's prior): the class controls the garment, the noise its style.
  Generator g(args.seed + 1);
  Tensor<float> noise = randn<float>(Shape{10, z}, g);
  for (auto& v : noise) v *= static_cast<float>(temperature);
  Tensor<float> grid(Shape{kClasses * 10, 1, 28, 28});
  for (std::int64_t c = 0; c < kClasses; ++c) {
    const Tensor<float> row = cvae.generate(cvae.prior_codes(noise, class_rows(10, c)), class_rows(10, c));
    std::copy(row.begin(), row.end(), grid.data() + c * 10 * 784);
  }
  io::save_image_grid(out_dir + "/class_samples.png", grid, {.columns = 10});
  std::string rows;
  for (std::int64_t c = 0; c < kClasses; ++c) rows += (c ? ", " : "") + test.class_label(c);
  std::printf("class_samples.png, one row per class: %s\n", rows.c_str());

  // Which classes the classifier recognises in their samples, and what it sees instead.
  if (classifier) {
    Generator score_rng(args.seed, 0x73636f72ULL);
    const Tensor<float> samples =
        cvae.sample(requested_c, temperature, score_rng).reshape(Shape{eval_samples, 1, 28, 28});
    const std::vector<std::int64_t> predicted = classifier->predict(samples);
    const std::int64_t per_class = eval_samples / kClasses;
    std::printf("class agreement per class (%lld samples each, temperature %g; %s):\n",
                static_cast<long long>(per_class), temperature, classifier->summary().c_str());
    for (std::int64_t c = 0; c < kClasses; ++c) {
      std::vector<std::int64_t> seen(kClasses, 0);  // how often each class was predicted
      for (std::int64_t i = c * per_class; i < (c + 1) * per_class; ++i) ++seen[static_cast<std::size_t>(predicted[i])];
      std::int64_t other = c == 0 ? 1 : 0;  // the most frequent wrong class
      for (std::int64_t k = 0; k < kClasses; ++k)
        if (k != c && seen[static_cast<std::size_t>(k)] > seen[static_cast<std::size_t>(other)]) other = k;
      std::printf("  %-16s %5.1f %%  (most often mistaken for %s: %.1f %%)\n", test.class_label(c).c_str(),
                  100.0 * static_cast<double>(seen[static_cast<std::size_t>(c)]) / static_cast<double>(per_class),
                  test.class_label(other).c_str(),
                  100.0 * static_cast<double>(seen[static_cast<std::size_t>(other)]) / static_cast<double>(per_class));
    }
  }

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
