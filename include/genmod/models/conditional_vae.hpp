#pragma once
/// \file conditional_vae.hpp
/// ConditionalVAE: a VAE whose encoder sees [x, c] and whose decoder sees [z, c], for a condition
/// c [N, C] (a one-hot class, an attribute vector). Sampling with a chosen c generates that class;
/// attribute arithmetic moves a code along the difference of two groups' mean codes.
///
/// The prior p(z | c). Kingma et al.'s M2 model and most tutorials use N(0, I) for every c and
/// rely on the decoder to read the class from c. The encoder still puts class information in z
/// whenever it helps the reconstruction (sleeve length separates a T-shirt from a pullover, the
/// same feature that varies within either class), so a code drawn from N(0, I) can land where
/// another class's posteriors live and overrule the requested class. A learned conditional prior
/// (Sohn et al. 2015's prior network, here linear in c)
///
///     p(z | c) = N(A c + a, diag exp(B c + b)),   KL(q(z | x, c) || p(z | c)) in the bound,
///
/// lets each class keep its own region of z: with a one-hot c every class gets its own mean and
/// variance, and a prior sample for class c is a code typical of class c. A, a, B, b start at zero
/// (the standard prior) and are trained with the rest. ConditionalPrior::condition_dim turns it on.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/models/vae.hpp"
#include "genmod/nn/layers/linear.hpp"

namespace genmod::models {

/// The prior p(z | c) of a ConditionalVAE (see the file comment).
struct ConditionalPrior {
  /// 0: N(0, I) for every condition; C > 0: learned, N(A c + a, diag exp(B c + b)) for conditions
  /// c [N, C] (needs VAEOptions::latent_dim).
  std::int64_t condition_dim = 0;
};

/// A VAE conditioned on c (see the file comment). It has no one-input `forward`: every call takes
/// the condition (`loss(x, c)`, `encode(x, c)`, `decode(z, c)`, `sample(condition)`).
template <class Encoder, class Decoder, class Likelihood = dist::Bernoulli>
class ConditionalVAE : public nn::Module<typename Encoder::value_type> {
 public:
  /// The scalar type.
  using T = typename Encoder::value_type;
  static_assert(nn::LayerType<Encoder> && nn::LayerType<Decoder>,
                "ConditionalVAE: the encoder and the decoder must be nn::Layer types (Var<T> forward(const Var<T>&))");
  static_assert(std::is_same_v<T, typename Decoder::value_type>,
                "ConditionalVAE: encoder and decoder must share a value type");
  static_assert(dist::Likelihood<Likelihood, T>,
                "ConditionalVAE: the likelihood must satisfy dist::Likelihood<L, T>: log_prob(params, x) -> Var<T> "
                "[N], mean(params) -> Var<T>, sample(params, g) -> Tensor<T>");

  /// The encoder takes [N, D + C] (flattened x and c), the decoder [N, Z + C]; `prior` chooses
  /// p(z | c). Throws ValueError for a negative beta, a negative prior.condition_dim, or a learned
  /// prior without options.latent_dim.
  ConditionalVAE(Encoder enc, Decoder dec, Likelihood lik = {}, VAEOptions options = {}, ConditionalPrior prior = {})
      : encoder(std::move(enc)),
        decoder(std::move(dec)),
        likelihood(lik),
        rng(options.seed, 0x63766165ULL),
        options_(options) {
    check_non_negative("ConditionalVAE", "beta", options.beta);
    check_non_negative("ConditionalVAE", "prior.condition_dim", prior.condition_dim);
    latent_ = options.latent_dim;
    if (prior.condition_dim > 0) {
      if (latent_ <= 0)
        throw ValueError("ConditionalVAE: a learned prior (condition_dim " + std::to_string(prior.condition_dim) +
                         ") needs VAEOptions::latent_dim > 0, got " + std::to_string(latent_));
      // Zero weights and biases: training starts from the standard prior. The draws of the
      // initialisation they replace come from a scratch generator, not the user's default one.
      Generator scratch(0);
      nn::Linear<T> net(prior.condition_dim, 2 * latent_, {.generator = &scratch});
      net.weight.value().fill(T(0));
      net.bias.value().fill(T(0));
      prior_net_.emplace(std::move(net));
    }
  }

  /// True when p(z | c) is learned (ConditionalPrior::condition_dim > 0).
  bool learned_prior() const noexcept { return prior_net_.has_value(); }

