#pragma once
/// \file trainer.hpp
/// Trainer: a small, optional epoch loop around a user's step function, with the chores every run
/// needs done right: a progress bar, metrics as JSON lines, a loss curve, a checkpoint each epoch,
/// exact resumption, early stopping, Ctrl-C that saves before leaving, and a NaN/Inf guard that
/// names the step and the op.
///
/// ```cpp
/// train::Trainer trainer({.epochs = 10, .out_dir = "out", .resume = args.resume});
/// trainer.add_model("model", net, &opt).add_generator(noise_rng);
/// trainer.set_evaluate([&] { return train::Metrics{{"test_loss", test_loss(net)}}; });
/// trainer.set_final_evaluate([&] { return train::Metrics{{"test_bound", expensive_bound(net)}}; });
/// trainer.on_epoch_end([&](const train::EpochSummary& s) { save_pictures(net, s.epoch); });
/// trainer.fit(loader, [&](const data::Batch& b) { return mean(square(net(Var<float>(b.x)) - 1.0f)); }, opt);
/// ```
///
/// The step function owns the step (`double step(const data::Batch&)`: build a Tape, backward,
/// step any optimizers, return the loss), so a GAN with two optimizers fits as well as a VAE. The
/// convenience overload takes a loss function and one optimizer and does zero_grad, backward and
/// step itself; because it can replay the loss, it also names the op that produced a NaN.
///
/// Three hooks cover what a program does besides stepping: the evaluation after each epoch (its
/// metrics go into that epoch's record and may be monitored), a callback after each epoch's
/// checkpoint (pictures, a log line), and a final evaluation once training has ended (a bound too
/// costly to compute every epoch), whose metrics go into one last record marked `"final": true`.
///
/// Data-parallel runs (docs/distributed.md): `set_data_parallel(dp)` makes every rank run the same
/// loop over its shard of each batch. The step's loss is averaged over the global batch (one small
/// allreduce per step, which also carries Ctrl-C, so that every rank stops at the same step, and a
/// NaN on any rank stops all of them), the registered generators draw per-sample noise by global
/// sample index (their SampleWindow is set to each batch's), the convenience overload's backward
/// goes through DataParallel::backward, and only rank 0 writes files and progress. The checkpoint
/// holds one replica (they are equal); every rank loads it to resume, on any number of ranks.
///
/// Files written under `out_dir` (see docs/training.md): `metrics.jsonl` (one JSON object per
/// epoch, then the final record), `loss.svg` (train loss and every per-epoch metric whose name
/// contains "loss"), and `checkpoint.npz` (see checkpoint.hpp for its key layout).

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "genmod/autodiff/tape.hpp"
#include "genmod/autodiff/var.hpp"
#include "genmod/config.hpp"
#include "genmod/core/random.hpp"
#include "genmod/data/loader.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/distributed/data_parallel.hpp"
#include "genmod/io/checkpoint.hpp"
#include "genmod/io/plot.hpp"
#include "genmod/nn/module.hpp"
#include "genmod/optim/clip.hpp"
#include "genmod/optim/optimizer.hpp"
#include "genmod/train/checkpoint.hpp"
#include "genmod/train/metrics.hpp"
#include "genmod/train/progress.hpp"

