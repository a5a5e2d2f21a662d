// Generative adversarial networks on Fashion-MNIST, scored by an evaluator that needs no downloaded
// weights: a Frechet distance on the features of a Fashion-MNIST classifier that genmod trains
// itself, class coverage (mode collapse), and precision / recall of the samples.
//
//   gan [--task train|score] [--arch mlp|dcgan] [--loss minimax|ns|lsgan|hinge|wgan|wgan-gp]
//       [--conditional [--projection]] [--n-critic K] [--clip C] [--gp-weight L] [--lr X] [--latent Z]
//       [--eval-samples N] [--classifier PATH] [--samples FILE.npy] [--data DIR] [--out DIR] [--epochs N]
//       [--batch-size N] [--threads N] [--seed S] [--resume PATH] [--distributed]
//
// Networks (models/dcgan.hpp, models/mlp_gan.hpp; images in [-1, 1], tanh output):
//   dcgan  the `dcgan` reference workload: G z(64) -> Linear 6272 BN ReLU -> ConvT 128->64 BN ReLU
//          -> ConvT 64->1 tanh; D Conv 1->64 LReLU(0.2) -> Conv 64->128 BN LReLU -> Linear 6272->1
//          (with --loss wgan-gp the critic's BatchNorm becomes a LayerNorm: the penalty is per sample).
//   mlp    G z -> 256 ReLU -> 512 ReLU -> 784 tanh; D 784 -> 512 LReLU -> 256 LReLU -> 1.
// Losses (models::GanObjective) with their usual recipes as defaults:
//   minimax, ns, lsgan, hinge  Adam 2e-4, betas (0.5, 0.999), one critic step per generator step
//   wgan                       RMSprop 5e-5, n_critic 5, clip 0.01 (Arjovsky et al.)
//   wgan-gp                    Adam 1e-4, betas (0.5, 0.9), n_critic 5, lambda 10 (Gulrajani et al.)
// --lr, --n-critic, --clip and --gp-weight override them. --conditional trains models::ConditionalGAN:
// the class (one-hot) is concatenated to z and to D's input (as 10 constant planes for the dcgan
// critic), or with --projection D is a projection discriminator; the fakes of a step take the real
// batch's labels; the scores add class_agreement (the fraction of samples the classifier puts in the
// class they were asked for; the scored samples cycle through the classes) and the grids show a row
// per class.
//
// --task train (default): trains with train::Trainer. After every epoch OUT/metrics.jsonl gets the
// epoch's mean d_loss and g_loss, and the scores of --eval-samples samples (drawn from one FIXED
// noise batch every epoch) against the test set: fd (Frechet distance on the classifier's 128
// features), classes_hit and coverage_kl (the classifier's predicted classes of the samples:
// classes receiving at least a tenth of a uniform share, and KL(histogram || uniform) in nats),
// precision and recall (k = 3 nearest neighbours in feature space). OUT/samples/epoch_EEE.png shows
// 64 samples of one fixed noise batch, so successive epochs differ by the model alone. At the end:
// the final record with the FD's 95 % bootstrap interval, OUT/samples.npy (the --eval-samples
// samples in [0, 1], float32 [N, 1, 28, 28], the layout ../shared/ref/train_gan.py writes),
// OUT/samples.png and OUT/loss.svg. --resume OUT/checkpoint.npz continues exactly: both networks,
// both optimizers, the n_critic rhythm and the noise generator are in the checkpoint.
//
// --task score --samples FILE.npy: scores any .npy of images [N, 1, 28, 28] (float in [0, 1], or
// uint8 0..255) on the same terms, e.g. the PyTorch reference's samples; prints one JSON line (with
// the FD's 95 % bootstrap interval) and writes OUT/scored_samples.png (the first 64 images).
//
// The classifier (eval/feature_classifier.hpp): trained by genmod on the 60,000 training images
// with a fixed seed the first time it is needed and cached at --classifier (default
// $GENMOD_CACHE_DIR/fashion_mnist_classifier.npz, else ~/.cache/genmod/...); its test accuracy is
// printed with every score. Scores from other feature networks (Inception's FID) are not comparable.
//
// --distributed trains data-parallel over the ranks of an MPI job (docs/distributed.md), e.g.
// `mpiexec -n 2 ./build/examples/gan --arch mlp --distributed --threads 1`: --batch-size is the global
// batch, split across the ranks; both networks average their gradients over it, z and the
// penalty's alpha are drawn per global sample, so --arch mlp computes what one process computes.
// The dcgan networks' BatchNorm layers normalize with each rank's own slice (as PyTorch's DDP does
// without SyncBatchNorm). Rank 0 trains or loads the classifier first, writes every file and prints.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <genmod/data/fashion_mnist.hpp>
#include <genmod/data/loader.hpp>
#include <genmod/data/npy.hpp>
#include <genmod/distributed/data_parallel.hpp>
#include <genmod/eval/class_coverage.hpp>
#include <genmod/eval/feature_classifier.hpp>
#include <genmod/eval/frechet_distance.hpp>
#include <genmod/eval/precision_recall.hpp>
#include <genmod/io/image.hpp>
#include <genmod/models/conditional_gan.hpp>
#include <genmod/models/dcgan.hpp>
#include <genmod/models/gan.hpp>
#include <genmod/models/mlp_gan.hpp>
#include <genmod/nn/any_module.hpp>
#include <genmod/optim/adam.hpp>
#include <genmod/optim/rmsprop.hpp>
#include <genmod/train/cli.hpp>
#include <genmod/train/trainer.hpp>
#ifdef GENMOD_WITH_MPI
#include <genmod/distributed/mpi_communicator.hpp>
#endif

