// The autoencoder family on Fashion-MNIST, and what each member is for (seed 002).
//
//   autoencoders [--task all|features|compress|denoise|anomaly|sparse] [--data DIR] [--out DIR]
//                [--epochs N] [--batch-size N] [--threads N] [--seed S] [--code K]
//                [--anomaly-arch mlp|conv] [--anomaly-code K] [--anomaly-epochs N]
//
// features  An undercomplete autoencoder (784-512-256-K, mirrored, BCE) against PCA-K: a logistic-
//           regression probe on each code (test accuracy), and reconstruction PSNR.
// compress  The same autoencoder as a codec: test codes quantized to 8 bits in a file, decoded;
//           bytes per image and PSNR, beside PCA-K through the same quantizer.
// denoise   Denoising autoencoders for Gaussian noise (sigma 0.3) and masking (p 0.5): PSNR of the
//           noisy and of the denoised test images.
// anomaly   One-class protocol: for each class, train on that class only, score every test image
//           by reconstruction error, AUROC of the class against the nine others; and the mean.
// sparse    A 256-unit sigmoid code with the Bernoulli-KL penalty (rho 0.05) and with L1, against
//           no penalty: mean activation, share of near-zero activations, reconstruction error.
//
// Every result goes to OUT/metrics.jsonl (one JSON object per figure group) and is printed; the
// pictures are PNG grids in OUT; each trained model is saved as OUT/<name>.npz.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <genmod/genmod.hpp>

using namespace genmod;

namespace {

using Net = nn::DynamicSequential<float>;
using AE = models::Autoencoder<Net, Net>;
using DAE = models::DenoisingAutoencoder<Net, Net>;
using SAE = models::SparseAutoencoder<Net, Net>;

struct Options {
  std::string task = "all";
  std::int64_t code = 32;
  std::string anomaly_arch = "mlp";
  std::int64_t anomaly_code = 16;
  std::int64_t anomaly_epochs = 30;
  double anomaly_noise = 0;
  double lr = 1e-3;
};

struct Context {
  train::ExampleArgs* args;
  Options opt;
  std::string out;
  data::FashionMNIST train, test;
  Tensor<float> train_x, test_x;    // [N, 784] in [0, 1]
  std::unique_ptr<AE> features_ae;  // trained by the first task that needs it (features, compress)
};

/// One line of metrics.jsonl.
class Record {
 public:
  explicit Record(const std::string& task) { s_ << "{\"task\": \"" << task << "\""; }
  Record& add(const std::string& key, double v) {
    s_ << ", \"" << key << "\": " << v;
    return *this;
  }
  Record& add(const std::string& key, const std::string& v) {
    s_ << ", \"" << key << "\": \"" << v << "\"";
    return *this;
  }
  void write(const std::string& out) { std::ofstream(out + "/metrics.jsonl", std::ios::app) << s_.str() << "}\n"; }

