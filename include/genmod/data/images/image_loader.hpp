#pragma once
/// \file image_loader.hpp
/// ImageLoader: mini-batches of float images in [0, 1] for training, made batch by batch so that a
/// large image set never sits in memory as floats (CelebA at 64 x 64 is 2.5 GB as uint8, 10 GB as
/// float).
///
/// ```cpp
/// data::ImageFolder celeba("img_align_celeba");
/// data::ImageTransform t{.crop_height = 148, .crop_width = 148, .height = 64, .width = 64};
/// auto attrs = data::attributes_for(data::read_attribute_table("list_attr_celeba.txt"), celeba.file_names());
/// data::ImageLoader loader(data::load_images_cached(celeba, t, "celeba64.npy"), attrs, {},
///                          {.loader = {.batch_size = 128, .shuffle = true}, .flip_probability = 0.5f});
/// for (auto& batch : loader) step(batch.x, batch.c);  // x [128, 3, 64, 64], c [128, 40]
/// ```
///
/// Two sources: a decoded uint8 tensor [N, C, H, W] (from load_images_cached), or the files
/// themselves, decoded and transformed per batch in parallel workers (no cache, no memory beyond
/// one batch). Both give the same batches for the same options.
///
/// Order and sharding are data::Loader's, not a copy of them: an ImageLoader drives a Loader over
/// the sample indices (a Dataset whose labels are 0..N-1), so the same seed and epoch give the same
/// permutation, the same rank/world_size slices, drop_last and tail rule, and the same batch index
/// and SampleWindow as a Loader over the same number of samples.
///
/// Random horizontal flips (augmentation) are decided per sample by a Philox draw keyed by
/// (seed, epoch, sample index): sample i of epoch e is flipped when word 0 of block i of stream
/// kFlipStream + e, divided by 2^32, is below flip_probability. The decision does not depend on the
/// batch size, the rank, the thread count or the source.
///
/// Steady state (tensor source) allocates nothing: x, c and y are gathered into the previous
/// batch's tensors unless the caller still holds them, as data::Loader does.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/random.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/dataset.hpp"
#include "genmod/data/images/image_file.hpp"
#include "genmod/data/images/image_folder.hpp"
#include "genmod/data/images/image_ops.hpp"
#include "genmod/data/loader.hpp"

namespace genmod::data {

/// One mini-batch of images: data::Batch with x [B, C, H, W] in [0, 1] (x / 255), c the rows of
/// the conditions and y the labels (each undefined when there are none), so that train::Trainer
/// takes an ImageLoader where it takes a Loader.
using ImageBatch = Batch;

/// Options for ImageLoader.
struct ImageLoaderOptions {
  LoaderOptions loader = {};     ///< batch size, shuffling, seed, drop_last, rank and world_size
  float flip_probability = 0.f;  ///< chance of a horizontal flip per sample, in [0, 1]
};

/// Mini-batches of float images over a decoded uint8 tensor or an ImageFolder. One iteration at a
/// time: `begin()` starts a new epoch, as data::Loader. A data::BatchLoader: train::Trainer::fit
/// takes it.
class ImageLoader {
 public:
  /// Philox stream of epoch 0's flip draws ("flip" in ASCII, shifted up); epoch e uses this + e,
  /// far from the small stream numbers the shuffle uses (stream = epoch).
  static constexpr std::uint64_t kFlipStream = std::uint64_t{0x666c6970} << 32;

  /// Input iterator over the batches of one epoch; compare with `end()` (a sentinel).
  class Iterator {
   public:
    /// What dereferencing gives: the current ImageBatch.
    using value_type = ImageBatch;
    /// Required by std::input_iterator; iterators are not subtracted.
    using difference_type = std::ptrdiff_t;

    Iterator() = default;
    /// The current batch (owned by the loader; valid until the next increment).
    ImageBatch& operator*() const noexcept { return owner_->batch_; }
    /// Member access to the current batch (`it->x`).
    ImageBatch* operator->() const noexcept { return &owner_->batch_; }
    /// Produces the next batch.
    Iterator& operator++() {
      ++it_;
      if (!(it_ == std::default_sentinel)) owner_->assemble(*it_);
      return *this;
    }
    /// Post-increment, as input iterators allow: advances, returns nothing.
    void operator++(int) { ++*this; }
    /// True once every batch of the epoch has been produced.
    friend bool operator==(const Iterator& i, std::default_sentinel_t) noexcept {
      return !i.owner_ || i.it_ == std::default_sentinel;
    }

   private:
    friend class ImageLoader;
    Iterator(ImageLoader* owner, Loader::Iterator it) : owner_(owner), it_(it) {}
    ImageLoader* owner_ = nullptr;
    Loader::Iterator it_;
  };

