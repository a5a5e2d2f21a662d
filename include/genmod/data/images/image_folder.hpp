#pragma once
/// \file image_folder.hpp
/// ImageFolder: every image file under a directory, in a reproducible order; decode_images and
/// load_images_cached turn it into one uint8 tensor [N, C, H, W].
///
/// ```cpp
/// data::ImageFolder celeba("data/celeba/img_align_celeba");
/// data::ImageTransform t{.crop_height = 148, .crop_width = 148, .height = 64, .width = 64};
/// auto images = data::load_images_cached(celeba, t, "data/celeba/64x64.npy");  // [202599, 3, 64, 64]
/// auto attrs = data::attributes_for(data::read_attribute_table("list_attr_celeba.txt"), celeba.file_names());
/// ```
///
/// Order: the relative paths ('/'-separated) sorted by bytes, so every machine and file system
/// lists the same images in the same order (directory iteration order is not specified). Hidden
/// entries (names starting with '.', such as macOS "._x.jpg" resource forks) are skipped, and
/// symbolic links to directories are not followed (they could form cycles); links to files are.
///
/// The cache: decoding 200,000 JPEGs takes minutes, reading one .npy of their pixels a second.
/// `cache_path` holds the pixels and `cache_path + ".key"` a JSON object describing what they
/// were made from: the canonical root, the file count, an FNV-1a hash of the sorted relative paths
/// and file sizes, describe(transform), the array's shape and the CRC-32 of its bytes. The cache is
/// used only when every field matches and the CRC checks out; otherwise it is rebuilt. The key is
/// removed before the pixels are rewritten and written (atomically) after them, so a crash in
/// between leaves no key, never a key that vouches for other pixels. (File contents are not
/// hashed: replacing an image by another of exactly the same size goes unnoticed; delete the
/// cache then.)

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/parallel.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/images/image_file.hpp"
#include "genmod/data/images/image_ops.hpp"
#include "genmod/data/npy.hpp"
#include "genmod/io/json.hpp"

