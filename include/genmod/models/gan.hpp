#pragma once
/// \file gan.hpp
/// A generative adversarial network (Goodfellow et al. 2014): a generator G maps noise z ~ N(0, I)
/// to samples, a discriminator (critic) D scores samples, and the two are trained in alternation:
/// with G fixed, D learns to tell real from generated samples; with D fixed, G learns to make D
/// accept its samples. The game is chosen at run time (GanObjective): the original minimax game,
/// the non-saturating generator loss, least squares, hinge, and the Wasserstein game with weight
/// clipping (WGAN) or a gradient penalty (WGAN-GP); losses/adversarial.hpp has the formulas.
///
/// What each step spends:
/// - The discriminator step draws z, runs G without recording (nobody differentiates G there),
///   and trains D on the real batch and the fakes (two forward passes, so a BatchNorm in D sees
///   each batch apart, as in the reference DCGAN). WGAN clamps D's parameters to [-c, c]
///   afterwards; WGAN-GP adds the gradient penalty between the real and generated batches.
/// - The generator step freezes D (its parameters are constants: no weight-gradient products
///   for D, only the input gradient that reaches G) and trains G on D(G(z)).
/// - train_step does one critic step per call and a generator step every n_critic-th call. With
///   n_critic = 1 it records G(z) once and uses it for both halves: detached (a constant) in the
///   discriminator step, then through D again for the generator step (the reference's recipe).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/autodiff/grad_mode.hpp"
#include "genmod/autodiff/tape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/distributed/data_parallel.hpp"
#include "genmod/losses/adversarial.hpp"
#include "genmod/models/concepts.hpp"
#include "genmod/nn/freeze.hpp"
#include "genmod/nn/layer.hpp"
#include "genmod/nn/layers/norm.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::models {

/// The game and the way the critic is kept Lipschitz (for the Wasserstein game).
enum class GanObjective { minimax, non_saturating, least_squares, hinge, wgan, wgan_gp };

/// The objective's command-line name: minimax, ns, lsgan, hinge, wgan, wgan-gp.
inline std::string_view to_string(GanObjective o) {
  switch (o) {
    case GanObjective::minimax:
      return "minimax";
    case GanObjective::non_saturating:
      return "ns";
    case GanObjective::least_squares:
      return "lsgan";
    case GanObjective::hinge:
      return "hinge";
    case GanObjective::wgan:
      return "wgan";
    case GanObjective::wgan_gp:
      return "wgan-gp";
  }
  return "?";
}

/// Parses minimax, ns (or non-saturating), lsgan, hinge, wgan, wgan-gp.
inline GanObjective parse_gan_objective(std::string_view name) {
  for (GanObjective o : {GanObjective::minimax, GanObjective::non_saturating, GanObjective::least_squares,
                         GanObjective::hinge, GanObjective::wgan, GanObjective::wgan_gp})
    if (name == to_string(o)) return o;
  if (name == "non-saturating") return GanObjective::non_saturating;
  throw ValueError("GAN objective: expected minimax, ns, lsgan, hinge, wgan or wgan-gp, got '" + std::string(name) +
                   "'");
}

/// The adversarial loss pair an objective trains with (WGAN and WGAN-GP share the Wasserstein one).
inline losses::AdversarialLoss adversarial_loss(GanObjective o) {
  switch (o) {
    case GanObjective::minimax:
      return losses::AdversarialLoss::minimax;
    case GanObjective::non_saturating:
      return losses::AdversarialLoss::non_saturating;
    case GanObjective::least_squares:
      return losses::AdversarialLoss::least_squares;
    case GanObjective::hinge:
      return losses::AdversarialLoss::hinge;
    case GanObjective::wgan:
    case GanObjective::wgan_gp:
      return losses::AdversarialLoss::wasserstein;
  }
  throw ValueError("adversarial_loss: unknown GanObjective value " + std::to_string(static_cast<int>(o)));
}

/// Options of GAN: `models::GAN gan(g, d, {.objective = GanObjective::wgan_gp, .n_critic = 5})`.
struct GANOptions {
  GanObjective objective = GanObjective::non_saturating;  ///< the game (see GanObjective)
  std::int64_t latent_dim = 64;                           ///< z ~ N(0, I) of this many dimensions
  /// Critic steps per generator step in train_step (WGAN's n_critic; 5 in the WGAN papers).
  int n_critic = 1;
  /// WGAN only: after each critic step every parameter of D is clamped to [-clip, clip].
  double clip = 0.01;
  /// WGAN-GP only: the options of losses::gradient_penalty (weight lambda = 10 by default).
  losses::GradientPenaltyOptions penalty = {};
  /// A critic with BatchNorm under a gradient penalty is refused: the penalty is per sample but
  /// BatchNorm makes each output depend on the whole batch, so the penalised gradient is not the
  /// critic's (Gulrajani et al. 2017 use LayerNorm or nothing). Set to true to allow it anyway.
  bool allow_batch_norm_critic = false;
  /// Seed of the model's noise generator (z, and the penalty's alpha).
  std::uint64_t noise_seed = 0;
};