namespace genmod::train {

/// Whether a smaller or a larger monitored value is better.
enum class Mode {
  min,  ///< losses
  max,  ///< accuracies, ELBOs
};

/// Early stopping: stop when `metric` has not improved for `patience` epochs in a row.
struct EarlyStopping {
  std::string metric = {};    ///< monitored metric ("test_loss", "train_loss", ...); empty: off
  std::int64_t patience = 5;  ///< epochs without improvement before stopping (>= 1)
  Mode mode = Mode::min;      ///< which direction is better
  double min_delta = 0;       ///< an improvement must beat the best by more than this
};

/// Options of Trainer. Defaults suit an example program: everything on, written under "out".
struct TrainerOptions {
  std::int64_t epochs = 10;                 ///< total epochs (a resumed run continues up to this)
  std::string out_dir = "out";              ///< directory for metrics, plots and the checkpoint
  std::string checkpoint = {};              ///< checkpoint path; empty: `<out_dir>/checkpoint.npz`
  bool save_checkpoints = true;             ///< save the checkpoint at each epoch end and on Ctrl-C
  std::string resume = {};                  ///< checkpoint to resume from; empty: start afresh
  std::string best_checkpoint = {};         ///< also save here when the monitored metric improves
  Progress progress = Progress::automatic;  ///< live bar on a terminal, plain lines otherwise
  std::int64_t log_every = 50;              ///< steps between plain progress lines (no terminal)
  std::FILE* progress_stream = nullptr;     ///< where progress goes; nullptr: stderr
  EarlyStopping early_stopping = {};        ///< off unless a metric is named
  bool check_gradients = false;             ///< also check gradients (loss fn) or parameters (step fn) each step
  /// fit(loader, loss, optimizer): before each step, scale the gradients down to this joint L2
  /// norm when above it (optim::clip_grad_norm); 0: off. With it on, every epoch's metrics carry
  /// `grad_norm` (the mean norm before clipping) and `clipped` (the fraction of steps clipped).
  double clip_grad_norm = 0;
  bool handle_sigint = true;   ///< first Ctrl-C: finish the step, save, return
  bool write_metrics = true;   ///< append to `<out_dir>/metrics.jsonl`
  bool plot = true;            ///< redraw `<out_dir>/loss.svg` each epoch
  io::Metadata metadata = {};  ///< saved in every checkpoint (seed, hyperparameters)
  std::string label = {};      ///< prefix of progress and epoch lines (a program training several models names each)
  io::PlotOptions plot_options = {
      .title = "loss", .x_label = "epoch", .y_label = "loss"};  ///< title and axes of loss.svg
};

/// What one epoch produced (also the argument of the epoch-end callback).
struct EpochSummary {
  std::int64_t epoch = 0;  ///< 1-based number of the epoch just completed
  std::int64_t step = 0;   ///< steps taken since the start of the run
  double train_loss = 0;   ///< mean step loss over the epoch, weighted by batch size
  double seconds = 0;      ///< wall time of the epoch (training and evaluation)
  Metrics metrics = {};    ///< what the evaluation function returned
  bool improved = false;   ///< the monitored metric improved (always false without one)
};

/// What fit() returns.
struct FitResult {
  std::int64_t epochs_completed = 0;                       ///< including those of the run resumed from
  std::int64_t step = 0;                                   ///< steps taken since the start of the run
  bool interrupted = false;                                ///< Ctrl-C stopped the loop (after saving)
  bool stopped_early = false;                              ///< early stopping ended the loop
  std::vector<EpochSummary> epochs = {};                   ///< the epochs this call ran
  double best = std::numeric_limits<double>::quiet_NaN();  ///< best monitored value so far
  Metrics final_metrics = {};  ///< what the final evaluation returned (empty when it did not run)
};

namespace detail {

/// Number of SIGINTs received while a SigintGuard is installed.
inline std::atomic<int> sigint_count{0};

/// The handler only counts (async-signal-safe); a second Ctrl-C restores the default action and
/// re-raises, so a user can always kill a run whose step hangs.
inline void on_sigint(int) {
  if (sigint_count.fetch_add(1) >= 1) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

/// Installs on_sigint for its lifetime and restores the previous handler afterwards.
class SigintGuard {
 public:
  explicit SigintGuard(bool on) : on_(on) {
    if (!on_) return;
    sigint_count.store(0);
    struct sigaction sa {};
    sa.sa_handler = &on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &old_);
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;
  ~SigintGuard() {
    if (on_) ::sigaction(SIGINT, &old_, nullptr);
  }
  /// True once a SIGINT arrived.
  bool fired() const noexcept { return on_ && sigint_count.load() > 0; }

 private:
  bool on_;
  struct sigaction old_ {};
};

inline double parse_double_or(const io::Metadata& m, const std::string& key, double fallback) {
  const auto it = m.find(key);
  double v = fallback;
  if (it == m.end()) return fallback;
  if (it->second == "null") return std::numeric_limits<double>::quiet_NaN();
  if (!parse_number(it->second, v))
    throw IOError("checkpoint metadata '" + key + "' is not a number: '" + it->second + "'");
  return v;
}

inline std::int64_t parse_int_or(const io::Metadata& m, const std::string& key, std::int64_t fallback) {
  const double v = parse_double_or(m, key, static_cast<double>(fallback));
  if (!(v >= 0 && v == std::floor(v)))
    throw IOError("checkpoint metadata '" + key + "' is not a non-negative integer: '" + m.at(key) + "'");
  return static_cast<std::int64_t>(v);
}

}  // namespace detail

/// The training loop. Register what to checkpoint, optionally an evaluation, then call fit().
class Trainer {
 public:
  /// A step: trains on one batch (tape, backward, optimizer steps) and returns its loss.
  using StepFn = std::function<double(const data::Batch&)>;
  /// A loss: the scalar to minimize on one batch (the convenience overload of fit steps it).
  using LossFn = std::function<Var<float>(const data::Batch&)>;
  /// An evaluation run after each epoch with the registered modules in eval mode.
  using EvalFn = std::function<Metrics()>;
  /// Called after each epoch's checkpoint (e.g. to save sample images).
  using EpochFn = std::function<void(const EpochSummary&)>;
  /// A final evaluation, run once after the last epoch.
  using FinalEvalFn = std::function<Metrics()>;

  /// A trainer with the given options (nothing touches the disk until fit()).
  explicit Trainer(TrainerOptions options = {});

