#pragma once
/// \file freeze.hpp
/// Freezing a whole module: its parameters become constants for the ops (no tape node, no
/// gradient) until unfrozen. A Parameter is a handle whose copies share the requires_grad flag, so
/// freezing works whenever it happens: before or after an optimizer was built over the module (its
/// step skips frozen parameters, whose state does not advance).
///
///   nn::freeze(discriminator);                 // until nn::unfreeze(discriminator)
///   { nn::FreezeGuard frozen(discriminator);   // the generator step: D is a constant
///     ... }                                    // each flag restored to what it was

#include <utility>
#include <vector>

#include "genmod/nn/module.hpp"

namespace genmod::nn {

/// Sets requires_grad on every parameter of `module` (and its descendants).
template <class T>
void set_requires_grad(Module<T>& module, bool on) {
  for (auto& p : module.parameters()) p.set_requires_grad(on);
}

/// Freezes every parameter of `module`: ops treat them as constants.
template <class T>
void freeze(Module<T>& module) {
  set_requires_grad(module, false);
}

/// Unfreezes every parameter of `module`.
template <class T>
void unfreeze(Module<T>& module) {
  set_requires_grad(module, true);
}

/// Freezes a module for a scope and restores each parameter's own flag when the scope ends (so a
/// parameter that was frozen before stays frozen).
template <class T = float>
class FreezeGuard {
 public:
  /// Records each parameter's flag, then freezes them all.
  explicit FreezeGuard(Module<T>& module) {
    for (auto& p : module.parameters()) {
      saved_.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  /// Restores the recorded flags.
  ~FreezeGuard() {
    for (auto& [p, on] : saved_) p.set_requires_grad(on);
  }
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  std::vector<std::pair<Parameter<T>, bool>> saved_;
};

/// Deduces T from the module.
template <class T>
FreezeGuard(Module<T>&) -> FreezeGuard<T>;

}  // namespace genmod::nn
