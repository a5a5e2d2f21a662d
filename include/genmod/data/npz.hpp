#pragma once
/// \file npz.hpp
/// NumPy .npz archives: a zip file whose members are `<name>.npy` files.
///
/// Reading takes the central directory as the truth (as every zip reader does), accepts stored
/// and deflated members, ZIP64 records, and data descriptors, and checks each member's CRC-32.
/// Writing produces members either stored or deflated, with a fixed timestamp (1980-01-01) so
/// that saving the same arrays twice gives the same bytes, and ZIP64 records only when a size or
/// offset needs them. Files are written atomically (see genmod::detail::AtomicFile).
///
/// Members whose name does not end in ".npy" (and directories) are skipped: NumPy's own `savez`
/// never writes them, and skipping keeps foreign archives readable.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/npy.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::data {

/// One named array of an .npz archive (the name has no ".npy" suffix).
struct NpzEntry {
  std::string name = {};  ///< key, as numpy.load(...)[name] sees it
  NpyArray array = {};    ///< the array
};

/// The arrays of an .npz archive, in archive order.
class NpzArchive {
 public:
  NpzArchive() = default;
  /// An archive read from `source` (a path, or a label for memory).
  NpzArchive(std::string source, std::vector<NpzEntry> entries) : source_(std::move(source)), entries_(std::move(entries)) {}

  /// Every entry, in archive order.
  const std::vector<NpzEntry>& entries() const noexcept { return entries_; }
  /// Number of arrays.
  std::size_t size() const noexcept { return entries_.size(); }
  /// The path (or label) the archive came from.
  const std::string& source() const noexcept { return source_; }

  /// The array named `name`, or nullptr.
  const NpyArray* find(std::string_view name) const noexcept {
    for (const auto& e : entries_)
      if (e.name == name) return &e.array;
    return nullptr;
  }
  /// True when an array is named `name`.
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// The array named `name`; throws IOError naming the file, the key, and the keys it holds.
  const NpyArray& at(std::string_view name) const {
    if (const NpyArray* a = find(name)) return *a;
    throw genmod::detail::io_error(source_, "no array named '" + std::string(name) + "'; the archive holds " + names_list());
  }

  /// "'a', 'b'" (or "no arrays"), for messages.
  std::string names_list() const {
    if (entries_.empty()) return "no arrays";
    std::string s;
    for (const auto& e : entries_) s += (s.empty() ? "'" : ", '") + e.name + "'";
    return s;
  }

 private:
  std::string source_;
  std::vector<NpzEntry> entries_;
};

/// How write_npz stores members.
struct NpzWriteOptions {
  bool compress = false;  ///< deflate the members (numpy.savez_compressed) instead of storing them
  int level = 6;          ///< zlib level when compressing
};

namespace detail {

inline constexpr std::uint32_t kZipLocalSig = 0x04034b50;
inline constexpr std::uint32_t kZipCentralSig = 0x02014b50;
inline constexpr std::uint32_t kZipEndSig = 0x06054b50;
inline constexpr std::uint32_t kZip64EndSig = 0x06064b50;
inline constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;

/// One member as the central directory describes it.
struct ZipMember {
  std::string name;
  std::uint16_t flags = 0;
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;
  std::uint64_t local_offset = 0;
};

/// Bounds-checked little-endian cursor over an in-memory record.
class LeCursor {
 public:
  LeCursor(std::span<const unsigned char> b, const std::string& file, std::string_view what)
      : b_(b), file_(file), what_(what) {}
  void need(std::size_t n) const {
    if (n > b_.size() - i_)
      throw genmod::detail::io_error(file_, "corrupt zip " + std::string(what_) + ": expected " + std::to_string(n) +
                                                " more bytes at offset " + std::to_string(i_) + ", found " +
                                                std::to_string(b_.size() - i_));
  }
  std::uint16_t u16() {
    need(2);
    i_ += 2;
    return genmod::detail::load_le16(b_.data() + i_ - 2);
  }
  std::uint32_t u32() {
    need(4);
    i_ += 4;
    return genmod::detail::load_le32(b_.data() + i_ - 4);
  }
  std::uint64_t u64() {
    need(8);
    i_ += 8;
    return genmod::detail::load_le64(b_.data() + i_ - 8);
  }
  std::span<const unsigned char> bytes(std::size_t n) {
    need(n);
    i_ += n;
    return b_.subspan(i_ - n, n);
  }
  std::size_t pos() const noexcept { return i_; }

