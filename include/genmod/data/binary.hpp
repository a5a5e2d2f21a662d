#pragma once
/// \file binary.hpp
/// Byte-level plumbing shared by every genmod file format: bounded readers over files and memory,
/// a streaming inflater with a size cap, little/big-endian decoding, and an atomic file writer.
///
/// Why a `Source` abstraction: every parser (IDX, NPY, NPZ members) validates a header, then
/// checks the size the header claims against what the input can still hold *before* allocating,
/// then reads the payload straight into the tensor. A `Source` knows an upper bound on its
/// remaining bytes (exact for files, memory and zip members whose size is declared; a compression-
/// ratio bound for a gzip stream), which is what makes "a 20-byte file claiming 2^40 elements"
/// fail cleanly instead of allocating. The same parsers run on memory for the fuzzers.
///
/// POSIX only (open/pread/fsync/rename): genmod targets Linux.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::detail {

/// Hard cap on the bytes one inflated stream may produce (64 GiB), whatever its header claims.
inline constexpr std::uint64_t kMaxInflatedBytes = std::uint64_t{1} << 36;

/// Deflate cannot expand data by more than about 1032:1 (a 258-byte match costs at least 2 bits),
/// so N compressed bytes can never hold more than this many bytes of output.
inline std::uint64_t max_inflated_size(std::uint64_t compressed) noexcept {
  constexpr std::uint64_t kRatio = 1032, kSlack = 4096;
  if (compressed > (kMaxInflatedBytes - kSlack) / kRatio) return kMaxInflatedBytes;
  return compressed * kRatio + kSlack;
}

/// IOError whose message starts with the file's name.
inline IOError io_error(std::string_view file, std::string_view what) {
  std::string msg;
  msg.reserve(file.size() + what.size() + 2);
  msg += file;
  msg += ": ";
  msg += what;
  return IOError(msg);
}

/// errno as text, for messages.
inline std::string errno_text(int err) { return std::strerror(err); }

/// a * b, or false when the product overflows uint64.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  return !__builtin_mul_overflow(a, b, &out);
}

/// Largest product of extents a parsed header may claim (2^62). Applied to the product of the
/// non-zero extents, so that no partial product (Shape::numel, Shape::stride) can overflow int64
/// even when another extent is zero.
inline constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 62;

/// Folds one extent into `nonzero_product` (the product of the non-zero extents so far); false
/// when it would exceed kMaxElements.
inline bool fold_extent(std::uint64_t extent, std::uint64_t& nonzero_product) noexcept {
  if (extent == 0) return true;
  return checked_mul(nonzero_product, extent, nonzero_product) && nonzero_product <= kMaxElements;
}

/// Little-endian / big-endian decoding from raw bytes (no alignment assumptions).
inline std::uint16_t load_le16(const unsigned char* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint16_t load_be16(const unsigned char* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t load_le32(const unsigned char* p) noexcept {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}
inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  return std::uint64_t{load_le32(p)} | (std::uint64_t{load_le32(p + 4)} << 32);
}
inline std::uint32_t load_be32(const unsigned char* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

/// Appends the `width` low bytes of v, least significant first (little-endian) or last.
///
/// Written as resize-then-store rather than push_back: GCC 12 at -O3 reports false
/// -Wstringop-overflow warnings for push_back/insert sequences on a vector built from an
/// initializer list, and genmod's headers must stay -Werror clean for their users.
inline void put_bytes(std::vector<unsigned char>& out, std::uint64_t v, int width, bool little) {
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(width));
  unsigned char* p = out.data() + at;
  for (int i = 0; i < width; ++i) p[little ? i : width - 1 - i] = static_cast<unsigned char>(v >> (8 * i));
}
/// Appends little-endian integers to a byte buffer (zip and npy headers).
inline void put_le16(std::vector<unsigned char>& out, std::uint32_t v) { put_bytes(out, v, 2, true); }
inline void put_le32(std::vector<unsigned char>& out, std::uint32_t v) { put_bytes(out, v, 4, true); }
inline void put_le64(std::vector<unsigned char>& out, std::uint64_t v) { put_bytes(out, v, 8, true); }
/// Appends a big-endian 32-bit integer (IDX and PNG).
inline void put_be32(std::vector<unsigned char>& out, std::uint32_t v) { put_bytes(out, v, 4, false); }
/// Appends raw bytes.
inline void put_raw(std::vector<unsigned char>& out, const void* data, std::size_t n) {
  if (n == 0) return;
  const std::size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, data, n);
}

