// The cvae example's attribute mode (see attributes.hpp and main.cpp's comment): a convolutional
// conditional VAE on colour images with binary attributes, in CelebA's layout.
//
// Data: every PNG/JPEG under --data, joined by file name to the rows of --attributes; decoded,
// centre-cropped (--crop) and resized to --image-size once, then kept as bytes in --cache (.npy)
// so that later runs do not decode again. The last --test-fraction of the sorted files is held
// out (CelebA's files are numbered, and its official test partition is the last 19,962 of them,
// 182638.jpg to 202599.jpg: --test-fraction 0.0985 holds out about that).
//
// Model: the encoder sees the image through strided convolutions and the attributes where the
// features are flat (nn::ImageConditionEncoder); the decoder maps [z, attributes] through a linear
// layer and transposed convolutions to Bernoulli logits of every pixel and channel (with
// --decoder-condition every-scale each transposed convolution also sees the attributes as constant
// channels, nn::ImageConditionDecoder); p(z | c) is learned (a Gaussian linear in the attributes)
// unless --prior standard.
//
// Measurements (printed, and in metrics.jsonl's final record): an attribute classifier trained
// with genmod on the training images (cached in --classifier) scores
// - per attribute, generated images with the attribute switched on and off (the other attributes
//   from held-out images, the same noise for both): how often it sees what was asked;
// - "add attribute X" on held-out images without X: how often it then sees X, and how often it
//   sees every other attribute as it saw it on the original image.
// Pictures: samples.png (a row per chosen attribute setting, the same noise in every row) and
// add_<attribute>.png for each --show attribute (each row: the image, its reconstruction, then the
// code moved by 0.5, 1 and 1.5 times the attribute direction with the attribute switched on).
#include "attributes.hpp"
#include "attribute_nets.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <genmod/data/images.hpp>
#include <genmod/genmod.hpp>

using namespace genmod;
using namespace cvae_attributes;

namespace {

// "A,B,C" -> {"A", "B", "C"} (empty -> {}).
std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Rows `idx` of t (any shape [N, ...]).
template <class T>
Tensor<T> gather_rows(const Tensor<T>& t, const std::vector<std::int64_t>& idx) {
  const std::int64_t w = t.numel() / t.dim(0);
  Tensor<T> out(t.shape().with_dim(0, static_cast<std::int64_t>(idx.size())));
  for (std::size_t r = 0; r < idx.size(); ++r)
    std::copy(t.data() + idx[r] * w, t.data() + (idx[r] + 1) * w, out.data() + static_cast<std::int64_t>(r) * w);
  return out;
}

Tensor<float> to_float(const Tensor<std::uint8_t>& bytes) {
  return data::scale_pixels(bytes);
}

// Per attribute a: the classifier's agreement with generated images whose condition has a
// switched on (first half) and off (second half), the other attributes from `conditions` and the
// same noise for both halves.
std::vector<double> switch_agreement(CVAE& cvae, eval::AttributeClassifier& clf, const Tensor<float>& conditions,
                                     double temperature, std::uint64_t seed) {
  const std::int64_t n = conditions.dim(0), a_count = conditions.dim(1);
  std::vector<double> agreement(static_cast<std::size_t>(a_count));
  for (std::int64_t a = 0; a < a_count; ++a) {
    Tensor<float> c(Shape{2 * n, a_count});
    const Tensor<float> on = models::with_condition_column(conditions, a, 1.f);
    const Tensor<float> off = models::with_condition_column(conditions, a, 0.f);
    std::copy(on.begin(), on.end(), c.data());
    std::copy(off.begin(), off.end(), c.data() + n * a_count);
    Generator g(seed, static_cast<std::uint64_t>(a));
    Tensor<float> noise = randn<float>(Shape{n, cvae.latent_dim()}, g);
    for (auto& v : noise) v *= static_cast<float>(temperature);
    Tensor<float> noise2(Shape{2 * n, cvae.latent_dim()});
    std::copy(noise.begin(), noise.end(), noise2.data());
    std::copy(noise.begin(), noise.end(), noise2.data() + noise.numel());
    const Tensor<float> images = cvae.generate(cvae.prior_codes(noise2, c), c);
    const Tensor<float> seen = clf.predict(images);
    std::int64_t right = 0;
    for (std::int64_t i = 0; i < 2 * n; ++i) right += seen(i, a) == c(i, a) ? 1 : 0;
    agreement[static_cast<std::size_t>(a)] = static_cast<double>(right) / static_cast<double>(2 * n);
  }
  return agreement;
}

// "Add attribute a" to held-out images without it (at most `limit`): how often the classifier then
// sees a, and how often it sees every other attribute as on the original (eval::attribute_edit_score).
struct EditFigures {
  eval::AttributeEditScore score;
  std::int64_t images = 0;
};
EditFigures edit_figures(CVAE& cvae, eval::AttributeClassifier& clf, const Tensor<float>& x, const Tensor<float>& c,
                         std::int64_t a, const Tensor<float>& direction, double strength, std::int64_t limit) {
  std::vector<std::int64_t> without;
  for (std::int64_t i = 0; i < x.dim(0) && static_cast<std::int64_t>(without.size()) < limit; ++i)
    if (c(i, a) < 0.5f) without.push_back(i);
  EditFigures f;
  f.images = static_cast<std::int64_t>(without.size());
  if (without.empty()) return f;
  const Tensor<float> xs = gather_rows(x, without), cs = gather_rows(c, without);
  const Tensor<float> after = models::add_attribute(cvae, xs, cs, a, direction, strength).reshape(xs.shape());
  f.score = eval::attribute_edit_score(clf, xs, after, a);
  return f;
}

}  // namespace