  /// Batches of `images` [N, C, H, W] with the rows of `conditions` [N, ...] and `labels` [N]
  /// (either may be undefined).
  explicit ImageLoader(Tensor<std::uint8_t> images, Tensor<float> conditions = {}, Tensor<std::int64_t> labels = {},
                       ImageLoaderOptions options = {})
      : images_(std::move(images)),
        conditions_(std::move(conditions)),
        labels_(std::move(labels)),
        options_(options),
        loader_(index_loader("ImageLoader", images_.rank() >= 1 ? images_.dim(0) : 0, options)) {
    check_rank("ImageLoader", "images", images_.shape(), 4, "[N, C, H, W]");
    sample_shape_ = Shape{images_.dim(1), images_.dim(2), images_.dim(3)};
    check_companions();
  }

  /// Batches of the images of `folder`, each decoded and transformed when its batch is made, with
  /// the rows of `conditions` [N, ...] (optional) and the folder's labels when it has them. Decodes
  /// the first image now, to learn the images' shape (every image must have it).
  ImageLoader(ImageFolder folder, ImageTransform transform, Tensor<float> conditions = {},
              ImageLoaderOptions options = {})
      : folder_(std::make_shared<const ImageFolder>(std::move(folder))),
        transform_(transform),
        conditions_(std::move(conditions)),
        labels_(folder_->labels()),
        options_(options),
        loader_(index_loader("ImageLoader", folder_->size(), options)) {
    check_transform(transform_);
    sample_shape_ = detail::load_transformed(folder_->path(0), transform_).shape();
    check_companions();
  }

  /// Starts the next epoch (reshuffled when asked) and returns an iterator at its first batch.
  Iterator begin() {
    Loader::Iterator it = loader_.begin();
    if (!(it == std::default_sentinel)) assemble(*it);
    return Iterator(this, it);
  }
  /// The end-of-epoch sentinel.
  std::default_sentinel_t end() const noexcept { return {}; }

  /// The next batch of an endless stream over the epochs (data::Loader::next's semantics). The
  /// reference is valid until the next call.
  ImageBatch& next() {
    assemble(loader_.next());
    return batch_;
  }

  /// Batches per epoch (global batches when sharded: every rank takes the same number).
  std::int64_t batches_per_epoch() const noexcept { return loader_.num_batches(); }
  /// Batches per epoch (same as batches_per_epoch(); data::Loader's name).
  std::int64_t num_batches() const noexcept { return loader_.num_batches(); }
  /// Batches per epoch (same as batches_per_epoch()).
  std::int64_t size() const noexcept { return loader_.num_batches(); }
  /// Images per global batch: batch_size * world_size.
  std::int64_t global_batch_size() const noexcept { return loader_.global_batch_size(); }
  /// This rank (LoaderOptions::rank).
  int rank() const noexcept { return loader_.rank(); }
  /// Ranks sharing each epoch (LoaderOptions::world_size).
  int world_size() const noexcept { return loader_.world_size(); }
  /// Number of images in the whole set (every rank).
  std::int64_t num_images() const noexcept { return loader_.dataset().size(); }
  /// Shape [C, H, W] of every image.
  const Shape& image_shape() const noexcept { return sample_shape_; }
  /// Number of epochs started so far; the next begin() uses this epoch's order.
  std::int64_t epoch() const noexcept { return loader_.epoch(); }
  /// Makes the next begin() produce epoch e's order and flips (to resume a run).
  void set_epoch(std::int64_t e) { loader_.set_epoch(e); }
  /// Image indices of the current epoch, in batch order (data::Loader::order).
  const std::vector<std::int64_t>& order() const noexcept { return loader_.order(); }
  /// The options given at construction.
  const ImageLoaderOptions& options() const noexcept { return options_; }

  /// True when sample `index` is flipped in epoch `epoch` (see the file comment).
  bool flipped(std::int64_t epoch, std::int64_t index) const noexcept {
    const float p = options_.flip_probability;
    if (p <= 0.f) return false;
    if (p >= 1.f) return true;
    const Generator g(options_.loader.seed, kFlipStream + static_cast<std::uint64_t>(epoch));
    const std::uint32_t w = g.block(static_cast<std::uint64_t>(index))[0];
    return static_cast<double>(w) * 0x1p-32 < static_cast<double>(p);
  }

