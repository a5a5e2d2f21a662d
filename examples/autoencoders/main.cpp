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
// Every model trains with train::Trainer (progress, NaN guard, Ctrl-C; no per-model files). Every
// result goes to OUT/metrics.jsonl (one JSON object per figure group, train::append_metrics) and
// is printed; the pictures are PNG grids in OUT; each trained model is saved as OUT/<name>.npz.
// --data may name any directory of IDX files in Fashion-MNIST's format (MNIST, say): classes are
// then named by their index alone.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
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

/// Thrown when Ctrl-C stopped a training run: main leaves with status 130.
struct Interrupted {};

/// Appends one record to OUT/metrics.jsonl.
void record(const Context& c, const io::JsonObject& fields) {
  train::append_metrics(c.out + "/metrics.jsonl", fields);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Encoder 784-512-256-K and its mirror image (logits out): the undercomplete autoencoder.
std::pair<Net, Net> mlp_pair(std::int64_t code, std::int64_t in = 784) {
  return {Net{nn::Linear(in, 512), nn::ReLU(), nn::Linear(512, 256), nn::ReLU(), nn::Linear(256, code)},
          Net{nn::Linear(code, 256), nn::ReLU(), nn::Linear(256, 512), nn::ReLU(), nn::Linear(512, in)}};
}

/// The conv_vae reference workload's encoder and decoder with a K-dimensional code; inputs flat [N, 784].
std::pair<Net, Net> conv_pair(std::int64_t code) {
  return {Net{nn::Reshape({1, 28, 28}), nn::Conv2d(1, 32, 4, {.stride = 2, .padding = 1}), nn::ReLU(),
              nn::Conv2d(32, 64, 4, {.stride = 2, .padding = 1}), nn::ReLU(), nn::Flatten(), nn::Linear(3136, code)},
          Net{nn::Linear(code, 3136), nn::ReLU(), nn::Reshape({64, 7, 7}),
              nn::ConvTranspose2d(64, 32, 4, {.stride = 2, .padding = 1}), nn::ReLU(),
              nn::ConvTranspose2d(32, 1, 4, {.stride = 2, .padding = 1}), nn::Flatten()}};
}

/// Trains with Adam over shuffled mini-batches, in train::Trainer's loop (its lines prefixed with
/// `label`; a NaN loss stops with the step and the op named). This program trains many models and
/// saves the ones it keeps itself, so the trainer writes no files. Returns the last epoch's mean loss.
template <class Model>
double fit(Model& model, const Tensor<float>& x, std::int64_t epochs, const Context& c, const std::string& label) {
  optim::Adam adam{model.named_parameters(), {.lr = c.opt.lr}};
  data::Loader loader(data::Dataset(x), {.batch_size = c.args->batch_size, .shuffle = true, .seed = c.args->seed});
  train::Trainer trainer({.epochs = epochs,
                          .out_dir = c.out,
                          .save_checkpoints = false,
                          .write_metrics = false,
                          .plot = false,
                          .label = label});
  trainer.add_model("model", model, &adam);
  const train::FitResult r = trainer.fit(
      loader, [&](const data::Batch& b) { return model.loss(Var<float>(b.x)); }, adam);
  if (r.interrupted) throw Interrupted{};
  return r.epochs.back().train_loss;
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
  record(c, {{"task", "features"},
             {"code", k},
             {"ae_probe_test_accuracy", ae_probe.test_accuracy},
             {"pca_probe_test_accuracy", pca_probe.test_accuracy},
             {"pixels_probe_test_accuracy", pixel_probe.test_accuracy},
             {"ae_test_psnr_db", ae_psnr},
             {"pca_test_psnr_db", pca_psnr},
             {"pca_explained_variance", pca.explained_variance_ratio()}});
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
  record(c, {{"task", "compress"},
             {"code", k},
             {"file_bytes", bytes},
             {"bytes_per_image", per_image},
             {"ae_8bit_psnr_db", psnr_q},
             {"ae_float_psnr_db", psnr_f},
             {"pca_8bit_psnr_db", pca_psnr_q}});
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
    record(c, {{"task", "denoise"}, {"corruption", cs.name}, {"noisy_psnr_db", before}, {"denoised_psnr_db", after}});
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
    std::printf("class %s: AUROC %.2f %%\n", c.test.class_label(cls).c_str(), 100 * a);
    io::JsonObject fields{{"task", "anomaly"}, {"class", cls}};
    if (c.test.is_fashion_mnist()) fields.add("class_name", c.test.class_names[static_cast<std::size_t>(cls)]);
    fields.add("auroc", a);
    record(c, fields);
    if (cls == 0) {
      // The picture: the 8 test images the class-0 model (T-shirt/top) finds least unusual (first row) and most.
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
  record(c, {{"task", "anomaly"},
             {"mean_auroc", mean},
             {"arch", c.opt.anomaly_arch},
             {"code", c.opt.anomaly_code},
             {"epochs", c.opt.anomaly_epochs},
             {"masking", c.opt.anomaly_noise}});
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
    record(c, {{"task", "sparse"},
               {"penalty", cs.name},
               {"weight", cs.options.weight},
               {"rho", cs.options.rho},
               {"mean_activation", st.mean_activation},
               {"near_zero_fraction", st.near_zero_fraction},
               {"selective_units", selective},
               {"test_psnr_db", psnr}});
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
  std::filesystem::remove(c.out + "/metrics.jsonl");  // this run's records only
  std::printf("autoencoders, %d threads, out: %s\ntrain: %s\ntest: %s\n", get_num_threads(), c.out.c_str(),
              c.train.description().c_str(), c.test.description().c_str());
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
} catch (const Interrupted&) {
  std::fprintf(stderr, "autoencoders: interrupted\n");
  return 130;
} catch (const std::exception& e) {
  std::fprintf(stderr, "autoencoders: %s\n", e.what());
  return 1;
}