 private:
  std::span<const unsigned char> b_;
  const std::string& file_;
  std::string_view what_;
  std::size_t i_ = 0;
};

/// Reads the central directory of a zip archive.
GENMOD_DETAIL_NONTEMPLATE std::vector<ZipMember> read_zip_directory(genmod::detail::RandomAccess& f,
                                                                    std::uint64_t& directory_offset)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  using genmod::detail::io_error;
  const std::string& name = f.name();
  const std::uint64_t size = f.size();
  if (size < 22)
    throw io_error(name, "not a zip (.npz) archive: " + std::to_string(size) +
                             " bytes is too small for the 22-byte end-of-central-directory record");
  // The end record sits in the last 22 + 65535 (maximum comment) bytes.
  const std::uint64_t tail_len = std::min<std::uint64_t>(size, 22 + 65535);
  std::vector<unsigned char> tail(static_cast<std::size_t>(tail_len));
  f.read_at(size - tail_len, tail.data(), tail.size());
  std::int64_t at = -1;
  for (std::int64_t i = static_cast<std::int64_t>(tail.size()) - 22; i >= 0; --i) {
    const auto* p = tail.data() + i;
    if (genmod::detail::load_le32(p) == kZipEndSig &&
        static_cast<std::size_t>(i) + 22 + genmod::detail::load_le16(p + 20) <= tail.size()) {
      at = i;
      break;
    }
  }
  if (at < 0)
    throw io_error(name, "not a zip (.npz) archive or truncated: no end-of-central-directory record (PK\\5\\6) in the last " +
                             std::to_string(tail_len) + " bytes");
  const std::uint64_t end_pos = size - tail_len + static_cast<std::uint64_t>(at);
  LeCursor end(std::span<const unsigned char>(tail).subspan(static_cast<std::size_t>(at)), name, "end record");
  end.u32();
  const std::uint16_t disk = end.u16(), cd_disk = end.u16();
  std::uint64_t n_disk = end.u16(), n_total = end.u16();
  std::uint64_t cd_size = end.u32(), cd_off = end.u32();
  std::uint64_t cd_limit = end_pos;  // the directory must end before the end record
  if (n_total == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    // ZIP64: a locator just before the end record points at the ZIP64 end record.
    if (end_pos < 20) throw io_error(name, "corrupt zip: ZIP64 values without room for a ZIP64 locator");
    unsigned char loc[20];
    f.read_at(end_pos - 20, loc, 20);
    if (genmod::detail::load_le32(loc) != kZip64LocatorSig)
      throw io_error(name, "corrupt zip: the end record needs ZIP64 values but no ZIP64 locator precedes it");
    const std::uint64_t z64_pos = genmod::detail::load_le64(loc + 8);
    if (z64_pos > end_pos - 20 || end_pos - 20 - z64_pos < 56)
      throw io_error(name, "corrupt zip: the ZIP64 end record offset " + std::to_string(z64_pos) + " is out of range");
    unsigned char z[56];
    f.read_at(z64_pos, z, 56);
    LeCursor c(z, name, "ZIP64 end record");
    if (c.u32() != kZip64EndSig) throw io_error(name, "corrupt zip: bad ZIP64 end record signature");
    c.u64();
    c.u16();
    c.u16();
    if (c.u32() != 0 || c.u32() != 0) throw io_error(name, "multi-disk zip archives are not supported");
    n_disk = c.u64();
    n_total = c.u64();
    cd_size = c.u64();
    cd_off = c.u64();
    cd_limit = z64_pos;
  } else if (disk != 0 || cd_disk != 0) {
    throw io_error(name, "multi-disk zip archives are not supported");
  }
  if (n_disk != n_total) throw io_error(name, "multi-disk zip archives are not supported");
  if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
    throw io_error(name, "corrupt zip: the central directory [" + std::to_string(cd_off) + ", +" + std::to_string(cd_size) +
                             ") runs past its end at " + std::to_string(cd_limit));
  // Each central record is at least 46 bytes: bounds the member count before reserving.
  if (n_total > cd_size / 46)
    throw io_error(name, "corrupt zip: " + std::to_string(n_total) + " members cannot fit in a central directory of " +
                             std::to_string(cd_size) + " bytes");
  std::vector<unsigned char> cd(static_cast<std::size_t>(cd_size));
  f.read_at(cd_off, cd.data(), cd.size());
  LeCursor c(cd, name, "central directory");
  std::vector<ZipMember> members;
  members.reserve(static_cast<std::size_t>(n_total));
  for (std::uint64_t k = 0; k < n_total; ++k) {
    if (c.u32() != kZipCentralSig)
      throw io_error(name, "corrupt zip: central directory record " + std::to_string(k) + " has a bad signature");
    ZipMember m;
    c.u16();  // version made by
    c.u16();  // version needed
    m.flags = c.u16();
    m.method = c.u16();
    c.u32();  // DOS time and date
    m.crc = c.u32();
    m.compressed_size = c.u32();
    m.size = c.u32();
    const std::uint16_t name_len = c.u16(), extra_len = c.u16(), comment_len = c.u16();
    const std::uint16_t disk_start = c.u16();
    c.u16();  // internal attributes
    c.u32();  // external attributes
    m.local_offset = c.u32();
    const auto nm = c.bytes(name_len);
    m.name.assign(nm.begin(), nm.end());
    LeCursor extra(c.bytes(extra_len), name, "extra field");
    while (extra.pos() + 4 <= extra_len) {
      const std::uint16_t id = extra.u16(), len = extra.u16();
      LeCursor field(extra.bytes(len), name, "ZIP64 extra field");
      if (id != 0x0001) continue;
      // ZIP64 values appear only for the fields saturated at 0xFFFFFFFF, in this order.
      if (m.size == 0xFFFFFFFF) m.size = field.u64();
      if (m.compressed_size == 0xFFFFFFFF) m.compressed_size = field.u64();
      if (m.local_offset == 0xFFFFFFFF) m.local_offset = field.u64();
    }
    c.bytes(comment_len);
    if (disk_start != 0 && disk_start != 0xFFFF) throw io_error(name, "multi-disk zip archives are not supported");
    members.push_back(std::move(m));
  }
  directory_offset = cd_off;
  return members;
}
#else
    ;