  /// Checkpoints `module` (and `optimizer`) under `name` (see checkpoint.hpp for the keys); fit()
  /// also switches it to eval mode around the evaluation function and back to training mode.
  Trainer& add_model(std::string name, nn::Module<float>& module, optim::Optimizer<float>* optimizer = nullptr) {
    set_.add(std::move(name), module, optimizer);
    return *this;
  }
  /// Checkpoints a random generator's state (noise, dropout masks) so a resumed run draws what an
  /// uninterrupted one would. The default name "rng" matches io::save_checkpoint's layout.
  Trainer& add_generator(Generator& generator, std::string name = "rng") {
    set_.add_generator(generator, std::move(name));
    generators_.push_back(&generator);
    return *this;
  }
  /// Trains data-parallel over `dp`'s ranks (see the file comment). The loader must be sharded
  /// for the same ranks (LoaderOptions::rank, world_size); fit() checks it.
  Trainer& set_data_parallel(distributed::DataParallel<float>& dp) {
    dp_ = &dp;
    return *this;
  }
  /// Sets the evaluation run after each epoch; its metrics go to metrics.jsonl and may be monitored.
  Trainer& set_evaluate(EvalFn evaluate) {
    evaluate_ = std::move(evaluate);
    return *this;
  }
  /// Sets a callback run after each epoch's checkpoint and record (pictures, a log line). It runs
  /// with the modules in training mode: switch them to eval() inside when that matters.
  Trainer& on_epoch_end(EpochFn f) {
    on_epoch_end_ = std::move(f);
    return *this;
  }
  /// Sets an evaluation run once when training ends (the last epoch done, or early stopping; not
  /// after Ctrl-C), with the modules in eval mode. Its metrics are returned in
  /// FitResult::final_metrics and appended to metrics.jsonl as one record `{"epoch": E, "step": S,
  /// "final": true, <metrics>, "seconds": s}`. A resumed run drops the old final record and, once
  /// done, writes its own (also when the checkpoint was already at the last epoch).
  Trainer& set_final_evaluate(FinalEvalFn evaluate) {
    final_evaluate_ = std::move(evaluate);
    return *this;
  }

  /// The options in effect.
  const TrainerOptions& options() const noexcept { return opt_; }
  /// Steps completed since the start of the run, a resumed run's included: inside a step function,
  /// the 0-based index of the step being taken (for schedules such as a KL warm-up).
  std::int64_t step() const noexcept { return step_; }
  /// Where checkpoints are written: options().checkpoint, or `<out_dir>/checkpoint.npz`.
  std::string checkpoint_path() const {
    return opt_.checkpoint.empty() ? join(opt_.out_dir, "checkpoint.npz") : opt_.checkpoint;
  }
  /// `<out_dir>/metrics.jsonl`.
  std::string metrics_path() const { return join(opt_.out_dir, "metrics.jsonl"); }
  /// `<out_dir>/loss.svg`.
  std::string plot_path() const { return join(opt_.out_dir, "loss.svg"); }

  /// Prints a line on the progress stream without garbling the progress bar (use it, rather than
  /// printing to stderr directly, from inside a step or evaluation function).
  void log(std::string_view line);

  /// Trains with a step function: `step(batch)` does the whole step and returns the loss. The
  /// loader is any data::BatchLoader (data::Loader, data::ImageLoader).
  /// A non-finite loss stops training with NumericError naming the step and epoch.
  /// ValueError when clip_grad_norm is set: the trainer does not see a step function's gradients
  /// (clip them in the step, optim::clip_grad_norm(optimizer, c) between backward and step).
  template <data::BatchLoader L>
  FitResult fit(L& loader, StepFn step) {
    if (opt_.clip_grad_norm > 0)
      throw ValueError("Trainer: clip_grad_norm (" + std::to_string(opt_.clip_grad_norm) +
                       ") applies to fit(loader, loss, optimizer); a step function owns its gradients: call "
                       "optim::clip_grad_norm(optimizer, c) between backward and step");
    return run(loader, std::move(step), nullptr);
  }

  /// Trains `loss(batch)` with `optimizer`: per batch, zero_grad, backward, (gradient check),
  /// step. A non-finite loss stops training with NumericError naming the step, the epoch and the
  /// first op that produced a non-finite value (found by replaying the batch with a checking tape).
  template <data::BatchLoader L>
  FitResult fit(L& loader, LossFn loss, optim::Optimizer<float>& optimizer) {
    StepFn step = [this, &loss, &optimizer](const data::Batch& b) { return loss_step(loss, optimizer, b); };
    return run(loader, std::move(step), &loss);
  }

 private:
  // One step of fit(loader, loss, optimizer): the loss, (the data-parallel agreement), zero_grad,
  // backward, (the gradient check and clipping), the optimizer's step; returns the loss.
  double loss_step(LossFn& loss, optim::Optimizer<float>& optimizer, const data::Batch& b);

  static std::string join(const std::string& dir, const char* file) {
    return (std::filesystem::path(dir.empty() ? "." : dir) / file).string();
  }

