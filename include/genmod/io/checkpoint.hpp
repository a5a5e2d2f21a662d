#pragma once
/// \file checkpoint.hpp
/// Checkpoint primitives that know tensors, not models: save named float tensors plus string
/// metadata to an .npz file, load them back, or load them into tensors the caller already has
/// with every name and shape checked first.
///
/// Layout (see docs/checkpoints.md): one member `<name>.npy` (float32, C order) per tensor, named
/// as the parameter is (`encoder.0.weight`), and a member `__metadata__.npy` holding the metadata
/// as a uint8 array of UTF-8 JSON text, `{"key": "value", ...}` (written and read by io/json.hpp).
/// In Python:
///
/// ```python
/// z = numpy.load("model.npz"); w = z["encoder.0.weight"]
/// meta = json.loads(z["__metadata__"].tobytes())
/// ```
///
/// Names starting with "__" are reserved for genmod. Saves are atomic: a crash leaves either the
/// previous checkpoint or the new one, never a torn file.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <map>
#include <ranges>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/npz.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/io/json.hpp"

namespace genmod::io {

/// Named float tensors in a chosen order (what a module's visitor produces).
using NamedTensors = std::vector<std::pair<std::string, Tensor<float>>>;
/// String metadata saved beside the tensors (step, epoch, RNG state, hyperparameters...).
using Metadata = std::map<std::string, std::string>;

/// Name of the .npz member that holds the metadata JSON.
inline constexpr std::string_view kMetadataKey = "__metadata__";

/// A range of (name, Tensor<float>) pairs: NamedTensors, std::map<std::string, Tensor<float>>...
template <class R>
concept NamedTensorRange = std::ranges::input_range<R> && requires(std::ranges::range_reference_t<R> e) {
  { e.first } -> std::convertible_to<std::string_view>;
  { e.second } -> std::convertible_to<const Tensor<float>&>;
};

/// How save_tensors writes.
struct SaveOptions {
  bool compress = false;  ///< deflate the members (smaller, slower; float weights shrink ~10%)
  int level = 6;          ///< zlib level when compressing
};

/// How load_into checks the file against the caller's tensors.
struct LoadOptions {
  bool strict = true;  ///< tensors in the file that the caller did not ask for are an error
};

/// What load_tensors returns.
struct TensorFile {
  NamedTensors tensors = {};  ///< in file order
  Metadata metadata = {};     ///< empty when the file has none