#endif

/// Parses every .npy member of a zip archive.
GENMOD_DETAIL_NONTEMPLATE NpzArchive read_npz_from(genmod::detail::RandomAccess& f)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  using genmod::detail::io_error;
  std::uint64_t cd_off = 0;
  const std::vector<ZipMember> members = read_zip_directory(f, cd_off);
  std::vector<NpzEntry> entries;
  for (const ZipMember& m : members) {
    if (m.name.size() < 4 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0) continue;
    const std::string key = m.name.substr(0, m.name.size() - 4);
    const std::string label = f.name() + " [member '" + m.name + "']";
    for (const auto& e : entries)
      if (e.name == key) throw io_error(f.name(), "corrupt archive: member '" + m.name + "' appears twice");
    if (m.flags & 0x1) throw io_error(label, "encrypted zip members are not supported");
    if (m.method != 0 && m.method != 8)
      throw io_error(label, "unsupported compression method " + std::to_string(m.method) +
                                " (expected 0 = stored or 8 = deflate)");
    if (m.method == 0 && m.compressed_size != m.size)
      throw io_error(label, "corrupt: a stored member has compressed size " + std::to_string(m.compressed_size) +
                                " but size " + std::to_string(m.size));
    if (m.method == 8 && m.size > genmod::detail::max_inflated_size(m.compressed_size))
      throw io_error(label, "corrupt: claims " + std::to_string(m.size) + " bytes from " +
                                std::to_string(m.compressed_size) + " compressed bytes, beyond deflate's ratio limit");
    // The local header repeats the name and has its own extra field; only its lengths matter.
    if (m.local_offset > cd_off || cd_off - m.local_offset < 30)
      throw io_error(label, "corrupt: local header offset " + std::to_string(m.local_offset) +
                                " is outside the member area [0, " + std::to_string(cd_off) + ")");
    unsigned char lh[30];
    f.read_at(m.local_offset, lh, 30);
    if (genmod::detail::load_le32(lh) != kZipLocalSig)
      throw io_error(label, "corrupt: bad local header signature at offset " + std::to_string(m.local_offset));
    const std::uint64_t data_off = m.local_offset + 30 + genmod::detail::load_le16(lh + 26) + genmod::detail::load_le16(lh + 28);
    if (data_off > cd_off || m.compressed_size > cd_off - data_off)
      throw io_error(label, "truncated or corrupt: " + std::to_string(m.compressed_size) + " bytes of member data at offset " +
                                std::to_string(data_off) + " run past the central directory at " + std::to_string(cd_off));
    genmod::detail::RangeSource raw(f, data_off, m.compressed_size, label);
    NpyArray array;
    std::uint32_t crc = 0;
    if (m.method == 0) {
      genmod::detail::CrcSource src(raw);
      array = parse_npy_stream(src);
      crc = src.crc();
    } else {
      genmod::detail::InflateSource inflated(raw, genmod::detail::InflateSource::Format::raw, label,
                                             static_cast<std::int64_t>(m.size));
      genmod::detail::CrcSource src(inflated);
      array = parse_npy_stream(src);
      crc = src.crc();
    }
    if (crc != m.crc)
      throw io_error(label, "corrupt: CRC-32 mismatch (expected " + std::to_string(m.crc) + ", computed " +
                                std::to_string(crc) + ")");
    entries.push_back({key, std::move(array)});
  }
  return NpzArchive(f.name(), std::move(entries));
}
#else
    ;