  // "label: text", or the text alone without a label.
  std::string labelled(const std::string& text) const { return opt_.label.empty() ? text : opt_.label + ": " + text; }

  std::string where() const;

  std::string kept() const;

  bool better(double v) const {
    if (std::isnan(v)) return false;
    if (std::isnan(best_)) return true;
    const auto& es = opt_.early_stopping;
    return es.mode == Mode::min ? v < best_ - es.min_delta : v > best_ + es.min_delta;
  }

  // The trainer's own metadata: where in the run we are, and the early-stopping state, so that a
  // resumed run continues it exactly.
  io::Metadata position_metadata(std::int64_t loader_epoch, std::int64_t batches_done, double loss_sum,
                                 double loss_count, double seconds) const;

  void save(const std::string& path, std::int64_t epochs_done, const io::Metadata& meta);

  // Rank 0 of a data-parallel run, or a single process: the one that writes files and progress.
  bool writer() const noexcept { return !dp_ || dp_->rank() == 0; }

  // A data-parallel step's loss over the global batch, with whether any rank saw Ctrl-C: one
  // allreduce of {loss * B_r / M, interrupted}. A single process returns its own.
  std::pair<double, bool> agree(double local_loss, const data::Batch& batch, bool interrupted);
  // Whether any rank saw Ctrl-C, outside a step (the same collective, with no loss to add).
  bool any_interrupted(bool interrupted) { return agree(0.0, data::Batch{.window = {0, 0, 1}}, interrupted).second; }

  // Sets (or clears) the registered generators' sample windows around a data-parallel step.
  void set_windows(const SampleWindow& w) {
    if (dp_)
      for (Generator* g : generators_) g->set_sample_window(w);
  }

  // A NaN or Inf loss: name the step, and (when the loss can be replayed) the first op that made
  // a non-finite value. The replay draws the same random numbers: registered generators are
  // rewound to their state before the step.
  [[noreturn]] void non_finite_loss(double loss, const data::Batch& batch, LossFn* loss_fn,
                                    const std::vector<GeneratorState>& before);

  std::vector<GeneratorState> generator_states() const {
    std::vector<GeneratorState> out;
    for (Generator* g : generators_) out.push_back(g->state());
    return out;
  }
  void restore_generators(const std::vector<GeneratorState>& s) {
    for (std::size_t i = 0; i < generators_.size() && i < s.size(); ++i) generators_[i]->set_state(s[i]);
  }

  void write_plot();

