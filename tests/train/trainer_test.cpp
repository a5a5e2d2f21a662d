#include <catch2/catch.hpp>

#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/io/model_checkpoint.hpp"
#include "genmod/nn/nn.hpp"
#include "genmod/optim/optim.hpp"
#include "genmod/train/trainer.hpp"

namespace train_trainer_test {

using namespace genmod;
namespace fs = std::filesystem;

namespace {

/// A fresh temporary directory, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("genmod_train_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

/// Runs the body at one thread (bit-exact comparisons), restoring the thread count afterwards.
struct OneThread {
  int before = get_num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(before); }
};

/// 60 samples of 8 features: 4 batches of 16 per epoch, the last one smaller (12).
data::Dataset synthetic() {
  Generator g(123);
  return data::Dataset(randn<float>({60, 8}, g));
}

/// A denoising autoencoder whose randomness (input noise, dropout) comes from generators the
/// trainer checkpoints, so resuming must restore them to match.
using Net = nn::Sequential<nn::Linear<float>, nn::Tanh<float>, nn::Dropout<float>, nn::Linear<float>>;

// Seeds first, in a statement of its own: the order in which a constructor's arguments are
// evaluated is unspecified, so seeding inside the argument list may come after some layers.
Net make_net(std::uint64_t seed) {
  manual_seed(seed);
  nn::Linear<float> first(8, 16);
  nn::Linear<float> last(16, 8);
  return Net(std::move(first), nn::Tanh<float>(), nn::Dropout<float>(0.25, 5), std::move(last));
}

struct Run {
  Net net;
  optim::Adam<float> opt;
  Generator noise;
  data::Loader loader;

  explicit Run(std::uint64_t init_seed)
      : net(make_net(init_seed)),
        opt(net.named_parameters(), {.lr = 1e-2}),
        noise(77),
        loader(synthetic(), {.batch_size = 16, .shuffle = true, .seed = 3}) {}

  Var<float> loss(const data::Batch& b) {
    Tensor<float> n = randn<float>(b.x.shape(), noise);
    Var<float> x(b.x);
    return mean(square(net(x + Var<float>(n) * 0.1f) - x));
  }

  double step(const data::Batch& b) {
    Tape<float> tape;
    Var<float> l = loss(b);
    opt.zero_grad();
    tape.backward(l);
    opt.step();
    return l.item();
  }

  train::Trainer trainer(train::TrainerOptions o) {
    o.progress = train::Progress::off;
    train::Trainer t(std::move(o));
    t.add_model("model", net, &opt).add_generator(noise).add_generator(net.get<2>().generator(), "dropout");
    return t;
  }

