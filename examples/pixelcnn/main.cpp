// Autoregressive models on Fashion-MNIST: exact likelihoods, samples, and completions of occluded
// images.
//
//   pixelcnn [--model pixelcnn|gated|row-lstm|diagonal-bilstm] [--conditional] [--binarize]
//            [--channels C] [--layers L] [--gated-link output|pre-activation] [--lr X]
//            [--temperature T] [--task train|anomaly] [--anomaly-epochs E] [--anomaly-class C]
//            [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--threads N] [--seed S] [--resume PATH]
//
// --model pixelcnn is the `pixelcnn` reference workload (7x7 mask A to --channels 64, --layers 5
// residual 3x3 mask-B blocks, a 1x1 head, 256 logits per pixel); batch 32, Adam 1e-3 by default.
// --model gated is models::GatedPixelCNN (vertical and horizontal stacks, gated units, no blind
// spot; 32 channels and 5 gated layers by default, about the weights PixelCNN's masks leave in
// use); --conditional conditions it on the class (a per-class bias in every gate): the test figure
// is then -log p(x | class) and the samples come a row per class; --gated-link pre-activation
// feeds the horizontal stack the vertical pre-activations, as the paper's figure 2 (2C -> 2C
// link), instead of the gated vertical output. Gated PixelCNN trains best at --lr 5e-3 (PixelCNN
// at 3e-3; docs/autoregressive.md has the sweep). --model row-lstm is
// models::PixelRNN (a 7x7 mask-A layer, 2 Row LSTM layers of 32 units, the same head);
// --model diagonal-bilstm is the same PixelRNN with 2 Diagonal BiLSTM layers of 32 units per
// direction (no blind spot above-right).
// Pixels are 8-bit levels k / 255 and the model is a 256-way softmax per pixel: the test negative
// log-likelihood in bits per dimension is the discrete NLL itself (no dequantization bound). With
// --binarize every pixel is thresholded at 1/2 and the output is one Bernoulli logit per pixel;
// the figure is then nats per image.
//
// --task train (the default): the Trainer runs the loop; after every epoch it evaluates the test
// NLL (OUT/metrics.jsonl: test_bits_per_dim, or test_nats_per_image with --binarize), redraws
// OUT/loss.svg and saves OUT/checkpoint.npz (--resume continues exactly: training draws no random
// numbers besides the loader's order, which the checkpoint keeps). Then it writes
// OUT/samples.png (64 samples at --temperature, drawn by the cached sampler: every layer's
// activation at a pixel computed once, as the pixel's turn comes) and OUT/completion.png: 8 test
// images in columns; rows: the original, the image with its bottom half occluded (grey), then 4
// completions, each bottom half drawn pixel by pixel given the top half.
//
// --task anomaly: the one-class protocol of examples/autoencoders. For each class, a model trains
// on that class's 6,000 training images for --anomaly-epochs; every test image is scored by
// -log p(x); the AUROC of the nine other classes against the class, per class and the mean, go to
// stdout and OUT/anomaly.jsonl. Likelihood alone is known to be a poor outlier score (Nalisnick et
// al. 2019: models give simple images, with much empty background, high likelihood whatever their
// class), so the program also reports the input-complexity correction of Serra et al. 2020:
// score = -log2 p(x) - L(x), L(x) the image's length in bits compressed by zlib (PNG's
// compressor). --anomaly-class C runs one class alone.
//
// --data may name any directory of IDX files in Fashion-MNIST's format (MNIST, say).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <zlib.h>

#include <genmod/genmod.hpp>

using namespace genmod;