  /// p(z | c) for conditions c [N, C]: N(0, I) [N, Z], or the learned Gaussian.
  dist::Normal<T> prior(const Var<T>& c) {
    check_rank("ConditionalVAE", "condition", c.shape(), 2, "[N, C]");
    if (latent_ == 0) throw ValueError("ConditionalVAE::prior: set VAEOptions::latent_dim or encode data first");
    if (!prior_net_) return dist::Normal<T>::standard(Shape{c.dim(0), latent_});
    const Var<T> h = (*prior_net_)(c);
    return dist::Normal<T>(slice(h, 1, 0, latent_), slice(h, 1, latent_, latent_));
  }

  /// Codes under p(z | c) for standard-normal `noise` [N, Z]: mean + sigma * noise (the noise
  /// itself for the standard prior). The same noise under different conditions gives codes in the
  /// same relative position of each condition's prior.
  Tensor<T> prior_codes(const Tensor<T>& noise, const Tensor<T>& condition) {
    NoGradGuard no_grad;
    check_dim("ConditionalVAE::prior_codes", "noise", noise.shape(), 1, latent_, "Z, the latent size");
    check_condition(noise.dim(0), Var<T>(condition));
    if (!prior_net_) return noise.clone();
    const dist::Normal<T> p = prior(Var<T>(condition));
    return add(p.mean(), mul(p.stddev(), Var<T>(noise))).value();
  }

  /// q(z | x, c) = N(mu, e^logvar), from the encoder's output on [flatten(x), c].
  dist::Normal<T> posterior(const Var<T>& x, const Var<T>& c) {
    check_condition(x.dim(0), c);
    Var<T> h = encoder(concat({flatten(x, 1), c}, 1));
    if (h.rank() != 2 || h.dim(1) % 2 != 0)
      throw ShapeError("ConditionalVAE: the encoder must output [N, 2 * latent_dim], got " + h.shape().to_string());
    const std::int64_t z = h.dim(1) / 2;
    if (latent_ == 0) latent_ = z;
    if (z != latent_) throw ShapeError("ConditionalVAE: the encoder's latent size changed");
    return dist::Normal<T>(slice(h, 1, 0, z), slice(h, 1, z, z));
  }
  /// (mu, logvar) of q(z | x, c).
  std::pair<Var<T>, Var<T>> encode(const Var<T>& x, const Var<T>& c) {
    auto q = posterior(x, c);
    return {q.mean(), q.logvar()};
  }
  /// The likelihood's parameters for codes z [N, Z] under conditions c [N, C].
  Var<T> decode(const Var<T>& z, const Var<T>& c) {
    check_condition(z.dim(0), c);
    return decoder(concat({z, c}, 1));
  }

  /// The ELBO's per-sample terms given the conditions, one reparameterized z per image.
  ElboTerms<T> elbo(const Var<T>& x, const Var<T>& c, Generator& g) {
    auto q = posterior(x, c);
    Var<T> decoded = reshape(decode(q.rsample(g), c), x.shape());
    if (!prior_net_) return elbo_terms(q, likelihood, decoded, x, options_.beta);
    return elbo_terms(q, prior(c), likelihood, decoded, x, options_.beta);
  }

  /// Negative ELBO of the batch given the conditions, and its terms (as VAE::loss).
  VAELoss<T> loss(const Var<T>& x, const Var<T>& c, Generator& g) { return elbo(x, c, g).loss(); }
  /// As loss(x, c, g), with the model's own generator.
  VAELoss<T> loss(const Var<T>& x, const Var<T>& c) { return loss(x, c, rng); }

  /// Per-sample negative ELBO given the conditions, [N].
  Var<T> negative_elbo(const Var<T>& x, const Var<T>& c, Generator& g) { return elbo(x, c, g).negative_elbo(); }

  /// One sample per row of `condition` [n, C]: z = mean + sigma * temperature * eps under p(z | c)
  /// (z ~ N(0, temperature^2 I) for the standard prior), decoded given c.
  Tensor<T> sample(const Tensor<T>& condition, double temperature = 1.0) { return sample(condition, temperature, rng); }
  /// As sample(condition), with noise from `g`.
  Tensor<T> sample(const Tensor<T>& condition, Generator& g) { return sample(condition, 1.0, g); }
  /// As sample(condition, temperature), with noise from `g`.
  Tensor<T> sample(const Tensor<T>& condition, double temperature, Generator& g) {
    if (latent_ == 0) throw ValueError("ConditionalVAE::sample: set VAEOptions::latent_dim or encode data first");
    NoGradGuard no_grad;
    Tensor<T> z = randn<T>(Shape{condition.dim(0), latent_}, g);
    for (auto& v : z) v *= static_cast<T>(temperature);
    return likelihood.mean(decode(Var<T>(prior_codes(z, condition)), Var<T>(condition))).value();
  }

