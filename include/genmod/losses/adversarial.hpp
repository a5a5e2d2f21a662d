#pragma once
/// \file adversarial.hpp
/// The GAN objectives on the discriminator's raw outputs (logits for the probabilistic games,
/// critic values for the Wasserstein one), each as a discriminator loss and a generator loss,
/// means over the batch. With r = D(x_real), f = D(G(z)) and sigma the logistic function:
///
///   kind            discriminator minimises                generator minimises
///   minimax         -log sigma(r) - log(1 - sigma(f))      log(1 - sigma(f))     (Goodfellow 2014)
///   non_saturating  as minimax                             -log sigma(f)
///   least_squares   ((r - 1)^2 + f^2) / 2                  (f - 1)^2 / 2         (Mao 2017, a=0 b=c=1)
///   hinge           max(0, 1 - r) + max(0, 1 + f)          -f                    (Lim & Ye 2017)
///   wasserstein     f - r                                  -f                    (Arjovsky 2017)
///
/// The probabilistic forms are written with softplus, never with log(sigmoid(.)): -log sigma(r)
/// = softplus(-r) and -log(1 - sigma(f)) = softplus(f) stay finite for any logit, and both are
/// bce_with_logits against a constant target (1 for real, 0 for fake), one pass, no target tensor.
/// The minimax generator loss saturates: when D rejects the fakes (f very negative) its gradient
/// -sigma(f) vanishes, which is why the non-saturating loss exists (seed 000's "vanishing
/// gradients"). The Wasserstein losses need a Lipschitz critic: weight clipping (WGAN) or the
/// gradient penalty below (WGAN-GP).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "genmod/autodiff/ops/activation.hpp"
#include "genmod/autodiff/ops/arithmetic.hpp"
#include "genmod/autodiff/ops/reduce.hpp"
#include "genmod/autodiff/ops/shape.hpp"
#include "genmod/autodiff/ops/unary.hpp"
#include "genmod/autodiff/tape.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/losses/reconstruction.hpp"

namespace genmod::losses {

/// Which adversarial game the two losses play (see the table in the file comment).
enum class AdversarialLoss { minimax, non_saturating, least_squares, hinge, wasserstein };

/// The loss's name as the examples spell it: "minimax", "ns", "lsgan", "hinge", "wgan".
inline std::string_view to_string(AdversarialLoss kind) {
  switch (kind) {
    case AdversarialLoss::minimax:
      return "minimax";
    case AdversarialLoss::non_saturating:
      return "ns";
    case AdversarialLoss::least_squares:
      return "lsgan";
    case AdversarialLoss::hinge:
      return "hinge";
    case AdversarialLoss::wasserstein:
      return "wgan";
  }
  return "?";
}

namespace detail {
/// Discriminator outputs must be one value per sample: [N] or [N, 1].
template <class T>
Var<T> per_sample_outputs(const Var<T>& d, const char* op, const char* what) {
  if (d.rank() == 1 && d.dim(0) > 0) return d;
  if (d.rank() == 2 && d.dim(1) == 1 && d.dim(0) > 0) return reshape(d, Shape{d.dim(0)});
  throw ShapeError(std::string(op) + ": expected " + what + " of one value per sample, [N] or [N, 1], got " +
                   d.shape().to_string());
}
}  // namespace detail

/// The discriminator's (critic's) loss for outputs on real samples `real` and on generated ones
/// `fake` ([N] or [N, 1] each; the two batches may differ in size), a mean over each batch.
template <class T>
Var<T> discriminator_loss(const Var<T>& real, const Var<T>& fake, AdversarialLoss kind) {
  const Var<T> r = detail::per_sample_outputs(real, "discriminator_loss", "real outputs");
  const Var<T> f = detail::per_sample_outputs(fake, "discriminator_loss", "fake outputs");
  switch (kind) {
    case AdversarialLoss::minimax:
    case AdversarialLoss::non_saturating:
      return mean(bce_with_logits(r, T(1))) + mean(bce_with_logits(f, T(0)));
    case AdversarialLoss::least_squares:
      return T(0.5) * (mean(square(r - T(1))) + mean(square(f)));
    case AdversarialLoss::hinge:
      return mean(relu(T(1) - r)) + mean(relu(f + T(1)));
    case AdversarialLoss::wasserstein:
      return mean(f) - mean(r);
  }
  throw ValueError("discriminator_loss: unknown AdversarialLoss value " + std::to_string(static_cast<int>(kind)));
}

/// The generator's loss for the discriminator's outputs on generated samples ([N] or [N, 1]).
template <class T>
Var<T> generator_loss(const Var<T>& fake, AdversarialLoss kind) {
  const Var<T> f = detail::per_sample_outputs(fake, "generator_loss", "fake outputs");
  switch (kind) {
    case AdversarialLoss::minimax:
      return -mean(bce_with_logits(f, T(0)));  // log(1 - sigma(f))
    case AdversarialLoss::non_saturating:
      return mean(bce_with_logits(f, T(1)));
    case AdversarialLoss::least_squares:
      return T(0.5) * mean(square(f - T(1)));
    case AdversarialLoss::hinge:
    case AdversarialLoss::wasserstein:
      return -mean(f);
  }
  throw ValueError("generator_loss: unknown AdversarialLoss value " + std::to_string(static_cast<int>(kind)));
}

/// Options of the WGAN-GP gradient penalty.
struct GradientPenaltyOptions {
  /// lambda in lambda * mean_i (||grad_x D(x_hat_i)|| - target)^2 (Gulrajani et al. use 10).
  double weight = 10.0;
  /// The norm the penalty pulls the critic's input gradient to (1 for a 1-Lipschitz critic).
  double target_norm = 1.0;
  /// Added under the square root, ||g|| = sqrt(sum g^2 + eps): the derivative of the norm at a
  /// zero gradient is then 0 instead of 0/0.
  double eps = 1e-12;
};

/// The penalty and what it measured, for logging.
template <class T>
struct GradientPenaltyResult {
  Var<T> penalty;   ///< weight * mean_i (||g_i|| - target)^2, a scalar on the tape
  Tensor<T> norms;  ///< ||g_i|| per sample [N] (values only)
};

/// x_hat_i = alpha_i real_i + (1 - alpha_i) fake_i, one alpha per sample (broadcast over all of a
/// sample's elements), real and fake of the same shape [N, ...], alpha [N].
template <class T>
Tensor<T> interpolate_samples(const Tensor<T>& real, const Tensor<T>& fake, const Tensor<T>& alpha) {
  check_same_shape("interpolate_samples", "real", real.shape(), "fake", fake.shape());
  if (real.rank() < 1 || alpha.rank() != 1 || alpha.dim(0) != real.dim(0))
    throw ShapeError("interpolate_samples: expected alpha [" + std::to_string(real.rank() ? real.dim(0) : 0) +
                     "] (one per sample of " + real.shape().to_string() + "), got " + alpha.shape().to_string());
  Tensor<T> out(real.shape());
  const std::int64_t n = real.dim(0), per = n ? real.numel() / n : 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T a = alpha[i];
    const T* r = real.data() + i * per;
    const T* f = fake.data() + i * per;
    T* o = out.data() + i * per;
    for (std::int64_t j = 0; j < per; ++j) o[j] = a * r[j] + (T(1) - a) * f[j];
  }
  return out;
}

