#pragma once
/// \file npy.hpp
/// NumPy .npy files: read and write float32, float64, uint8 and int64 arrays in C order.
///
/// Format (numpy.lib.format): magic "\x93NUMPY", version (1.0: 16-bit header length; 2.0 and 3.0:
/// 32-bit), then a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
/// padded with spaces and ending in '\n', then the raw elements. We write version 1.0 with the
/// preamble padded to 64 bytes, as NumPy does, so the data is aligned in the file.
///
/// Reading checks `shape` x item size against the bytes that follow the header before allocating,
/// refuses Fortran order (a silent transpose is worse than an error), and byte-swaps big-endian
/// arrays.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

/// Element types an .npy/.npz array may hold in genmod.
enum class DType { float32, float64, uint8, int64 };

/// The DType of a C++ element type (float, double, std::uint8_t, std::int64_t).
template <class T>
inline constexpr DType dtype_of = [] {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::uint8_t> ||
                    std::is_same_v<T, std::int64_t>,
                "genmod .npy arrays hold float, double, std::uint8_t or std::int64_t");
  if constexpr (std::is_same_v<T, float>)
    return DType::float32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::float64;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::uint8;
  else
    return DType::int64;
}();

/// "float32", "float64", "uint8" or "int64".
inline std::string_view dtype_name(DType d) noexcept {
  switch (d) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::uint8: return "uint8";
    case DType::int64: return "int64";
  }
  return "?";
}

/// Bytes per element.
inline std::size_t dtype_size(DType d) noexcept {
  switch (d) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::uint8: return 1;
    case DType::int64: return 8;
  }
  return 0;
}

/// A tensor of one of the .npy element types: what a reader returns before the caller says which
/// type it wants. Shallow like Tensor (copies share the buffer).
class NpyArray {
 public:
  /// An empty (undefined) array.
  NpyArray() = default;

  /// Wraps a tensor (no copy).
  template <class T>
  NpyArray(Tensor<T> t) : v_(std::move(t)) {  // NOLINT: implicit on purpose, so write_npy(path, tensor) reads well
    (void)dtype_of<T>;
  }

  /// False for a default-constructed array.
  bool defined() const noexcept { return v_.index() != 0; }

  /// Element type; throws ValueError when undefined.
  DType dtype() const {
    switch (v_.index()) {
      case 1: return DType::float32;
      case 2: return DType::float64;
      case 3: return DType::uint8;
      case 4: return DType::int64;
      default: throw ValueError("NpyArray::dtype: the array is empty (undefined)");
    }
  }

  /// Shape (rank 0 for a scalar); an undefined array reports [].
  Shape shape() const {
    return std::visit(
        [](const auto& t) -> Shape {
          if constexpr (std::is_same_v<std::decay_t<decltype(t)>, std::monostate>)
            return Shape{};
          else
            return t.shape();
        },
        v_);
  }

  /// Number of elements (0 when undefined).
  std::int64_t numel() const {
    return std::visit(
        [](const auto& t) -> std::int64_t {
          if constexpr (std::is_same_v<std::decay_t<decltype(t)>, std::monostate>)
            return 0;
          else
            return t.numel();
        },
        v_);
  }

  /// Raw bytes of the elements (C order, native little-endian).
  std::span<const unsigned char> bytes() const {
    return std::visit(
        [](const auto& t) -> std::span<const unsigned char> {
          if constexpr (std::is_same_v<std::decay_t<decltype(t)>, std::monostate>)
            return {};
          else
            return {reinterpret_cast<const unsigned char*>(t.data()),
                    static_cast<std::size_t>(t.numel()) * sizeof(typename std::decay_t<decltype(t)>::value_type)};
        },
        v_);
  }

  /// True when the array holds elements of type T.
  template <class T>
  bool holds() const noexcept {
    return std::holds_alternative<Tensor<T>>(v_);
  }

  /// The tensor, when it holds exactly T; otherwise throws ValueError naming both types.
  template <class T>
  const Tensor<T>& get() const {
    if (const auto* t = std::get_if<Tensor<T>>(&v_)) return *t;
    throw ValueError("NpyArray::get: the array holds " + std::string(defined() ? dtype_name(dtype()) : "nothing") +
                     ", not " + std::string(dtype_name(dtype_of<T>)));
  }

  /// The elements as T: the same buffer when the type matches, else a converted copy.
  template <class T>
  Tensor<T> to() const {
    return std::visit(
        [](const auto& t) -> Tensor<T> {
          using Held = std::decay_t<decltype(t)>;
          if constexpr (std::is_same_v<Held, std::monostate>)
            throw ValueError("NpyArray::to: the array is empty (undefined)");
          else if constexpr (std::is_same_v<Held, Tensor<T>>)
            return t;
          else
            return t.template cast<T>();
        },
        v_);
  }

 private:
  std::variant<std::monostate, Tensor<float>, Tensor<double>, Tensor<std::uint8_t>, Tensor<std::int64_t>> v_;
};