int run_attribute_mode(const train::ExampleArgs& args, const AttributeModeOptions& o) {
  if (args.data.empty()) throw ValueError("--attributes needs --data DIR, the folder of images");
  if (!(o.test_fraction > 0 && o.test_fraction < 1))
    throw ValueError("--test-fraction: expected a value in (0, 1), got " + std::to_string(o.test_fraction));
  if (o.crop < 0) throw ValueError("--crop: expected >= 0, got " + std::to_string(o.crop));
  if (!(o.flip >= 0 && o.flip <= 1)) throw ValueError("--flip: expected a probability, got " + std::to_string(o.flip));
  if (!(o.strength >= 0)) throw ValueError("--strength: expected >= 0, got " + std::to_string(o.strength));
  const std::int64_t size = o.image_size;
  stages_for(size);  // checks --image-size
  const std::string out_dir = args.out;
  std::filesystem::create_directories(out_dir);

  // The images, their attributes, and the split.
  const data::ImageFolder folder(args.data);
  data::AttributeTable table = data::read_attribute_table(o.attributes);
  if (!o.select.empty()) table = data::select_columns(table, split_names(o.select));
  // The attributes of the pictures, resolved now: a misspelt name fails before training, not after.
  std::vector<std::int64_t> shown;
  for (const std::string& name : split_names(o.show)) shown.push_back(table.column(name));
  if (shown.empty())
    for (std::int64_t a = 0; a < static_cast<std::int64_t>(table.names.size()); ++a) shown.push_back(a);
  const Tensor<float> attributes = data::attributes_for(table, folder.file_names());
  const std::int64_t a_count = attributes.dim(1);
  const data::ImageTransform transform{
      .channels = data::ImageChannels::rgb, .crop_height = o.crop, .crop_width = o.crop, .height = size, .width = size};
  const std::string cache = o.cache.empty() ? out_dir + "/images-" + std::to_string(size) + ".npy" : o.cache;
  const bool cached = std::filesystem::exists(cache);
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor<std::uint8_t> images = data::load_images_cached(folder, transform, cache);
  std::printf("%s %s in %.1f s\n", cached ? "read (or rebuilt) the image cache" : "decoded the images into",
              cache.c_str(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  const std::int64_t n = images.dim(0);
  const std::int64_t n_test = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(o.test_fraction * n)));
  const std::int64_t n_train = n - n_test;
  if (n_train < args.batch_size)
    throw ValueError("--data: " + std::to_string(n) + " images leave " + std::to_string(n_train) +
                     " for training, fewer than one batch of " + std::to_string(args.batch_size));
  const Tensor<std::uint8_t> train_images = images.rows(0, n_train), test_images = images.rows(n_train, n_test);
  const Tensor<float> train_c = attributes.rows(0, n_train), test_c = attributes.rows(n_train, n_test);
  const std::int64_t n_eval = std::min(o.eval_images, n_test);
  const Tensor<float> eval_x = to_float(test_images.rows(0, n_eval)), eval_c = test_c.rows(0, n_eval);
  std::printf("%lld images (%lld train, %lld held out) from %s, %lld attributes from %s, %s\n",
              static_cast<long long>(n), static_cast<long long>(n_train), static_cast<long long>(n_test),
              args.data.c_str(), static_cast<long long>(a_count), o.attributes.c_str(),
              data::describe(transform).c_str());

  // The attribute classifier: cached, or trained on (at most 20,000 of) the training images, as
  // floats only for that while (CelebA's whole training set would be 8 GB of floats). The default
  // cache lives in OUT and is retrained when the run asks for another one (size, attributes);
  // a cache given with --classifier must match.
  const std::int64_t n_clf = std::min<std::int64_t>(n_train, 20000);
  const bool default_cache = o.classifier.empty();
  const std::string clf_path = default_cache ? out_dir + "/attribute_classifier.npz" : o.classifier;
  eval::AttributeClassifier classifier = eval::load_or_train_attribute_classifier(
      clf_path, to_float(train_images.rows(0, n_clf)), train_c.rows(0, n_clf),
      {.channels = 3, .height = size, .width = size, .attributes = a_count, .seed = args.seed, .names = table.names},
      {.epochs = o.classifier_epochs, .seed = args.seed}, &std::cout, default_cache);
  {
    const std::vector<double> acc = eval::attribute_accuracy(classifier, eval_x, eval_c);
    std::printf("classifier accuracy on %lld held-out images:", static_cast<long long>(n_eval));
    for (std::int64_t a = 0; a < a_count; ++a)
      std::printf(" %s %.1f%%", table.names[static_cast<std::size_t>(a)].c_str(),
                  100 * acc[static_cast<std::size_t>(a)]);
    std::printf("\n");
  }

  // The model.
  manual_seed(args.seed);
  const std::int64_t z = o.latent;
  CVAE cvae(make_encoder(size, a_count, z), make_decoder(size, a_count, z, o.every_scale), dist::Bernoulli{},
            {.beta = o.beta, .latent_dim = z, .seed = args.seed}, {.condition_dim = o.learned_prior ? a_count : 0});
  optim::Adam adam{cvae.named_parameters(), {.lr = o.lr}};
  data::ImageLoader loader(train_images, train_c, {},
                           {.loader = {.batch_size = args.batch_size, .shuffle = true, .seed = args.seed},
                            .flip_probability = static_cast<float>(o.flip)});
  Generator eval_rng(args.seed, 0x6576616cULL);
  // Conditions of the generated images: held-out images' attributes, as many as asked (0: no
  // agreement figures).
  const std::int64_t n_samples = std::min(o.eval_samples, n_test);
  const Tensor<float> sample_c = n_samples > 0 ? test_c.rows(0, n_samples) : Tensor<float>();

  train::TrainerOptions topt = args.trainer_options();
  topt.metadata["mode"] = "attributes";
  topt.metadata["latent"] = std::to_string(z);
  topt.metadata["image_size"] = std::to_string(size);
  topt.metadata["attributes"] = std::to_string(a_count);
  topt.plot_options = {.title = "attribute-conditional VAE", .x_label = "epoch", .y_label = "nats per image"};
  train::Trainer trainer(topt);
  trainer.add_model("model", cvae, &adam).add_generator(cvae.rng).add_generator(eval_rng, "eval_rng");
  auto mean_of = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  trainer.set_evaluate([&] {
    const double nelbo = eval::negative_elbo(cvae, eval_x, eval_c, eval_rng);
    train::Metrics m{{"test_loss", nelbo}, {"test_nelbo", nelbo}};
    if (n_samples == 0) return m;
    // A quick reading every epoch: 250 conditions (the final record uses them all).
    const std::vector<double> agree = switch_agreement(
        cvae, classifier, sample_c.rows(0, std::min<std::int64_t>(250, n_samples)), o.temperature, args.seed + 7);
    m["attribute_agreement_mean"] = mean_of(agree);
    m["attribute_agreement_min"] = *std::min_element(agree.begin(), agree.end());
    return m;
  });
  // The figures of the trained model, in metrics.jsonl's final record (Trainer::set_final_evaluate).
  // Directions from (at most 5000) training images' posterior means.
  const std::int64_t n_dir = std::min<std::int64_t>(n_train, 5000);
  const Tensor<float> test_x = to_float(test_images.rows(0, std::min<std::int64_t>(n_test, 2000)));
  const Tensor<float> test_xc = test_c.rows(0, test_x.dim(0));
  std::vector<Tensor<float>> directions;
  trainer.set_final_evaluate([&] {
    train::Metrics fm;
    if (n_samples > 0) {
      const std::vector<double> agree = switch_agreement(cvae, classifier, sample_c, o.temperature, args.seed + 11);
      std::printf(
          "each attribute switched on and off in %lld generated images (temperature %g): classifier "
          "agreement\n",
          static_cast<long long>(2 * n_samples), o.temperature);
      for (std::int64_t a = 0; a < a_count; ++a) {
        const std::string& name = table.names[static_cast<std::size_t>(a)];
        std::printf("  %-20s %5.1f %%\n", name.c_str(), 100 * agree[static_cast<std::size_t>(a)]);
        fm["agreement." + name] = agree[static_cast<std::size_t>(a)];
      }
    }
    // What the decoder can render: the classifier on the reconstructions (posterior means decoded)
    // of held-out images, against their true attributes. An edit keeps the other attributes at
    // most this often.
    {
      const Tensor<float> recon =
          cvae.generate(models::posterior_means(cvae, test_x, test_xc), test_xc).reshape(test_x.shape());
      const std::vector<double> acc = eval::attribute_accuracy(classifier, recon, test_xc);
      std::printf("classifier on reconstructions of %lld held-out images:", static_cast<long long>(test_x.dim(0)));
      for (std::int64_t a = 0; a < a_count; ++a) {
        const std::string& name = table.names[static_cast<std::size_t>(a)];
        std::printf(" %s %.1f%%", name.c_str(), 100 * acc[static_cast<std::size_t>(a)]);
        fm["reconstruction_accuracy." + name] = acc[static_cast<std::size_t>(a)];
      }
      std::printf("\n");
    }
    const Tensor<float> dir_x = to_float(train_images.rows(0, n_dir)), dir_c = train_c.rows(0, n_dir);
    directions.assign(static_cast<std::size_t>(a_count), Tensor<float>());
    std::printf("add attribute X to held-out images without it (strength %g): X seen / every other attribute kept\n",
                o.strength);
    for (std::int64_t a = 0; a < a_count; ++a) {
      const std::string& name = table.names[static_cast<std::size_t>(a)];
      try {
        directions[static_cast<std::size_t>(a)] = models::attribute_direction(cvae, dir_x, dir_c, a);
      } catch (const ValueError& e) {  // an attribute on (or off) in every image: no direction
        std::printf("  %-20s skipped: %s\n", name.c_str(), e.what());
        continue;
      }
      const EditFigures f =
          edit_figures(cvae, classifier, test_x, test_xc, a, directions[static_cast<std::size_t>(a)], o.strength, 1000);
      if (f.images == 0) continue;
      std::printf("  %-20s %5.1f %% / %5.1f %%  (%lld images)\n", name.c_str(), 100 * f.score.changed,
                  100 * f.score.others_kept, static_cast<long long>(f.images));
      fm["add." + name + ".changed"] = f.score.changed;
      fm["add." + name + ".others_kept"] = f.score.others_kept;
    }
    std::fflush(stdout);
    return fm;
  });
  std::printf(
      "attribute-conditional VAE (%lldx%lld RGB, z = %lld, %lld attributes, %s prior, %lld parameters), %d "
      "threads\n",
      static_cast<long long>(size), static_cast<long long>(size), static_cast<long long>(z),
      static_cast<long long>(a_count), o.learned_prior ? "learned" : "standard",
      static_cast<long long>(cvae.num_parameters()), get_num_threads());
  std::fflush(stdout);
  const train::FitResult result = trainer.fit(
      loader, [&](const data::Batch& b) { return cvae.loss(Var<float>(b.x), Var<float>(b.c)).loss; }, adam);
  if (result.interrupted) {
    std::printf("interrupted: continue with --resume %s\n", trainer.checkpoint_path().c_str());
    return 130;
  }

  cvae.eval();
  NoGradGuard no_grad;
  // samples.png: row 0 the attributes of the first held-out image, then one row per shown
  // attribute with it switched; the same 8 noise vectors in every row.
  const std::int64_t cols = 8, rows = 1 + static_cast<std::int64_t>(shown.size()), pixels = 3 * size * size;
  Tensor<float> settings(Shape{rows * cols, a_count});
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < cols; ++k)
      for (std::int64_t a = 0; a < a_count; ++a) settings(r * cols + k, a) = test_c(0, a);
  std::string legend = "samples.png rows: the attributes of held-out image 0";
  for (std::size_t r = 0; r < shown.size(); ++r) {
    const std::int64_t a = shown[r];
    const float v = test_c(0, a) > 0.5f ? 0.f : 1.f;
    for (std::int64_t k = 0; k < cols; ++k) settings((static_cast<std::int64_t>(r) + 1) * cols + k, a) = v;
    legend += std::string(", ") + (v > 0.5f ? "+" : "-") + table.names[static_cast<std::size_t>(a)];
  }
  Generator g(args.seed + 1);
  Tensor<float> noise = randn<float>(Shape{cols, z}, g);
  for (auto& v : noise) v *= static_cast<float>(o.temperature);
  Tensor<float> noise_rows(Shape{rows * cols, z});
  for (std::int64_t r = 0; r < rows; ++r) std::copy(noise.begin(), noise.end(), noise_rows.data() + r * cols * z);
  io::save_image_grid(
      out_dir + "/samples.png",
      cvae.generate(cvae.prior_codes(noise_rows, settings), settings).reshape(Shape{rows * cols, 3, size, size}),
      {.columns = cols});
  std::printf("%s\n", legend.c_str());

  // add_<X>.png: 8 held-out images without X; columns: image, reconstruction, X added at
  // strengths 0.5, 1, 1.5 (the condition switched on with the code moved).
  for (const std::int64_t a : shown) {
    const std::string& name = table.names[static_cast<std::size_t>(a)];
    if (directions.size() != static_cast<std::size_t>(a_count) || !directions[static_cast<std::size_t>(a)].defined())
      continue;  // no direction (see above)
    std::vector<std::int64_t> picked;
    for (std::int64_t i = 0; i < test_x.dim(0) && picked.size() < 8; ++i)
      if (test_xc(i, a) < 0.5f) picked.push_back(i);
    if (picked.empty()) continue;
    const Tensor<float> xs = gather_rows(test_x, picked), cs = gather_rows(test_xc, picked);
    const std::int64_t m = xs.dim(0), strip = 5;
    Tensor<float> pic(Shape{m * strip, 3, size, size});
    const Tensor<float> recon = cvae.generate(models::posterior_means(cvae, xs, cs), cs);
    const double strengths[] = {0.5, 1.0, 1.5};
    std::vector<Tensor<float>> edited;
    for (double st : strengths)
      edited.push_back(models::add_attribute(cvae, xs, cs, a, directions[static_cast<std::size_t>(a)], st));
    for (std::int64_t i = 0; i < m; ++i) {
      float* row = pic.data() + i * strip * pixels;
      std::copy(xs.data() + i * pixels, xs.data() + (i + 1) * pixels, row);
      std::copy(recon.data() + i * pixels, recon.data() + (i + 1) * pixels, row + pixels);
      for (std::size_t k = 0; k < edited.size(); ++k)
        std::copy(edited[k].data() + i * pixels, edited[k].data() + (i + 1) * pixels,
                  row + (2 + static_cast<std::int64_t>(k)) * pixels);
    }
    io::save_image_grid(out_dir + "/add_" + name + ".png", pic, {.columns = strip});
  }
  std::printf("wrote %s/{samples.png, add_<attribute>.png, metrics.jsonl, loss.svg, checkpoint.npz}\n",
              out_dir.c_str());
  return 0;
}
