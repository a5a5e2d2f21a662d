#pragma once
/// \file autoencoder.hpp
/// Autoencoder<Encoder, Decoder>: a network trained to reproduce its input through a code.
///
/// The encoder maps x [N, ...] to codes h [N, K]; the decoder maps h back to the data space. What
/// keeps it from learning the identity is the subject of the family:
///   - undercomplete: K smaller than the input (this class; with identity activations and squared
///     error it learns the PCA subspace, see tests/models/autoencoder_test.cpp);
///   - sparse: a penalty on the codes (SparseAutoencoder, sparse_autoencoder.hpp);
///   - denoising: a corrupted input, the clean target (DenoisingAutoencoder, denoising_autoencoder.hpp).
///
/// Reconstruction error of one sample, summed over its features (not averaged, so that it reads
/// as "squared error per image" or "nats per image" and does not depend on the image size):
///   squared_error:    sum_i (x_hat_i - x_i)^2,    the decoder outputs x_hat directly
///   bce_with_logits:  sum_i softplus(l_i) - x_i l_i, the decoder outputs logits l, x_hat = sigmoid(l)
/// loss(x) is its mean over the batch (plus the penalty, for the subclasses).

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "genmod/autodiff/autodiff.hpp"
#include "genmod/core/check.hpp"
#include "genmod/losses/reconstruction.hpp"
#include "genmod/nn/batched_eval.hpp"
#include "genmod/nn/module.hpp"

namespace genmod::models {

/// How an autoencoder compares its output with its target.
enum class Reconstruction {
  squared_error,    ///< sum of squared differences; the decoder outputs the data itself
  bce_with_logits,  ///< Bernoulli cross-entropy; the decoder outputs logits (for data in [0, 1])
};

/// Options of Autoencoder: the reconstruction error.
struct AutoencoderOptions {
  Reconstruction reconstruction = Reconstruction::squared_error;  ///< the training criterion
};

/// The loss of a batch and its terms.
/// The loss of a batch and its terms.
template <class T = float>
struct AutoencoderLoss {
  Var<T> loss;                              ///< reconstruction + weighted penalty: what to differentiate
  Var<T> reconstruction;                    ///< reconstruction error per sample, mean over the batch
  Var<T> penalty;                           ///< the weighted regularizer (0 for a plain autoencoder)
  /// The loss itself, so `Var loss = ae.loss(x)` reads as it should.
  operator Var<T>() const { return loss; }  // NOLINT: implicit on purpose
};

/// An autoencoder: encoder (x -> codes [N, K]) and decoder (codes -> x), trained on the reconstruction error.
template <class Encoder, class Decoder>
class Autoencoder : public nn::Module<typename Encoder::value_type> {
 public:
  /// The scalar type.
  using T = typename Encoder::value_type;
  static_assert(std::is_same_v<T, typename Decoder::value_type>,
                "Autoencoder: encoder and decoder must share a value type");

  /// An autoencoder from its two networks.
  Autoencoder(Encoder enc, Decoder dec, AutoencoderOptions options = {})
      : encoder(std::move(enc)), decoder(std::move(dec)), options_(options) {}

  /// Codes [N, K] of a batch.
  Var<T> encode(const Var<T>& x) { return encoder(x); }

  /// Data-space output for codes (the sigmoid of the logits for bce_with_logits).
  Var<T> decode(const Var<T>& h) { return to_data(decoder(h)); }

  /// decode(encode(x)).
  Var<T> reconstruct(const Var<T>& x) { return decode(encode(x)); }

  /// The reconstruction error of each sample, [N] (see the file comment).
  Var<T> reconstruction_error(const Var<T>& x) { return per_sample_error(decoder(encode(x)), x); }

  /// Mean reconstruction error over the batch; `penalty` is a zero scalar.
  virtual AutoencoderLoss<T> loss(const Var<T>& x) {
    Var<T> rec = mean(reconstruction_error(x));
    return {rec, rec, Var<T>(zeros<T>(Shape{}))};
  }

  /// The anomaly score of each row of x: its reconstruction error (higher = more unusual),
  /// computed without recording, `batch_size` rows at a time.
  Tensor<T> anomaly_score(const Tensor<T>& x, std::int64_t batch_size = 500) {
    return batched(x, batch_size, [this](const Var<T>& b) { return reconstruction_error(b); });
  }

  /// Codes of every row of x, [N, K], without recording.
  Tensor<T> encode_all(const Tensor<T>& x, std::int64_t batch_size = 500) {
    return batched(x, batch_size, [this](const Var<T>& b) { return encode(b); });
  }

  /// Reconstructions of every row of x, without recording.
  Tensor<T> reconstruct_all(const Tensor<T>& x, std::int64_t batch_size = 500) {
    return batched(x, batch_size, [this](const Var<T>& b) { return reconstruct(b); });
  }

  /// Data-space output for codes given as a plain tensor, without recording.
  Tensor<T> decode_all(const Tensor<T>& h, std::int64_t batch_size = 500) {
    return batched(h, batch_size, [this](const Var<T>& b) { return decode(b); });
  }

  /// Visits the encoder and the decoder ("encoder.*", "decoder.*").
  void visit(nn::ModuleVisitor<T>& v) override {
    v.child("encoder", encoder);
    v.child("decoder", decoder);
  }

  /// The reconstruction options.
  const AutoencoderOptions& options() const noexcept { return options_; }

  Encoder encoder;  ///< x -> codes [N, K]
  Decoder decoder;  ///< codes -> the decoder's raw output (logits for BCE)

 protected:
  /// The decoder's raw output mapped to data space (sigmoid of logits for BCE).
  Var<T> to_data(const Var<T>& out) const {
    return options_.reconstruction == Reconstruction::bce_with_logits ? sigmoid(out) : out;
  }

  /// Error per sample between the decoder's raw output (logits for BCE) and the target.
  Var<T> per_sample_error(const Var<T>& out, const Var<T>& target) const {
    check_same_shape("Autoencoder", "decoder output", out.shape(), "target", target.shape());
    return options_.reconstruction == Reconstruction::bce_with_logits
               ? losses::sum_per_sample(losses::bce_with_logits(out, target))
               : losses::sum_per_sample(losses::squared_error(out, target));
  }

  /// f applied to row blocks of x with recording off and the module in evaluation mode
  /// (nn::evaluate_in_batches).
  template <class F>
  Tensor<T> batched(const Tensor<T>& x, std::int64_t batch_size, F f) {
    return nn::evaluate_in_batches("Autoencoder", *this, x, batch_size, f);
  }

 private:
  AutoencoderOptions options_;
};

/// Deduction guide: Autoencoder{encoder, decoder}.
template <class E, class D>
Autoencoder(E, D) -> Autoencoder<E, D>;
/// Deduction guide: Autoencoder{encoder, decoder, options}.
template <class E, class D>
Autoencoder(E, D, AutoencoderOptions) -> Autoencoder<E, D>;

}  // namespace genmod::models