namespace {

/// The options beyond the shared ones of train::ExampleArgs.
struct Options {
  std::string model = "pixelcnn";
  std::string task = "train";
  bool binarize = false;
  bool conditional = false;
  std::int64_t channels = 0;  // 0: the model's default
  std::int64_t layers = -1;   // -1: the model's default
  std::string gated_link = "output";
  double lr = 1e-3;
  double temperature = 1.0;
  std::int64_t anomaly_epochs = 1;
  std::int64_t anomaly_class = -1;
};

/// What this program needs of an autoregressive model, whichever it is. `labels` is null for an
/// unconditional model and one class per image for a conditional one.
class AnyPixelModel {
 public:
  virtual ~AnyPixelModel() = default;
  /// The model itself, for the optimizer, the trainer and checkpoints.
  virtual nn::Module<float>& module() = 0;
  /// The training objective on a batch [N, 1, 28, 28]: mean nats per pixel.
  virtual Var<float> loss(const Var<float>& x, const Tensor<std::int64_t>* labels) = 0;
  /// log p(x) (or log p(x | label)) per image [N], nats, in batches of 500.
  virtual Tensor<float> log_probs(const Tensor<float>& x, const Tensor<std::int64_t>* labels) = 0;
  /// n images (one per label when conditional) drawn pixel by pixel.
  virtual Tensor<float> sample(std::int64_t n, const Tensor<std::int64_t>* labels,
                               const models::PixelSamplingOptions& o, Generator& g) = 0;
  /// The unknown pixels (mask 0) of images drawn given the known ones.
  virtual Tensor<float> complete(const Tensor<float>& images, const Tensor<float>& known,
                                 const Tensor<std::int64_t>* labels, const models::PixelSamplingOptions& o,
                                 Generator& g) = 0;
};

/// AnyPixelModel over a model class with PixelCNN's interface (and, when Conditional, the label
/// overloads of GatedPixelCNN).
template <class Model, bool Conditional = false>
class PixelModelOf final : public AnyPixelModel {
 public:
  template <class... Args>
  explicit PixelModelOf(Args&&... args) : model(std::forward<Args>(args)...) {}
  nn::Module<float>& module() override { return model; }
  Var<float> loss(const Var<float>& x, const Tensor<std::int64_t>* labels) override {
    if constexpr (Conditional)
      return model.loss(x, *labels);
    else
      return model.loss(x);
  }
  Tensor<float> log_probs(const Tensor<float>& x, const Tensor<std::int64_t>* labels) override {
    if constexpr (Conditional) {
      NoGradGuard no_grad;
      Tensor<float> out(Shape{x.dim(0)});
      for (std::int64_t s = 0; s < x.dim(0); s += 500) {
        const std::int64_t b = std::min<std::int64_t>(500, x.dim(0) - s);
        const Tensor<float> lp = model.log_prob(Var<float>(x.rows(s, b)), labels->rows(s, b)).value();
        std::copy(lp.begin(), lp.end(), out.data() + s);
      }
      return out;
    } else {
      return eval::log_probs(model, x, 500);
    }
  }
  Tensor<float> sample(std::int64_t n, const Tensor<std::int64_t>* labels, const models::PixelSamplingOptions& o,
                       Generator& g) override {
    if constexpr (Conditional)
      return model.sample(*labels, o, g);
    else
      return model.sample(n, o, g);
  }
  Tensor<float> complete(const Tensor<float>& images, const Tensor<float>& known, const Tensor<std::int64_t>* labels,
                         const models::PixelSamplingOptions& o, Generator& g) override {
    if constexpr (Conditional)
      return model.complete(images, known, *labels, o, g);
    else
      return model.complete(images, known, o, g);
  }
  Model model;  ///< the model
};

std::unique_ptr<AnyPixelModel> build(const Options& o) {
  const models::PixelOutput out = o.binarize ? models::PixelOutput::bernoulli : models::PixelOutput::categorical;
  if (o.model == "gated") {
    models::GatedPixelCNNOptions g{.output = out, .classes = o.conditional ? 10 : 0};
    if (o.channels > 0) g.channels = o.channels;
    if (o.layers >= 0) g.layers = static_cast<int>(o.layers);
    if (o.gated_link == "pre-activation") g.link = models::GatedLink::pre_activation;
    if (o.conditional) return std::make_unique<PixelModelOf<models::GatedPixelCNN<float>, true>>(g);
    return std::make_unique<PixelModelOf<models::GatedPixelCNN<float>>>(g);
  }
  if (o.model == "row-lstm" || o.model == "diagonal-bilstm") {
    models::PixelRNNOptions r{.output = out};
    if (o.model == "diagonal-bilstm") r.layer = models::PixelRNNLayer::diagonal_bilstm;
    if (o.channels > 0) r.channels = o.channels;
    if (o.layers >= 0) r.layers = static_cast<int>(o.layers);
    return std::make_unique<PixelModelOf<models::PixelRNN<float>>>(r);
  }
  models::PixelCNNOptions p{.output = out};
  if (o.channels > 0) p.channels = o.channels;
  if (o.layers >= 0) p.residual_blocks = static_cast<int>(o.layers);
  return std::make_unique<PixelModelOf<models::PixelCNN<float>>>(p);
}

/// The test figure: bits/dim of 8-bit pixels, or nats per image of binary ones.
double test_figure(AnyPixelModel& m, const Tensor<float>& x, const Tensor<std::int64_t>* labels, bool binarize) {
  const Tensor<float> lp = m.log_probs(x, labels);
  double nats = 0;
  for (const float v : lp) nats -= static_cast<double>(v) / static_cast<double>(lp.numel());
  return binarize ? nats : nats / (784 * std::log(2.0));
}

/// The rows of x whose label is `cls`.
Tensor<float> rows_of_class(const Tensor<float>& x, const Tensor<std::int64_t>& labels, std::int64_t cls) {
  std::int64_t n = 0;
  for (const std::int64_t l : labels) n += l == cls;
  Tensor<float> out(Shape{n, 1, 28, 28});
  std::int64_t r = 0;
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    if (labels[i] == cls) std::copy(x.data() + i * 784, x.data() + (i + 1) * 784, out.data() + 784 * r++);
  return out;
}

/// The length in bits of each image of x [N, 1, 28, 28] as 8-bit pixels compressed by zlib
/// (level 9): the "input complexity" L(x) of Serra et al. 2020.
std::vector<double> complexity_bits(const Tensor<float>& x, bool binarize) {
  std::vector<double> bits(static_cast<std::size_t>(x.dim(0)));
  std::vector<unsigned char> raw(784), packed(compressBound(784));
  for (std::int64_t i = 0; i < x.dim(0); ++i) {
    for (std::int64_t p = 0; p < 784; ++p)
      raw[static_cast<std::size_t>(p)] = static_cast<unsigned char>(std::lround(x[i * 784 + p] * (binarize ? 1 : 255)));
    uLongf size = static_cast<uLongf>(packed.size());
    if (compress2(packed.data(), &size, raw.data(), 784, 9) != Z_OK) throw IOError("zlib compress2 failed");
    bits[static_cast<std::size_t>(i)] = 8.0 * static_cast<double>(size);
  }
  return bits;
}

/// Seconds since t0.
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Samples and the completion figure of a trained model.
void save_pictures(AnyPixelModel& m, const Options& o, const std::string& out, const Tensor<float>& test_x,
                   const Tensor<std::int64_t>& test_labels, std::uint64_t seed) {
  const models::PixelSamplingOptions so{.temperature = o.temperature};
  Generator g(seed, 0x73616d70ULL);  // "samp": the pictures' stream, apart from anything else
  auto t0 = std::chrono::steady_clock::now();
  if (o.conditional) {
    // One row per class: 8 samples of class r in row r.
    Tensor<std::int64_t> classes(Shape{80});
    for (std::int64_t i = 0; i < 80; ++i) classes[i] = i / 8;
    io::save_image_grid(out + "/samples.png", m.sample(80, &classes, so, g), {.columns = 8});
    std::printf("80 samples (8 per class, a row each) in %.2f s (cached sampler)\n", since(t0));
  } else {
    io::save_image_grid(out + "/samples.png", m.sample(64, nullptr, so, g), {.columns = 8});
    std::printf("64 samples in %.2f s (cached sampler)\n", since(t0));
  }

  // Columns: 8 test images. Rows: original, occluded (unknown pixels grey), 4 completions.
  constexpr std::int64_t cols = 8, completions = 4;
  const Tensor<float> originals = test_x.rows(0, cols).clone();
  Tensor<float> known = ones<float>(originals.shape());
  for (std::int64_t b = 0; b < cols; ++b)
    for (std::int64_t p = 14 * 28; p < 784; ++p) known[b * 784 + p] = 0;
  Tensor<float> grid(Shape{(2 + completions) * cols, 1, 28, 28});
  std::copy(originals.begin(), originals.end(), grid.data());
  for (std::int64_t i = 0; i < cols * 784; ++i) grid[cols * 784 + i] = known[i] == 1 ? originals[i] : 0.5f;
  t0 = std::chrono::steady_clock::now();
  for (std::int64_t r = 0; r < completions; ++r) {
    const Tensor<std::int64_t> labels = test_labels.rows(0, cols).clone();
    const Tensor<float> c = m.complete(originals, known, o.conditional ? &labels : nullptr, so, g);
    std::copy(c.begin(), c.end(), grid.data() + (2 + r) * cols * 784);
  }
  std::printf("%lld completions of the bottom half in %.2f s\n", static_cast<long long>(completions * cols), since(t0));
  io::save_image_grid(out + "/completion.png", grid, {.columns = cols});
}

int task_train(const Options& o, const train::ExampleArgs& args, const data::FashionMNIST& train,
               const data::FashionMNIST& test, const Tensor<float>& train_x, const Tensor<float>& test_x) {
  manual_seed(args.seed);
  std::unique_ptr<AnyPixelModel> m = build(o);
  nn::Module<float>& model = m->module();
  optim::Adam adam{model.named_parameters(), {.lr = o.lr}};
  data::Loader loader(data::Dataset(train_x, train.labels),
                      {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
  const std::string metric = o.binarize ? "test_nats_per_image" : "test_bits_per_dim";

  train::TrainerOptions topt = args.trainer_options();
  topt.metadata["model"] = o.model;
  if (o.channels > 0) topt.metadata["channels"] = std::to_string(o.channels);
  if (o.layers >= 0) topt.metadata["layers"] = std::to_string(o.layers);
  if (o.model == "gated") topt.metadata["gated_link"] = o.gated_link;
  if (o.conditional) topt.metadata["conditional"] = "class";
  if (o.binarize) topt.metadata["data"] = "binarized at 0.5";
  topt.plot_options = {.title = o.model + " on Fashion-MNIST",
                       .x_label = "epoch",
                       .y_label = o.binarize ? "nats per pixel (train) / per image (test)" : "nats per pixel"};
  train::Trainer trainer(topt);
  trainer.add_model("model", model, &adam);
  trainer.set_evaluate([&] {
    const double v = test_figure(*m, test_x, o.conditional ? &test.labels : nullptr, o.binarize);
    return train::Metrics{{metric, v}};
  });
  std::printf("%s (%lld parameters, %s output), Adam %g, batch %lld, %d threads\ntrain: %s\n", o.model.c_str(),
              static_cast<long long>(model.num_parameters()), o.binarize ? "Bernoulli" : "256-way", o.lr,
              static_cast<long long>(args.batch_size), get_num_threads(), train.description().c_str());
  std::fflush(stdout);
  const train::FitResult result = trainer.fit(
      loader, [&](const data::Batch& b) { return m->loss(Var<float>(b.x), &b.y); }, adam);
  if (result.interrupted) {
    std::printf("interrupted: continue with --resume %s\n", trainer.checkpoint_path().c_str());
    return 130;
  }
  for (const auto& e : result.epochs)
    std::printf("epoch %lld: train %.4f nats/pixel, %s %.4f, %.1f s\n", static_cast<long long>(e.epoch), e.train_loss,
                metric.c_str(), e.metrics.at(metric), e.seconds);
  save_pictures(*m, o, args.out, test_x, test.labels, args.seed);
  std::printf("wrote %s/{metrics.jsonl, loss.svg, checkpoint.npz, samples.png, completion.png}\n", args.out.c_str());
  return 0;
}

int task_anomaly(const Options& o, const train::ExampleArgs& args, const data::FashionMNIST& train,
                 const data::FashionMNIST& test, const Tensor<float>& train_x, const Tensor<float>& test_x) {
  std::filesystem::create_directories(args.out);
  const std::string path = args.out + "/anomaly.jsonl";
  std::vector<double> aurocs, corrected_aurocs;
  const std::vector<double> complexity = complexity_bits(test_x, o.binarize);
  const auto t_all = std::chrono::steady_clock::now();
  for (std::int64_t cls = 0; cls < 10; ++cls) {
    if (o.anomaly_class >= 0 && cls != o.anomaly_class) continue;
    const auto t0 = std::chrono::steady_clock::now();
    manual_seed(args.seed);
    std::unique_ptr<AnyPixelModel> m = build(o);
    optim::Adam adam{m->module().named_parameters(), {.lr = o.lr}};
    data::Loader loader(data::Dataset(rows_of_class(train_x, train.labels, cls)),
                        {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
    for (std::int64_t e = 0; e < o.anomaly_epochs; ++e)
      for (const auto& b : loader) {
        Tape<float> tape;
        adam.zero_grad();
        tape.backward(m->loss(Var<float>(b.x), nullptr));
        adam.step();
      }
    const Tensor<float> lp = m->log_probs(test_x, nullptr);
    std::vector<double> score(static_cast<std::size_t>(lp.numel())), corrected(score.size());
    std::vector<int> is_anomaly(score.size());
    for (std::size_t i = 0; i < score.size(); ++i) {
      score[i] = -static_cast<double>(lp[static_cast<std::int64_t>(i)]);
      corrected[i] = score[i] / std::log(2.0) - complexity[i];  // -log2 p(x) - L(x), both in bits
      is_anomaly[i] = test.labels[static_cast<std::int64_t>(i)] != cls;
    }
    const double a = eval::auroc(score, is_anomaly), ac = eval::auroc(corrected, is_anomaly);
    aurocs.push_back(a);
    corrected_aurocs.push_back(ac);
    std::printf("class %s: AUROC %.2f %% by -log p(x), %.2f %% by -log2 p(x) - L(x) (%.0f s)\n",
                test.class_label(cls).c_str(), 100 * a, 100 * ac, since(t0));
    std::fflush(stdout);
    train::append_metrics(
        path,
        io::JsonObject{
            {"task", "anomaly"}, {"model", o.model}, {"class", cls}, {"auroc", a}, {"auroc_complexity_corrected", ac}});
  }
  double mean = 0, mean_corrected = 0;
  for (std::size_t i = 0; i < aurocs.size(); ++i) {
    mean += aurocs[i] / static_cast<double>(aurocs.size());
    mean_corrected += corrected_aurocs[i] / static_cast<double>(aurocs.size());
  }
  std::printf(
      "one-class AUROC, mean over %zu classes: %.2f %% by -log p(x), %.2f %% complexity-corrected (%s, %lld epochs per "
      "class; %.0f s)\n",
      aurocs.size(), 100 * mean, 100 * mean_corrected, o.model.c_str(), static_cast<long long>(o.anomaly_epochs),
      since(t_all));
  train::append_metrics(path, io::JsonObject{{"task", "anomaly"},
                                             {"model", o.model},
                                             {"mean_auroc", mean},
                                             {"mean_auroc_complexity_corrected", mean_corrected}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("pixelcnn", "Trains an autoregressive image model on Fashion-MNIST.",
                          {.out = "pixelcnn-out", .epochs = 1, .batch_size = 32});
  Options o;
  args.add_option("--model", o.model, "pixelcnn, gated (Gated PixelCNN), row-lstm or diagonal-bilstm (PixelRNN)");
  args.add_flag("--conditional", o.conditional, "gated: condition on the class (samples: a row per class)");
  args.add_option("--task", o.task, "train, or anomaly (the one-class protocol)");
  args.add_flag("--binarize", o.binarize, "threshold the pixels at 1/2 (a Bernoulli output)");
  args.add_option("--channels", o.channels, "feature channels of the network (0: the model's default)", 0);
  args.add_option("--layers", o.layers, "residual blocks, gated layers or LSTM layers (-1: the model's default)", -1);
  args.add_option("--gated-link", o.gated_link,
                  "gated: what the vertical-to-horizontal link reads, output (gated) or pre-activation");
  args.add_option("--lr", o.lr, "Adam learning rate");
  args.add_option("--temperature", o.temperature, "sampling temperature (> 0)");
  args.add_option("--anomaly-epochs", o.anomaly_epochs, "epochs per class for --task anomaly", 1);
  args.add_option("--anomaly-class", o.anomaly_class, "run --task anomaly for this class only (-1: all)", -1);
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  if (o.model != "pixelcnn" && o.model != "gated" && o.model != "row-lstm" && o.model != "diagonal-bilstm")
    throw ValueError("--model: expected pixelcnn, gated, row-lstm or diagonal-bilstm, got '" + o.model + "'");
  if (o.conditional && (o.model != "gated" || o.task != "train"))
    throw ValueError("--conditional: expected --model gated and --task train");
  if (o.gated_link != "output" && o.gated_link != "pre-activation")
    throw ValueError("--gated-link: expected output or pre-activation, got '" + o.gated_link + "'");
  if (o.gated_link != "output" && o.model != "gated") throw ValueError("--gated-link: expected --model gated");
  if (o.task != "train" && o.task != "anomaly") throw ValueError("--task: expected train or anomaly, got '" + o.task + "'");
  if (!(o.lr > 0)) throw ValueError("--lr: expected > 0, got " + std::to_string(o.lr));
  if (!(o.temperature > 0) || !std::isfinite(o.temperature))
    throw ValueError("--temperature: expected a finite value > 0, got " + std::to_string(o.temperature));
  if (o.anomaly_class > 9) throw ValueError("--anomaly-class: expected -1 or 0..9, got " + std::to_string(o.anomaly_class));
  const auto train = data::FashionMNIST::load(data::Split::train, args.data);
  const auto test = data::FashionMNIST::load(data::Split::test, args.data);
  const Tensor<float> train_x = o.binarize ? data::binarize(train.float_images()) : train.float_images();
  const Tensor<float> test_x = o.binarize ? data::binarize(test.float_images()) : test.float_images();
  std::printf("test: %s\n", test.description().c_str());
  if (o.task == "anomaly") return task_anomaly(o, args, train, test, train_x, test_x);
  return task_train(o, args, train, test, train_x, test_x);
} catch (const std::exception& e) {
  std::fprintf(stderr, "pixelcnn: %s\n", e.what());
  return 1;
}