using namespace genmod;

namespace {

using Gan = models::GAN<nn::AnyLayer<float>, nn::AnyLayer<float>>;

struct Options {
  std::string task = "train";
  std::string arch = "dcgan";
  std::string loss = "ns";
  std::int64_t n_critic = 0;  // 0: the loss's recipe
  double clip = 0.01;
  double gp_weight = 10.0;
  double lr = 0;  // 0: the loss's recipe
  std::int64_t latent = 64;
  std::int64_t eval_samples = 10000;
  std::string classifier;
  std::string samples;
  bool conditional = false;
  bool projection = false;
  bool distributed = false;
};

/// Images from [-1, 1] (the generator's tanh) to [0, 1] (what the classifier and PNGs take).
Tensor<float> to_unit(const Tensor<float>& x) {
  Tensor<float> y(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) y[i] = std::clamp((x[i] + 1.0f) * 0.5f, 0.0f, 1.0f);
  return y;
}

/// Everything the scores compare against: the classifier and the test set's features.
struct Evaluator {
  eval::FeatureClassifier& classifier;
  Tensor<float> test_features;

  /// FD, coverage and precision/recall of samples in [0, 1].
  train::Metrics score(const Tensor<float>& samples, Generator* bootstrap = nullptr) {
    const Tensor<float> f = classifier.features(samples);
    train::Metrics m;
    if (bootstrap) {
      const auto fd = eval::frechet_distance_bootstrap(test_features, f, 200, 0.95, *bootstrap);
      m["fd"] = fd.estimate;
      m["fd_low"] = fd.low;
      m["fd_high"] = fd.high;
    } else {
      m["fd"] = eval::frechet_distance(test_features, f);
    }
    const std::vector<std::int64_t> predicted = classifier.predict(samples);
    const eval::ClassCoverage c = eval::class_coverage(predicted, 10);
    m["classes_hit"] = c.classes_hit;
    m["coverage_kl"] = c.kl_to_uniform;
    const eval::PrecisionRecall pr = eval::precision_recall(test_features, f, 3);
    m["precision"] = pr.precision;
    m["recall"] = pr.recall;
    return m;
  }
};

std::string describe(const train::Metrics& m) {
  std::string s;
  for (const auto& [k, v] : m) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %.4g", s.empty() ? "" : ", ", k.c_str(), v);
    s += buf;
  }
  return s;
}