#endif

/// Streams zip members to a sink (AtomicFile, or MemorySink for in-memory archives).
template <class Sink>
class ZipWriter {
 public:
  explicit ZipWriter(Sink& sink) : sink_(sink) {}

  /// Adds a member whose content is `head` followed by `body` (the .npy header and the data).
  void add(const std::string& name, std::span<const unsigned char> head, std::span<const unsigned char> body,
           const NpzWriteOptions& options) {
    if (name.size() > 0xFFFF) throw ValueError("write_npz: member name longer than 65535 bytes");
    Central c;
    c.name = name;
    c.offset = sink_.offset();
    c.size = head.size() + body.size();
    c.crc = genmod::detail::crc32_update(genmod::detail::crc32_update(0, head.data(), head.size()), body.data(), body.size());
    std::vector<unsigned char> packed;
    if (options.compress) {
      genmod::detail::Deflater d(genmod::detail::Deflater::Format::raw, options.level);
      d.append(head.data(), head.size());
      d.append(body.data(), body.size());
      packed = d.finish();
      c.method = 8;
      c.compressed_size = packed.size();
    } else {
      c.method = 0;
      c.compressed_size = c.size;
    }
    const bool z64 = c.size >= 0xFFFFFFFF || c.compressed_size >= 0xFFFFFFFF;
    std::vector<unsigned char> lh;
    genmod::detail::put_le32(lh, kZipLocalSig);
    genmod::detail::put_le16(lh, z64 ? 45 : 20);
    genmod::detail::put_le16(lh, flags_for(name));
    genmod::detail::put_le16(lh, c.method);
    genmod::detail::put_le16(lh, 0);        // time 00:00:00
    genmod::detail::put_le16(lh, kDate);    // 1980-01-01: fixed, so identical arrays give identical files
    genmod::detail::put_le32(lh, c.crc);
    genmod::detail::put_le32(lh, z64 ? 0xFFFFFFFF : static_cast<std::uint32_t>(c.compressed_size));
    genmod::detail::put_le32(lh, z64 ? 0xFFFFFFFF : static_cast<std::uint32_t>(c.size));
    genmod::detail::put_le16(lh, static_cast<std::uint32_t>(name.size()));
    genmod::detail::put_le16(lh, z64 ? 20 : 0);
    genmod::detail::put_raw(lh, name.data(), name.size());
    if (z64) {
      genmod::detail::put_le16(lh, 0x0001);
      genmod::detail::put_le16(lh, 16);
      genmod::detail::put_le64(lh, c.size);
      genmod::detail::put_le64(lh, c.compressed_size);
    }
    sink_.write(lh.data(), lh.size());
    if (options.compress) {
      sink_.write(packed.data(), packed.size());
    } else {
      sink_.write(head.data(), head.size());
      sink_.write(body.data(), body.size());
    }
    central_.push_back(std::move(c));
  }