  std::vector<float> weights() {
    std::vector<float> out;
    for (auto& p : net.parameters())
      for (std::int64_t i = 0; i < p.numel(); ++i) out.push_back(p.value()[i]);
    return out;
  }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("Trainer resume is exact: 2 epochs equal 1 epoch, save, load into fresh objects, 1 epoch", "[train]") {
  OneThread one;
  TempDir dir_a("resume_a"), dir_b("resume_b");

  Run a(1);
  auto ta = a.trainer({.epochs = 2, .out_dir = dir_a.path.string()});
  const auto ra = ta.fit(
      a.loader, [&](const data::Batch& b) { return a.loss(b); }, a.opt);
  REQUIRE(ra.epochs_completed == 2);
  CHECK(ra.step == 8);

  {
    Run b1(1);
    auto tb = b1.trainer({.epochs = 1, .out_dir = dir_b.path.string()});
    tb.fit(
        b1.loader, [&](const data::Batch& b) { return b1.loss(b); }, b1.opt);
  }
  Run b2(999);  // different initial weights, overwritten by the load
  CHECK(b2.weights() != a.weights());
  auto tb = b2.trainer({.epochs = 2, .out_dir = dir_b.path.string(), .resume = dir_b / "checkpoint.npz"});
  const auto rb = tb.fit(
      b2.loader, [&](const data::Batch& b) { return b2.loss(b); }, b2.opt);
  CHECK(rb.epochs_completed == 2);
  CHECK(rb.step == 8);
  REQUIRE(rb.epochs.size() == 1);
  CHECK(rb.epochs[0].train_loss == ra.epochs[1].train_loss);
  CHECK(b2.weights() == a.weights());
  CHECK(b2.opt.step_count() == a.opt.step_count());
  CHECK(b2.noise.state().offset == a.noise.state().offset);

  // The resumed run's metrics file lists each epoch once, as the uninterrupted one's does.
  const auto ma = train::read_metrics(dir_a / "metrics.jsonl");
  const auto mb = train::read_metrics(dir_b / "metrics.jsonl");
  REQUIRE(ma.size() == 2);
  REQUIRE(mb.size() == 2);
  CHECK(mb[1].at("epoch") == 2);
  CHECK(mb[1].at("train_loss") == ma[1].at("train_loss"));
  CHECK(fs::exists(dir_b / "loss.svg"));

  // The checkpoint of a single component named "model" is what io::load_checkpoint reads.
  Run c(5);
  const io::TrainingState st = io::load_checkpoint(dir_a / "checkpoint.npz", c.net, &c.opt);
  CHECK(st.epoch == 2);
  CHECK(st.step == 8);
  CHECK(st.has_rng);
  CHECK(c.weights() == a.weights());
}

TEST_CASE("The first SIGINT finishes the step, saves a checkpoint and leaves the loop, and resuming is exact",
          "[train]") {
  OneThread one;
  TempDir dir_a("sigint_a"), dir_b("sigint_b");
  Run a(1);
  auto ta = a.trainer({.epochs = 2, .out_dir = dir_a.path.string()});
  ta.fit(a.loader, [&](const data::Batch& b) { return a.step(b); });

  Run b(1);
  auto tb = b.trainer({.epochs = 2, .out_dir = dir_b.path.string()});
  int calls = 0;
  const auto rb = tb.fit(b.loader, [&](const data::Batch& batch) {
    const double l = b.step(batch);
    if (++calls == 6) std::raise(SIGINT);  // epoch 2, batch 2 of 4
    return l;
  });
  CHECK(rb.interrupted);
  CHECK(calls == 6);  // the loop left right after the interrupted step
  CHECK(rb.step == 6);
  CHECK(rb.epochs_completed == 1);
  REQUIRE(fs::exists(dir_b / "checkpoint.npz"));
  CHECK(train::read_metrics(dir_b / "metrics.jsonl").size() == 1);

  // The handler is gone again: the previous disposition is back.
  struct sigaction now {};
  ::sigaction(SIGINT, nullptr, &now);
  CHECK(now.sa_handler != &train::detail::on_sigint);

  // Resuming mid-epoch continues with the next batch and ends where the uninterrupted run did.
  Run c(42);
  auto tc = c.trainer({.epochs = 2, .out_dir = dir_b.path.string(), .resume = dir_b / "checkpoint.npz"});
  const auto rc = tc.fit(c.loader, [&](const data::Batch& batch) { return c.step(batch); });
  CHECK_FALSE(rc.interrupted);
  CHECK(rc.step == 8);
  CHECK(c.weights() == a.weights());
  const auto ma = train::read_metrics(dir_a / "metrics.jsonl");
  const auto mc = train::read_metrics(dir_b / "metrics.jsonl");
  REQUIRE(mc.size() == 2);
  CHECK(mc[1].at("train_loss") == ma[1].at("train_loss"));
}

namespace {

/// out = w * x + b with x = 1: minimizing mean(log(out)) by SGD drives out below zero on step 6
/// (2 -> 1.75 -> 1.46 -> 1.12 -> 0.68 -> -0.06), where log makes a NaN.
struct Diverging {
  nn::Linear<float> lin{1, 1};
  optim::SGD<float> opt{lin.named_parameters(), {.lr = 0.25}};
  data::Loader loader{data::Dataset(ones<float>({4, 1})), {.batch_size = 2}};
  Diverging() {
    lin.weight.value()[0] = 2.0f;
    lin.bias.value()[0] = 0.0f;
  }
  Var<float> loss(const data::Batch& b) { return mean(log(lin(Var<float>(b.x)))); }
};

}  // namespace

TEST_CASE("A NaN loss stops training naming the step, the epoch and the op, and keeps the last good checkpoint",
          "[train]") {
  TempDir dir("nan");
  Diverging d;
  train::Trainer t({.epochs = 5, .out_dir = dir.path.string(), .progress = train::Progress::off});
  t.add_model("model", d.lin, &d.opt);
  std::string msg;
  try {
    t.fit(
        d.loader, [&](const data::Batch& b) { return d.loss(b); }, d.opt);
  } catch (const NumericError& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("step 6 (epoch 3, batch 2 of 2)") != std::string::npos);
  CHECK(msg.find("of op 'log'") != std::string::npos);
  CHECK(msg.find("(epoch 2), is kept") != std::string::npos);
  // The checkpoint is epoch 2's, finite.
  Diverging fresh;
  train::CheckpointSet set;
  set.add("model", fresh.lin, &fresh.opt);
  const auto st = set.load(dir / "checkpoint.npz");
  CHECK(st.epoch == 2);
  CHECK(st.step == 4);
  CHECK(set.first_non_finite().empty());
  CHECK(train::read_metrics(dir / "metrics.jsonl").size() == 2);
}

TEST_CASE("A NaN from a step function names the step and says how to find the op", "[train]") {
  TempDir dir("nan_step");
  Diverging d;
  train::Trainer t({.epochs = 5, .out_dir = dir.path.string(), .progress = train::Progress::off});
  t.add_model("model", d.lin, &d.opt);
  auto step = [&](const data::Batch& b) {
    Tape<float> tape;
    Var<float> l = d.loss(b);
    d.opt.zero_grad();
    tape.backward(l);
    d.opt.step();
    return static_cast<double>(l.item());
  };
  std::string msg;
  try {
    t.fit(d.loader, step);
  } catch (const NumericError& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("step 6 (epoch 3") != std::string::npos);
  CHECK(msg.find("set_check_finite") != std::string::npos);
  // The checkpoint on disk is still epoch 2's.
  Diverging fresh;
  train::CheckpointSet set;
  set.add("model", fresh.lin, &fresh.opt);
  CHECK(set.load(dir / "checkpoint.npz").epoch == 2);
}

TEST_CASE("Early stopping ends the run when the monitored metric stops improving", "[train]") {
  TempDir dir("early");
  Run r(1);
  auto t = r.trainer({.epochs = 10,
                      .out_dir = dir.path.string(),
                      .best_checkpoint = dir / "best.npz",
                      .early_stopping = {.metric = "val_score", .patience = 2, .mode = train::Mode::max}});
  // Improves for 2 epochs, then gets worse.
  const double scores[] = {0.5, 0.7, 0.6, 0.65, 0.9, 0.9};
  int epoch = 0;
  t.set_evaluate([&] { return train::Metrics{{"val_score", scores[epoch++]}, {"test_loss", 1.0 / epoch}}; });
  std::vector<std::int64_t> seen;
  t.on_epoch_end([&](const train::EpochSummary& s) { seen.push_back(s.epoch); });
  const auto res = t.fit(
      r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
  CHECK(res.stopped_early);
  CHECK(res.epochs_completed == 4);
  CHECK(res.best == 0.7);
  CHECK(seen == std::vector<std::int64_t>{1, 2, 3, 4});
  CHECK(res.epochs[1].improved);
  CHECK_FALSE(res.epochs[2].improved);
  train::CheckpointSet set;
  Run fresh(2);
  set.add("model", fresh.net, &fresh.opt);
  CHECK(set.load(dir / "best.npz").epoch == 2);

  // Every line of metrics.jsonl parses and holds the required fields.
  std::ifstream in(dir / "metrics.jsonl");
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const train::MetricsRecord rec = train::parse_metrics_line(line);
    CHECK(rec.at("epoch") == n + 1);
    CHECK(std::isfinite(rec.at("train_loss")));
    CHECK(rec.at("seconds") >= 0);
    CHECK(rec.at("test_loss") == Approx(1.0 / (n + 1)));
    CHECK(rec.values.front().first == "epoch");
  }
  CHECK(n == 4);
  const std::string svg = read_text(dir / "loss.svg");
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("test_loss") != std::string::npos);
}

TEST_CASE("Early stopping on a metric nobody reports is an error naming it", "[train]") {
  TempDir dir("early_bad");
  Run r(1);
  auto t = r.trainer({.epochs = 2, .out_dir = dir.path.string(), .early_stopping = {.metric = "tset_loss"}});
  t.set_evaluate([] { return train::Metrics{{"test_loss", 1.0}}; });
  CHECK_THROWS_WITH(t.fit(
                        r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt),
                    Catch::Contains("tset_loss"));
}

TEST_CASE("Trainer progress lines go to the chosen stream every log_every steps", "[train]") {
  TempDir dir("progress");
  Run r(1);
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  train::Trainer t({.epochs = 1,
                    .out_dir = dir.path.string(),
                    .save_checkpoints = false,
                    .progress = train::Progress::lines,
                    .log_every = 2,
                    .progress_stream = f});
  t.add_model("model", r.net, &r.opt);
  t.fit(
      r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
  std::rewind(f);
  std::string text;
  for (int c; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
  std::fclose(f);
  CHECK(text.find("epoch 1/1 step 2/4 ( 50%) loss ") != std::string::npos);
  CHECK(text.find("epoch 1/1 step 4/4 (100%)") != std::string::npos);
  CHECK(text.find("epoch 1/1: train_loss ") != std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  CHECK_FALSE(fs::exists(dir / "checkpoint.npz"));
}

TEST_CASE("The progress bar redraws in place with percentage, ETA, rate and loss", "[train]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    train::ProgressBar bar({.mode = train::Progress::bar, .stream = f, .min_interval = 0});
    bar.start("epoch 1/2", 4);
    bar.update(1, 16, 0.5);
    bar.print("a message");
    bar.update(4, 16, 0.25);
    bar.finish("epoch 1/2: done");
  }
  std::rewind(f);
  std::string text;
  for (int c; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
  std::fclose(f);
  CHECK(text.find("\r\x1b[Ka message\n") != std::string::npos);
  CHECK(text.find("100%") != std::string::npos);
  CHECK(text.find("ETA") != std::string::npos);
  CHECK(text.find("samples/s") != std::string::npos);
  CHECK(text.find("loss 0.25") != std::string::npos);
  CHECK(text.find("[====") != std::string::npos);
  CHECK(text.substr(text.size() - 16) == "epoch 1/2: done\n");
}

TEST_CASE("A resume checkpoint that does not match the run is refused before training", "[train]") {
  TempDir dir("mismatch");
  Run r(1);
  auto t = r.trainer({.epochs = 1, .out_dir = dir.path.string()});
  t.fit(
      r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
  Diverging d;
  train::Trainer t2(
      {.epochs = 2, .out_dir = dir.path.string(), .resume = dir / "checkpoint.npz", .progress = train::Progress::off});
  t2.add_model("model", d.lin, &d.opt);
  CHECK_THROWS_AS(t2.fit(
                      d.loader, [&](const data::Batch& b) { return d.loss(b); }, d.opt),
                  IOError);
  CHECK(d.lin.weight.value()[0] == 2.0f);
}

namespace {

/// Everything a FILE* received, from the start.
std::string read_stream(std::FILE* f) {
  std::rewind(f);
  std::string text;
  for (int c; (c = std::fgetc(f)) != EOF;) text += static_cast<char>(c);
  return text;
}

/// The records of a metrics file marked final.
std::size_t final_records(const std::string& path) {
  std::size_t n = 0;
  for (const auto& r : train::read_metrics(path)) n += r.find("final") != nullptr;
  return n;
}

}  // namespace

TEST_CASE("The final evaluation runs once, in eval mode, after the last epoch, and appends one final record",
          "[train]") {
  OneThread one;
  TempDir dir("final");
  Run r(1);
  auto t = r.trainer({.epochs = 2, .out_dir = dir.path.string()});
  t.set_evaluate([] { return train::Metrics{{"test_loss", 0.5}}; });
  int final_calls = 0;
  bool final_in_eval_mode = false;
  t.set_final_evaluate([&] {
    ++final_calls;
    final_in_eval_mode = !r.net.is_training();
    return train::Metrics{{"bound_loss", 3.5}, {"k", 100}};
  });
  // The epoch callback runs after that epoch's checkpoint and record are on disk, before the final evaluation.
  std::vector<std::size_t> records_seen;
  t.on_epoch_end([&](const train::EpochSummary& s) {
    CHECK(fs::exists(dir / "checkpoint.npz"));
    CHECK(final_calls == 0);
    records_seen.push_back(train::read_metrics(dir / "metrics.jsonl").size());
    CHECK(records_seen.back() == static_cast<std::size_t>(s.epoch));
  });
  const auto res = t.fit(
      r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
  CHECK(final_calls == 1);
  CHECK(final_in_eval_mode);
  CHECK(r.net.is_training());  // back in training mode afterwards
  CHECK(records_seen == std::vector<std::size_t>{1, 2});
  CHECK(res.final_metrics == train::Metrics{{"bound_loss", 3.5}, {"k", 100}});

  const auto recs = train::read_metrics(dir / "metrics.jsonl");
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].find("final") == nullptr);
  CHECK(recs[2].at("final") == 1);
  CHECK(recs[2].at("epoch") == 2);
  CHECK(recs[2].at("step") == 8);
  CHECK(recs[2].at("bound_loss") == 3.5);
  CHECK(recs[2].at("k") == 100);
  CHECK(recs[2].at("seconds") >= 0);
  CHECK(recs[2].find("train_loss") == nullptr);
  const std::string text = read_text(dir / "metrics.jsonl");
  CHECK(text.find("\"final\": true") != std::string::npos);
  // loss.svg draws per-epoch curves: the final record's "bound_loss" is not one of them.
  const std::string svg = read_text(dir / "loss.svg");
  CHECK(svg.find("test_loss") != std::string::npos);
  CHECK(svg.find("bound_loss") == std::string::npos);

  // Resuming for one more epoch replaces the old final record with the new run's.
  Run r2(7);
  auto t2 = r2.trainer({.epochs = 3, .out_dir = dir.path.string(), .resume = dir / "checkpoint.npz"});
  t2.set_final_evaluate([] { return train::Metrics{{"bound_loss", 2.5}}; });
  const auto res2 = t2.fit(
      r2.loader, [&](const data::Batch& b) { return r2.loss(b); }, r2.opt);
  CHECK(res2.epochs_completed == 3);
  const auto recs2 = train::read_metrics(dir / "metrics.jsonl");
  REQUIRE(recs2.size() == 4);
  CHECK(final_records(dir / "metrics.jsonl") == 1);
  CHECK(recs2[2].at("epoch") == 3);
  CHECK(recs2[3].at("final") == 1);
  CHECK(recs2[3].at("epoch") == 3);
  CHECK(recs2[3].at("bound_loss") == 2.5);

  // Resuming a finished run trains nothing and evaluates again, still with one final record.
  Run r3(8);
  auto t3 = r3.trainer({.epochs = 3, .out_dir = dir.path.string(), .resume = dir / "checkpoint.npz"});
  t3.set_final_evaluate([] { return train::Metrics{{"bound_loss", 2.25}}; });
  const auto res3 = t3.fit(
      r3.loader, [&](const data::Batch& b) { return r3.loss(b); }, r3.opt);
  CHECK(res3.epochs.empty());
  CHECK(res3.final_metrics.at("bound_loss") == 2.25);
  const auto recs3 = train::read_metrics(dir / "metrics.jsonl");
  REQUIRE(recs3.size() == 4);
  CHECK(final_records(dir / "metrics.jsonl") == 1);
  CHECK(recs3[3].at("bound_loss") == 2.25);
}

TEST_CASE("Ctrl-C skips the final evaluation; early stopping does not", "[train]") {
  OneThread one;
  TempDir dir("final_stop");
  {
    Run r(1);
    auto t = r.trainer({.epochs = 2, .out_dir = dir.path.string()});
    int final_calls = 0, calls = 0;
    t.set_final_evaluate([&] {
      ++final_calls;
      return train::Metrics{{"bound", 1.0}};
    });
    const auto res = t.fit(r.loader, [&](const data::Batch& batch) {
      const double l = r.step(batch);
      if (++calls == 6) std::raise(SIGINT);
      return l;
    });
    CHECK(res.interrupted);
    CHECK(final_calls == 0);
    CHECK(res.final_metrics.empty());
    CHECK(final_records(dir / "metrics.jsonl") == 0);
  }
  {
    Run r(1);
    auto t =
        r.trainer({.epochs = 10, .out_dir = dir.path.string(), .early_stopping = {.metric = "score", .patience = 1}});
    t.set_evaluate([] { return train::Metrics{{"score", 1.0}}; });  // never improves after the first epoch
    t.set_final_evaluate([] { return train::Metrics{{"bound", 2.0}}; });
    const auto res = t.fit(
        r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
    CHECK(res.stopped_early);
    CHECK(res.epochs_completed == 2);
    CHECK(res.final_metrics.at("bound") == 2.0);
    const auto recs = train::read_metrics(dir / "metrics.jsonl");
    REQUIRE(recs.size() == 3);
    CHECK(recs[2].at("epoch") == 2);
    CHECK(recs[2].at("final") == 1);
  }
}

TEST_CASE("A label prefixes every progress and epoch line; resuming says where it starts; the plot takes its options",
          "[train]") {
  OneThread one;
  TempDir dir("label");
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  {
    Run r(1);
    train::Trainer t({.epochs = 1,
                      .out_dir = dir.path.string(),
                      .progress = train::Progress::lines,
                      .log_every = 2,
                      .progress_stream = f,
                      .label = "AE-32",
                      .plot_options = {.title = "AE on squares", .x_label = "epoch", .y_label = "nats per image"}});
    t.add_model("model", r.net, &r.opt);
    t.set_final_evaluate([] { return train::Metrics{{"bound", 1.5}}; });
    t.fit(
        r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
    const std::string svg = read_text(dir / "loss.svg");
    CHECK(svg.find("AE on squares") != std::string::npos);
    CHECK(svg.find("nats per image") != std::string::npos);
  }
  {
    Run r(1);
    train::Trainer t({.epochs = 2,
                      .out_dir = dir.path.string(),
                      .resume = dir / "checkpoint.npz",
                      .progress = train::Progress::lines,
                      .log_every = 2,
                      .progress_stream = f,
                      .label = "AE-32"});
    t.add_model("model", r.net, &r.opt);
    t.fit(
        r.loader, [&](const data::Batch& b) { return r.loss(b); }, r.opt);
  }
  const std::string text = read_stream(f);
  std::fclose(f);
  CHECK(text.find("AE-32: epoch 1/1 step 2/4 ( 50%) loss ") != std::string::npos);
  CHECK(text.find("AE-32: epoch 1/1: train_loss ") != std::string::npos);
  CHECK(text.find("AE-32: final evaluation after epoch 1:  bound 1.5  ") != std::string::npos);
  CHECK(text.find("AE-32: resumed from " + (dir / "checkpoint.npz") + " after epoch 1 (step 4)\n") !=
        std::string::npos);
  CHECK(text.find("AE-32: epoch 2/2: train_loss ") != std::string::npos);
  const std::string svg = read_text(dir / "loss.svg");  // redrawn by the second run, with the default options
  CHECK(svg.find("AE on squares") == std::string::npos);
  CHECK(svg.find(">loss<") != std::string::npos);
}

TEST_CASE("clip_grad_norm scales each step's gradients to the norm and reports the norms per epoch", "[train]") {
  TempDir dir("clip");
  OneThread one;
  // One batch per epoch (all 60 samples, in order), a linear model, plain SGD: the step is
  // w <- w - lr * g * min(1, c / (|g| + 1e-6)), with |g| the joint norm of the weight and bias gradients.
  const data::Dataset ds = synthetic();
  const double lr = 0.1;
  auto loss_of = [](nn::Linear<float>& net, const data::Batch& b) { return mean(square(net(Var<float>(b.x)))); };
  auto run = [&](double clip, Tensor<float>& w_after, train::FitResult& result) {
    manual_seed(7);
    nn::Linear<float> net(8, 3);
    optim::SGD<float> sgd{net.named_parameters(), {.lr = lr}};
    data::Loader loader(ds, {.batch_size = 60, .shuffle = false});
    train::Trainer t({.epochs = 1,
                      .out_dir = dir.path.string(),
                      .save_checkpoints = false,
                      .progress = train::Progress::off,
                      .clip_grad_norm = clip,
                      .write_metrics = false,
                      .plot = false});
    t.add_model("model", net, &sgd);
    result = t.fit(
        loader, [&](const data::Batch& b) { return loss_of(net, b); }, sgd);
    w_after = net.weight.value().clone();
  };
  // The unclipped gradient, by hand.
  manual_seed(7);
  nn::Linear<float> ref(8, 3);
  const Tensor<float> w0 = ref.weight.value().clone();
  {
    Tape<float> tape;
    data::Loader loader(ds, {.batch_size = 60, .shuffle = false});
    for (auto& b : loader) tape.backward(loss_of(ref, b));
  }
  double sq = 0;
  for (const auto* g : {&ref.weight.grad(), &ref.bias.grad()})
    for (std::int64_t i = 0; i < g->numel(); ++i) sq += static_cast<double>((*g)[i]) * (*g)[i];
  const double norm = std::sqrt(sq);
  REQUIRE(norm > 0);

  Tensor<float> w;
  train::FitResult res;
  run(norm / 4, w, res);  // clipped to a quarter
  CHECK(res.epochs.at(0).metrics.at("grad_norm") == Approx(norm).epsilon(1e-5));
  CHECK(res.epochs.at(0).metrics.at("clipped") == 1.0);
  for (std::int64_t i = 0; i < w.numel(); ++i)
    CHECK(w[i] == Approx(w0[i] - lr * ref.weight.grad()[i] * (norm / 4) / (norm + 1e-6)).margin(1e-6));

  run(norm * 4, w, res);  // above the norm: untouched
  CHECK(res.epochs.at(0).metrics.at("clipped") == 0.0);
  for (std::int64_t i = 0; i < w.numel(); ++i) CHECK(w[i] == Approx(w0[i] - lr * ref.weight.grad()[i]).margin(1e-6));

  run(0, w, res);  // off: no norms reported
  CHECK(res.epochs.at(0).metrics.count("grad_norm") == 0);

  // A step function owns its gradients: clipping there is its own call, and the option says so.
  {
    nn::Linear<float> net(8, 3);
    data::Loader loader(ds, {.batch_size = 60, .shuffle = false});
    train::Trainer t(
        {.epochs = 1, .out_dir = dir.path.string(), .progress = train::Progress::off, .clip_grad_norm = 1});
    CHECK_THROWS_WITH(t.fit(loader, [](const data::Batch&) { return 0.0; }), Catch::Contains("step function"));
  }

  CHECK_THROWS_AS(train::Trainer({.clip_grad_norm = -1}), ValueError);
  CHECK_THROWS_WITH(train::Trainer({.clip_grad_norm = std::numeric_limits<double>::infinity()}),
                    Catch::Contains("clip_grad_norm"));
}

}  // namespace train_trainer_test