namespace genmod::data {

/// Options for ImageFolder.
struct ImageFolderOptions {
  bool labels_from_subfolders = false;  ///< label = index of the top-level sub-folder, in sorted order
  std::vector<std::string> extensions = {".png", ".jpg", ".jpeg"};  ///< file name endings taken (any letter case)
};

/// Every image under a directory, sorted by relative path (byte order: reproducible on every machine).
class ImageFolder {
 public:
  /// Lists `root` recursively. IOError when root is missing or not a directory, ValueError when
  /// no file has one of the extensions (the message lists them) or, with labels_from_subfolders,
  /// an image sits directly in root.
  explicit ImageFolder(std::string root, ImageFolderOptions options = {})
      : root_(std::move(root)), options_(std::move(options)) {
    namespace fs = std::filesystem;
    std::vector<std::string> exts = lowered_extensions();
    std::error_code ec;
    const fs::path rootp(root_);
    if (!fs::is_directory(rootp, ec))
      throw genmod::detail::io_error(root_, fs::exists(rootp, ec) ? "not a directory" : "no such directory");
    fs::recursive_directory_iterator it(rootp, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) throw genmod::detail::io_error(root_, "cannot list the directory: " + ec.message());
    std::vector<std::pair<std::string, std::uint64_t>> found;
    for (; it != end; it.increment(ec)) {
      if (ec) throw genmod::detail::io_error(root_, "cannot list the directory: " + ec.message());
      const fs::directory_entry& e = *it;
      const std::string name = e.path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (e.is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (!e.is_regular_file(ec) || !has_extension(name, exts)) continue;
      const std::uint64_t size = e.file_size(ec);
      if (ec) throw genmod::detail::io_error(e.path().string(), "cannot read the file size: " + ec.message());
      found.emplace_back(e.path().lexically_relative(rootp).generic_string(), size);
    }
    if (ec) throw genmod::detail::io_error(root_, "cannot list the directory: " + ec.message());
    if (found.empty()) {
      std::string list;
      for (std::size_t i = 0; i < exts.size(); ++i) list += (i ? ", " : "") + exts[i];
      throw ValueError("ImageFolder: no image under '" + root_ + "' (looked for files ending in " + list +
                       ", any letter case, hidden files skipped)");
    }
    std::sort(found.begin(), found.end());  // std::string compares as unsigned bytes
    files_.reserve(found.size());
    sizes_.reserve(found.size());
    for (auto& [path, size] : found) {
      files_.push_back(std::move(path));
      sizes_.push_back(size);
    }
    if (options_.labels_from_subfolders) assign_labels();
  }

  /// Number of images.
  std::int64_t size() const noexcept { return static_cast<std::int64_t>(files_.size()); }
  /// The directory as given.
  const std::string& root() const noexcept { return root_; }
  /// The options given at construction.
  const ImageFolderOptions& options() const noexcept { return options_; }
  /// Paths relative to root, '/'-separated, sorted ("img_align_celeba/000001.jpg" or "000001.jpg").
  const std::vector<std::string>& files() const noexcept { return files_; }
  /// Size in bytes of each file when the folder was listed (the cache key hashes them).
  const std::vector<std::uint64_t>& file_sizes() const noexcept { return sizes_; }
  /// Full path of image i (root joined with files()[i]); ValueError outside [0, size()).
  std::string path(std::int64_t i) const {
    if (i < 0 || i >= size())
      throw ValueError("ImageFolder::path: expected an index in [0, " + std::to_string(size()) + "), got " +
                       std::to_string(i));
    return (std::filesystem::path(root_) / files_[static_cast<std::size_t>(i)]).string();
  }
  /// Sorted names of the top-level sub-folders (labels_from_subfolders; empty otherwise).
  const std::vector<std::string>& class_names() const noexcept { return class_names_; }
  /// Label of each image [N]: index of its sub-folder in class_names() (undefined without
  /// labels_from_subfolders).
  Tensor<std::int64_t> labels() const noexcept { return labels_; }
  /// The last path component of each file, in order (what CelebA's attribute table joins on).
  std::vector<std::string> file_names() const {
    std::vector<std::string> out;
    out.reserve(files_.size());
    for (const auto& f : files_) {
      const auto slash = f.find_last_of('/');
      out.push_back(slash == std::string::npos ? f : f.substr(slash + 1));
    }
    return out;
  }

 private:
  std::vector<std::string> lowered_extensions() const {
    if (options_.extensions.empty()) throw ValueError("ImageFolder: expected at least one extension, got none");
    std::vector<std::string> out;
    for (const auto& e : options_.extensions) {
      std::string x = (!e.empty() && e[0] == '.') ? e : "." + e;
      if (x.size() < 2) throw ValueError("ImageFolder: an empty extension was given");
      for (char& c : x) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      out.push_back(std::move(x));
    }
    return out;
  }

  static bool has_extension(const std::string& name, const std::vector<std::string>& exts) noexcept {
    for (const auto& e : exts) {
      if (name.size() <= e.size()) continue;  // ".png" alone is a hidden name, not an image
      bool same = true;
      for (std::size_t i = 0, off = name.size() - e.size(); i < e.size() && same; ++i) {
        const char c = name[off + i];
        same = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == e[i];
      }
      if (same) return true;
    }
    return false;
  }

  void assign_labels() {
    std::vector<std::string> top(files_.size());
    for (std::size_t i = 0; i < files_.size(); ++i) {
      const auto slash = files_[i].find('/');
      if (slash == std::string::npos)
        throw ValueError("ImageFolder: '" + files_[i] + "' sits directly in '" + root_ +
                         "'; with labels_from_subfolders every image must be inside a class sub-folder");
      top[i] = files_[i].substr(0, slash);
    }
    class_names_ = top;
    std::sort(class_names_.begin(), class_names_.end());
    class_names_.erase(std::unique(class_names_.begin(), class_names_.end()), class_names_.end());
    labels_ = Tensor<std::int64_t>(Shape{size()});
    for (std::size_t i = 0; i < files_.size(); ++i)
      labels_[static_cast<std::int64_t>(i)] =
          std::lower_bound(class_names_.begin(), class_names_.end(), top[i]) - class_names_.begin();
  }

  std::string root_;
  ImageFolderOptions options_;
  std::vector<std::string> files_;
  std::vector<std::uint64_t> sizes_;
  std::vector<std::string> class_names_;
  Tensor<std::int64_t> labels_;
};

namespace detail {

/// One image as the transform makes it: read (converted to the transform's channels as it is
/// decoded), then cropped and resized. The one path shared by decode_images and ImageLoader, so
/// that both give the same pixels.
inline Tensor<std::uint8_t> load_transformed(const std::string& path, const ImageTransform& transform) {
  const Tensor<std::uint8_t> image = read_image(path, transform.channels);  // its errors name the file
  try {
    return apply_transform(transform, image);
  } catch (const ShapeError& e) {  // e.g. a crop larger than this image: say which image
    throw ShapeError(path + ": " + e.what());
  }
}

/// The ShapeError for an image whose transformed shape differs from the first one's.
inline ShapeError image_shape_error(std::string_view op, const std::string& file, const Shape& got,
                                    const std::string& first, const Shape& expected) {
  return ShapeError(std::string(op) + ": image '" + file + "' comes out " + got.to_string() + ", but '" + first +
                    "' comes out " + expected.to_string() +
                    "; every image must have one shape (set the transform's crop and height/width, and channels)");
}

/// Keeps the error of the lowest-numbered item among those that failed inside a parallel loop
/// (whose body must not throw), to rethrow after it: the same error whatever the thread count.
class FirstError {
 public:
  /// Records the exception in flight for item i (call from a catch block).
  void capture(std::int64_t i) noexcept {
#if GENMOD_HAS_OPENMP
#pragma omp critical(genmod_first_error)
#endif
    {
      if (i < index_) {
        index_ = i;
        error_ = std::current_exception();
      }
    }
  }
  /// Rethrows the recorded exception, if any.
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::int64_t index_ = std::numeric_limits<std::int64_t>::max();
  std::exception_ptr error_;
};

}  // namespace detail

/// Decodes and transforms every image (parallel over images), [N, C, H, W] uint8. Every image must
/// come out with the same shape (else ShapeError naming the first file that differs and both
/// shapes); an unreadable image is an IOError naming its file.
inline Tensor<std::uint8_t> decode_images(const ImageFolder& folder, const ImageTransform& transform) {
  check_transform(transform);
  const std::int64_t n = folder.size();
  const Tensor<std::uint8_t> first = detail::load_transformed(folder.path(0), transform);
  const Shape sample = first.shape();
  const std::int64_t row = first.numel();
  Tensor<std::uint8_t> out(Shape{n, sample[0], sample[1], sample[2]});
  std::copy_n(first.data(), row, out.data());
  detail::FirstError error;
  // Decoding one image costs far more than kParallelGrain elements of arithmetic: always split.
  parallel_for(n - 1, kParallelGrain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t k = lo; k < hi; ++k) {
      const std::int64_t i = k + 1;
      try {
        const Tensor<std::uint8_t> img = detail::load_transformed(folder.path(i), transform);
        if (!(img.shape() == sample))
          throw detail::image_shape_error("decode_images", folder.files()[static_cast<std::size_t>(i)], img.shape(),
                                          folder.files()[0], sample);
        std::copy_n(img.data(), row, out.data() + i * row);
      } catch (...) {
        error.capture(i);
      }
    }
  });
  error.rethrow();
  return out;
}