namespace detail {

/// Longest header we accept (NumPy itself refuses headers over 10000 bytes by default).
inline constexpr std::uint32_t kMaxNpyHeader = 1u << 20;

/// What an .npy header says.
struct NpyHeader {
  DType dtype = DType::float32;
  bool big_endian = false;
  Shape shape;
};

/// A tiny parser for the Python dict literal of an .npy header. Strict: exactly the three keys
/// NumPy writes, and nothing after the closing brace but spaces and a newline.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, const std::string& file) : s_(text), file_(file) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws();
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes are not supported (descr is a list)");
        parse_descr(parse_string(), h);
        have_descr = true;
      } else if (key == "fortran_order") {
        if (parse_bool())
          fail("the array is in Fortran order; genmod reads C-order arrays only "
               "(save it with numpy.ascontiguousarray first)");
        have_order = true;
      } else if (key == "shape") {
        h.shape = parse_shape();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "' in the header (expected descr, fortran_order, shape)");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() != '}') fail("expected ',' or '}' at header byte " + std::to_string(i_));
    }
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n')) ++i_;
    if (i_ != s_.size()) fail("unexpected characters after the header dict at byte " + std::to_string(i_));
    if (!have_descr || !have_order || !have_shape)
      fail(std::string("the header lacks the key '") + (!have_descr ? "descr" : !have_order ? "fortran_order" : "shape") +
           "'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw genmod::detail::io_error(file_, "corrupt .npy header: " + what);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c)
      fail(std::string("expected '") + c + "' at header byte " + std::to_string(i_) +
           (i_ < s_.size() ? std::string(", found '") + s_[i_] + "'" : std::string(", found the end")));
    ++i_;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string at header byte " + std::to_string(i_));
    ++i_;
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) ++i_;
    if (i_ >= s_.size()) fail("unterminated string");
    std::string out(s_.substr(start, i_ - start));
    ++i_;
    return out;
  }
  bool parse_bool() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("expected True or False for fortran_order at header byte " + std::to_string(i_));
  }
  Shape parse_shape() {
    expect('(');
    std::int64_t dims[kMaxRank] = {};
    int rank = 0;
    std::uint64_t nonzero = 1;
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        break;
      }
      if (peek() < '0' || peek() > '9') fail("expected a non-negative integer extent at header byte " + std::to_string(i_));
      std::uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (std::uint64_t{1} << 58)) fail("extent too large in 'shape'");
        v = v * 10 + static_cast<std::uint64_t>(peek() - '0');
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long suffix, still found in old files
      if (rank == kMaxRank)
        fail("the array has more than " + std::to_string(kMaxRank) + " dimensions; genmod tensors have at most " +
             std::to_string(kMaxRank));
      if (!genmod::detail::fold_extent(v, nonzero)) fail("the shape's element count overflows (more than 2^62 elements)");
      dims[rank++] = static_cast<std::int64_t>(v);
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() != ')') fail("expected ',' or ')' in 'shape' at header byte " + std::to_string(i_));
    }
    return Shape(std::span<const std::int64_t>(dims, static_cast<std::size_t>(rank)));
  }
  void parse_descr(const std::string& d, NpyHeader& h) {
    if (d.size() < 2) fail("unsupported dtype '" + d + "'");
    const char order = d[0];
    const std::string code = d.substr(1);
    if (order != '<' && order != '>' && order != '|' && order != '=')
      fail("unsupported dtype '" + d + "' (expected a byte-order character <, >, | or =)");
    if (code == "f4")
      h.dtype = DType::float32;
    else if (code == "f8")
      h.dtype = DType::float64;
    else if (code == "u1")
      h.dtype = DType::uint8;
    else if (code == "i8")
      h.dtype = DType::int64;
    else
      fail("unsupported dtype '" + d + "': genmod reads float32 (<f4), float64 (<f8), uint8 (|u1) and int64 (<i8)");
    h.big_endian = order == '>';
  }

  std::string_view s_;
  const std::string& file_;
  std::size_t i_ = 0;
};

