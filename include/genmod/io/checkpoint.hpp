#pragma once
/// \file checkpoint.hpp
/// Checkpoint primitives that know tensors, not models: save named float tensors plus string
/// metadata to an .npz file, load them back, or load them into tensors the caller already has
/// with every name and shape checked first.
///
/// Layout (see docs/checkpoints.md): one member `<name>.npy` (float32, C order) per tensor, named
/// as the parameter is (`encoder.0.weight`), and a member `__metadata__.npy` holding the metadata
/// as a uint8 array of UTF-8 JSON text, `{"key": "value", ...}`. In Python:
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

/// JSON string literal for s (UTF-8 passes through; control characters are escaped).
inline std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

/// `{"k": "v", ...}` with keys in map order (sorted), so equal metadata gives equal bytes.
inline std::string metadata_to_json(const Metadata& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ", ";
    out += json_quote(k) + ": " + json_quote(v);
  }
  return out + "}";
}

/// Parses a JSON object whose values are all strings (what metadata_to_json writes, and what
/// Python's json.dumps writes for a dict of str, \uXXXX escapes included).
class MetadataParser {
 public:
  MetadataParser(std::string_view text, const std::string& file) : s_(text), file_(file) {}

  Metadata parse() {
    Metadata m;
    ws();
    expect('{');
    ws();
    if (peek() == '}') {
      ++i_;
    } else {
      while (true) {
        ws();
        std::string k = string();
        ws();
        expect(':');
        ws();
        std::string v = string();
        m[std::move(k)] = std::move(v);
        ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        break;
      }
    }
    ws();
    if (i_ != s_.size()) fail("unexpected characters after the JSON object");
    return m;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw genmod::detail::io_error(file_, "corrupt metadata JSON at byte " + std::to_string(i_) + ": " + what);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  void expect(char c) {
    if (i_ >= s_.size() || s_[i_] != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  unsigned hex4() {
    if (s_.size() - i_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return v;
  }
  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::string string() {
    if (peek() != '"') fail("expected a string (metadata values must be strings)");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      switch (s_[i_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a UTF-16 surrogate pair, as json.dumps writes for emoji
            if (s_.substr(i_, 2) != "\\u") fail("unpaired surrogate in \\u escape");
            i_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("unpaired low surrogate in \\u escape");
          }
          put_utf8(out, cp);
          break;
        }
        default: fail("unknown escape");
      }
    }
  }

  std::string_view s_;
  const std::string& file_;
  std::size_t i_ = 0;
};

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
inline void save_tensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {},
                         SaveOptions options = {}) {
  save_tensors<NamedTensors>(path, tensors, metadata, options);
}

/// Reads every tensor and the metadata of a checkpoint. Throws IOError naming the file for a
/// missing, truncated or corrupt file, or a tensor that is not float32.
inline TensorFile load_tensors(const std::string& path) {
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
      out.metadata = detail::MetadataParser(text, path).parse();
      continue;
    }
    if (!e.array.holds<float>())
      throw genmod::detail::io_error(path, "tensor '" + e.name + "' is " + std::string(data::dtype_name(e.array.dtype())) +
                                               ", expected float32");
    out.tensors.emplace_back(e.name, e.array.get<float>());
  }
  return out;
}

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
  std::vector<const Tensor<float>*> sources;
  std::vector<std::string_view> wanted;
  for (const auto& e : expected) {
    const std::string_view name = e.first;
    const Tensor<float>& dst = e.second;
    wanted.push_back(name);
    const Tensor<float>* src = file.find(name);
    if (!src) {
      problems += "\n  missing: '" + std::string(name) + "' (expected shape " + dst.shape().to_string() + ")";
    } else if (!(src->shape() == dst.shape())) {
      problems += "\n  shape mismatch: '" + std::string(name) + "' is " + src->shape().to_string() +
                  " in the checkpoint, expected " + dst.shape().to_string();
    }
    sources.push_back(src);
  }
  if (options.strict) {
    for (const auto& [name, t] : file.tensors)
      if (std::find(wanted.begin(), wanted.end(), std::string_view(name)) == wanted.end())
        problems += "\n  unexpected: '" + name + "' " + t.shape().to_string() +
                    " is in the checkpoint but was not asked for (LoadOptions{.strict = false} ignores it)";
  }
  if (!problems.empty()) throw genmod::detail::io_error(path, "checkpoint does not match the expected tensors:" + problems);
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
