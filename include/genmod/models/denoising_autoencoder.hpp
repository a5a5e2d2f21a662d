#pragma once
/// \file denoising_autoencoder.hpp
/// DenoisingAutoencoder<Encoder, Decoder>: trained to recover the clean x from a corrupted copy
/// (Vincent et al. 2008), which forbids the identity even with a wide code and makes the network
/// learn what clean images look like.
///
///   loss(x) = mean_n reconstruction_error(decoder(encoder(c(x_n))), x_n),  c = the corruption
/// The corruption policy is chosen at run time (data::CorruptionOptions): Gaussian noise of
/// standard deviation sigma (not clipped), masking (each value zeroed with probability p), or
/// salt and pepper (each value set to 0 or 1 with probability p). Its noise comes from the model's
/// own generator, or from one passed to loss(x, g).

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "genmod/core/random.hpp"
#include "genmod/data/transforms.hpp"
#include "genmod/models/autoencoder.hpp"

namespace genmod::models {

/// Options of DenoisingAutoencoder: the corruption and its strength.
struct DenoisingAutoencoderOptions {
  Reconstruction reconstruction = Reconstruction::squared_error;  ///< the reconstruction criterion
  data::CorruptionOptions corruption = {};                        ///< what training does to the inputs
  std::uint64_t seed = 0;  ///< of the model's own generator (the corruption noise)
};

/// An autoencoder trained to reconstruct clean inputs from corrupted ones.
template <class Encoder, class Decoder>
class DenoisingAutoencoder : public Autoencoder<Encoder, Decoder> {
  using Base = Autoencoder<Encoder, Decoder>;

 public:
  /// The scalar type.
  using T = typename Base::T;
  static_assert(std::is_same_v<T, float>, "DenoisingAutoencoder: the corruptions of data/transforms.hpp are float");

  /// A denoising autoencoder; throws ValueError for a corruption level out of range.
  DenoisingAutoencoder(Encoder enc, Decoder dec, DenoisingAutoencoderOptions options = {})
      : Base(std::move(enc), std::move(dec), {.reconstruction = options.reconstruction}),
        rng(options.seed, 0x646165ULL),
        denoising_(options) {
    const float level = options.corruption.level;
    if (!(level >= 0.f) || (options.corruption.kind != data::Corruption::gaussian && level > 1.f))
      throw ValueError(
          "DenoisingAutoencoder: the corruption level must be a sigma >= 0 or a probability in [0, 1], got " +
          std::to_string(level));
  }

  /// A corrupted copy of x under the model's policy.
  Tensor<T> corrupt(const Tensor<T>& x, Generator& g) const { return data::corrupt(x, denoising_.corruption, g); }

  /// Reconstruction error of the clean x from its corrupted copy, mean over the batch.
  AutoencoderLoss<T> loss(const Var<T>& x, Generator& g) {
    Var<T> rec = mean(this->per_sample_error(this->decoder(this->encode(Var<T>(corrupt(x.value(), g)))), x));
    return {rec, rec, Var<T>(zeros<T>(Shape{}))};
  }
  /// As loss(x, g), with the model's own generator.
  AutoencoderLoss<T> loss(const Var<T>& x) override { return loss(x, rng); }

  /// The model's estimate of the clean images behind noisy ones (reconstruct_all under its
  /// denoising name).
  Tensor<T> denoise(const Tensor<T>& noisy, std::int64_t batch_size = 500) {
    return this->reconstruct_all(noisy, batch_size);
  }

  /// The corruption options.
  const DenoisingAutoencoderOptions& denoising_options() const noexcept { return denoising_; }

  Generator rng;  ///< noise of loss(x); save its state to resume exactly

 private:
  DenoisingAutoencoderOptions denoising_;
};

/// Deduction guide: DenoisingAutoencoder{encoder, decoder}.
template <class E, class D>
DenoisingAutoencoder(E, D) -> DenoisingAutoencoder<E, D>;
/// Deduction guide: DenoisingAutoencoder{encoder, decoder, options}.
template <class E, class D>
DenoisingAutoencoder(E, D, DenoisingAutoencoderOptions) -> DenoisingAutoencoder<E, D>;

}  // namespace genmod::models
