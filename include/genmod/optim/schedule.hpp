#pragma once
/// \file schedule.hpp
/// Learning-rate schedules: small value types mapping a step number t (0, 1, 2, ...) to a rate.
///
///   Constant(lr):                         lr(t) = lr
///   StepLR(base, step_size, gamma):       lr(t) = base * gamma^floor(t / step_size)
///   CosineAnnealing(base, t_max, eta_min): lr(t) = eta_min + (base - eta_min) * (1 + cos(pi t / t_max)) / 2
///                                         for t <= t_max, and eta_min after (PyTorch's closed form
///                                         would rise again; restarts are a separate schedule)
///   LinearWarmup(w, after):               lr(t) = after.lr(0) * (t + 1) / w   for t < w
///                                         lr(t) = after.lr(t - w)              for t >= w
///                                         (the wrapped schedule's clock starts after the warm-up;
///                                         the first step already uses a non-zero rate)
///   Hold(h, after):                       lr(t) = after.lr(0)                  for t < h
///                                         lr(t) = after.lr(t - h)              for t >= h
///                                         (a constant rate first, then e.g. an annealing tail)
///
/// A schedule is pure: it holds no optimizer and no counter. `apply(opt)` sets opt's rate for the
/// step it is about to take, lr(opt.step_count()); call it before each opt.step(). For a per-epoch
/// schedule pass the epoch: `apply(opt, epoch)`. After load_state, apply restores the rate too.

#include <cmath>
#include <concepts>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/optim/optimizer.hpp"

namespace genmod::optim {

/// A learning-rate schedule: anything with `double lr(std::int64_t step) const`.
template <class S>
concept Schedule = requires(const S& s, std::int64_t t) {
  { s.lr(t) } -> std::convertible_to<double>;
};

namespace detail {

/// Gives a schedule `apply(optimizer[, step])` (CRTP: Derived provides lr(step)).
template <class Derived>
class ScheduleBase {
 public:
  /// Sets the optimizer's rate for its next step: lr(optimizer.step_count()).
  template <class T>
  void apply(Optimizer<T>& optimizer) const {
    optimizer.set_lr(self().lr(optimizer.step_count()));
  }
  /// Sets the optimizer's rate to lr(step), for a counter of the caller's (e.g. the epoch).
  template <class T>
  void apply(Optimizer<T>& optimizer, std::int64_t step) const {
    optimizer.set_lr(self().lr(step));
  }

 private:
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

inline void check_step(const char* schedule, std::int64_t t) {
  check_non_negative(schedule, "step", t);
}

}  // namespace detail

/// A constant rate (what LinearWarmup settles to by default).
class Constant : public detail::ScheduleBase<Constant> {
 public:
  /// lr(t) = lr for every t; lr finite and >= 0.
  explicit Constant(double lr) : lr_(lr) {
    detail::require(lr >= 0 && std::isfinite(lr), "Constant", "lr", "finite and >= 0", lr);
  }
  /// The rate at step t (>= 0).
  double lr(std::int64_t t) const {
    detail::check_step("Constant", t);
    return lr_;
  }

 private:
  double lr_;
};

/// Multiplies the rate by gamma every step_size steps (torch.optim.lr_scheduler.StepLR).
class StepLR : public detail::ScheduleBase<StepLR> {
 public:
  /// lr(t) = base_lr * gamma^floor(t / step_size); base_lr > 0, step_size > 0, gamma > 0.
  StepLR(double base_lr, std::int64_t step_size, double gamma = 0.1)
      : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
    detail::require(base_lr > 0 && std::isfinite(base_lr), "StepLR", "base_lr", "finite and > 0", base_lr);
    detail::require(step_size > 0, "StepLR", "step_size", "> 0", static_cast<double>(step_size));
    detail::require(gamma > 0 && std::isfinite(gamma), "StepLR", "gamma", "finite and > 0", gamma);
  }
  /// The rate at step t (>= 0).
  double lr(std::int64_t t) const {
    detail::check_step("StepLR", t);
    return base_lr_ * std::pow(gamma_, static_cast<double>(t / step_size_));
  }