/// CRC-32 (zip/PNG/gzip polynomial) of a buffer of any length, continuing from `crc`.
inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, std::size_t{1} << 30));
    crc = static_cast<std::uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

// ------------------------------------------------------------------------------------------------
// Random-access inputs: a file on disk or a span of memory.

/// Bytes addressable by offset, with a name for error messages.
class RandomAccess {
 public:
  virtual ~RandomAccess() = default;
  /// Total size in bytes.
  virtual std::uint64_t size() const noexcept = 0;
  /// Copies bytes [offset, offset + n) into dst; the caller has checked the range.
  virtual void read_at(std::uint64_t offset, void* dst, std::size_t n) = 0;
  /// The file name (or a label for memory) that every error message starts with.
  const std::string& name() const noexcept { return name_; }

 protected:
  explicit RandomAccess(std::string name) : name_(std::move(name)) {}
  RandomAccess(const RandomAccess&) = default;
  RandomAccess& operator=(const RandomAccess&) = default;

 private:
  std::string name_;
};

/// A span of memory seen as a file (fuzzers and in-memory round trips).
class MemoryFile final : public RandomAccess {
 public:
  MemoryFile(std::span<const unsigned char> bytes, std::string name) : RandomAccess(std::move(name)), bytes_(bytes) {}
  std::uint64_t size() const noexcept override { return bytes_.size(); }
  void read_at(std::uint64_t offset, void* dst, std::size_t n) override {
    if (n) std::memcpy(dst, bytes_.data() + offset, n);
  }

 private:
  std::span<const unsigned char> bytes_;
};