  /// Writes the central directory and the end records.
  void finish() {
    const std::uint64_t cd_off = sink_.offset();
    std::vector<unsigned char> cd;
    for (const Central& c : central_) {
      const bool big_size = c.size >= 0xFFFFFFFF || c.compressed_size >= 0xFFFFFFFF;
      const bool big_off = c.offset >= 0xFFFFFFFF;
      std::vector<unsigned char> extra;
      if (big_size) {
        genmod::detail::put_le64(extra, c.size);
        genmod::detail::put_le64(extra, c.compressed_size);
      }
      if (big_off) genmod::detail::put_le64(extra, c.offset);
      genmod::detail::put_le32(cd, kZipCentralSig);
      genmod::detail::put_le16(cd, (3 << 8) | 45);  // made by Unix, zip spec 4.5
      genmod::detail::put_le16(cd, (big_size || big_off) ? 45 : 20);
      genmod::detail::put_le16(cd, flags_for(c.name));
      genmod::detail::put_le16(cd, c.method);
      genmod::detail::put_le16(cd, 0);
      genmod::detail::put_le16(cd, kDate);
      genmod::detail::put_le32(cd, c.crc);
      genmod::detail::put_le32(cd, big_size ? 0xFFFFFFFF : static_cast<std::uint32_t>(c.compressed_size));
      genmod::detail::put_le32(cd, big_size ? 0xFFFFFFFF : static_cast<std::uint32_t>(c.size));
      genmod::detail::put_le16(cd, static_cast<std::uint32_t>(c.name.size()));
      genmod::detail::put_le16(cd, extra.empty() ? 0 : static_cast<std::uint32_t>(extra.size() + 4));
      genmod::detail::put_le16(cd, 0);  // comment
      genmod::detail::put_le16(cd, 0);  // disk
      genmod::detail::put_le16(cd, 0);  // internal attributes
      genmod::detail::put_le32(cd, 0644u << 16);  // external: regular file, rw-r--r--
      genmod::detail::put_le32(cd, big_off ? 0xFFFFFFFF : static_cast<std::uint32_t>(c.offset));
      genmod::detail::put_raw(cd, c.name.data(), c.name.size());
      if (!extra.empty()) {
        genmod::detail::put_le16(cd, 0x0001);
        genmod::detail::put_le16(cd, static_cast<std::uint32_t>(extra.size()));
        genmod::detail::put_raw(cd, extra.data(), extra.size());
      }
    }
    sink_.write(cd.data(), cd.size());
    const std::uint64_t n = central_.size(), cd_size = cd.size();
    std::vector<unsigned char> end;
    const bool z64 = n >= 0xFFFF || cd_off >= 0xFFFFFFFF || cd_size >= 0xFFFFFFFF;
    if (z64) {
      const std::uint64_t z64_off = sink_.offset();
      genmod::detail::put_le32(end, kZip64EndSig);
      genmod::detail::put_le64(end, 44);  // size of the rest of this record
      genmod::detail::put_le16(end, (3 << 8) | 45);
      genmod::detail::put_le16(end, 45);
      genmod::detail::put_le32(end, 0);
      genmod::detail::put_le32(end, 0);
      genmod::detail::put_le64(end, n);
      genmod::detail::put_le64(end, n);
      genmod::detail::put_le64(end, cd_size);
      genmod::detail::put_le64(end, cd_off);
      genmod::detail::put_le32(end, kZip64LocatorSig);
      genmod::detail::put_le32(end, 0);
      genmod::detail::put_le64(end, z64_off);
      genmod::detail::put_le32(end, 1);
    }
    genmod::detail::put_le32(end, kZipEndSig);
    genmod::detail::put_le16(end, 0);
    genmod::detail::put_le16(end, 0);
    genmod::detail::put_le16(end, z64 ? 0xFFFF : static_cast<std::uint32_t>(n));
    genmod::detail::put_le16(end, z64 ? 0xFFFF : static_cast<std::uint32_t>(n));
    genmod::detail::put_le32(end, z64 ? 0xFFFFFFFF : static_cast<std::uint32_t>(cd_size));
    genmod::detail::put_le32(end, z64 ? 0xFFFFFFFF : static_cast<std::uint32_t>(cd_off));
    genmod::detail::put_le16(end, 0);
    sink_.write(end.data(), end.size());
  }

 private:
  static constexpr std::uint32_t kDate = (0u << 9) | (1u << 5) | 1u;  // DOS date: 1980-01-01

