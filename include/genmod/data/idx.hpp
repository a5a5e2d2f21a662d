#pragma once
/// \file idx.hpp
/// IDX files (the MNIST family: MNIST, Fashion-MNIST, KMNIST), plain or gzip-compressed.
///
/// Format: 2 zero bytes, an element-type byte (0x08 = unsigned byte), a rank byte, then `rank`
/// big-endian uint32 extents, then the elements in row-major order. Compression is detected from
/// the content (gzip magic 1f 8b), not from the file name.
///
/// Every size the header claims is checked against what the file can hold before anything is
/// allocated: against the exact size of a plain file, and for a gzip file against the gzip
/// trailer (uncompressed size mod 2^32) and the deflate ratio limit of its compressed bytes.

#include <cstdint>
#include <span>
#include <string>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

namespace detail {

/// Name of an IDX element-type code, for error messages.
inline std::string idx_type_name(unsigned code) {
  switch (code) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

inline std::string hex_byte(unsigned b) {
  const char* digits = "0123456789abcdef";
  return std::string{digits[(b >> 4) & 15], digits[b & 15]};
}

/// Parses an IDX stream whose total uncompressed size modulo 2^32 is `isize_mod32` when known
/// (gzip trailer), or -1.
GENMOD_DETAIL_NONTEMPLATE Tensor<std::uint8_t> parse_idx_stream(genmod::detail::Source& src, std::int64_t isize_mod32)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  using genmod::detail::io_error;
  unsigned char magic[4];
  src.read(magic, 4, "IDX magic number");
  if (magic[0] != 0 || magic[1] != 0)
    throw io_error(src.name(), "not an IDX file: expected magic 00 00 <type> <rank>, found " + hex_byte(magic[0]) + " " +
                                   hex_byte(magic[1]) + " " + hex_byte(magic[2]) + " " + hex_byte(magic[3]));
  if (magic[2] != 0x08)
    throw io_error(src.name(), "unsupported IDX element type 0x" + hex_byte(magic[2]) + " (" + idx_type_name(magic[2]) +
                                   "): expected 0x08 (uint8)");
  const int rank = magic[3];
  if (rank < 1 || rank > kMaxRank)
    throw io_error(src.name(), "IDX rank " + std::to_string(rank) + " is not supported: expected 1 to " +
                                   std::to_string(kMaxRank) + " dimensions");
  unsigned char raw[4 * kMaxRank];
  src.read(raw, static_cast<std::size_t>(4 * rank), "IDX dimensions");
  std::int64_t dims[kMaxRank] = {};
  std::uint64_t nonzero = 1;
  for (int i = 0; i < rank; ++i) {
    dims[i] = genmod::detail::load_be32(raw + 4 * i);
    // Extents are < 2^32 each, but their product can overflow with rank 3 or 4.
    if (!genmod::detail::fold_extent(static_cast<std::uint64_t>(dims[i]), nonzero))
      throw io_error(src.name(), "corrupt IDX header: the product of the dimensions overflows (more than 2^62 elements)");
  }
  std::uint64_t numel = nonzero;
  for (int i = 0; i < rank; ++i)
    if (dims[i] == 0) numel = 0;
  const Shape shape(std::span<const std::int64_t>(dims, static_cast<std::size_t>(rank)));
  const std::string what = "uint8 data for shape " + shape.to_string();
  if (isize_mod32 >= 0) {
    const std::uint64_t total = 4 + 4 * static_cast<std::uint64_t>(rank) + numel;
    if ((total & 0xffffffffu) != static_cast<std::uint64_t>(isize_mod32))
      throw io_error(src.name(), "truncated or corrupt gzip file: the IDX header implies " + std::to_string(total) +
                                     " uncompressed bytes, but the gzip trailer records " + std::to_string(isize_mod32) +
                                     " (mod 2^32)");
  }
  src.require_available(numel, what);
  Tensor<std::uint8_t> t(shape);
  src.read(t.data(), static_cast<std::size_t>(numel), what);
  src.expect_end("IDX");
  return t;
}
#else
    ;
#endif

/// Reads an IDX file from any random-access input, gzip or plain.
inline Tensor<std::uint8_t> read_idx_from(genmod::detail::RandomAccess& file) {
  genmod::detail::RangeSource raw(file);
  if (genmod::detail::has_gzip_magic(file)) {
    // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32 (RFC 1952).
    std::int64_t isize = -1;
    if (file.size() >= 18) {
      unsigned char tail[4];
      file.read_at(file.size() - 4, tail, 4);
      isize = genmod::detail::load_le32(tail);
    }
    genmod::detail::InflateSource src(raw, genmod::detail::InflateSource::Format::gzip, file.name());
    return parse_idx_stream(src, isize);
  }
  return parse_idx_stream(raw, -1);
}

}  // namespace detail

/// Reads an IDX file of unsigned bytes (plain or .gz). Labels come back rank 1 [N], images rank 3
/// [N, H, W]. Throws IOError naming the file for a missing, truncated or corrupt file.
inline Tensor<std::uint8_t> read_idx(const std::string& path) {
  genmod::detail::DiskFile file(path);
  return detail::read_idx_from(file);
}

/// Parses IDX bytes held in memory (plain or gzip); `name` starts every error message.
inline Tensor<std::uint8_t> parse_idx(std::span<const unsigned char> bytes, std::string name = "<memory>") {
  genmod::detail::MemoryFile file(bytes, std::move(name));
  return detail::read_idx_from(file);
}

/// Options for write_idx.
struct IdxWriteOptions {
  bool gzip = false;  ///< write a .gz stream (as the MNIST distribution files are)
  int level = 6;      ///< zlib compression level when gzip is true
};

/// The bytes of an IDX file holding t (rank 1..4, uint8).
inline std::vector<unsigned char> encode_idx(const Tensor<std::uint8_t>& t, IdxWriteOptions options = {}) {
  if (!t.defined() || t.rank() < 1)
    throw ShapeError("encode_idx: expected a tensor of rank 1 to 4, got shape " + t.shape().to_string());
  std::vector<unsigned char> out;
  out.reserve(static_cast<std::size_t>(4 + 4 * t.rank() + t.numel()));
  const unsigned char magic[4] = {0, 0, 0x08, static_cast<unsigned char>(t.rank())};
  genmod::detail::put_raw(out, magic, 4);
  for (int i = 0; i < t.rank(); ++i) {
    if (static_cast<std::uint64_t>(t.dim(i)) > 0xffffffffu)
      throw ShapeError("encode_idx: extent " + std::to_string(t.dim(i)) + " of shape " + t.shape().to_string() +
                       " does not fit the 32-bit IDX header");
    genmod::detail::put_be32(out, static_cast<std::uint32_t>(t.dim(i)));
  }
  genmod::detail::put_raw(out, t.data(), static_cast<std::size_t>(t.numel()));
  if (!options.gzip) return out;
  return genmod::detail::deflate_bytes(out, genmod::detail::Deflater::Format::gzip, options.level);
}

/// Writes t as an IDX file (atomically: see genmod::detail::AtomicFile).
inline void write_idx(const std::string& path, const Tensor<std::uint8_t>& t, IdxWriteOptions options = {}) {
  const auto bytes = encode_idx(t, options);
  genmod::detail::write_file_atomic(path, bytes);
}

}  // namespace genmod::data