/// The two networks for --arch, as type-erased layers (one GAN type for both architectures).
std::pair<nn::AnyLayer<float>, nn::AnyLayer<float>> networks(const Options& o, models::GanObjective objective) {
  if (o.arch == "dcgan") {
    const auto norm =
        objective == models::GanObjective::wgan_gp ? models::CriticNorm::layer : models::CriticNorm::batch;
    return {nn::AnyLayer<float>(models::DCGANGenerator<float>({.latent_dim = o.latent})),
            nn::AnyLayer<float>(models::DCGANDiscriminator<float>({.norm = norm}))};
  }
  return {nn::AnyLayer<float>(models::MLPGenerator<float>(
              {.latent_dim = o.latent, .hidden = 256, .layers = 2, .out = 784, .sample_shape = {1, 28, 28}})),
          nn::AnyLayer<float>(models::MLPDiscriminator<float>({.in = 784, .hidden = 512, .layers = 2}))};
}

/// Training and scoring of one model, GAN or ConditionalGAN (see the file comment).
struct Run {
  const Options& o;
  const train::ExampleArgs& args;
  const data::FashionMNIST& train_set;
  const data::FashionMNIST& test_set;
  Evaluator& evaluator;
  eval::FeatureClassifier& classifier;
  distributed::Communicator* comm = nullptr;  ///< --distributed: the MPI ranks