  // Bit 11 says the name is UTF-8; set it only when the name is not plain ASCII.
  static std::uint32_t flags_for(const std::string& name) {
    for (unsigned char ch : name)
      if (ch >= 0x80) return 0x0800;
    return 0;
  }

  struct Central {
    std::string name;
    std::uint16_t method = 0;
    std::uint32_t crc = 0;
    std::uint64_t compressed_size = 0, size = 0, offset = 0;
  };

  Sink& sink_;
  std::vector<Central> central_;
};

/// A growing byte buffer with AtomicFile's write/offset interface.
struct MemorySink {
  std::vector<unsigned char> bytes;  ///< everything written
  /// Appends n bytes.
  void write(const void* p, std::size_t n) {
    genmod::detail::put_raw(bytes, p, n);
  }
  /// Bytes written so far.
  std::uint64_t offset() const noexcept { return bytes.size(); }
};

/// Validates entry names (non-empty, unique, no NUL) and arrays (defined) before anything is written.
inline void check_npz_entries(const std::vector<NpzEntry>& entries, const std::string& where) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.name.empty() || e.name.find('\0') != std::string::npos)
      throw ValueError(where + ": entry " + std::to_string(i) + " has an empty name or one containing NUL");
    if (!e.array.defined()) throw ValueError(where + ": the array for '" + e.name + "' is empty (undefined)");
    for (std::size_t j = 0; j < i; ++j)
      if (entries[j].name == e.name) throw ValueError(where + ": the name '" + e.name + "' appears twice");
  }
}

template <class Sink>
void write_npz_to(Sink& sink, const std::vector<NpzEntry>& entries, const NpzWriteOptions& options) {
  ZipWriter<Sink> zip(sink);
  for (const auto& e : entries) {
    const auto head = encode_npy_header(e.array.dtype(), e.array.shape());
    zip.add(e.name + ".npy", head, e.array.bytes(), options);
  }
  zip.finish();
}

}  // namespace detail

/// Reads every array of an .npz file. Throws IOError naming the file (and member) when it is
/// missing, truncated or corrupt.
GENMOD_DETAIL_NONTEMPLATE NpzArchive read_npz(const std::string& path)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  genmod::detail::DiskFile file(path);
  return detail::read_npz_from(file);
}
#else
    ;
#endif

/// Parses .npz bytes held in memory; `name` starts every error message.
inline NpzArchive parse_npz(std::span<const unsigned char> bytes, std::string name = "<memory>") {
  genmod::detail::MemoryFile file(bytes, std::move(name));
  return detail::read_npz_from(file);
}

/// The bytes of an .npz archive holding `entries`.
inline std::vector<unsigned char> encode_npz(const std::vector<NpzEntry>& entries, NpzWriteOptions options = {}) {
  detail::check_npz_entries(entries, "encode_npz");
  detail::MemorySink sink;
  detail::write_npz_to(sink, entries, options);
  return std::move(sink.bytes);
}

/// Writes `entries` as an .npz file that numpy.load opens, atomically. The bytes go to
/// `<path>.tmp.<pid>`, are fsynced, then renamed over `path`.
GENMOD_DETAIL_NONTEMPLATE void write_npz(const std::string& path, const std::vector<NpzEntry>& entries,
                                         NpzWriteOptions options = {})
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  detail::check_npz_entries(entries, "write_npz('" + path + "')");
  genmod::detail::AtomicFile file(path);
  detail::write_npz_to(file, entries, options);
  file.commit();
}
#else
    ;
#endif

}  // namespace genmod::data

// Explicit instantiations of the archive writer for files: declared extern under
// GENMOD_EXTERN_TEMPLATES, defined in genmod/instantiate.cpp
// (genmod/detail/explicit_instantiation.hpp).
#if defined(GENMOD_DETAIL_TEMPLATE)
GENMOD_DETAIL_INSTANTIATE_CLASS(genmod::data::detail::ZipWriter, genmod::detail::AtomicFile)
GENMOD_DETAIL_TEMPLATE void genmod::data::detail::write_npz_to<genmod::detail::AtomicFile>(
    genmod::detail::AtomicFile&, const std::vector<genmod::data::NpzEntry>&, const genmod::data::NpzWriteOptions&);
#endif