 private:
  std::ostringstream s_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Encoder 784-512-256-K and its mirror image (logits out): the undercomplete autoencoder.
std::pair<Net, Net> mlp_pair(std::int64_t code, std::int64_t in = 784) {
  return {Net{nn::Linear(in, 512), nn::ReLU(), nn::Linear(512, 256), nn::ReLU(), nn::Linear(256, code)},
          Net{nn::Linear(code, 256), nn::ReLU(), nn::Linear(256, 512), nn::ReLU(), nn::Linear(512, in)}};
}

/// The conv_vae's encoder and decoder (../shared/ref) with a K-dimensional code; inputs flat [N, 784].
std::pair<Net, Net> conv_pair(std::int64_t code) {
  return {Net{nn::Reshape({1, 28, 28}), nn::Conv2d(1, 32, 4, {.stride = 2, .padding = 1}), nn::ReLU(),
              nn::Conv2d(32, 64, 4, {.stride = 2, .padding = 1}), nn::ReLU(), nn::Flatten(), nn::Linear(3136, code)},
          Net{nn::Linear(code, 3136), nn::ReLU(), nn::Reshape({64, 7, 7}),
              nn::ConvTranspose2d(64, 32, 4, {.stride = 2, .padding = 1}), nn::ReLU(),
              nn::ConvTranspose2d(32, 1, 4, {.stride = 2, .padding = 1}), nn::Flatten()}};
}

/// Trains with Adam over shuffled mini-batches; stops with the step's number if the loss is not
/// finite. Returns the last epoch's mean loss.
template <class Model>
double fit(Model& model, const Tensor<float>& x, std::int64_t epochs, const Context& c, const std::string& label) {
  optim::Adam adam{model.named_parameters(), {.lr = c.opt.lr}};
  data::Loader loader(data::Dataset(x), {.batch_size = c.args->batch_size, .shuffle = true, .seed = c.args->seed});
  double last = 0;
  std::int64_t step = 0;
  for (std::int64_t epoch = 1; epoch <= epochs; ++epoch) {
    train::ProgressBar progress;
    progress.start(label + " epoch " + std::to_string(epoch), loader.num_batches());
    double sum = 0;
    std::int64_t seen = 0, i = 0;
    for (const auto& batch : loader) {
      Tape<float> tape;
      const Var<float> loss = model.loss(Var<float>(batch.x));
      const float l = loss.item();
      if (!std::isfinite(l))
        throw NumericError(label + ": the loss became " + std::to_string(l) + " at epoch " + std::to_string(epoch) +
                           ", step " + std::to_string(step + 1));
      tape.backward(loss);
      adam.step();
      adam.zero_grad();
      ++step;
      sum += static_cast<double>(l) * static_cast<double>(batch.size());
      seen += batch.size();
      progress.update(++i, batch.size(), sum / static_cast<double>(seen));
    }
    last = sum / static_cast<double>(seen);
    progress.finish("");
  }
  return last;
}

Tensor<float> images(const Tensor<float>& x) {
  return x.reshape({x.dim(0), 1, 28, 28});
}

/// Rows of several [n, 784] tensors stacked into one grid, one input per row of the picture.
void save_rows(const std::string& path, const std::vector<Tensor<float>>& rows, std::int64_t n) {
  Tensor<float> all(Shape{static_cast<std::int64_t>(rows.size()) * n, 1, 28, 28});
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::int64_t i = 0; i < n * 784; ++i)
      all[static_cast<std::int64_t>(r) * n * 784 + i] = std::clamp(rows[r][i], 0.f, 1.f);
  io::save_image_grid(path, all, {.columns = n});
}

/// The undercomplete AE of the features and compression tasks (trained once, shared).
AE& features_autoencoder(Context& c) {
  std::unique_ptr<AE>& ae = c.features_ae;
  if (!ae) {
    manual_seed(c.args->seed);
    auto [enc, dec] = mlp_pair(c.opt.code);
    ae = std::make_unique<AE>(enc, dec,
                              models::AutoencoderOptions{.reconstruction = models::Reconstruction::bce_with_logits});
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = fit(*ae, c.train_x, c.args->epochs, c, "AE-" + std::to_string(c.opt.code));
    std::printf("AE-%lld: %lld epochs, train BCE %.2f nats/image, %.0f s\n", static_cast<long long>(c.opt.code),
                static_cast<long long>(c.args->epochs), loss, seconds_since(t0));
    io::save_checkpoint(c.out + "/features_ae.npz", *ae);
  }
  return *ae;
}

void task_features(Context& c) {
  const std::int64_t k = c.opt.code;
  AE& ae = features_autoencoder(c);
  const auto t0 = std::chrono::steady_clock::now();
  const auto pca = models::PCA<float>::fit(c.train_x, k);
  std::printf("PCA-%lld: keeps %.1f %% of the variance (%.1f s)\n", static_cast<long long>(k),
              100 * pca.explained_variance_ratio(), seconds_since(t0));
  const eval::ProbeOptions probe{.epochs = 30, .batch_size = 256, .lr = 1e-2, .seed = c.args->seed};
  const auto ae_probe =
      eval::linear_probe(ae.encode_all(c.train_x), c.train.labels, ae.encode_all(c.test_x), c.test.labels, probe);
  const auto pca_probe =
      eval::linear_probe(pca.encode(c.train_x), c.train.labels, pca.encode(c.test_x), c.test.labels, probe);
  const auto pixel_probe = eval::linear_probe(c.train_x, c.train.labels, c.test_x, c.test.labels, probe);
  const double ae_psnr = eval::mean_psnr_per_sample(c.test_x, ae.reconstruct_all(c.test_x));
  const double pca_psnr = eval::mean_psnr_per_sample(c.test_x, pca.decode(pca.encode(c.test_x)));
  std::printf("logistic-regression probe, test accuracy: AE-%lld %.2f %%, PCA-%lld %.2f %%, raw pixels (784) %.2f %%\n",
              static_cast<long long>(k), 100 * ae_probe.test_accuracy, static_cast<long long>(k),
              100 * pca_probe.test_accuracy, 100 * pixel_probe.test_accuracy);
  std::printf("reconstruction PSNR on the test set: AE-%lld %.2f dB, PCA-%lld %.2f dB\n", static_cast<long long>(k),
              ae_psnr, static_cast<long long>(k), pca_psnr);
  Record("features")
      .add("code", static_cast<double>(k))
      .add("ae_probe_test_accuracy", ae_probe.test_accuracy)
      .add("pca_probe_test_accuracy", pca_probe.test_accuracy)
      .add("pixels_probe_test_accuracy", pixel_probe.test_accuracy)
      .add("ae_test_psnr_db", ae_psnr)
      .add("pca_test_psnr_db", pca_psnr)
      .add("pca_explained_variance", pca.explained_variance_ratio())
      .write(c.out);
  const Tensor<float> x = c.test_x.rows(0, 16);
  save_rows(c.out + "/features_reconstructions.png", {x, ae.reconstruct_all(x), pca.decode(pca.encode(x))}, 16);
}

void task_compress(Context& c) {
  const std::int64_t k = c.opt.code;
  AE& ae = features_autoencoder(c);
  const std::int64_t n = c.test_x.dim(0);
  // Autoencoder codes through the 8-bit file.
  const std::string path = c.out + "/test_codes.gmqc";
  const std::uint64_t bytes = io::save_quantized_codes(path, io::quantize_codes(ae.encode_all(c.test_x)));
  const Tensor<float> decoded = ae.decode_all(io::dequantize_codes(io::load_quantized_codes(path)));
  const double psnr_q = eval::mean_psnr_per_sample(c.test_x, decoded);
  const double psnr_f = eval::mean_psnr_per_sample(c.test_x, ae.reconstruct_all(c.test_x));
  // PCA codes through the same quantizer.
  const auto pca = models::PCA<float>::fit(c.train_x, k);
  const Tensor<float> pca_decoded = pca.decode(io::dequantize_codes(io::quantize_codes(pca.encode(c.test_x))));
  const double pca_psnr_q = eval::mean_psnr_per_sample(c.test_x, pca_decoded);
  const double per_image = static_cast<double>(bytes) / static_cast<double>(n);
  std::printf(
      "compression: %.2f bytes per image (raw 784, %.1fx smaller); PSNR %.2f dB with 8-bit codes, %.2f dB with "
      "float codes; PCA-%lld with 8-bit codes %.2f dB\n",
      per_image, 784 / per_image, psnr_q, psnr_f, static_cast<long long>(k), pca_psnr_q);
  Record("compress")
      .add("code", static_cast<double>(k))
      .add("file_bytes", static_cast<double>(bytes))
      .add("bytes_per_image", per_image)
      .add("ae_8bit_psnr_db", psnr_q)
      .add("ae_float_psnr_db", psnr_f)
      .add("pca_8bit_psnr_db", pca_psnr_q)
      .write(c.out);
  save_rows(c.out + "/compression.png", {c.test_x.rows(0, 16), decoded.rows(0, 16), pca_decoded.rows(0, 16)}, 16);
}

void task_denoise(Context& c) {
  struct Case {
    const char* name;
    data::CorruptionOptions corruption;
  };
  for (const Case& cs : {Case{"gaussian_0.3", {data::Corruption::gaussian, 0.3f}},
                         Case{"masking_0.5", {data::Corruption::masking, 0.5f}}}) {
    manual_seed(c.args->seed);
    auto [enc, dec] = mlp_pair(128);
    DAE dae(
        enc, dec,
        {.reconstruction = models::Reconstruction::bce_with_logits, .corruption = cs.corruption, .seed = c.args->seed});
    const auto t0 = std::chrono::steady_clock::now();
    fit(dae, c.train_x, c.args->epochs, c, std::string("DAE ") + cs.name);
    const double secs = seconds_since(t0);
    Generator g(c.args->seed, 0x6e6f697365ULL);
    const Tensor<float> noisy = dae.corrupt(c.test_x, g);
    const Tensor<float> clean = dae.denoise(noisy);
    const double before = eval::mean_psnr_per_sample(c.test_x, noisy);
    const double after = eval::mean_psnr_per_sample(c.test_x, clean);
    std::printf("denoising %s: PSNR noisy %.2f dB -> denoised %.2f dB (%.0f s training)\n", cs.name, before, after,
                secs);
    Record("denoise")
        .add("corruption", cs.name)
        .add("noisy_psnr_db", before)
        .add("denoised_psnr_db", after)
        .write(c.out);
    save_rows(c.out + "/denoise_" + std::string(cs.name) + ".png",
              {c.test_x.rows(0, 16), noisy.rows(0, 16), clean.rows(0, 16)}, 16);
    io::save_checkpoint(c.out + "/dae_" + std::string(cs.name) + ".npz", dae);
  }
}

void task_anomaly(Context& c) {
  std::vector<double> aurocs;
  std::vector<std::pair<float, std::int64_t>> worst;  // per class: most anomalous-looking normal
  const auto t_all = std::chrono::steady_clock::now();
  for (std::int64_t cls = 0; cls < data::FashionMNIST::kClasses; ++cls) {
    std::vector<std::int64_t> rows;
    for (std::int64_t i = 0; i < c.train.labels.numel(); ++i)
      if (c.train.labels[i] == cls) rows.push_back(i);
    Tensor<float> x(Shape{static_cast<std::int64_t>(rows.size()), 784});
    for (std::size_t r = 0; r < rows.size(); ++r)
      std::copy_n(c.train_x.data() + rows[r] * 784, 784, x.data() + static_cast<std::int64_t>(r) * 784);
    manual_seed(c.args->seed + static_cast<std::uint64_t>(cls));
    auto [enc, dec] = c.opt.anomaly_arch == "conv" ? conv_pair(c.opt.anomaly_code) : mlp_pair(c.opt.anomaly_code);
    // A plain autoencoder, or with --anomaly-noise p a denoising one trained against masking.
    DAE ae(enc, dec,
           {.reconstruction = models::Reconstruction::squared_error,
            .corruption = {.kind = data::Corruption::masking, .level = static_cast<float>(c.opt.anomaly_noise)},
            .seed = c.args->seed});
    fit(ae, x, c.opt.anomaly_epochs, c, "class " + std::to_string(cls));
    const Tensor<float> score = ae.anomaly_score(c.test_x);
    std::vector<double> s(static_cast<std::size_t>(score.numel()));
    std::vector<int> is_anomaly(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      s[i] = score[static_cast<std::int64_t>(i)];
      is_anomaly[i] = c.test.labels[static_cast<std::int64_t>(i)] != cls;
    }
    const double a = eval::auroc(s, is_anomaly);
    aurocs.push_back(a);
    std::printf("class %lld (%s): AUROC %.2f %%\n", static_cast<long long>(cls),
                std::string(data::FashionMNIST::class_name(cls)).c_str(), 100 * a);
    Record("anomaly")
        .add("class", static_cast<double>(cls))
        .add("class_name", std::string(data::FashionMNIST::class_name(cls)))
        .add("auroc", a)
        .write(c.out);
    if (cls == 0) {
      // The picture: the 8 test images the T-shirt/top model finds least unusual (first row) and most.
      std::vector<std::int64_t> order(s.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
      std::sort(order.begin(), order.end(),
                [&](auto p, auto q) { return s[static_cast<std::size_t>(p)] < s[static_cast<std::size_t>(q)]; });
      Tensor<float> pick(Shape{16, 784});
      for (int i = 0; i < 8; ++i) {
        std::copy_n(c.test_x.data() + order[static_cast<std::size_t>(i)] * 784, 784, pick.data() + i * 784);
        std::copy_n(c.test_x.data() + order[order.size() - 1 - static_cast<std::size_t>(i)] * 784, 784,
                    pick.data() + (8 + i) * 784);
      }
      io::save_image_grid(c.out + "/anomaly_class0_least_and_most_unusual.png", images(pick), {.columns = 8});
    }
  }
  double mean = 0;
  for (double a : aurocs) mean += a / static_cast<double>(aurocs.size());
  std::printf(
      "one-class AUROC, mean over the 10 classes: %.2f %% (%s AE, code %lld, %lld epochs, masking %.2f; %.0f s)\n",
      100 * mean, c.opt.anomaly_arch.c_str(), static_cast<long long>(c.opt.anomaly_code),
      static_cast<long long>(c.opt.anomaly_epochs), c.opt.anomaly_noise, seconds_since(t_all));
  Record("anomaly")
      .add("mean_auroc", mean)
      .add("arch", c.opt.anomaly_arch)
      .add("code", static_cast<double>(c.opt.anomaly_code))
      .add("epochs", static_cast<double>(c.opt.anomaly_epochs))
      .add("masking", c.opt.anomaly_noise)
      .write(c.out);
}

void task_sparse(Context& c) {
  constexpr std::int64_t hidden = 256;
  auto pair = [] { return std::pair{Net{nn::Linear(784, hidden), nn::Sigmoid()}, Net{nn::Linear(hidden, 784)}}; };
  struct Case {
    const char* name;
    models::SparseAutoencoderOptions options;
  };
  const models::Reconstruction bce = models::Reconstruction::bce_with_logits;
  for (const Case& cs :
       {Case{"none", {.reconstruction = bce, .penalty = models::SparsityPenalty::l1, .weight = 0.0}},
        Case{"kl",
             {.reconstruction = bce, .penalty = models::SparsityPenalty::bernoulli_kl, .weight = 10.0, .rho = 0.05}},
        Case{"l1", {.reconstruction = bce, .penalty = models::SparsityPenalty::l1, .weight = 0.5}}}) {
    manual_seed(c.args->seed);
    auto [enc, dec] = pair();
    SAE sae(enc, dec, cs.options);
    fit(sae, c.train_x, c.args->epochs, c, std::string("sparse ") + cs.name);
    const Tensor<float> h = sae.encode_all(c.test_x);
    const auto st = losses::sparsity_stats(h, 1e-2);
    const double psnr = eval::mean_psnr_per_sample(c.test_x, sae.reconstruct_all(c.test_x));
    // Units that fire (> 0.5) on fewer than 10 % of the test images.
    std::int64_t selective = 0;
    for (std::int64_t j = 0; j < hidden; ++j) {
      std::int64_t on = 0;
      for (std::int64_t i = 0; i < h.dim(0); ++i) on += h(i, j) > 0.5f;
      selective += on < h.dim(0) / 10;
    }
    std::printf(
        "sparse penalty %-4s: mean activation %.4f (target %.2f), near-zero (< 0.01) %.1f %%, selective units "
        "%lld/%lld, test PSNR %.2f dB\n",
        cs.name, st.mean_activation, cs.options.rho, 100 * st.near_zero_fraction, static_cast<long long>(selective),
        static_cast<long long>(hidden), psnr);
    Record("sparse")
        .add("penalty", cs.name)
        .add("weight", cs.options.weight)
        .add("rho", cs.options.rho)
        .add("mean_activation", st.mean_activation)
        .add("near_zero_fraction", st.near_zero_fraction)
        .add("selective_units", static_cast<double>(selective))
        .add("test_psnr_db", psnr)
        .write(c.out);
    // What the units stand for: each decoder column as an image, scaled to its own range.
    const Tensor<float> w = sae.decoder.named_parameters()[0].parameter.value();  // [784, hidden]
    Tensor<float> filters(Shape{64, 1, 28, 28});
    for (std::int64_t j = 0; j < 64; ++j) {
      float lo = 1e30f, hi = -1e30f;
      for (std::int64_t p = 0; p < 784; ++p) lo = std::min(lo, w(p, j)), hi = std::max(hi, w(p, j));
      for (std::int64_t p = 0; p < 784; ++p) filters[j * 784 + p] = (w(p, j) - lo) / std::max(hi - lo, 1e-12f);
    }
    io::save_image_grid(c.out + "/sparse_" + std::string(cs.name) + "_decoder_units.png", filters, {.columns = 8});
  }
}

}  // namespace

int main(int argc, char** argv) try {
  train::ExampleArgs args("autoencoders",
                          "Undercomplete, denoising and sparse autoencoders on Fashion-MNIST: features, compression, "
                          "denoising, one-class anomaly detection and sparsity, each with its figure.",
                          {.out = "autoencoders-out", .epochs = 10, .batch_size = 128});
  Options opt;
  args.add_option("--task", opt.task, "all, features, compress, denoise, anomaly or sparse");
  args.add_option("--code", opt.code, "code size of the features/compression autoencoder and of PCA", 1);
  args.add_option("--lr", opt.lr, "Adam learning rate");
  args.add_option("--anomaly-arch", opt.anomaly_arch, "mlp or conv autoencoder for the one-class protocol");
  args.add_option("--anomaly-code", opt.anomaly_code, "code size for the one-class protocol", 1);
  args.add_option("--anomaly-epochs", opt.anomaly_epochs, "epochs per class for the one-class protocol", 1);
  args.add_option("--anomaly-noise", opt.anomaly_noise,
                  "masking probability for a denoising AE in the one-class protocol (0: none)");
  args.parse_or_exit(argc, argv);
  args.apply_threads();
  const std::vector<std::string> tasks = {"features", "compress", "denoise", "anomaly", "sparse"};
  if (opt.task != "all" && std::find(tasks.begin(), tasks.end(), opt.task) == tasks.end())
    throw ValueError("--task: expected all, features, compress, denoise, anomaly or sparse, got '" + opt.task + "'");
  if (opt.anomaly_arch != "mlp" && opt.anomaly_arch != "conv")
    throw ValueError("--anomaly-arch: expected mlp or conv, got '" + opt.anomaly_arch + "'");
  if (!(opt.lr > 0)) throw ValueError("--lr: expected a positive rate, got " + std::to_string(opt.lr));

  Context c{&args,
            opt,
            args.out,
            data::FashionMNIST::load(data::Split::train, args.data),
            data::FashionMNIST::load(data::Split::test, args.data),
            {},
            {},
            nullptr};
  c.train_x = c.train.float_images(data::ImageLayout::flat);
  c.test_x = c.test.float_images(data::ImageLayout::flat);
  std::filesystem::create_directories(c.out);
  std::ofstream(c.out + "/metrics.jsonl", std::ios::trunc);
  std::printf("autoencoders on %lld + %lld Fashion-MNIST images, %d threads, out: %s\n",
              static_cast<long long>(c.train_x.dim(0)), static_cast<long long>(c.test_x.dim(0)), get_num_threads(),
              c.out.c_str());
  const std::vector<std::pair<std::string, std::function<void(Context&)>>> run = {{"features", task_features},
                                                                                  {"compress", task_compress},
                                                                                  {"denoise", task_denoise},
                                                                                  {"anomaly", task_anomaly},
                                                                                  {"sparse", task_sparse}};
  for (const auto& [name, fn] : run)
    if (opt.task == "all" || opt.task == name) {
      const auto t0 = std::chrono::steady_clock::now();
      fn(c);
      std::printf("[%s done in %.0f s]\n\n", name.c_str(), seconds_since(t0));
    }
  std::printf("wrote %s/metrics.jsonl and the pictures\n", c.out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "autoencoders: %s\n", e.what());
  return 1;
}