namespace detail {

/// FNV-1a (64 bits) of the sorted relative paths and their sizes: what the cache key compares.
inline std::uint64_t folder_fingerprint(const ImageFolder& folder) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV offset basis
  const auto mix = [&h](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 0x100000001b3ULL;  // FNV prime
    }
  };
  for (std::size_t i = 0; i < folder.files().size(); ++i) {
    const std::string& f = folder.files()[i];
    mix(f.data(), f.size() + 1);  // with the terminating NUL, so "ab"+"c" differs from "a"+"bc"
    unsigned char size[8];
    for (int k = 0; k < 8; ++k) size[k] = static_cast<unsigned char>(folder.file_sizes()[i] >> (8 * k));
    mix(size, 8);
  }
  return h;
}

/// The key fields that say what a cache was made from (without the shape and CRC of its data).
inline io::JsonObject image_cache_key(const ImageFolder& folder, const ImageTransform& transform) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(folder.root(), ec);
  if (ec) canonical = std::filesystem::absolute(folder.root());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(folder_fingerprint(folder)));
  io::JsonObject key;
  key.add("format", "genmod image cache 1");
  key.add("root", canonical.string());
  key.add("files", folder.size());
  key.add("listing_fnv1a64", std::string(hex));
  key.add("transform", describe(transform));
  return key;
}