 private:
  // A Loader over the indices 0..n-1 (as labels; the samples are a placeholder of one float each),
  // so that order, sharding and windows are exactly data::Loader's.
  static Loader index_loader(std::string_view op, std::int64_t n, const ImageLoaderOptions& options) {
    check_in_range(op, "flip_probability", options.flip_probability, 0.f, 1.f);
    Tensor<std::int64_t> ids(Shape{n});
    for (std::int64_t i = 0; i < n; ++i) ids[i] = i;
    return Loader(Dataset(zeros<float>(Shape{n}), ids), options.loader);
  }

  void check_companions() const {
    const std::int64_t n = num_images();
    if (conditions_.defined() && (conditions_.rank() < 1 || conditions_.dim(0) != n))
      throw ShapeError("ImageLoader: expected conditions with one row per image ([" + std::to_string(n) +
                       ", ...]), got " + genmod::detail::shape_with_rank(conditions_.shape()));
    if (labels_.defined() && (labels_.rank() != 1 || labels_.dim(0) != n))
      throw ShapeError("ImageLoader: expected labels [" + std::to_string(n) + "], got " +
                       genmod::detail::shape_with_rank(labels_.shape()));
  }

  // dst[c, h, w] = src[c, h, w'] * (1 / 255) with w' = w, or W - 1 - w when flipped: the same
  // float as data::scale_pixels gives for the pixel, so cached and in-memory pixels agree bit for bit.
  static void to_float(const std::uint8_t* src, float* dst, const Shape& chw, bool flip) noexcept {
    const std::int64_t rows = chw[0] * chw[1], w = chw[2];
    for (std::int64_t r = 0; r < rows; ++r, src += w, dst += w) {
      if (flip)
        for (std::int64_t j = 0; j < w; ++j) dst[j] = static_cast<float>(src[w - 1 - j]) * (1.f / 255.f);
      else
        for (std::int64_t j = 0; j < w; ++j) dst[j] = static_cast<float>(src[j]) * (1.f / 255.f);
    }
  }

  // A tensor of shape s in `t`, reusing its buffer unless the shape changed or a caller holds it.
  template <class T>
  static void ensure(Tensor<T>& t, const Shape& s) {
    if (!t.defined() || !(t.shape() == s) || !t.is_unique()) t = Tensor<T>(s);
  }

  // Fills batch_ from the index batch the Loader made.
  void assemble(const Batch& b) {
    const std::int64_t n = b.size();
    const std::int64_t* idx = b.y.data();
    const std::int64_t epoch = loader_.epoch() - 1;  // the Loader counted the epoch as started
    const Shape& s = sample_shape_;
    const std::int64_t row = s.numel();
    ensure(batch_.x, Shape{n, s[0], s[1], s[2]});
    float* x = batch_.x.data();
    if (!folder_) {
      const std::uint8_t* src = images_.data();
      parallel_for(n, row, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) to_float(src + idx[i] * row, x + i * row, s, flipped(epoch, idx[i]));
      });
    } else {
      detail::FirstError error;
      // Decoding one image costs far more than kParallelGrain elements of arithmetic: always split.
      parallel_for(n, kParallelGrain, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) {
          try {
            const Tensor<std::uint8_t> img = detail::load_transformed(folder_->path(idx[i]), transform_);
            if (!(img.shape() == s))
              throw detail::image_shape_error("ImageLoader", folder_->files()[static_cast<std::size_t>(idx[i])],
                                              img.shape(), folder_->files()[0], s);
            to_float(img.data(), x + i * row, s, flipped(epoch, idx[i]));
          } catch (...) {
            error.capture(i);
          }
        }
      });
      error.rethrow();
    }
    if (conditions_.defined()) {
      const std::int64_t crow = conditions_.numel() / std::max<std::int64_t>(num_images(), 1);
      ensure(batch_.c, conditions_.shape().with_dim(0, n));
      const float* src = conditions_.data();
      float* dst = batch_.c.data();
      for (std::int64_t i = 0; i < n; ++i)
        std::memcpy(dst + i * crow, src + idx[i] * crow, static_cast<std::size_t>(crow) * sizeof(float));
    }
    if (labels_.defined()) {
      ensure(batch_.y, Shape{n});
      for (std::int64_t i = 0; i < n; ++i) batch_.y[i] = labels_[idx[i]];
    }
    batch_.index = b.index;
    batch_.window = b.window;
  }

  std::shared_ptr<const ImageFolder> folder_;  // the file source (null for the tensor source)
  ImageTransform transform_ = {};
  Tensor<std::uint8_t> images_;  // the tensor source
  Tensor<float> conditions_;
  Tensor<std::int64_t> labels_;
  ImageLoaderOptions options_;
  Loader loader_;
  Shape sample_shape_;
  ImageBatch batch_;
};

static_assert(BatchLoader<ImageLoader>);

}  // namespace genmod::data