  template <class Model>
  int train(Model& gan) {
    constexpr bool conditional = requires(Model & m, const Tensor<std::int64_t>& y, Generator& g) {
      m.sample(y, g);
    };
    const models::GanObjective objective = gan.options().objective;
    const double lr = o.lr > 0                                     ? o.lr
                      : objective == models::GanObjective::wgan    ? 5e-5
                      : objective == models::GanObjective::wgan_gp ? 1e-4
                                                                   : 2e-4;
    std::unique_ptr<optim::Optimizer<float>> og, od;
    if (objective == models::GanObjective::wgan) {
      og = std::make_unique<optim::RMSprop<float>>(gan.generator().named_parameters(), optim::RMSpropOptions{.lr = lr});
      od = std::make_unique<optim::RMSprop<float>>(gan.discriminator().named_parameters(),
                                                   optim::RMSpropOptions{.lr = lr});
    } else {
      const optim::Betas betas{0.5, objective == models::GanObjective::wgan_gp ? 0.9 : 0.999};
      og = std::make_unique<optim::Adam<float>>(gan.generator().named_parameters(),
                                                optim::AdamOptions{.lr = lr, .betas = betas});
      od = std::make_unique<optim::Adam<float>>(gan.discriminator().named_parameters(),
                                                optim::AdamOptions{.lr = lr, .betas = betas});
    }
    const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
    if (args.batch_size % ranks != 0)
      throw ValueError("--batch-size " + std::to_string(args.batch_size) +
                       " (the global batch) must be a multiple of the " + std::to_string(ranks) + " ranks");
    data::Loader loader(
        train_set.to_dataset(data::ImageLayout::nchw, data::PixelRange::symmetric),
        {.batch_size = args.batch_size / ranks, .shuffle = true, .seed = args.seed, .rank = rank, .world_size = ranks});
    const Generator grid_noise(args.seed, 0x67726964ULL);  // "grid": the same z every epoch
    const Generator eval_noise(args.seed, 0x6576616cULL);  // "eval": the same scored z every epoch

    const std::string out_dir = args.out;
    if (rank == 0) std::filesystem::create_directories(out_dir + "/samples");
    train::TrainerOptions topt = args.trainer_options();
    topt.metadata["arch"] = o.arch;
    topt.metadata["loss"] = o.loss;
    topt.metadata["conditional"] = conditional ? "1" : "0";
    topt.plot_options = {
        .title = std::string(conditional ? "conditional " : "") + "GAN (" + o.arch + ", " + o.loss + ")",
        .x_label = "epoch",
        .y_label = "loss"};
    train::Trainer trainer(topt);
    trainer.add_model("generator", gan.generator(), og.get())
        .add_model("discriminator", gan.discriminator(), od.get())
        .add_model("schedule", gan.schedule())
        .add_generator(gan.noise(), "noise");
    // Data-parallel: one DataParallel per network (each has its own optimizer and backward pass).
    std::unique_ptr<distributed::DataParallel<float>> d_dp, g_dp;
    if (comm) {
      d_dp = std::make_unique<distributed::DataParallel<float>>(gan.discriminator(), *comm);
      g_dp = std::make_unique<distributed::DataParallel<float>>(gan.generator(), *comm);
      gan.set_data_parallel(d_dp.get(), g_dp.get());
      trainer.set_data_parallel(*d_dp);
    }

    double d_sum = 0, g_sum = 0;
    std::int64_t d_count = 0, g_count = 0;
    // n samples in [0, 1] from a copy of `noise`; conditional: sample i of class label_of(i).
    auto samples_of = [&](Generator noise, std::int64_t n, auto label_of) {
      Tensor<float> out(Shape{n, 1, 28, 28});
      for (std::int64_t i = 0; i < n; i += 500) {
        const std::int64_t b = std::min<std::int64_t>(500, n - i);
        Tensor<float> s;
        if constexpr (conditional) {
          Tensor<std::int64_t> y(Shape{b});
          for (std::int64_t j = 0; j < b; ++j) y[j] = label_of(i + j);
          s = gan.sample(y, noise);
        } else {
          s = gan.sample(b, noise);
        }
        s = to_unit(s);
        std::copy(s.begin(), s.end(), out.data() + i * 784);
      }
      return out;
    };
    auto cyclic = [](std::int64_t i) { return i % 10; };   // the scored samples: classes in turn
    auto per_row = [](std::int64_t i) { return i / 10; };  // the grid: a row per class
    const std::int64_t grid = conditional ? 100 : 64;
    auto score = [&](Generator* bootstrap) {
      const Tensor<float> s = samples_of(eval_noise, o.eval_samples, cyclic);
      train::Metrics m = evaluator.score(s, bootstrap);
      if constexpr (conditional) {
        // The fraction of samples the classifier puts in the class they were asked for.
        const std::vector<std::int64_t> predicted = classifier.predict(s);
        std::vector<std::int64_t> requested(predicted.size());
        for (std::size_t i = 0; i < requested.size(); ++i) requested[i] = cyclic(static_cast<std::int64_t>(i));
        m["class_agreement"] = eval::class_agreement(predicted, requested);
      }
      return std::pair{m, s};
    };
    trainer.set_evaluate([&] {
      train::Metrics m{{"d_loss", d_count ? d_sum / static_cast<double>(d_count) : 0.0},
                       {"g_loss", g_count ? g_sum / static_cast<double>(g_count) : 0.0}};
      d_sum = g_sum = 0;
      d_count = g_count = 0;
      m.merge(score(nullptr).first);
      return m;
    });
    trainer.on_epoch_end([&](const train::EpochSummary& e) {
      if (rank != 0) return;
      gan.eval();  // BatchNorm's running statistics, as the evaluation sees the generator
      io::save_image_grid(out_dir + "/samples/epoch_" + std::to_string(1000 + e.epoch).substr(1) + ".png",
                          samples_of(grid_noise, grid, per_row), {.columns = conditional ? 10 : 8});
      gan.train();
    });
    trainer.set_final_evaluate([&] {
      Generator boot(args.seed, 0x626f6f74ULL);
      auto [m, s] = score(&boot);
      if (rank != 0) return m;
      data::write_npy(out_dir + "/samples.npy", s);
      io::save_image_grid(out_dir + "/samples.png", samples_of(grid_noise, grid, per_row),
                          {.columns = conditional ? 10 : 8});
      return m;
    });
    if (rank == 0) {
      std::printf(
          "%sGAN (%s, %s, n_critic %d, lr %g, %lld + %lld parameters), %d threads x %d ranks\ntrain: %s\ntest: %s\n",
          conditional ? "conditional " : "", o.arch.c_str(), o.loss.c_str(), gan.options().n_critic, lr,
          static_cast<long long>(gan.generator().num_parameters()),
          static_cast<long long>(gan.discriminator().num_parameters()), get_num_threads(), ranks,
          train_set.description().c_str(), test_set.description().c_str());
      std::fflush(stdout);
    }
    const train::FitResult result = trainer.fit(loader, [&](const data::Batch& b) {
      // BatchNorm needs two samples (a data-parallel run's slices are even: every rank agrees).
      if (b.x.dim(0) < 2) return d_count ? d_sum / static_cast<double>(d_count) : 0.0;
      models::GanStepStats s;
      if constexpr (conditional)
        s = gan.train_step(b.x, b.y, *od, *og);
      else
        s = gan.train_step(b.x, *od, *og);
      // The global batch's losses: every rank's share, summed (the Trainer's train_loss is d_loss's).
      const std::int64_t total = std::max(b.window.total, b.size());
      const double d_loss = d_dp ? d_dp->global_mean(s.d_loss, b.size(), total) : s.d_loss;
      const double g_loss = d_dp && s.generator_updated ? d_dp->global_mean(s.g_loss, b.size(), total) : s.g_loss;
      d_sum += d_loss;
      ++d_count;
      if (s.generator_updated) g_sum += g_loss, ++g_count;
      return s.d_loss;
    });
    if (result.interrupted) {
      if (rank == 0) std::printf("interrupted: continue with --resume %s\n", trainer.checkpoint_path().c_str());
      return 130;
    }
    if (rank != 0) return 0;
    std::printf(
        "final: %s (%s)\nwrote %s/{metrics.jsonl, samples.npy, samples.png, samples/, loss.svg, checkpoint.npz}\n",
        describe(result.final_metrics).c_str(), classifier.summary().c_str(), out_dir.c_str());
    return 0;
  }
};

}  // namespace