  /// The tensor named `name`, or nullptr.
  const Tensor<float>* find(std::string_view name) const noexcept {
    for (const auto& [n, t] : tensors)
      if (n == name) return &t;
    return nullptr;
  }
};

namespace detail {

/// The metadata as one JSON object, `{"k": "v", ...}`, keys in map order (sorted), so that equal
/// metadata gives equal bytes.
inline std::string metadata_to_json(const Metadata& m) {
  JsonObject o;
  for (const auto& [k, v] : m) o.add(k, v);
  return to_json(o);
}

/// Reads the metadata JSON of checkpoint `path` (what metadata_to_json writes, and what Python's
/// json.dumps writes for a dict of str). Throws IOError naming the file for malformed JSON or a
/// value that is not a string.
inline Metadata metadata_from_json(std::string_view text, const std::string& path) {
  const std::string source = path + ": metadata JSON";
  const JsonObject o = parse_json_object(text, source);
  Metadata m;
  for (const auto& [k, v] : o.fields()) {
    if (!v.is_string())
      throw IOError(source + ": the value of '" + k + "' is " + v.kind_name() + ", expected a string");
    m.emplace(k, v.string());
  }
  return m;
}

/// Matches a checkpoint's tensors against the expected (name, tensor) pairs: the file tensor for
/// each expected one, in order. Each missing name, shape mismatch (both shapes) and, with
/// `strict`, each tensor nobody asked for is appended to `problems` as a line; entries that do not
/// match are nullptr. The one place that decides whether a file fits what a caller holds.
template <class R>
std::vector<const Tensor<float>*> match_tensors(const TensorFile& file, const R& expected, bool strict,
                                                std::string& problems) {
  std::vector<const Tensor<float>*> sources;
  std::vector<std::string_view> wanted;
  for (const auto& e : expected) {
    const std::string_view name = e.first;
    const Shape& want = e.second.shape();
    wanted.push_back(name);
    const Tensor<float>* src = file.find(name);
    if (!src) {
      problems += "\n  missing: '" + std::string(name) + "' (expected shape " + want.to_string() + ")";
    } else if (!(src->shape() == want)) {
      problems += "\n  shape mismatch: '" + std::string(name) + "' is " + src->shape().to_string() +
                  " in the checkpoint, expected " + want.to_string();
      src = nullptr;
    }
    sources.push_back(src);
  }
  if (strict)
    for (const auto& [name, t] : file.tensors)
      if (std::find(wanted.begin(), wanted.end(), std::string_view(name)) == wanted.end())
        problems += "\n  unexpected: '" + name + "' " + t.shape().to_string() +
                    " is in the checkpoint but was not asked for (LoadOptions{.strict = false} ignores it)";
  return sources;
}

inline void check_tensor_name(std::string_view name, const std::string& path) {
  if (name.empty()) throw ValueError("save_tensors('" + path + "'): a tensor has an empty name");
  if (name.substr(0, 2) == "__")
    throw ValueError("save_tensors('" + path + "'): tensor name '" + std::string(name) +
                     "' starts with \"__\", which is reserved for genmod");
}

}  // namespace detail

/// Writes named float tensors and metadata to an .npz file that numpy.load opens, atomically
/// (temporary file, fsync, rename). Names must be unique, non-empty, and not start with "__".
template <NamedTensorRange R>
void save_tensors(const std::string& path, const R& tensors, const Metadata& metadata = {}, SaveOptions options = {}) {
  std::vector<data::NpzEntry> entries;
  for (const auto& e : tensors) {
    const std::string_view name = e.first;
    detail::check_tensor_name(name, path);
    const Tensor<float>& t = e.second;
    if (!t.defined()) throw ValueError("save_tensors('" + path + "'): tensor '" + std::string(name) + "' is undefined");
    entries.push_back({std::string(name), data::NpyArray(t)});
  }
  const std::string json = detail::metadata_to_json(metadata);
  auto meta = Tensor<std::uint8_t>(Shape{static_cast<std::int64_t>(json.size())});
  std::copy(json.begin(), json.end(), reinterpret_cast<char*>(meta.data()));
  entries.push_back({std::string(kMetadataKey), data::NpyArray(meta)});
  data::write_npz(path, entries, {.compress = options.compress, .level = options.level});
}

/// Overload for a braced list: save_tensors(path, {{"w", w}, {"b", b}}).
GENMOD_DETAIL_NONTEMPLATE void save_tensors(const std::string& path, const NamedTensors& tensors,
                                            const Metadata& metadata = {}, SaveOptions options = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  save_tensors<NamedTensors>(path, tensors, metadata, options);
}
#else
    ;
#endif

/// Reads every tensor and the metadata of a checkpoint. Throws IOError naming the file for a
/// missing, truncated or corrupt file, or a tensor that is not float32.
GENMOD_DETAIL_NONTEMPLATE TensorFile load_tensors(const std::string& path)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  const data::NpzArchive archive = data::read_npz(path);
  TensorFile out;
  for (const auto& e : archive.entries()) {
    if (e.name == kMetadataKey) {
      if (!e.array.holds<std::uint8_t>() || e.array.shape().rank() != 1)
        throw genmod::detail::io_error(path, "'" + std::string(kMetadataKey) + "' must be a 1-D uint8 array, found " +
                                                 std::string(data::dtype_name(e.array.dtype())) + " " +
                                                 e.array.shape().to_string());
      const auto& bytes = e.array.get<std::uint8_t>();
      const std::string_view text(reinterpret_cast<const char*>(bytes.data()), static_cast<std::size_t>(bytes.numel()));
      out.metadata = detail::metadata_from_json(text, path);
      continue;
    }
    if (!e.array.holds<float>())
      throw genmod::detail::io_error(
          path, "tensor '" + e.name + "' is " + std::string(data::dtype_name(e.array.dtype())) + ", expected float32");
    out.tensors.emplace_back(e.name, e.array.get<float>());
  }
  return out;
}
#else
    ;
#endif

/// Copies a checkpoint's tensors into the caller's tensors (which keep their buffers, so views and
/// parameters sharing them see the new values), and returns the metadata.
///
/// Every expected name must be present with the same shape; with `strict`, the file may hold no
/// other tensor. All checks run before any value is copied, so a failed load changes nothing.
/// The IOError names each missing, mismatched (both shapes) or unexpected entry.
template <NamedTensorRange R>
Metadata load_into(const std::string& path, const R& expected, LoadOptions options = {}) {
  TensorFile file = load_tensors(path);
  std::string problems;
  const std::vector<const Tensor<float>*> sources = detail::match_tensors(file, expected, options.strict, problems);
  if (!problems.empty())
    throw genmod::detail::io_error(path, "checkpoint does not match the expected tensors:" + problems);
  std::size_t k = 0;
  for (const auto& e : expected) {
    Tensor<float> dst = e.second;  // shallow: shares the caller's buffer
    dst.copy_from(*sources[k++]);
  }
  return std::move(file.metadata);
}

/// Overload for a braced list: load_into(path, {{"w", w}, {"b", b}}).
inline Metadata load_into(const std::string& path, const NamedTensors& expected, LoadOptions options = {}) {
  return load_into<NamedTensors>(path, expected, options);
}

}  // namespace genmod::io