/// What a step measured (NaN where the step did not compute it).
struct GanStepStats {
  double d_loss = std::numeric_limits<double>::quiet_NaN();         ///< discriminator loss (with the penalty)
  double g_loss = std::numeric_limits<double>::quiet_NaN();         ///< generator loss
  double d_real = std::numeric_limits<double>::quiet_NaN();         ///< mean D output on the real batch
  double d_fake = std::numeric_limits<double>::quiet_NaN();         ///< mean D output on the fakes
  double penalty = std::numeric_limits<double>::quiet_NaN();        ///< WGAN-GP: the penalty term
  double gradient_norm = std::numeric_limits<double>::quiet_NaN();  ///< WGAN-GP: mean ||grad_x D||
  bool generator_updated = false;                                   ///< this call made a generator step
};

namespace detail {

/// Checks GANOptions for the model named `op`: latent_dim > 0, n_critic >= 1, clip > 0 (WGAN),
/// penalty weight >= 0 (WGAN-GP).
inline void check_gan_options(std::string_view op, const GANOptions& o) {
  const std::string m(op);
  check_positive(op, "latent_dim", o.latent_dim);
  if (o.n_critic < 1) throw ValueError(m + ": expected n_critic >= 1, got " + std::to_string(o.n_critic));
  if (o.objective == GanObjective::wgan && !(o.clip > 0 && std::isfinite(o.clip)))
    throw ValueError(m + ": expected a clip value > 0 for WGAN (D's parameters are clamped to [-clip, clip]), got " +
                     std::to_string(o.clip));
  if (o.objective == GanObjective::wgan_gp && !(o.penalty.weight >= 0 && std::isfinite(o.penalty.weight)))
    throw ValueError(m + ": expected a gradient-penalty weight >= 0, got " + std::to_string(o.penalty.weight));
}

/// Dotted name of the first BatchNorm module inside `m` ("(the critic itself)" for m), or "".
template <class T>
std::string first_batch_norm(nn::Module<T>& m) {
  auto is_bn = [](nn::Module<T>& x) { return dynamic_cast<nn::BatchNormBase<T>*>(&x) != nullptr; };
  if (is_bn(m)) return "(the critic itself)";
  std::string found;
  nn::ModuleVisitor<T> v({}, {}, [&](const std::string& name, nn::Module<T>& sub) {
    if (found.empty() && is_bn(sub)) found = name.empty() ? "(the critic itself)" : name;
  });
  m.visit(v);
  return found;
}

/// Under WGAN-GP, refuses a critic holding a BatchNorm unless o.allow_batch_norm_critic.
template <class T>
void check_penalty_critic(std::string_view op, const GANOptions& o, nn::Module<T>& critic) {
  if (o.objective != GanObjective::wgan_gp || o.allow_batch_norm_critic) return;
  if (const std::string bn = first_batch_norm(critic); !bn.empty())
    throw ValueError(std::string(op) + ": the WGAN-GP critic holds a BatchNorm ('" + bn +
                     "'): the gradient penalty is per sample, but BatchNorm makes each output depend on the whole "
                     "batch, so the penalised gradient is not the critic's; use LayerNorm or no normalisation, or set "
                     "allow_batch_norm_critic = true to train it anyway");
}

/// Throws ShapeError unless the real batch is [N, ...] with N >= 1.
template <class T>
std::int64_t real_batch_size(std::string_view op, const Tensor<T>& real) {
  if (real.rank() < 2 || real.dim(0) < 1)
    throw ShapeError(std::string(op) + ": expected a real batch [N, ...] with N >= 1, got " + real.shape().to_string());
  return real.dim(0);
}

/// critic(fake), a ShapeError from it named as the generator/discriminator mismatch it is.
template <class Critic, class T>
Var<T> score_fakes(std::string_view op, Critic& critic, const Var<T>& fake) {
  try {
    return critic(fake);
  } catch (const ShapeError& e) {
    throw ShapeError(std::string(op) + ": the discriminator does not accept the generator's samples " +
                     fake.shape().to_string() + ": " + e.what());
  }
}

/// Mean of a Var's values, in double.
template <class T>
double mean_value(const Var<T>& v) {
  double s = 0;
  for (std::int64_t i = 0; i < v.numel(); ++i) s += static_cast<double>(v.value()[i]);
  return v.numel() ? s / static_cast<double>(v.numel()) : 0.0;
}

/// Backward of a GAN loss on `tape`: plain, or through `dp` (data-parallel training), whose
/// weighting needs this rank's and the global batch: `local` samples here, the global count from
/// the noise generator's sample window (set for the step by the Trainer or a
/// distributed::SampleWindowGuard, which also keys z and alpha by global sample). Several ranks
/// without a window for this batch is a ValueError: the noise would not be the one-process noise.
template <class T>
void gan_backward(Tape<T>& tape, const Var<T>& loss, distributed::DataParallel<T>* dp, const Generator& noise,
                  std::int64_t local) {
  if (!dp) {
    tape.backward(loss);
    return;
  }
  const SampleWindow& w = noise.sample_window();
  if (dp->size() > 1 && w.count != local)
    throw ValueError("GAN data-parallel step: expected the noise generator's sample window to describe this batch of " +
                     std::to_string(local) + " samples, got a window of " + std::to_string(w.count) +
                     " (use distributed::SampleWindowGuard(gan.noise(), batch), or the Trainer)");
  dp->backward(tape, loss, local, std::max(w.total, local));
}

/// Throws NumericError for a non-finite loss, naming the model and which loss.
inline void check_finite_gan_loss(std::string_view op, double v, const char* which) {
  if (!std::isfinite(v))
    throw NumericError(std::string(op) + ": non-finite " + which + " loss " + std::to_string(v) +
                       "; to find the op that produced it, run the step under a tape with set_check_finite(true)");
}

/// The critic update of GAN and ConditionalGAN on the current tape: `critic(x)` is D with anything
/// else it needs (the labels) bound, `d` its module (optimised by `d_opt`); `fake` is a constant
/// batch of real's shape. Loss of the objective, plus the penalty (WGAN-GP); clamping after the
/// step (WGAN).
template <class T, class Critic>
GanStepStats critic_update(std::string_view op, Critic&& critic, nn::Module<T>& d, const Tensor<T>& real,
                           const Tensor<T>& fake, const GANOptions& o, Generator& noise, optim::Optimizer<T>& d_opt,
                           distributed::DataParallel<T>* dp = nullptr) {
  Tape<T>* tape = Tape<T>::current();
  bool same = real.rank() == fake.rank();
  for (int a = 1; same && a < real.rank(); ++a) same = real.dim(a) == fake.dim(a);
  if (!same)
    throw ShapeError(std::string(op) + ": the generator makes samples " + fake.shape().to_string() +
                     " but the real batch is " + real.shape().to_string() + " (the shapes past N must agree)");
  GanStepStats s;
  const Var<T> d_real = critic(Var<T>(real));
  const Var<T> d_fake = score_fakes(op, critic, Var<T>(fake));
  Var<T> loss = losses::discriminator_loss(d_real, d_fake, adversarial_loss(o.objective));
  if (o.objective == GanObjective::wgan_gp) {
    // The penalty pairs real sample i with fake i: both batches have the same size here.
    const auto gp = losses::gradient_penalty_terms(critic, real, fake, noise, o.penalty);
    s.penalty = gp.penalty.item();
    double norm = 0;
    for (std::int64_t i = 0; i < gp.norms.numel(); ++i) norm += static_cast<double>(gp.norms[i]);
    s.gradient_norm = norm / static_cast<double>(gp.norms.numel());
    loss = loss + gp.penalty;
  }
  s.d_loss = loss.item();
  s.d_real = mean_value(d_real);
  s.d_fake = mean_value(d_fake);
  check_finite_gan_loss(op, s.d_loss, "discriminator");
  d_opt.zero_grad();
  gan_backward(*tape, loss, dp, noise, real.dim(0));
  d_opt.step();
  if (o.objective == GanObjective::wgan) {
    const T c = static_cast<T>(o.clip);
    for (auto& p : d.parameters())
      for (T& w : p.value()) w = std::min(std::max(w, -c), c);
  }
  return s;
}

/// Freezes a module's parameters for a scope, like nn::FreezeGuard, but keeps the parameter list
/// and the saved flags between uses: the generator step of every training step freezes D, and a
/// step should not allocate.
template <class T>
class ParameterFreezer {
 public:
  /// Lists `module`'s parameters once (they are shared handles: later updates are seen).
  explicit ParameterFreezer(nn::Module<T>& module) : params_(module.parameters()), saved_(params_.size()) {}
  /// Records each flag and freezes every parameter.
  void freeze() {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      saved_[i] = params_[i].requires_grad();
      params_[i].set_requires_grad(false);
    }
  }
  /// Restores the recorded flags.
  void restore() {
    for (std::size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(saved_[i] != 0);
  }
  /// freeze() now, restore() at the end of the scope.
  struct Scope {
    ParameterFreezer& f;  ///< the freezer to restore
    /// Freezes.
    explicit Scope(ParameterFreezer& fr) : f(fr) { f.freeze(); }
    /// Restores.
    ~Scope() { f.restore(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

 private:
  std::vector<Parameter<T>> params_;
  std::vector<char> saved_;
};

/// The generator update of GAN and ConditionalGAN through a frozen D (`d_frozen` holds D's
/// parameters), on the current tape where `fake` was recorded.
template <class T, class Critic>
GanStepStats generator_update(std::string_view op, Critic&& critic, ParameterFreezer<T>& d_frozen, const Var<T>& fake,
                              const GANOptions& o, optim::Optimizer<T>& g_opt, const Generator& noise,
                              distributed::DataParallel<T>* dp = nullptr) {
  Tape<T>* tape = Tape<T>::current();
  GanStepStats s;
  Var<T> loss;
  {
    // D's weights are constants: only the input gradient is computed.
    typename ParameterFreezer<T>::Scope frozen(d_frozen);
    loss = losses::generator_loss(score_fakes(op, critic, fake), adversarial_loss(o.objective));
  }
  s.g_loss = loss.item();
  check_finite_gan_loss(op, s.g_loss, "generator");
  g_opt.zero_grad();
  gan_backward(*tape, loss, dp, noise, fake.dim(0));
  g_opt.step();
  s.generator_updated = true;
  return s;
}

}  // namespace detail

/// Where an alternating game is in its n_critic rhythm: the buffer "critic_steps" (critic steps
/// since the last generator step), a module of its own so that a checkpoint holding the two
/// networks apart, each with its optimizer, can hold it too
/// (`trainer.add_model("schedule", gan.schedule())`): a resumed run keeps the rhythm.
template <class T>
struct GanSchedule : nn::Module<T> {
  Tensor<T> critic_steps = zeros<T>(Shape{1});  ///< critic steps since the last generator step
  /// Counts a critic step; true (and the count restarts) when it is the n_critic-th.
  bool generator_step_due(int n_critic) {
    critic_steps[0] += T(1);
    if (critic_steps[0] < T(n_critic)) return false;
    critic_steps[0] = T(0);
    return true;
  }
  /// Lists the one buffer.
  void visit(nn::ModuleVisitor<T>& v) override { v.buffer("critic_steps", critic_steps); }
};

/// A GAN over a generator layer G (z [N, latent] -> samples [N, ...]) and a discriminator layer D
/// (samples [N, ...] -> one raw output per sample, [N] or [N, 1]); see the file comment.
template <class G, class D>
requires nn::LayerType<G> && nn::LayerType<D> && std::same_as<typename G::value_type, typename D::value_type>
class GAN : public nn::Module<typename G::value_type> {
 public:
  using T = typename G::value_type;  ///< the scalar type

  /// The model over the two networks (held by value; copies of modules share parameters).
  GAN(G generator, D discriminator, GANOptions options = {})
      : g_(std::move(generator)), d_(std::move(discriminator)), opt_(options), noise_(options.noise_seed) {
    detail::check_gan_options("GAN", opt_);
    detail::check_penalty_critic<T>("GAN", opt_, d_);
  }

  /// The generator network.
  G& generator() noexcept { return g_; }
  /// The discriminator (critic) network.
  D& discriminator() noexcept { return d_; }
  /// The options the model was built with.
  const GANOptions& options() const noexcept { return opt_; }
  /// The generator of z and of the penalty's alpha (register it for exact resume).
  Generator& noise() noexcept { return noise_; }

  /// Trains data-parallel (docs/distributed.md): the critic's gradients through `discriminator`
  /// (a DataParallel over discriminator()), the generator's through `generator` (over
  /// generator()); nullptr: plain backward. The noise generator's sample window (set for each
  /// batch by the Trainer, or distributed::SampleWindowGuard) keys z and alpha by global sample.
  void set_data_parallel(distributed::DataParallel<T>* discriminator, distributed::DataParallel<T>* generator) {
    d_dp_ = discriminator;
    g_dp_ = generator;
  }

  /// z [n, latent_dim] ~ N(0, I) drawn from `gen`.
  Tensor<T> draw_latent(std::int64_t n, Generator& gen) const {
    check_positive("GAN::draw_latent", "n", n);
    Tensor<T> z(Shape{n, opt_.latent_dim});
    fill_normal(z, gen);
    return z;
  }

  /// G(z) for z [N, latent_dim], recorded when a tape is.
  Var<T> generate(const Var<T>& z) {
    if (z.rank() != 2 || z.dim(1) != opt_.latent_dim)
      throw ShapeError("GAN::generate: expected z [N, " + std::to_string(opt_.latent_dim) + "], got " +
                       z.shape().to_string());
    return g_(z);
  }

  /// n samples G(z), z ~ N(0, I) from `gen`, without recording, in the generator's current mode
  /// (call eval() first for BatchNorm's running statistics).
  Tensor<T> sample(std::int64_t n, Generator& gen) {
    NoGradGuard no_grad;
    return generate(Var<T>(draw_latent(n, gen))).value();
  }

  /// One critic update on `real` [N, ...] with the discriminator's optimizer `d_opt` (over D's
  /// parameters only), against N fresh fakes.
  GanStepStats discriminator_step(const Tensor<T>& real, optim::Optimizer<T>& d_opt) {
    Tape<T> tape;
    Tensor<T> fake;
    {
      NoGradGuard no_grad;  // G is not trained here: its forward pass records nothing
      fake = generate(Var<T>(draw_latent(batch_of(real), noise_))).value();
    }
    return critic_update(real, fake, d_opt);
  }

  /// One generator update on `batch` fresh fakes with the generator's optimizer `g_opt` (over G's
  /// parameters only); D is frozen for the step.
  GanStepStats generator_step(std::int64_t batch, optim::Optimizer<T>& g_opt) {
    check_positive("GAN::generator_step", "batch", batch);
    Tape<T> tape;
    const Var<T> fake = generate(Var<T>(draw_latent(batch, noise_)));
    return generator_update(fake, g_opt);
  }

  /// One training step of the alternating game on the real batch: a critic step, and a generator
  /// step (on as many fakes as real samples) when this is the n_critic-th critic step since the
  /// last one. With n_critic = 1 the fakes are generated once for both halves.
  GanStepStats train_step(const Tensor<T>& real, optim::Optimizer<T>& d_opt, optim::Optimizer<T>& g_opt) {
    const std::int64_t n = batch_of(real);
    if (opt_.n_critic == 1) {
      Tape<T> tape;
      const Var<T> fake = generate(Var<T>(draw_latent(n, noise_)));
      GanStepStats s = critic_update(real, fake.value(), d_opt);
      const GanStepStats gs = generator_update(fake, g_opt);
      s.g_loss = gs.g_loss;
      s.generator_updated = true;
      return s;
    }
    GanStepStats s = discriminator_step(real, d_opt);
    if (schedule_.generator_step_due(opt_.n_critic)) {
      const GanStepStats gs = generator_step(n, g_opt);
      s.g_loss = gs.g_loss;
      s.generator_updated = true;
    }
    return s;
  }

  /// The type of the n_critic rhythm's state.
  using Schedule = GanSchedule<T>;
  /// The n_critic rhythm's state (see GanSchedule).
  Schedule& schedule() noexcept { return schedule_; }

  /// Children "generator", "discriminator" and "schedule" (see GanSchedule).
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("generator", g_);
    v.child("discriminator", d_);
    v.child("schedule", schedule_);
  }

 private:
  static std::int64_t batch_of(const Tensor<T>& real) { return detail::real_batch_size("GAN", real); }

  GanStepStats critic_update(const Tensor<T>& real, const Tensor<T>& fake, optim::Optimizer<T>& d_opt) {
    return detail::critic_update<T>("GAN", d_, d_, real, fake, opt_, noise_, d_opt, d_dp_);
  }
  GanStepStats generator_update(const Var<T>& fake, optim::Optimizer<T>& g_opt) {
    return detail::generator_update<T>("GAN", d_, d_frozen_, fake, opt_, g_opt, noise_, g_dp_);
  }

  G g_;
  D d_;
  GANOptions opt_;
  Generator noise_;
  Schedule schedule_;
  detail::ParameterFreezer<T> d_frozen_{d_};
  distributed::DataParallel<T>* d_dp_ = nullptr;  // set_data_parallel
  distributed::DataParallel<T>* g_dp_ = nullptr;
};

}  // namespace genmod::models