namespace {
/// Trains or scores (--task), on one process or data-parallel on `comm`'s ranks; the exit code.
int train_or_score(Options& o, const train::ExampleArgs& args, distributed::Communicator* comm);
}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("gan",
                          "Trains a GAN on Fashion-MNIST and scores its samples with a genmod-trained classifier.",
                          {.out = "gan-out", .epochs = 10, .batch_size = 128});
  Options o;
  args.add_option("--task", o.task, "train, or score an .npy of samples (--samples)");
  args.add_option("--arch", o.arch, "dcgan (the reference workload) or mlp");
  args.add_option("--loss", o.loss, "minimax, ns, lsgan, hinge, wgan or wgan-gp");
  args.add_option("--n-critic", o.n_critic, "critic steps per generator step (0: the loss's recipe)", 0);
  args.add_option("--clip", o.clip, "wgan: D's parameters clamped to [-clip, clip]");
  args.add_option("--gp-weight", o.gp_weight, "wgan-gp: the penalty's lambda");
  args.add_option("--lr", o.lr, "learning rate of both optimizers (0: the loss's recipe)");
  args.add_option("--latent", o.latent, "z dimensions", 1);
  args.add_option("--eval-samples", o.eval_samples, "samples scored after every epoch", 2);
  args.add_option("--classifier", o.classifier, "cache of the feature classifier (empty: the default cache)");
  args.add_option("--samples", o.samples, "--task score: the .npy file of images to score");
  args.add_flag("--conditional", o.conditional, "condition both networks on the class (models::ConditionalGAN)");
  args.add_flag("--projection", o.projection, "--conditional: a projection discriminator instead of concatenation");
  args.add_flag("--distributed", o.distributed,
                "data-parallel over the ranks of an MPI job (mpiexec -n N gan --distributed; needs MPI)");
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  if (o.task != "train" && o.task != "score") throw ValueError("--task: expected train or score, got '" + o.task + "'");
  if (o.arch != "mlp" && o.arch != "dcgan") throw ValueError("--arch: expected mlp or dcgan, got '" + o.arch + "'");
  (void)models::parse_gan_objective(o.loss);  // a bad --loss fails before anything loads
  if (o.classifier.empty()) o.classifier = eval::default_feature_classifier_cache();

  distributed::Communicator* comm = nullptr;
#ifdef GENMOD_WITH_MPI
  std::unique_ptr<distributed::MpiSession> session;
  std::unique_ptr<distributed::MpiCommunicator> mpi;
  if (o.distributed) {
    if (o.task != "train") throw ValueError("--distributed: only --task train runs data-parallel");
    session = std::make_unique<distributed::MpiSession>(&argc, &argv);
    comm = (mpi = std::make_unique<distributed::MpiCommunicator>()).get();
  }
#else
  if (o.distributed)
    throw ValueError(
        "--distributed: this build has no MPI (install libopenmpi-dev and reconfigure: the example "
        "then links the genmod::mpi target)");