/// The cached pixels when the key file matches `expected` and the data its shape and CRC;
/// an undefined tensor otherwise (missing, stale or corrupt: the caller rebuilds).
inline Tensor<std::uint8_t> try_read_image_cache(const std::string& cache_path, const io::JsonObject& expected,
                                                 std::int64_t n) {
  namespace fs = std::filesystem;
  const std::string key_path = cache_path + ".key";
  std::error_code ec;
  if (!fs::exists(key_path, ec) || !fs::exists(cache_path, ec)) return {};
  try {
    const auto bytes = genmod::detail::read_file_bytes(key_path, 1 << 20);
    const io::JsonObject key =
        io::parse_json_object(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), key_path);
    for (const auto& [name, value] : expected.fields()) {
      const io::JsonValue* v = key.find(name);
      if (!v || !(*v == value)) return {};
    }
    const io::JsonValue* shape = key.find("shape");
    const io::JsonValue* crc = key.find("data_crc32");
    if (!shape || !crc) return {};
    const NpyArray array = read_npy(cache_path);
    if (!array.holds<std::uint8_t>() || array.shape().rank() != 4 || array.shape()[0] != n ||
        shape->string() != array.shape().to_string())
      return {};
    const auto data = array.bytes();
    if (static_cast<double>(genmod::detail::crc32_update(0, data.data(), data.size())) != crc->number()) return {};
    return array.get<std::uint8_t>();
  } catch (const Error&) {
    return {};  // an unreadable key or array is a corrupt cache: rebuild it
  }
}

}  // namespace detail

/// As decode_images, through a cache at `cache_path` (.npy, uint8 [N, C, H, W]) with its key in
/// `cache_path + ".key"` (see the file comment). A missing, stale or corrupt cache is rebuilt and
/// written atomically; a cache hit decodes no image.
inline Tensor<std::uint8_t> load_images_cached(const ImageFolder& folder, const ImageTransform& transform,
                                               const std::string& cache_path) {
  check_transform(transform);
  io::JsonObject key = detail::image_cache_key(folder, transform);
  if (auto cached = detail::try_read_image_cache(cache_path, key, folder.size()); cached.defined()) return cached;
  const std::string key_path = cache_path + ".key";
  std::error_code ec;
  std::filesystem::remove(key_path, ec);  // no key may vouch for the pixels while they are rewritten
  Tensor<std::uint8_t> images = decode_images(folder, transform);
  write_npy(cache_path, images);
  const auto data = std::span<const unsigned char>(images.data(), static_cast<std::size_t>(images.numel()));
  key.add("shape", images.shape().to_string());
  key.add("data_crc32", genmod::detail::crc32_update(0, data.data(), data.size()));
  const std::string text = io::to_json(key) + "\n";
  genmod::detail::write_file_atomic(
      key_path, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
  return images;
}

}  // namespace genmod::data
