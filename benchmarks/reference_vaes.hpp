#pragma once
// The two VAE workloads of ../shared/ref (common.py's MLPVAE and ConvVAE) as genmod modules, with
// the losses they share, written like the reference: bench_models times their training steps
// against PyTorch, bench_distributed the same steps data-parallel. One definition, so both
// benchmarks time the same model (same layers, losses and initialization order).

#include <cstdint>

#include "genmod/genmod.hpp"

namespace genmod::bench {

// Sum over everything of BCE-with-logits against targets x: softplus(l) - x l
// (= max(l, 0) - x l + log(1 + e^-|l|), the stable form PyTorch uses).
inline Var<float> bce_logits_sum(const Var<float>& logits, const Var<float>& x) {
  return sum(softplus(logits) - x * logits);
}

// Sum over the batch of the Gaussian KL to N(0, I): -0.5 sum(1 + lv - mu^2 - e^lv).
inline Var<float> gaussian_kl_sum(const Var<float>& mu, const Var<float>& lv) {
  return sum(1.0f + lv - square(mu) - exp(lv)) * -0.5f;
}

// z = mu + eps * exp(0.5 lv), eps ~ N(0, I) from a genmod Generator (drawn per sample: a
// SampleWindow on g applies in data-parallel runs).
inline Var<float> reparameterize(const Var<float>& mu, const Var<float>& lv, Generator& g) {
  Tensor<float> eps(mu.shape());
  fill_normal(eps, g);
  return mu + Var<float>(eps) * exp(lv * 0.5f);
}

/// The mlp_vae workload: 784 -> 512 -> 256 -> (mu, log-variance) [32] -> 256 -> 512 -> 784 logits.
class MlpVae : public nn::Module<float> {
 public:
  nn::Linear<float> e1{784, 512}, e2{512, 256}, mu{256, 32}, lv{256, 32}, d1{32, 256}, d2{256, 512}, d3{512, 784};

  /// Lists the seven layers under their member names.
  void visit(nn::ModuleVisitor<float>& v) override {
    v.child("e1", e1), v.child("e2", e2), v.child("mu", mu), v.child("lv", lv);
    v.child("d1", d1), v.child("d2", d2), v.child("d3", d3);
  }

  /// The input shape of a batch of b images.
  static Shape input_shape(std::int64_t b) { return Shape{b, 784}; }

  /// Negative ELBO (Bernoulli likelihood) averaged over the batch, x [B, 784] in [0, 1].
  Var<float> loss(const Var<float>& x, Generator& noise) {
    Var<float> h = relu(e2(relu(e1(x))));
    Var<float> m = mu(h), l = lv(h);
    Var<float> z = reparameterize(m, l, noise);
    Var<float> logits = d3(relu(d2(relu(d1(z)))));
    return (bce_logits_sum(logits, x) + gaussian_kl_sum(m, l)) * (1.0f / static_cast<float>(x.dim(0)));
  }
};

/// The conv_vae workload: two stride-2 convs to [64, 7, 7], linear heads to a 32-d latent, a
/// linear layer back to [64, 7, 7] and two stride-2 transposed convs to [1, 28, 28] logits.
class ConvVae : public nn::Module<float> {
 public:
  nn::Conv2d<float> c1{1, 32, 4, {.stride = 2, .padding = 1}}, c2{32, 64, 4, {.stride = 2, .padding = 1}};
  nn::Linear<float> mu{3136, 32}, lv{3136, 32}, d0{32, 3136};
  nn::ConvTranspose2d<float> t1{64, 32, 4, {.stride = 2, .padding = 1}}, t2{32, 1, 4, {.stride = 2, .padding = 1}};

  /// Lists the seven layers under their member names.
  void visit(nn::ModuleVisitor<float>& v) override {
    v.child("c1", c1), v.child("c2", c2), v.child("mu", mu), v.child("lv", lv), v.child("d0", d0);
    v.child("t1", t1), v.child("t2", t2);
  }

  /// The input shape of a batch of b images.
  static Shape input_shape(std::int64_t b) { return Shape{b, 1, 28, 28}; }

  /// Negative ELBO (Bernoulli likelihood) averaged over the batch, x [B, 1, 28, 28] in [0, 1].
  Var<float> loss(const Var<float>& x, Generator& noise) {
    const std::int64_t b = x.dim(0);
    Var<float> h = flatten(relu(c2(relu(c1(x)))), 1);
    Var<float> m = mu(h), l = lv(h);
    Var<float> z = reparameterize(m, l, noise);
    Var<float> g = reshape(relu(d0(z)), Shape{b, 64, 7, 7});
    Var<float> logits = t2(relu(t1(g)));
    return (bce_logits_sum(logits, x) + gaussian_kl_sum(m, l)) * (1.0f / static_cast<float>(b));
  }
};

}  // namespace genmod::bench
