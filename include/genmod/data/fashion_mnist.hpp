#pragma once
/// \file fashion_mnist.hpp
/// Fashion-MNIST (Xiao et al. 2017): 60000 training and 10000 test 28x28 grey images of clothes
/// in 10 classes, read from the IDX files of the Debian package `dataset-fashion-mnist`.
///
/// Directory, first found wins: the `dir` argument; the environment variable GENMOD_DATA_DIR;
/// /usr/share/datasets/fashion-mnist. In it, each file may be gzip'd (`*-ubyte.gz`, as shipped)
/// or plain (`*-ubyte`).
///
/// Any data set in the same format loads (28x28 images, labels 0..9 under the same file names:
/// MNIST's digits, for one), so load() does not assume what it read is Fashion-MNIST: it records
/// the files it read and recognizes Fashion-MNIST by a fingerprint of its labels (FNV-1a of the
/// label bytes, one value per split). Only then does it set the class names; for anything else
/// `class_names` stays empty and class_label() gives the bare index.

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/dataset.hpp"
#include "genmod/data/idx.hpp"
#include "genmod/data/transforms.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

/// Which part of a dataset.
enum class Split { train, test };

/// How image datasets lay out their samples as float tensors.
enum class ImageLayout {
  nchw,  ///< [N, 1, 28, 28]: for convolutional models
  flat,  ///< [N, 784]: for fully connected models
};

/// The Fashion-MNIST images and labels of one split.
struct FashionMNIST {
  /// Image side in pixels.
  static constexpr std::int64_t kSide = 28;
  /// Number of classes.
  static constexpr std::int64_t kClasses = 10;
  /// The package that installs the files, named in error messages.
  static constexpr std::string_view kDebianPackage = "dataset-fashion-mnist";
  /// Default directory of the files.
  static constexpr std::string_view kDefaultDir = "/usr/share/datasets/fashion-mnist";

  /// FNV-1a (64 bits) of Fashion-MNIST's 60000 training labels, one byte each, in file order.
  static constexpr std::uint64_t kTrainLabelsFingerprint = 0xb9f71c71bae5f277ULL;
  /// FNV-1a (64 bits) of Fashion-MNIST's 10000 test labels.
  static constexpr std::uint64_t kTestLabelsFingerprint = 0x25bdf8123f06fac3ULL;

  Tensor<std::uint8_t> images = {};           ///< [N, 28, 28], 0 (background) to 255
  Tensor<std::int64_t> labels = {};           ///< [N], class indices 0..9 (see class_label)
  Split split = Split::train;                 ///< which split these are
  std::string images_path = {};               ///< the image file read (empty when built in memory)
  std::string labels_path = {};               ///< the label file read (empty when built in memory)
  std::vector<std::string> class_names = {};  ///< Fashion-MNIST's ten names when recognized, else empty

  /// Loads one split. Throws IOError naming the path tried and the Debian package when a file is
  /// missing, or naming the file and the problem when it is corrupt.
  static FashionMNIST load(Split split, std::string dir = "");