  template <data::BatchLoader L>
  FitResult run(L& loader, StepFn step, LossFn* loss_fn) {
    using Clock = std::chrono::steady_clock;
    FitResult result;
    std::filesystem::create_directories(opt_.out_dir.empty() ? "." : opt_.out_dir);

    // Where to start: afresh, or from the resume checkpoint.
    step_ = 0;
    epoch_ = 0;
    best_ = std::numeric_limits<double>::quiet_NaN();
    bad_epochs_ = 0;
    last_saved_epoch_ = -1;
    std::int64_t skip = 0;
    double loss_sum = 0, loss_count = 0, carried_seconds = 0;
    records_.clear();
    grad_norm_sum_ = 0;
    grad_norm_steps_ = clipped_steps_ = 0;
    if (!opt_.resume.empty()) {
      const LoadedState st = set_.load(opt_.resume);
      step_ = st.step;
      epoch_ = st.epoch;
      loader.set_epoch(detail::parse_int_or(st.extra, "trainer.loader_epoch", st.epoch));
      skip = detail::parse_int_or(st.extra, "trainer.batch", 0);
      // Saved mid-epoch with another global batch size (another number of ranks): continue at the
      // same sample of the epoch's order when the new global batch divides the position.
      const std::int64_t saved_global = detail::parse_int_or(st.extra, "trainer.global_batch", 0);
      if (skip > 0 && saved_global > 0 && saved_global != loader.global_batch_size()) {
        const std::int64_t samples = skip * saved_global;
        if (samples % loader.global_batch_size() != 0)
          throw ValueError(opt_.resume + ": the checkpoint was taken after " + std::to_string(samples) +
                           " samples of an epoch (global batch " + std::to_string(saved_global) +
                           "); a global batch of " + std::to_string(loader.global_batch_size()) +
                           " cannot continue there: resume with a global batch (batch_size x ranks) that divides " +
                           std::to_string(samples) + ", or from an end-of-epoch checkpoint");
        skip = samples / loader.global_batch_size();
      }
      loss_sum = detail::parse_double_or(st.extra, "trainer.loss_sum", 0);
      loss_count = detail::parse_double_or(st.extra, "trainer.loss_count", 0);
      carried_seconds = detail::parse_double_or(st.extra, "trainer.seconds", 0);
      best_ = detail::parse_double_or(st.extra, "trainer.best", best_);
      bad_epochs_ = detail::parse_int_or(st.extra, "trainer.bad_epochs", 0);
      if (skip > loader.num_batches())
        throw IOError(opt_.resume + ": checkpoint was taken after batch " + std::to_string(skip) +
                      " of an epoch, but the loader has only " + std::to_string(loader.num_batches()));
      if (std::filesystem::absolute(opt_.resume) == std::filesystem::absolute(checkpoint_path()))
        last_saved_epoch_ = epoch_;
    }
    if (opt_.write_metrics && writer()) {
      // Keep the records up to the resumed epoch: a run resumed from an older checkpoint must not
      // leave the abandoned epochs in the file, nor list an epoch twice. The old final record goes
      // too: this run ends with its own.
      std::vector<MetricsRecord> old = read_metrics(metrics_path());
      const std::size_t n_old = old.size();
      for (auto& r : old) {
        const double* e = r.find("epoch");
        if (e && *e <= static_cast<double>(epoch_) && !r.find("final") && !opt_.resume.empty())
          records_.push_back(std::move(r));
      }
      if (records_.size() != n_old) write_metrics(metrics_path(), records_);
    }
    result.epochs_completed = epoch_;
    result.step = step_;
    result.best = best_;

    if (dp_ && (loader.world_size() != dp_->size() || loader.rank() != dp_->rank()))
      throw ValueError("Trainer: the loader is sharded as rank " + std::to_string(loader.rank()) + " of " +
                       std::to_string(loader.world_size()) + ", but the data-parallel group has this process as " +
                       dp_->communicator().describe() + " (set LoaderOptions::rank and world_size)");
    ProgressBar bar({.mode = writer() ? opt_.progress : Progress::off,
                     .log_every = opt_.log_every,
                     .stream = opt_.progress_stream});
    bar_ = &bar;
    struct Reset {
      ProgressBar*& p;
      ~Reset() { p = nullptr; }
    } reset{bar_};
    detail::SigintGuard sigint(opt_.handle_sigint);
    set_.for_each_module([](nn::Module<float>& m) { m.train(); });
    batches_ = loader.num_batches();
    global_batch_ = loader.global_batch_size();
    if (!opt_.resume.empty())
      log(labelled("resumed from " + opt_.resume + " after epoch " + std::to_string(epoch_) + " (step " +
                   std::to_string(step_) + (skip > 0 ? ", batch " + std::to_string(skip) + " of the next epoch" : "") +
                   ")"));

    for (; epoch_ < opt_.epochs; ++epoch_) {
      const auto t0 = Clock::now();
      auto elapsed = [&] { return carried_seconds + std::chrono::duration<double>(Clock::now() - t0).count(); };
      const std::string label = labelled("epoch " + std::to_string(epoch_ + 1) + "/" + std::to_string(opt_.epochs));
      bar.start(label, batches_, skip);
      batch_ = 0;
      bool interrupted = false;
      for (auto& batch : loader) {
        if (batch_ < skip) {  // a resumed epoch: these batches were trained before the checkpoint
          ++batch_;
          continue;
        }
        const std::vector<GeneratorState> before = loss_fn ? generator_states() : std::vector<GeneratorState>{};
        set_windows(batch.window);
        agreed_.reset();
        const double local_loss = step(batch);
        set_windows({});
        const auto [loss, any_interrupted] = agreed_ ? *agreed_ : agree(local_loss, batch, sigint.fired());
        if (!std::isfinite(loss)) non_finite_loss(local_loss, batch, loss_fn, before);
        if (opt_.check_gradients && !loss_fn)
          if (const std::string bad = set_.first_non_finite(); !bad.empty())
            throw NumericError("non-finite state after " + where() + ": " + bad + "; " + kept());
        ++step_;
        ++batch_;
        const auto global_size = static_cast<double>(std::max(batch.window.total, batch.size()));
        loss_sum += loss * global_size;
        loss_count += global_size;
        bar.update(batch_, static_cast<std::int64_t>(global_size), loss_sum / loss_count);
        if (any_interrupted && batch_ < batches_) {
          interrupted = true;
          break;
        }
      }
      if (interrupted) {
        // Mid-epoch: save the position inside the epoch so a resume continues with the next batch.
        bar.finish(label + ": interrupted at step " + std::to_string(step_) + ", saving checkpoint");
        save(checkpoint_path(), epoch_, position_metadata(loader.epoch() - 1, batch_, loss_sum, loss_count, elapsed()));
        result.interrupted = true;
        break;
      }
      skip = 0;

      EpochSummary s;
      s.epoch = epoch_ + 1;
      s.step = step_;
      s.train_loss = loss_count > 0 ? loss_sum / loss_count : std::numeric_limits<double>::quiet_NaN();
      if (evaluate_) {
        set_.for_each_module([](nn::Module<float>& m) { m.eval(); });
        s.metrics = evaluate_();
        set_.for_each_module([](nn::Module<float>& m) { m.train(); });
      }
      if (grad_norm_steps_ > 0) {
        s.metrics["grad_norm"] = grad_norm_sum_ / static_cast<double>(grad_norm_steps_);
        s.metrics["clipped"] = static_cast<double>(clipped_steps_) / static_cast<double>(grad_norm_steps_);
      }
      grad_norm_sum_ = 0;
      grad_norm_steps_ = clipped_steps_ = 0;
      s.seconds = elapsed();

      // Early stopping and the best value.
      bool stop = false;
      const auto& es = opt_.early_stopping;
      if (!es.metric.empty()) {
        double v = std::numeric_limits<double>::quiet_NaN();
        if (es.metric == "train_loss")
          v = s.train_loss;
        else if (auto it = s.metrics.find(es.metric); it != s.metrics.end())
          v = it->second;
        else
          throw ValueError("Trainer: early stopping monitors '" + es.metric +
                           "', which is neither 'train_loss' nor a metric the evaluation function returned");
        if (better(v)) {
          best_ = v;
          bad_epochs_ = 0;
          s.improved = true;
        } else {
          ++bad_epochs_;
          stop = bad_epochs_ >= es.patience;
        }
      }

      MetricsRecord rec;
      rec.values.emplace_back("epoch", static_cast<double>(s.epoch));
      rec.values.emplace_back("step", static_cast<double>(s.step));
      rec.values.emplace_back("train_loss", s.train_loss);
      for (const auto& [k, v] : s.metrics)
        if (k != "epoch" && k != "step" && k != "train_loss" && k != "seconds") rec.values.emplace_back(k, v);
      rec.values.emplace_back("seconds", s.seconds);

      // Checkpoint first, metrics after: a crash in between leaves a checkpoint ahead of the
      // metrics file (harmless: resuming rewrites the file) rather than metrics for an epoch no
      // checkpoint holds.
      const io::Metadata meta = position_metadata(loader.epoch(), 0, 0, 0, 0);
      save(checkpoint_path(), epoch_ + 1, meta);
      if (s.improved && !opt_.best_checkpoint.empty()) save(opt_.best_checkpoint, epoch_ + 1, meta);
      if (opt_.write_metrics && writer()) {
        append_line(metrics_path(), metrics_to_json(rec.values));
      }
      records_.push_back(rec);
      if (opt_.plot && writer()) write_plot();

      std::string line = label + ": train_loss " + detail::format_loss(s.train_loss);
      for (const auto& [k, v] : s.metrics) line += "  " + k + " " + detail::format_loss(v);
      line += "  " + detail::format_duration(s.seconds);
      if (s.improved && !opt_.best_checkpoint.empty()) line += "  (best)";
      bar.finish(line);

      loss_sum = loss_count = carried_seconds = 0;
      result.epochs.push_back(s);
      result.epochs_completed = epoch_ + 1;
      if (on_epoch_end_) on_epoch_end_(s);
      if (stop) {
        bar.finish(labelled("early stopping: '" + es.metric + "' has not improved for " + std::to_string(es.patience) +
                            " epochs"));
        result.stopped_early = true;
        ++epoch_;
        break;
      }
      if (any_interrupted(sigint.fired())) {
        bar.finish(labelled("interrupted: checkpoint saved after epoch " + std::to_string(epoch_ + 1)));
        result.interrupted = true;
        ++epoch_;
        break;
      }
    }
    result.step = step_;
    result.best = best_;
    if (final_evaluate_ && !result.interrupted) result.final_metrics = final_evaluation();
    return result;
  }