  /// Decodes codes z [N, Z] under conditions [N, C] to the expected x.
  Tensor<T> generate(const Tensor<T>& z, const Tensor<T>& condition) {
    NoGradGuard no_grad;
    return likelihood.mean(decode(Var<T>(z), Var<T>(condition))).value();
  }

  /// Visits the encoder, the decoder and a learned prior ("encoder.*", "decoder.*", "prior.*").
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("encoder", encoder);
    v.child("decoder", decoder);
    if (prior_net_) v.child("prior", *prior_net_);
  }
  /// The latent size Z (0 until known).
  std::int64_t latent_dim() const noexcept { return latent_; }

  Encoder encoder;        ///< [flatten(x), c] -> [N, 2Z]
  Decoder decoder;        ///< [z, c] -> the likelihood's parameters
  Likelihood likelihood;  ///< p(x | decoder output)
  Generator rng;          ///< noise of loss() and sample()

 private:
  void check_condition(std::int64_t n, const Var<T>& c) const {
    check_rank("ConditionalVAE", "condition", c.shape(), 2, "[N, C]");
    check_dim("ConditionalVAE", "condition", c.shape(), 0, n, "N, the batch size");
  }
  VAEOptions options_;
  std::int64_t latent_ = 0;
  std::optional<nn::Linear<T>> prior_net_;  // c -> [mean, logvar] of p(z | c); empty: N(0, I)
};

/// Deduction guides: ConditionalVAE{encoder, decoder, likelihood[, options]}.
template <class E, class D, class L>
ConditionalVAE(E, D, L) -> ConditionalVAE<E, D, L>;
/// Deduction guide: ConditionalVAE{encoder, decoder, likelihood, options}.
template <class E, class D, class L>
ConditionalVAE(E, D, L, VAEOptions) -> ConditionalVAE<E, D, L>;
/// Deduction guide: ConditionalVAE{encoder, decoder, likelihood, options, prior}.
template <class E, class D, class L>
ConditionalVAE(E, D, L, VAEOptions, ConditionalPrior) -> ConditionalVAE<E, D, L>;

/// The direction from the mean code of `without` to the mean code of `with` ([N, Z] each): adding
/// it to a code adds the attribute ("add a smile"; here: turn one class into another).
template <class T>
Tensor<T> attribute_vector(const Tensor<T>& codes_with, const Tensor<T>& codes_without) {
  if (codes_with.rank() != 2 || codes_without.rank() != 2 || codes_with.dim(1) != codes_without.dim(1) ||
      codes_with.dim(0) == 0 || codes_without.dim(0) == 0)
    throw ShapeError("attribute_vector: expected two non-empty [N, Z] code sets with the same Z, got " +
                     codes_with.shape().to_string() + " and " + codes_without.shape().to_string());
  const std::int64_t z = codes_with.dim(1);
  Tensor<T> v = zeros<T>(Shape{z});
  for (std::int64_t i = 0; i < codes_with.dim(0); ++i)
    for (std::int64_t j = 0; j < z; ++j) v[j] += codes_with(i, j) / static_cast<T>(codes_with.dim(0));
  for (std::int64_t i = 0; i < codes_without.dim(0); ++i)
    for (std::int64_t j = 0; j < z; ++j) v[j] -= codes_without(i, j) / static_cast<T>(codes_without.dim(0));
  return v;
}

/// codes + alpha * direction, for each row of codes [N, Z].
template <class T>
Tensor<T> apply_attribute(const Tensor<T>& codes, const Tensor<T>& direction, double alpha = 1.0) {
  if (codes.rank() != 2 || !(direction.shape() == Shape{codes.dim(1)}))
    throw ShapeError("apply_attribute: codes " + codes.shape().to_string() + " and direction " +
                     direction.shape().to_string() + " do not fit");
  Tensor<T> out = codes.clone();
  for (std::int64_t i = 0; i < codes.dim(0); ++i)
    for (std::int64_t j = 0; j < codes.dim(1); ++j) out(i, j) += static_cast<T>(alpha) * direction[j];
  return out;
}

