#pragma once
/// \file sparse_autoencoder.hpp
/// SparseAutoencoder<Encoder, Decoder>: an autoencoder whose codes are pushed towards zero, so that
/// each input is explained by a few active units even when the code is wide (overcomplete).
///
///   loss(x) = mean_n reconstruction_error(x_n) + weight * penalty(h),  h = encoder(x)  [N, K]
///   penalty, l1:          mean_n sum_j |h_nj|                                    (any activation)
///   penalty, bernoulli_kl: sum_j KL(rho || rho_hat_j),  rho_hat_j = mean_n h_nj  (sigmoid units)
///                          = sum_j rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))
/// The KL form wants the encoder to end in a Sigmoid, so that h_nj is a firing probability; it asks
/// each unit to fire on a fraction rho of the inputs (Ng's lecture notes on sparse autoencoders).

#include <cstdint>
#include <string>
#include <utility>

#include "genmod/core/check.hpp"
#include "genmod/losses/sparsity.hpp"
#include "genmod/models/autoencoder.hpp"

namespace genmod::models {

/// Which penalty SparseAutoencoder puts on its codes.
enum class SparsityPenalty {
  l1,            ///< weight * mean_n sum_j |h_nj|
  bernoulli_kl,  ///< weight * sum_j KL(rho || mean_n h_nj), for codes in (0, 1)
};

/// Options of SparseAutoencoder: the penalty, its weight and target activation.
struct SparseAutoencoderOptions {
  Reconstruction reconstruction = Reconstruction::squared_error;  ///< the reconstruction criterion
  SparsityPenalty penalty = SparsityPenalty::bernoulli_kl;        ///< the regularizer on the codes
  double weight = 1.0;                                            ///< lambda (l1) or beta (bernoulli_kl), >= 0
  double rho = 0.05;  ///< target mean activation of each unit (bernoulli_kl), in (0, 1)
};

/// An autoencoder whose loss adds a sparsity penalty on the codes (L1 or Bernoulli-KL).
template <class Encoder, class Decoder>
class SparseAutoencoder : public Autoencoder<Encoder, Decoder> {
  using Base = Autoencoder<Encoder, Decoder>;

 public:
  /// The scalar type.
  using T = typename Base::T;

  /// A sparse autoencoder; throws ValueError for a negative weight or rho outside (0, 1).
  SparseAutoencoder(Encoder enc, Decoder dec, SparseAutoencoderOptions options = {})
      : Base(std::move(enc), std::move(dec), {.reconstruction = options.reconstruction}), sparse_(options) {
    check_non_negative("SparseAutoencoder", "weight", options.weight);
    if (options.penalty == SparsityPenalty::bernoulli_kl)
      check_in_range("SparseAutoencoder", "rho", options.rho, 0.0, 1.0, Bounds::open);
  }

  /// Reconstruction plus the weighted sparsity penalty on the codes.
  AutoencoderLoss<T> loss(const Var<T>& x) override {
    Var<T> h = this->encode(x);
    Var<T> rec = mean(this->per_sample_error(this->decoder(h), x));
    Var<T> pen = scale(penalty(h), static_cast<T>(sparse_.weight));
    return {add(rec, pen), rec, pen};
  }

  /// The unweighted penalty of codes h.
  Var<T> penalty(const Var<T>& h) const {
    return sparse_.penalty == SparsityPenalty::l1 ? losses::l1_activation_penalty(h)
                                                  : losses::kl_sparsity_penalty(h, sparse_.rho);
  }

  /// The penalty's options.
  const SparseAutoencoderOptions& sparsity_options() const noexcept { return sparse_; }

 private:
  SparseAutoencoderOptions sparse_;
};

/// Deduction guide: SparseAutoencoder{encoder, decoder}.
template <class E, class D>
SparseAutoencoder(E, D) -> SparseAutoencoder<E, D>;
/// Deduction guide: SparseAutoencoder{encoder, decoder, options}.
template <class E, class D>
SparseAutoencoder(E, D, SparseAutoencoderOptions) -> SparseAutoencoder<E, D>;

}  // namespace genmod::models