/// A regular file read with pread (no shared file position, so it is safe to share).
class DiskFile final : public RandomAccess {
 public:
  explicit DiskFile(const std::string& path) : RandomAccess(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      throw io_error(path, "cannot open for reading: " + errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      // Directories and pipes open fine but have no size to check headers against.
      throw io_error(path, "is not a regular file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  DiskFile(const DiskFile&) = delete;
  DiskFile& operator=(const DiskFile&) = delete;
  ~DiskFile() override { ::close(fd_); }

  std::uint64_t size() const noexcept override { return size_; }

  void read_at(std::uint64_t offset, void* dst, std::size_t n) override {
    auto* out = static_cast<unsigned char*>(dst);
    while (n > 0) {
      const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
      const ssize_t got = ::pread(fd_, out, chunk, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        const int err = errno;
        throw io_error(name(), "read error at offset " + std::to_string(offset) + ": " + errno_text(err));
      }
      if (got == 0)  // the file shrank after we measured it
        throw io_error(name(), "unexpected end of file at offset " + std::to_string(offset) + " (it was " +
                                   std::to_string(size_) + " bytes when opened)");
      out += got;
      n -= static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
    }
  }

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// True when the file exists and is a regular file (no exception).
inline bool is_regular_file(const std::string& path) noexcept {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// The whole content of a file, refusing files larger than max_bytes before reading them.
inline std::vector<unsigned char> read_file_bytes(const std::string& path, std::uint64_t max_bytes) {
  DiskFile f(path);
  if (f.size() > max_bytes)
    throw io_error(path, "file is " + std::to_string(f.size()) + " bytes, more than the limit of " +
                             std::to_string(max_bytes) + " bytes");
  std::vector<unsigned char> bytes(static_cast<std::size_t>(f.size()));
  f.read_at(0, bytes.data(), bytes.size());
  return bytes;
}

// ------------------------------------------------------------------------------------------------
// Sequential inputs.

/// A sequential byte stream with a bound on what is left, so parsers can check sizes before
/// allocating.
class Source {
 public:
  virtual ~Source() = default;
  /// Reads exactly n bytes or throws IOError saying what was expected (`what`) and what was found.
  virtual void read(void* dst, std::size_t n, std::string_view what) = 0;
  /// An upper bound on the bytes left in the stream.
  virtual std::uint64_t remaining_bound() const noexcept = 0;
  /// True when remaining_bound() is the exact number of bytes left.
  virtual bool remaining_is_exact() const noexcept = 0;
  /// True when the stream holds no further byte (may read ahead one byte to find out).
  virtual bool at_end() = 0;
  /// Bytes consumed so far (for messages).
  virtual std::uint64_t position() const noexcept = 0;
  /// The name every error message starts with.
  virtual const std::string& name() const noexcept = 0;

  /// Throws IOError unless the stream is exhausted (trailing bytes mean a corrupt or foreign file).
  void expect_end(std::string_view format) {
    if (!at_end())
      throw io_error(name(), "unexpected data after the end of the " + std::string(format) + " payload (at byte " +
                                 std::to_string(position()) + ")");
  }

  /// Throws IOError unless `needed` bytes of `what` can still be in the stream. Called before
  /// allocating anything whose size came from a header.
  void require_available(std::uint64_t needed, std::string_view what) const {
    const std::uint64_t left = remaining_bound();
    if (needed > left)
      throw io_error(name(), "truncated or corrupt: the header claims " + std::to_string(needed) + " bytes of " +
                                 std::string(what) + ", but " +
                                 (remaining_is_exact() ? "only " + std::to_string(left) + " bytes remain"
                                                       : "the compressed data can hold at most " + std::to_string(left)));
    if (remaining_is_exact() && needed < left)
      throw io_error(name(), "corrupt: expected " + std::to_string(needed) + " bytes of " + std::string(what) +
                                 ", found " + std::to_string(left));
  }
};

/// Bytes [begin, begin + length) of a RandomAccess.
class RangeSource final : public Source {
 public:
  RangeSource(RandomAccess& file, std::uint64_t begin, std::uint64_t length, std::string name)
      : file_(file), begin_(begin), length_(length), name_(std::move(name)) {
    if (begin > file.size() || length > file.size() - begin)
      throw io_error(file.name(), "truncated: expected " + std::to_string(length) + " bytes of '" + name_ +
                                      "' at offset " + std::to_string(begin) + ", but the file has " +
                                      std::to_string(file.size()) + " bytes");
  }
  explicit RangeSource(RandomAccess& file) : RangeSource(file, 0, file.size(), file.name()) {}

  void read(void* dst, std::size_t n, std::string_view what) override {
    if (n > length_ - pos_)
      throw io_error(name_, "truncated: expected " + std::to_string(n) + " bytes of " + std::string(what) + " at byte " +
                                std::to_string(pos_) + ", found " + std::to_string(length_ - pos_));
    file_.read_at(begin_ + pos_, dst, n);
    pos_ += n;
  }
  /// Reads up to n bytes; returns how many (0 at the end).
  std::size_t read_some(void* dst, std::size_t n) {
    const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, length_ - pos_));
    file_.read_at(begin_ + pos_, dst, k);
    pos_ += k;
    return k;
  }
  std::uint64_t remaining_bound() const noexcept override { return length_ - pos_; }
  bool remaining_is_exact() const noexcept override { return true; }
  bool at_end() override { return pos_ == length_; }
  std::uint64_t position() const noexcept override { return pos_; }
  const std::string& name() const noexcept override { return name_; }

 private:
  RandomAccess& file_;
  std::uint64_t begin_, length_, pos_ = 0;
  std::string name_;
};

/// Inflates a gzip or raw-deflate stream read from a RangeSource, with a cap on the output.
///
/// When the output size is declared (zip members), the source is exact and the stream must end
/// exactly there; otherwise (a .gz file) the bound is the deflate ratio limit of the compressed
/// bytes left, capped by kMaxInflatedBytes.
class InflateSource final : public Source {
 public:
  /// Container of the deflate stream.
  enum class Format { gzip, raw };

  /// `declared_size` < 0 means unknown (gzip files).
  InflateSource(RangeSource& upstream, Format format, std::string name, std::int64_t declared_size = -1)
      : up_(upstream), name_(std::move(name)), declared_(declared_size) {
    in_.resize(std::size_t{1} << 16);
    const int window = format == Format::gzip ? 16 + MAX_WBITS : -MAX_WBITS;
    if (inflateInit2(&zs_, window) != Z_OK) throw io_error(name_, "zlib: inflateInit2 failed");
  }
  InflateSource(const InflateSource&) = delete;
  InflateSource& operator=(const InflateSource&) = delete;
  ~InflateSource() override { inflateEnd(&zs_); }

  void read(void* dst, std::size_t n, std::string_view what) override;

  std::uint64_t remaining_bound() const noexcept override {
    if (declared_ >= 0) return static_cast<std::uint64_t>(declared_) - produced_;
    const std::uint64_t bound = max_inflated_size(up_.remaining_bound() + zs_.avail_in);
    return std::min(bound, kMaxInflatedBytes - produced_);
  }
  bool remaining_is_exact() const noexcept override { return declared_ >= 0; }

  bool at_end() override {
    if (ended_) return true;
    unsigned char probe = 0;
    // Peeking one byte is fine: a caller asks only once the payload is complete.
    if (inflate_into(&probe, 1) == 0) return true;
    --produced_;  // the probe byte was not consumed by the caller, but it exists: not at the end
    pending_probe_ = true;
    return false;
  }

  std::uint64_t position() const noexcept override { return produced_; }
  const std::string& name() const noexcept override { return name_; }

 private:
  // Inflates up to n bytes into dst; returns the count (less than n only when the stream ended).
  std::size_t inflate_into(unsigned char* dst, std::size_t n);

  RangeSource& up_;
  std::string name_;
  std::int64_t declared_;
  std::uint64_t produced_ = 0;
  bool ended_ = false;
  bool pending_probe_ = false;
  z_stream zs_{};
  std::vector<unsigned char> in_;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// InflateSource's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE void InflateSource::read(void* dst, std::size_t n, std::string_view what) {
  if (declared_ >= 0 && n > static_cast<std::uint64_t>(declared_) - produced_)
    throw io_error(name_, "truncated: expected " + std::to_string(n) + " bytes of " + std::string(what) + " at byte " +
                              std::to_string(produced_) + ", but the member declares only " +
                              std::to_string(static_cast<std::uint64_t>(declared_) - produced_) + " more");
  const std::size_t got = inflate_into(static_cast<unsigned char*>(dst), n);
  if (got < n)
    throw io_error(name_, "truncated: expected " + std::to_string(n) + " bytes of " + std::string(what) + " at byte " +
                              std::to_string(produced_ - got) + ", but the compressed stream ends after " +
                              std::to_string(got));
}

GENMOD_DETAIL_NONTEMPLATE std::size_t InflateSource::inflate_into(unsigned char* dst, std::size_t n) {
  if (pending_probe_) throw io_error(name_, "internal: read after a failed end check");
  std::size_t done = 0;
  while (done < n && !ended_) {
    if (zs_.avail_in == 0) {
      const std::size_t k = up_.read_some(in_.data(), in_.size());
      zs_.next_in = in_.data();
      zs_.avail_in = static_cast<uInt>(k);
      if (k == 0)
        throw io_error(name_, "truncated compressed stream: the input ended after " + std::to_string(produced_) +
                                  " bytes of output" +
                                  (declared_ >= 0 ? " (the member declares " + std::to_string(declared_) + ")" : ""));
    }
    const std::size_t want = std::min<std::size_t>(n - done, std::size_t{1} << 30);
    zs_.next_out = dst + done;
    zs_.avail_out = static_cast<uInt>(want);
    const int rc = ::inflate(&zs_, Z_NO_FLUSH);
    const std::size_t out = want - zs_.avail_out;
    done += out;
    produced_ += out;
    if (produced_ > kMaxInflatedBytes)
      throw io_error(name_, "decompressed data exceeds the cap of " + std::to_string(kMaxInflatedBytes) + " bytes");
    if (rc == Z_STREAM_END) {
      ended_ = true;
      if (zs_.avail_in != 0 || up_.remaining_bound() != 0)
        throw io_error(name_, "corrupt: " + std::to_string(zs_.avail_in + up_.remaining_bound()) +
                                  " unexpected bytes after the end of the compressed stream");
      if (declared_ >= 0 && produced_ != static_cast<std::uint64_t>(declared_))
        throw io_error(name_, "corrupt: the member declares " + std::to_string(declared_) +
                                  " uncompressed bytes, but its stream holds " + std::to_string(produced_));
    } else if (rc == Z_BUF_ERROR) {
      // No progress possible: zlib needs more input, which the next loop iteration supplies
      // (or reports as truncation).
      if (zs_.avail_in != 0 && out == 0)
        throw io_error(name_,
                       "corrupt compressed stream (no progress at output byte " + std::to_string(produced_) + ")");
    } else if (rc != Z_OK) {
      throw io_error(name_, std::string("corrupt compressed stream at output byte ") + std::to_string(produced_) +
                                ": " + (zs_.msg ? zs_.msg : "zlib error " + std::to_string(rc)));
    }
  }
  return done;
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

/// Wraps a Source and keeps the CRC-32 of everything read through it (zip member checks).
class CrcSource final : public Source {
 public:
  explicit CrcSource(Source& inner) : inner_(inner) {}
  void read(void* dst, std::size_t n, std::string_view what) override {
    inner_.read(dst, n, what);
    crc_ = crc32_update(crc_, dst, n);
  }
  std::uint64_t remaining_bound() const noexcept override { return inner_.remaining_bound(); }
  bool remaining_is_exact() const noexcept override { return inner_.remaining_is_exact(); }
  bool at_end() override { return inner_.at_end(); }
  std::uint64_t position() const noexcept override { return inner_.position(); }
  const std::string& name() const noexcept override { return inner_.name(); }
  /// CRC-32 of the bytes read so far.
  std::uint32_t crc() const noexcept { return crc_; }

 private:
  Source& inner_;
  std::uint32_t crc_ = 0;
};

/// True when the first bytes are the gzip magic (1f 8b): we detect compression by content, not
/// by file extension.
inline bool has_gzip_magic(RandomAccess& f) {
  if (f.size() < 2) return false;
  unsigned char m[2];
  f.read_at(0, m, 2);
  return m[0] == 0x1f && m[1] == 0x8b;
}

// ------------------------------------------------------------------------------------------------
// Compression.

/// Streaming deflate into memory: zlib-wrapped (PNG), gzip (.gz) or raw (zip members).
class Deflater {
 public:
  /// Container of the produced deflate stream.
  enum class Format { zlib, gzip, raw };

  /// `level`: 0 (store) to 9 (smallest); 6 is zlib's default balance.
  explicit Deflater(Format format, int level = 6) {
    const int window = format == Format::gzip ? 16 + MAX_WBITS : format == Format::raw ? -MAX_WBITS : MAX_WBITS;
    if (deflateInit2(&zs_, level, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw IOError("zlib: deflateInit2 failed (level " + std::to_string(level) + ")");
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  ~Deflater() { deflateEnd(&zs_); }

  /// Compresses n more bytes.
  void append(const void* data, std::size_t n) { run(static_cast<const unsigned char*>(data), n, Z_NO_FLUSH); }

  /// Ends the stream and returns the compressed bytes.
  std::vector<unsigned char> finish() {
    run(nullptr, 0, Z_FINISH);
    return std::move(out_);
  }

 private:
  void run(const unsigned char* p, std::size_t n, int flush) {
    do {
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, std::size_t{1} << 30));
      zs_.next_in = const_cast<Bytef*>(p);  // zlib's API is not const-correct; it does not write input
      zs_.avail_in = chunk;
      const int mode = (n == chunk) ? flush : Z_NO_FLUSH;
      int rc;
      do {
        if (out_.size() - used_ < (std::size_t{1} << 15)) out_.resize(std::max<std::size_t>(out_.size() * 2, used_ + (std::size_t{1} << 16)));
        zs_.next_out = out_.data() + used_;
        const std::size_t room = std::min<std::size_t>(out_.size() - used_, std::size_t{1} << 30);
        zs_.avail_out = static_cast<uInt>(room);
        rc = ::deflate(&zs_, mode);
        used_ += room - zs_.avail_out;
        if (rc == Z_STREAM_ERROR) throw IOError("zlib: deflate failed");
      } while (zs_.avail_out == 0 || (mode == Z_FINISH && rc != Z_STREAM_END));
      p += chunk;
      n -= chunk;
    } while (n > 0);
    if (flush == Z_FINISH) out_.resize(used_);
  }

  z_stream zs_{};
  std::vector<unsigned char> out_;
  std::size_t used_ = 0;
};

/// Compresses a buffer in one call.
inline std::vector<unsigned char> deflate_bytes(std::span<const unsigned char> in, Deflater::Format format, int level = 6) {
  Deflater d(format, level);
  d.append(in.data(), in.size());
  return d.finish();
}

// ------------------------------------------------------------------------------------------------
// Atomic output.

/// Writes a file atomically: bytes go to `<path>.tmp.<pid>`, which is flushed to disk (fsync) and
/// then renamed over `path`. A crash at any point leaves either the old file or the new one, never
/// a torn mix: rename(2) replaces the directory entry in one step, and the fsync before it makes
/// sure the new name never points at data still sitting in the page cache.
///
/// If commit() is not reached (an exception), the destructor removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  /// Appends bytes (buffered; large writes go straight to the file).
  void write(const void* data, std::size_t n);
  void write(std::span<const unsigned char> bytes) { write(bytes.data(), bytes.size()); }

  /// Bytes written so far (the offset of the next byte).
  std::uint64_t offset() const noexcept { return written_; }

  /// Flushes, fsyncs, closes and renames the temporary file over the destination.
  void commit();

  /// Name of the temporary file (tests look for it).
  const std::string& temp_path() const noexcept { return tmp_; }

 private:
  static constexpr std::size_t kBufferSize = std::size_t{1} << 16;

  [[noreturn]] void fail(const std::string& op) {
    const int err = errno;
    throw io_error(path_, op + " of temporary file '" + tmp_ + "' failed: " + errno_text(err));
  }

  void flush_buffer() {
    write_all(buf_.data(), buf_.size());
    buf_.clear();
  }

  void write_all(const unsigned char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t k = ::write(fd_, p, std::min<std::size_t>(n, std::size_t{1} << 30));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) fail("write");
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }

  // The rename itself is a change to the directory; fsync it so that it survives a power loss.
  // Failure here is not an error: the file is complete and in place.
  void sync_directory() noexcept {
    const auto slash = path_.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  std::uint64_t written_ = 0;
  std::vector<unsigned char> buf_;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// AtomicFile's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    throw io_error(path_, "cannot create temporary file '" + tmp_ + "': " + errno_text(err));
  }
  buf_.reserve(kBufferSize);
}

GENMOD_DETAIL_NONTEMPLATE void AtomicFile::write(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (buf_.size() + n <= kBufferSize) {
    put_raw(buf_, p, n);
  } else {
    flush_buffer();
    if (n >= kBufferSize)
      write_all(p, n);
    else
      put_raw(buf_, p, n);
  }
  written_ += n;
}

GENMOD_DETAIL_NONTEMPLATE void AtomicFile::commit() {
  flush_buffer();
  if (::fsync(fd_) != 0) fail("fsync");
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail("close");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename to '" + path_ + "'");
  committed_ = true;
  sync_directory();
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

/// Writes `bytes` to `path` atomically (see AtomicFile).
inline void write_file_atomic(const std::string& path, std::span<const unsigned char> bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

}  // namespace genmod::detail