  /// FNV-1a (64 bits) of the label bytes in order: what load() compares with the fingerprints of
  /// Fashion-MNIST's label files to recognize them (MNIST's digits, say, give other values).
  static std::uint64_t labels_fingerprint(const Tensor<std::uint8_t>& labels) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV offset basis
    for (std::int64_t i = 0; i < labels.numel(); ++i) {
      h ^= labels[i];
      h *= 0x100000001b3ULL;  // FNV prime
    }
    return h;
  }

  /// True when load() recognized the labels as Fashion-MNIST's (and set class_names).
  bool is_fashion_mnist() const noexcept { return !class_names.empty(); }

  /// What was loaded, for a program's log: "Fashion-MNIST train split (60000 images from DIR)", or
  /// "IDX data set, not Fashion-MNIST, test split (10000 images from DIR)" for other files.
  std::string description() const;

  /// Class c for a log or a file: "5 (Sandal)" when the names are known, else "5".
  std::string class_label(std::int64_t c) const {
    if (c < 0 || c >= kClasses)
      throw ValueError("FashionMNIST::class_label: class " + std::to_string(c) + " is outside [0, 10)");
    std::string s = std::to_string(c);
    if (static_cast<std::size_t>(c) < class_names.size()) s += " (" + class_names[static_cast<std::size_t>(c)] + ")";
    return s;
  }

  /// Number of images.
  std::int64_t size() const noexcept { return images.defined() ? images.dim(0) : 0; }

  /// Images as floats in [0, 1] (or [-1, 1]), shaped [N, 1, 28, 28] or [N, 784].
  Tensor<float> float_images(ImageLayout layout = ImageLayout::nchw, PixelRange range = PixelRange::unit) const {
    const Tensor<float> x = scale_pixels(images, range);
    return layout == ImageLayout::nchw ? x.reshape({size(), 1, kSide, kSide}) : x.reshape({size(), kSide * kSide});
  }

  /// A Dataset of float images (see float_images) with the labels.
  Dataset to_dataset(ImageLayout layout = ImageLayout::nchw, PixelRange range = PixelRange::unit) const {
    return Dataset(float_images(layout, range), labels);
  }

  /// Implicit conversion to a [N, 1, 28, 28] Dataset in [0, 1], so `Loader{train, ...}` reads as
  /// it should. It converts the pixels on every call (about 50 ms for the training split): keep
  /// a Dataset (`auto ds = train.to_dataset();`) when building many loaders.
  operator Dataset() const { return to_dataset(); }  // NOLINT: implicit on purpose

  /// Name of Fashion-MNIST's class c ("T-shirt/top", ..., "Ankle boot"), whatever was loaded:
  /// use the `class_names` of a loaded set to name its labels.
  static std::string_view class_name(std::int64_t c) {
    static constexpr std::array<std::string_view, kClasses> names = {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    if (c < 0 || c >= kClasses)
      throw ValueError("FashionMNIST::class_name: class " + std::to_string(c) + " is outside [0, 10)");
    return names[static_cast<std::size_t>(c)];
  }

  /// The directory load() reads from: `dir` if non-empty, else $GENMOD_DATA_DIR, else the default.
  static std::string resolve_dir(std::string dir) {
    if (!dir.empty()) return dir;
    if (const char* env = std::getenv("GENMOD_DATA_DIR"); env && *env) return env;
    return std::string(kDefaultDir);
  }

 private:
  // The .gz file as shipped, else an uncompressed copy; the error names both paths tried.
  static std::string find_file(const std::string& dir, const std::string& stem, Split split, const char* what);
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// FashionMNIST's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE FashionMNIST FashionMNIST::load(Split split, std::string dir) {
  dir = resolve_dir(std::move(dir));
  const std::string prefix = split == Split::train ? "train" : "t10k";
  FashionMNIST out;
  out.split = split;
  const std::string image_path = find_file(dir, prefix + "-images-idx3-ubyte", split, "images");
  const std::string label_path = find_file(dir, prefix + "-labels-idx1-ubyte", split, "labels");
  out.images = read_idx(image_path);
  const Tensor<std::uint8_t> raw_labels = read_idx(label_path);
  if (out.images.rank() != 3 || out.images.dim(1) != kSide || out.images.dim(2) != kSide)
    throw genmod::detail::io_error(image_path,
                                   "expected images of shape [N, 28, 28], found " + out.images.shape().to_string());
  if (raw_labels.rank() != 1 || raw_labels.dim(0) != out.images.dim(0))
    throw genmod::detail::io_error(label_path, "expected labels of shape [" + std::to_string(out.images.dim(0)) +
                                                   "] to match " + image_path + ", found " +
                                                   raw_labels.shape().to_string());
  out.labels = Tensor<std::int64_t>(raw_labels.shape());
  for (std::int64_t i = 0; i < raw_labels.numel(); ++i) {
    if (raw_labels[i] >= kClasses)
      throw genmod::detail::io_error(label_path, "label " + std::to_string(raw_labels[i]) + " at position " +
                                                     std::to_string(i) + " is outside [0, 10)");
    out.labels[i] = raw_labels[i];
  }
  out.images_path = image_path;
  out.labels_path = label_path;
  const std::uint64_t expected = split == Split::train ? kTrainLabelsFingerprint : kTestLabelsFingerprint;
  if (labels_fingerprint(raw_labels) == expected)
    for (std::int64_t c = 0; c < kClasses; ++c) out.class_names.emplace_back(class_name(c));
  return out;
}

GENMOD_DETAIL_NONTEMPLATE std::string FashionMNIST::find_file(const std::string& dir, const std::string& stem,
                                                              Split split, const char* what) {
  const std::string base = dir + (dir.empty() || dir.back() == '/' ? "" : "/") + stem;
  if (genmod::detail::is_regular_file(base + ".gz")) return base + ".gz";
  if (genmod::detail::is_regular_file(base)) return base;
  throw IOError("Fashion-MNIST " + std::string(split == Split::train ? "train" : "test") + " " + what +
                " not found: tried '" + base + ".gz' and '" + base + "'. Install the Debian package " +
                std::string(kDebianPackage) + " (apt-get install " + std::string(kDebianPackage) +
                "), or point GENMOD_DATA_DIR or the dir argument at a directory holding the IDX files");
}

GENMOD_DETAIL_NONTEMPLATE std::string FashionMNIST::description() const {
  const std::string what = is_fashion_mnist() ? "Fashion-MNIST" : "IDX data set, not Fashion-MNIST,";
  std::string from;
  if (!images_path.empty()) {
    const std::size_t slash = images_path.find_last_of('/');
    from = " from " + (slash == std::string::npos ? std::string(".") : images_path.substr(0, slash == 0 ? 1 : slash));
  }
  return what + " " + (split == Split::train ? "train" : "test") + " split (" + std::to_string(size()) + " images" +
         from + ")";
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

}  // namespace genmod::data