/// A copy of conditions [N, C] with column `column` set to `value` in every row: the decoder's
/// condition with one attribute switched on (1) or off (0). ValueError for a column outside [0, C).
template <class T>
Tensor<T> with_condition_column(const Tensor<T>& condition, std::int64_t column, T value) {
  check_rank("with_condition_column", "condition", condition.shape(), 2, "[N, C]");
  if (column < 0 || column >= condition.dim(1))
    throw ValueError("with_condition_column: expected a column in [0, " + std::to_string(condition.dim(1)) + "), got " +
                     std::to_string(column));
  Tensor<T> out = condition.clone();
  for (std::int64_t i = 0; i < out.dim(0); ++i) out(i, column) = value;
  return out;
}

/// Posterior means E[z | x, c] of images x [N, ...] (N >= 1) under their conditions c [N, C],
/// encoded `batch_size` rows at a time without recording, in evaluation mode.
template <class Model, class T>
Tensor<T> posterior_means(Model& model, const Tensor<T>& x, const Tensor<T>& c, std::int64_t batch_size = 256) {
  check_positive("posterior_means", "batch_size", batch_size);
  if (!x.defined() || x.rank() < 2 || x.dim(0) < 1)
    throw ShapeError("posterior_means: expected images [N, ...] with N >= 1, got " +
                     (x.defined() ? x.shape().to_string() : std::string("an undefined tensor")));
  check_rank("posterior_means", "condition", c.shape(), 2, "[N, C]");
  check_dim("posterior_means", "condition", c.shape(), 0, x.dim(0), "N, the number of images");
  NoGradGuard no_grad;
  nn::EvalModeGuard eval_mode(model);  // batch norm's running statistics, no dropout
  const std::int64_t n = x.dim(0);
  Tensor<T> codes;
  for (std::int64_t s = 0; s < n; s += batch_size) {
    const std::int64_t b = std::min(batch_size, n - s);
    const Tensor<T> mu = model.encode(Var<T>(x.rows(s, b)), Var<T>(c.rows(s, b))).first.value();
    if (!codes.defined()) codes = Tensor<T>(Shape{n, mu.dim(1)});
    std::copy(mu.data(), mu.data() + mu.numel(), codes.data() + s * mu.dim(1));
  }
  return codes;
}

/// The code-space direction of the attribute in condition column `column`: the mean posterior
/// code of the images whose condition has it (c[i, column] > 0.5) minus the mean code of those
/// without it (attribute_vector of the two groups). ValueError when either group is empty.
template <class Model, class T>
Tensor<T> attribute_direction(Model& model, const Tensor<T>& x, const Tensor<T>& c, std::int64_t column,
                              std::int64_t batch_size = 256) {
  check_rank("attribute_direction", "condition", c.shape(), 2, "[N, C]");
  if (column < 0 || column >= c.dim(1))
    throw ValueError("attribute_direction: expected a column in [0, " + std::to_string(c.dim(1)) + "), got " +
                     std::to_string(column));
  const Tensor<T> codes = posterior_means(model, x, c, batch_size);
  const std::int64_t n = codes.dim(0), z = codes.dim(1);
  std::int64_t with = 0;
  for (std::int64_t i = 0; i < n; ++i) with += c(i, column) > T(0.5) ? 1 : 0;
  if (with == 0 || with == n)
    throw ValueError("attribute_direction: column " + std::to_string(column) + " is " + (with == 0 ? "off" : "on") +
                     " in all " + std::to_string(n) + " images; the direction needs images with and without it");
  Tensor<T> on(Shape{with, z}), off(Shape{n - with, z});
  for (std::int64_t i = 0, a = 0, b = 0; i < n; ++i) {
    T* dst = c(i, column) > T(0.5) ? on.data() + (a++) * z : off.data() + (b++) * z;
    std::copy(codes.data() + i * z, codes.data() + (i + 1) * z, dst);
  }
  return attribute_vector(on, off);
}

/// "Add attribute X" to images: each image's posterior mean code under its own condition, moved
/// by strength * direction, decoded with condition column `column` set to 1 (the decoder's
/// condition switched with the code). Returns the decoded images, in the model's output layout.
template <class Model, class T>
Tensor<T> add_attribute(Model& model, const Tensor<T>& x, const Tensor<T>& c, std::int64_t column,
                        const Tensor<T>& direction, double strength = 1.0) {
  const Tensor<T> moved = apply_attribute(posterior_means(model, x, c), direction, strength);
  return model.generate(moved, with_condition_column(c, column, T(1)));
}

}  // namespace genmod::models
