#pragma once
/// \file grad_mode.hpp
/// Whether differentiable ops record onto the tape: on by default, off inside a NoGradGuard
/// (inference, optimizer updates, a frozen network in a GAN step).

namespace genmod {

namespace detail {
inline bool& grad_mode_flag() noexcept {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

/// True when ops on this thread record onto the current tape.
inline bool grad_enabled() noexcept { return detail::grad_mode_flag(); }

/// Sets recording on or off for its lifetime, restoring the previous mode after.
class GradModeGuard {
 public:
  /// Records (enabled) or not until the guard is destroyed; guards nest.
  explicit GradModeGuard(bool enabled) noexcept : previous_(detail::grad_mode_flag()) {
    detail::grad_mode_flag() = enabled;
  }
  ~GradModeGuard() { detail::grad_mode_flag() = previous_; }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

/// Turns recording off for its lifetime: ops compute values only and record no node.
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() noexcept : GradModeGuard(false) {}
};

}  // namespace genmod