  // The final evaluation (eval mode), its record appended to metrics.jsonl and its line printed.
  Metrics final_evaluation();

  TrainerOptions opt_;
  CheckpointSet set_;
  std::vector<Generator*> generators_;  // rewound before replaying a NaN batch
  EvalFn evaluate_;
  EpochFn on_epoch_end_;
  FinalEvalFn final_evaluate_;
  ProgressBar* bar_ = nullptr;
  std::vector<MetricsRecord> records_;
  std::int64_t step_ = 0, epoch_ = 0, batch_ = 0, batches_ = 0, global_batch_ = 0;
  distributed::DataParallel<float>* dp_ = nullptr;  // set_data_parallel
  std::optional<std::pair<double, bool>> agreed_;   // agree()'s result when the step took it
  std::int64_t bad_epochs_ = 0, last_saved_epoch_ = -1;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  double grad_norm_sum_ = 0;                              // this epoch's norms before clipping
  std::int64_t grad_norm_steps_ = 0, clipped_steps_ = 0;  // steps measured, steps clipped
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// Trainer's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE double Trainer::loss_step(LossFn& loss, optim::Optimizer<float>& optimizer,
                                                    const data::Batch& b) {
  Tape<float> tape;
  Var<float> l = loss(b);
  const double v = static_cast<double>(l.item());
  if (dp_) {
    // The step's one agreement (global loss, Ctrl-C), taken before the backward pass: every
    // rank skips the backward pass (and its collectives) when any rank's loss is not finite,
    // and run() uses this result instead of agreeing a second time.
    agreed_ = agree(v, b, opt_.handle_sigint && detail::sigint_count.load() > 0);
    if (!std::isfinite(agreed_->first)) return v;
  } else if (!std::isfinite(v)) {
    return v;  // run() diagnoses before anything is updated
  }
  optimizer.zero_grad();
  if (dp_)
    dp_->backward(tape, l, b);
  else
    tape.backward(l);
  if (opt_.check_gradients)
    for (const auto& p : optimizer.parameters()) {
      const Tensor<float>& g = p.parameter.grad();
      for (std::int64_t i = 0; i < g.numel(); ++i)
        if (!std::isfinite(g.data()[i]))
          throw NumericError("non-finite gradient " + std::to_string(g.data()[i]) + " of parameter '" + p.name +
                             "' (element " + std::to_string(i) + ") " + where() + "; " + kept());
    }
  if (opt_.clip_grad_norm > 0) {
    const double norm = optim::clip_grad_norm(optimizer, opt_.clip_grad_norm);
    grad_norm_sum_ += norm;
    grad_norm_steps_ += 1;
    clipped_steps_ += norm > opt_.clip_grad_norm ? 1 : 0;
  }
  optimizer.step();
  return v;
}

GENMOD_DETAIL_NONTEMPLATE Trainer::Trainer(TrainerOptions options) : opt_(std::move(options)) {
  if (opt_.epochs < 0) throw ValueError("Trainer: epochs must be non-negative, got " + std::to_string(opt_.epochs));
  if (!(opt_.clip_grad_norm >= 0) || !std::isfinite(opt_.clip_grad_norm))
    throw ValueError("Trainer: clip_grad_norm must be a finite number >= 0 (0: off), got " +
                     std::to_string(opt_.clip_grad_norm));
  if (!opt_.early_stopping.metric.empty() && opt_.early_stopping.patience < 1)
    throw ValueError("Trainer: early_stopping.patience must be at least 1, got " +
                     std::to_string(opt_.early_stopping.patience));
}

GENMOD_DETAIL_NONTEMPLATE void Trainer::log(std::string_view line) {
  if (bar_)
    bar_->print(line);
  else if (opt_.progress != Progress::off)
    std::fprintf(opt_.progress_stream ? opt_.progress_stream : stderr, "%.*s\n", static_cast<int>(line.size()),
                 line.data());
}

GENMOD_DETAIL_NONTEMPLATE std::string Trainer::where() const {
  return "at step " + std::to_string(step_ + 1) + " (epoch " + std::to_string(epoch_ + 1) + ", batch " +
         std::to_string(batch_ + 1) + " of " + std::to_string(batches_) + ")";
}

GENMOD_DETAIL_NONTEMPLATE std::string Trainer::kept() const {
  if (!opt_.save_checkpoints || set_.empty()) return "no checkpoint is saved";
  if (last_saved_epoch_ < 0) return "no checkpoint was saved yet";
  return "the last good checkpoint, '" + checkpoint_path() + "' (epoch " + std::to_string(last_saved_epoch_) +
         "), is kept";
}

GENMOD_DETAIL_NONTEMPLATE io::Metadata Trainer::position_metadata(std::int64_t loader_epoch, std::int64_t batches_done,
                                                                  double loss_sum, double loss_count,
                                                                  double seconds) const {
  io::Metadata m = opt_.metadata;
  m["trainer.loader_epoch"] = std::to_string(loader_epoch);
  m["trainer.batch"] = std::to_string(batches_done);
  m["trainer.global_batch"] = std::to_string(global_batch_);
  m["trainer.loss_sum"] = format_number(loss_sum);
  m["trainer.loss_count"] = format_number(loss_count);
  m["trainer.seconds"] = format_number(seconds);
  m["trainer.best"] = format_number(best_);
  m["trainer.bad_epochs"] = std::to_string(bad_epochs_);
  return m;
}

GENMOD_DETAIL_NONTEMPLATE void Trainer::save(const std::string& path, std::int64_t epochs_done,
                                             const io::Metadata& meta) {
  if (!opt_.save_checkpoints || set_.empty()) return;
  if (writer()) set_.save(path, step_, epochs_done, meta);
  if (path == checkpoint_path()) last_saved_epoch_ = epochs_done;
}

GENMOD_DETAIL_NONTEMPLATE std::pair<double, bool> Trainer::agree(double local_loss, const data::Batch& batch,
                                                                 bool interrupted) {
  if (!dp_) return {local_loss, interrupted};
  const std::int64_t total = std::max(batch.window.total, batch.window.count);
  std::array<double, 2> v{local_loss * static_cast<double>(batch.window.count) / static_cast<double>(total),
                          interrupted ? 1.0 : 0.0};
  dp_->communicator().allreduce_sum(std::span<double>(v));
  return {v[0], v[1] > 0};
}

GENMOD_DETAIL_NONTEMPLATE void Trainer::non_finite_loss(double loss, const data::Batch& batch, LossFn* loss_fn,
                                                        const std::vector<GeneratorState>& before) {
  if (dp_ && std::isfinite(loss))  // this rank's loss was finite: another rank's was not
    throw NumericError("non-finite loss on another rank " + where() + " (this rank's loss was " + std::to_string(loss) +
                       "; " + dp_->communicator().describe() + "); " + kept());
  std::string msg = "non-finite loss " + std::to_string(loss) + " " + where() +
                    (dp_ ? " on " + dp_->communicator().describe() : std::string());
  if (loss_fn) {
    restore_generators(before);
    set_windows(batch.window);
    std::string cause;
    try {
      Tape<float> tape;
      tape.set_check_finite(true);
      Var<float> l = (*loss_fn)(batch);
      cause = "the replay with a checking tape found no non-finite op (the loss is non-deterministic?)";
    } catch (const NumericError& e) {
      cause = std::string("first ") + e.what();
    }
    set_windows({});
    msg += "; " + cause;
  } else {
    msg +=
        "; to find the op that produced it, call tape.set_check_finite(true) in the step function or use "
        "fit(loader, loss_fn, optimizer)";
  }
  throw NumericError(msg + "; " + kept());
}

GENMOD_DETAIL_NONTEMPLATE void Trainer::write_plot() {
  // Per-epoch records only: the final record's metrics are single points, not curves.
  std::vector<MetricsRecord> per_epoch;
  for (const auto& r : records_)
    if (!r.find("final")) per_epoch.push_back(r);
  std::vector<io::Series> series;
  io::Series train{"train_loss", {}, {}};
  for (const auto& r : per_epoch)
    if (const double* v = r.find("train_loss")) {
      train.x.push_back(r.at("epoch"));
      train.y.push_back(*v);
    }
  series.push_back(std::move(train));
  // Every other "...loss..." metric, in order of first appearance.
  std::vector<std::string> names;
  for (const auto& r : per_epoch)
    for (const auto& [k, v] : r.values)
      if (k != "train_loss" && k.find("loss") != std::string::npos &&
          std::find(names.begin(), names.end(), k) == names.end())
        names.push_back(k);
  for (const auto& n : names) {
    io::Series s{n, {}, {}};
    for (const auto& r : per_epoch)
      if (const double* v = r.find(n)) {
        s.x.push_back(r.at("epoch"));
        s.y.push_back(*v);
      }
    series.push_back(std::move(s));
  }
  io::save_line_plot_svg(plot_path(), series, opt_.plot_options);
}

GENMOD_DETAIL_NONTEMPLATE Metrics Trainer::final_evaluation() {
  const auto t0 = std::chrono::steady_clock::now();
  set_.for_each_module([](nn::Module<float>& m) { m.eval(); });
  struct Restore {
    const CheckpointSet& set;
    ~Restore() {
      set.for_each_module([](nn::Module<float>& m) { m.train(); });
    }
  } restore{set_};
  Metrics m = final_evaluate_();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MetricsRecord rec;
  rec.values.emplace_back("epoch", static_cast<double>(epoch_));
  rec.values.emplace_back("step", static_cast<double>(step_));
  rec.values.emplace_back("final", 1.0);
  for (const auto& [k, v] : m)
    if (k != "epoch" && k != "step" && k != "final" && k != "seconds") rec.values.emplace_back(k, v);
  rec.values.emplace_back("seconds", seconds);
  if (opt_.write_metrics && writer()) {
    io::JsonObject line = to_json_object(rec);
    line.set("final", true);
    append_metrics(metrics_path(), line);
  }
  records_.push_back(std::move(rec));
  std::string text = labelled("final evaluation after epoch " + std::to_string(epoch_) + ":");
  for (const auto& [k, v] : m) text += "  " + k + " " + detail::format_loss(v);
  log(text + "  " + detail::format_duration(seconds));
  return m;
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

}  // namespace genmod::train

// Explicit instantiations of the training loop for data::Loader: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp
// (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_TEMPLATE genmod::train::FitResult genmod::train::Trainer::fit<genmod::data::Loader>(
    genmod::data::Loader&, genmod::train::Trainer::StepFn);
GENMOD_DETAIL_TEMPLATE genmod::train::FitResult genmod::train::Trainer::fit<genmod::data::Loader>(
    genmod::data::Loader&, genmod::train::Trainer::LossFn, genmod::optim::Optimizer<float>&);
GENMOD_DETAIL_TEMPLATE genmod::train::FitResult genmod::train::Trainer::run<genmod::data::Loader>(
    genmod::data::Loader&, genmod::train::Trainer::StepFn, genmod::train::Trainer::LossFn*);
#endif