 private:
  double base_lr_;
  std::int64_t step_size_;
  double gamma_;
};

/// Half a cosine from base_lr down to eta_min over t_max steps (SGDR without restarts;
/// torch.optim.lr_scheduler.CosineAnnealingLR's closed form), then eta_min.
class CosineAnnealing : public detail::ScheduleBase<CosineAnnealing> {
 public:
  /// base_lr > 0, t_max > 0, 0 <= eta_min <= base_lr.
  CosineAnnealing(double base_lr, std::int64_t t_max, double eta_min = 0)
      : base_lr_(base_lr), t_max_(t_max), eta_min_(eta_min) {
    detail::require(base_lr > 0 && std::isfinite(base_lr), "CosineAnnealing", "base_lr", "finite and > 0", base_lr);
    detail::require(t_max > 0, "CosineAnnealing", "t_max", "> 0", static_cast<double>(t_max));
    detail::require(eta_min >= 0 && eta_min <= base_lr, "CosineAnnealing", "eta_min", "in [0, base_lr]", eta_min);
  }
  /// The rate at step t (>= 0): eta_min + (base_lr - eta_min) (1 + cos(pi t / t_max)) / 2.
  double lr(std::int64_t t) const {
    detail::check_step("CosineAnnealing", t);
    if (t >= t_max_) return eta_min_;
    const double c = std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(t_max_));
    return eta_min_ + (base_lr_ - eta_min_) * (1 + c) / 2;
  }

 private:
  double base_lr_;
  std::int64_t t_max_;
  double eta_min_;
};

/// A linear ramp from after.lr(0) / warmup_steps up to after.lr(0) over warmup_steps steps, then
/// the wrapped schedule (shifted so its step 0 is the first step after the warm-up).
///
///   LinearWarmup warm{500, 1e-3};                                  // then constant 1e-3
///   LinearWarmup warm{500, CosineAnnealing{1e-3, 9500, 1e-5}};    // then cosine
template <Schedule After = Constant>
class LinearWarmup : public detail::ScheduleBase<LinearWarmup<After>> {
 public:
  /// Warm up (warmup_steps >= 0; 0 means none) into `after`.
  LinearWarmup(std::int64_t warmup_steps, After after) : warmup_(warmup_steps), after_(std::move(after)) {
    detail::require(warmup_steps >= 0, "LinearWarmup", "warmup_steps", ">= 0", static_cast<double>(warmup_steps));
  }
  /// Warm up into a constant rate base_lr.
  LinearWarmup(std::int64_t warmup_steps, double base_lr)
    requires std::same_as<After, Constant>
      : LinearWarmup(warmup_steps, Constant(base_lr)) {}

  /// The rate at step t (>= 0).
  double lr(std::int64_t t) const {
    detail::check_step("LinearWarmup", t);
    if (t >= warmup_) return static_cast<double>(after_.lr(t - warmup_));
    return static_cast<double>(after_.lr(0)) * static_cast<double>(t + 1) / static_cast<double>(warmup_);
  }

  /// The schedule that follows the warm-up.
  const After& after() const noexcept { return after_; }

 private:
  std::int64_t warmup_;
  After after_;
};

/// The wrapped schedule's first rate held for hold_steps steps, then the wrapped schedule (shifted
/// so its step 0 is the first step after the hold): a constant rate that anneals only at the end.
///
///   Hold tail{22 * 469, CosineAnnealing{1e-3, 3 * 469}};  // 1e-3 for 22 epochs, then down to 0 in 3
template <Schedule After>
class Hold : public detail::ScheduleBase<Hold<After>> {
 public:
  /// Hold after.lr(0) for hold_steps >= 0 steps (0: `after` from the start), then `after`.
  Hold(std::int64_t hold_steps, After after) : hold_(hold_steps), after_(std::move(after)) {
    detail::require(hold_steps >= 0, "Hold", "hold_steps", ">= 0", static_cast<double>(hold_steps));
  }

  /// The rate at step t (>= 0).
  double lr(std::int64_t t) const {
    detail::check_step("Hold", t);
    return static_cast<double>(after_.lr(t < hold_ ? 0 : t - hold_));
  }

  /// The schedule that follows the hold.
  const After& after() const noexcept { return after_; }

 private:
  std::int64_t hold_;
  After after_;
};

}  // namespace genmod::optim