#endif
  try {
    return train_or_score(o, args, comm);
  } catch (const std::exception& e) {
#ifdef GENMOD_WITH_MPI
    // One rank failed: stop the whole job now rather than let the others wait for it.
    if (comm && comm->size() > 1) distributed::abort_all("gan: rank " + std::to_string(comm->rank()) + ": " + e.what());
#endif
    throw;
  }
} catch (const std::exception& e) {
  std::fprintf(stderr, "gan: %s\n", e.what());
  return 1;
}

namespace {

int train_or_score(Options& o, const train::ExampleArgs& args, distributed::Communicator* comm) {
  const models::GanObjective objective = models::parse_gan_objective(o.loss);
  const auto train_set = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test_set = data::FashionMNIST::load(data::Split::test, args.data);
  // Data-parallel: rank 0 trains the classifier (or loads it) and caches it; the others then load it.
  const bool first = !comm || comm->rank() == 0;
  std::optional<eval::FeatureClassifier> cached;
  if (first) cached.emplace(eval::load_or_train_feature_classifier(o.classifier, args.data, {}, &std::cout));
  if (comm) comm->barrier();
  if (!first) cached.emplace(eval::load_or_train_feature_classifier(o.classifier, args.data, {}, nullptr));
  eval::FeatureClassifier& classifier = *cached;
  if (first) std::printf("%s\n", classifier.summary().c_str());
  const Tensor<float> test_x = test_set.float_images();
  Evaluator evaluator{classifier, classifier.features(test_x)};

  if (o.task == "score") {
    if (o.samples.empty()) throw ValueError("--task score needs --samples FILE.npy");
    const data::NpyArray a = data::read_npy(o.samples);
    Tensor<float> x = a.holds<std::uint8_t>() ? data::scale_pixels(a.get<std::uint8_t>()) : a.to<float>();
    Generator bootstrap(args.seed, 0x626f6f74ULL);  // "boot": the FD's 95 % interval, as the final record's
    const train::Metrics m = evaluator.score(x, &bootstrap);
    // The first 64 scored images as a grid, so any tool's samples can be looked at as genmod's are.
    std::filesystem::create_directories(args.out);
    io::save_image_grid(args.out + "/scored_samples.png", x.rows(0, std::min<std::int64_t>(64, x.dim(0))),
                        {.columns = 8});
    std::printf("{\"samples\": \"%s\", \"n\": %lld", o.samples.c_str(), static_cast<long long>(x.dim(0)));
    for (const auto& [k, v] : m) std::printf(", \"%s\": %.6g", k.c_str(), v);
    std::printf("}\n");
    return 0;
  }

  // The recipe of the loss, then the user's overrides.
  const bool wasserstein = objective == models::GanObjective::wgan || objective == models::GanObjective::wgan_gp;
  const models::GANOptions gopt{.objective = objective,
                                .latent_dim = o.latent,
                                .n_critic = o.n_critic > 0 ? static_cast<int>(o.n_critic) : (wasserstein ? 5 : 1),
                                .clip = o.clip,
                                .penalty = {.weight = o.gp_weight},
                                .noise_seed = args.seed};
  manual_seed(args.seed);
  Run run{o, args, train_set, test_set, evaluator, classifier, comm};
  if (!o.conditional) {
    auto [g, d] = networks(o, objective);
    Gan gan(g, d, gopt);
    return run.train(gan);
  }
  const auto norm = objective == models::GanObjective::wgan_gp ? models::CriticNorm::layer : models::CriticNorm::batch;
  const auto mode = o.projection ? models::ConditioningMode::projection : models::ConditioningMode::concat;
  if (o.arch == "dcgan") {
    models::ConditionalGAN gan(models::ConditionalDCGANGenerator<float>({.latent_dim = o.latent}, 10),
                               models::ConditionalDCGANDiscriminator<float>({.norm = norm}, 10, mode), gopt);
    return run.train(gan);
  }
  models::ConditionalGAN gan(
      models::ConditionalMLPGenerator<float>(
          {.latent_dim = o.latent, .hidden = 256, .layers = 2, .out = 784, .sample_shape = {1, 28, 28}}, 10),
      models::ConditionalMLPDiscriminator<float>({.in = 784, .hidden = 512, .layers = 2}, 10, mode), gopt);
  return run.train(gan);
}

}  // namespace