/// Reverses the bytes of each element in place (big-endian arrays).
inline void byteswap_elements(unsigned char* p, std::size_t count, std::size_t width) noexcept {
  if (width <= 1) return;
  for (std::size_t i = 0; i < count; ++i, p += width)
    for (std::size_t a = 0, b = width - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
}

template <class T>
NpyArray read_npy_payload(genmod::detail::Source& src, const NpyHeader& h, const std::string& what) {
  Tensor<T> t(h.shape);
  const auto nbytes = static_cast<std::size_t>(t.numel()) * sizeof(T);
  src.read(t.data(), nbytes, what);
  if (h.big_endian) byteswap_elements(reinterpret_cast<unsigned char*>(t.data()), static_cast<std::size_t>(t.numel()), sizeof(T));
  return NpyArray(std::move(t));
}

/// Parses one .npy stream (a file or an .npz member); the stream must end with the data.
GENMOD_DETAIL_NONTEMPLATE NpyArray parse_npy_stream(genmod::detail::Source& src)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  using genmod::detail::io_error;
  unsigned char pre[10];
  src.read(pre, 10, ".npy preamble (magic, version, header length)");
  static constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (std::memcmp(pre, kMagic, 6) != 0) throw io_error(src.name(), "not an .npy file: expected the magic \"\\x93NUMPY\"");
  const unsigned major = pre[6], minor = pre[7];
  std::uint32_t header_len;
  if (major == 1) {
    header_len = genmod::detail::load_le16(pre + 8);
  } else if (major == 2 || major == 3) {
    unsigned char rest[2];
    src.read(rest, 2, ".npy header length");
    const unsigned char len4[4] = {pre[8], pre[9], rest[0], rest[1]};
    header_len = genmod::detail::load_le32(len4);
  } else {
    throw io_error(src.name(), "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor) +
                                   " (expected 1.0, 2.0 or 3.0)");
  }
  if (header_len > kMaxNpyHeader || header_len > src.remaining_bound())
    throw io_error(src.name(), "corrupt .npy header length " + std::to_string(header_len) + ": only " +
                                   std::to_string(src.remaining_bound()) + " bytes remain (limit " +
                                   std::to_string(kMaxNpyHeader) + ")");
  std::string text(header_len, '\0');
  src.read(text.data(), header_len, ".npy header");
  const NpyHeader h = NpyHeaderParser(text, src.name()).parse();
  std::uint64_t nbytes = 0;
  if (!genmod::detail::checked_mul(static_cast<std::uint64_t>(h.shape.numel()), dtype_size(h.dtype), nbytes))
    throw io_error(src.name(), "corrupt .npy header: shape " + h.shape.to_string() + " overflows");
  const std::string what = std::string(dtype_name(h.dtype)) + " data for shape " + h.shape.to_string();
  src.require_available(nbytes, what);  // before allocating
  NpyArray out;
  switch (h.dtype) {
    case DType::float32: out = read_npy_payload<float>(src, h, what); break;
    case DType::float64: out = read_npy_payload<double>(src, h, what); break;
    case DType::uint8: out = read_npy_payload<std::uint8_t>(src, h, what); break;
    case DType::int64: out = read_npy_payload<std::int64_t>(src, h, what); break;
  }
  src.expect_end(".npy");
  return out;
}
#else
    ;
#endif

/// The .npy preamble and header for an array of this dtype and shape (version 1.0, padded so the
/// data starts at a multiple of 64 bytes).
inline std::vector<unsigned char> encode_npy_header(DType dtype, const Shape& shape) {
  std::string dict = "{'descr': '";
  dict += dtype == DType::uint8 ? "|u1" : dtype == DType::float32 ? "<f4" : dtype == DType::float64 ? "<f8" : "<i8";
  dict += "', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < shape.rank(); ++i) {
    if (i) dict += ", ";
    dict += std::to_string(shape[i]);
  }
  if (shape.rank() == 1) dict += ",";
  dict += "), }";
  const std::size_t unpadded = 10 + dict.size() + 1;  // + '\n'
  const std::size_t padded = (unpadded + 63) / 64 * 64;
  dict.append(padded - unpadded, ' ');
  dict += '\n';
  static constexpr unsigned char kPreamble[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::vector<unsigned char> out;
  out.reserve(10 + dict.size());
  genmod::detail::put_raw(out, kPreamble, 8);
  genmod::detail::put_le16(out, static_cast<std::uint32_t>(dict.size()));
  genmod::detail::put_raw(out, dict.data(), dict.size());
  return out;
}

}  // namespace detail

/// Reads an .npy file. Throws IOError naming the file when it is missing, truncated, corrupt, in
/// Fortran order, of rank > 4, or of an unsupported dtype.
inline NpyArray read_npy(const std::string& path) {
  genmod::detail::DiskFile file(path);
  genmod::detail::RangeSource src(file);
  return detail::parse_npy_stream(src);
}

/// Parses .npy bytes held in memory; `name` starts every error message.
inline NpyArray parse_npy(std::span<const unsigned char> bytes, std::string name = "<memory>") {
  genmod::detail::MemoryFile file(bytes, std::move(name));
  genmod::detail::RangeSource src(file);
  return detail::parse_npy_stream(src);
}

/// The bytes of an .npy file holding `array`.
inline std::vector<unsigned char> encode_npy(const NpyArray& array) {
  if (!array.defined()) throw ValueError("encode_npy: the array is empty (undefined)");
  auto out = detail::encode_npy_header(array.dtype(), array.shape());
  const auto data = array.bytes();
  genmod::detail::put_raw(out, data.data(), data.size());
  return out;
}

/// Writes `array` (or any supported Tensor) as an .npy file, atomically.
inline void write_npy(const std::string& path, const NpyArray& array) {
  if (!array.defined()) throw ValueError("write_npy: the array for '" + path + "' is empty (undefined)");
  genmod::detail::AtomicFile f(path);
  f.write(detail::encode_npy_header(array.dtype(), array.shape()));
  f.write(array.bytes());
  f.commit();
}

}  // namespace genmod::data