/// The WGAN-GP penalty (Gulrajani et al. 2017) of `critic` (any callable Var -> Var with one
/// output per sample) between `real` and `fake` batches of the same shape [N, ...]:
///   alpha_i ~ U[0, 1) per sample (N draws from `gen`, in sample order),
///   x_hat = alpha real + (1 - alpha) fake,   g_i = d sum_j D(x_hat)_j / d x_hat_i,
///   penalty = weight * mean_i (||g_i||_2 - target)^2,
/// the norm over all of a sample's elements (for images [C, H, W] together, not per channel or
/// pixel), on the critic's raw output. The input gradient is recorded (create_graph), so the
/// penalty's gradient reaches the critic's parameters through a second backward pass. `fake`
/// enters as a constant: in the critic's step the generator is not trained. Uses the thread's
/// current tape (without one, the value is computed on a private tape and nothing is recorded).
template <class T, class Critic>
GradientPenaltyResult<T> gradient_penalty_terms(Critic&& critic, const Tensor<T>& real, const Tensor<T>& fake,
                                                Generator& gen, const GradientPenaltyOptions& options = {}) {
  check_same_shape("gradient_penalty", "real", real.shape(), "fake", fake.shape());
  if (real.rank() < 2 || real.dim(0) < 1)
    throw ShapeError("gradient_penalty: expected batches [N, ...] with N >= 1 and at least one feature, got " +
                     real.shape().to_string());
  check_finite("gradient_penalty", "weight", options.weight);
  if (options.weight < 0)
    throw ValueError("gradient_penalty: expected weight >= 0, got " + std::to_string(options.weight));
  if (!(options.eps >= 0)) throw ValueError("gradient_penalty: expected eps >= 0, got " + std::to_string(options.eps));
  const std::int64_t n = real.dim(0);
  Tensor<T> alpha(Shape{n});
  fill_uniform(alpha, gen);
  std::optional<Tape<T>> own;  // no tape: compute on a private one (no gradient wanted)
  Tape<T>* tape = Tape<T>::current();
  if (!tape) tape = &own.emplace();
  const Var<T> x_hat = tape->leaf(interpolate_samples(real, fake, alpha));
  const Var<T> d = detail::per_sample_outputs(critic(x_hat), "gradient_penalty", "critic outputs");
  const Var<T> g = tape->grad(sum(d), {x_hat}, {.create_graph = true})[0];
  const Var<T> norms = sqrt(add_scalar(sum(square(reshape(g, Shape{n, g.numel() / n})), 1), T(options.eps)));
  const Var<T> penalty = T(options.weight) * mean(square(add_scalar(norms, T(-options.target_norm))));
  return {penalty, norms.value()};
}

/// The penalty alone (see gradient_penalty_terms): add it to the critic's loss.
template <class T, class Critic>
Var<T> gradient_penalty(Critic&& critic, const Tensor<T>& real, const Tensor<T>& fake, Generator& gen,
                        const GradientPenaltyOptions& options = {}) {
  return gradient_penalty_terms(std::forward<Critic>(critic), real, fake, gen, options).penalty;
}

}  // namespace genmod::losses
