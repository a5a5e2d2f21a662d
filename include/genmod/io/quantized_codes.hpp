#pragma once
/// \file quantized_codes.hpp
/// Codes stored at 8 bits per value: the storage half of autoencoder compression.
///
/// Each code dimension j gets its own affine map over the codes being stored: q = round((v - lo_j)
/// / step_j), step_j = (hi_j - lo_j) / 255, so the worst rounding error is step_j / 2. The file
/// (".gmqc", little-endian) is
///     "GMQC"  u32 version = 1  u64 n  u64 k  f32 lo[k]  f32 step[k]  u8 q[n * k]  u32 crc32
/// where the CRC covers every byte before it: a truncated, padded or bit-flipped file is an
/// IOError, never codes that decode to garbage. Writes are atomic (temporary file, then rename).
/// Per image that is k bytes, plus (8 k + 32) / n bytes of header and checksum.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::io {

/// Codes [n, k] quantized to one byte each, with the per-dimension maps that undo it.
struct QuantizedCodes {
  ///@{
  /// n codes of k dimensions each.
  std::int64_t n = 0, k = 0;
  ///@}
  std::vector<float> lo;             ///< [k] value of q = 0
  std::vector<float> step;           ///< [k] value of one quantization step
  std::vector<std::uint8_t> values;  ///< [n * k], row-major
};

namespace detail {
inline constexpr char kCodesMagic[4] = {'G', 'M', 'Q', 'C'};
inline constexpr std::uint32_t kCodesVersion = 1;
inline constexpr std::uint64_t kCodesHeader = 4 + 4 + 8 + 8;

inline void check_codes(const QuantizedCodes& q, const char* op) {
  const auto k = static_cast<std::size_t>(std::max<std::int64_t>(q.k, 0));
  if (q.n <= 0 || q.k <= 0 || q.lo.size() != k || q.step.size() != k ||
      q.values.size() != static_cast<std::size_t>(q.n) * k)
    throw ValueError(std::string(op) +
                     ": inconsistent QuantizedCodes: expected n, k > 0 with k-entry tables and n * k values, got n = " +
                     std::to_string(q.n) + ", k = " + std::to_string(q.k) + ", tables of " +
                     std::to_string(q.lo.size()) + " and " + std::to_string(q.step.size()) + ", " +
                     std::to_string(q.values.size()) + " values");
}
}  // namespace detail

/// Quantizes codes [n, k] to 8 bits per value, per dimension over their observed range.
GENMOD_DETAIL_NONTEMPLATE QuantizedCodes quantize_codes(const Tensor<float>& codes)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  if (!codes.defined() || codes.rank() != 2 || codes.dim(0) == 0 || codes.dim(1) == 0)
    throw ShapeError("quantize_codes: expected codes [n, k] with n, k > 0, got " +
                     (codes.defined() ? codes.shape().to_string() : std::string("an undefined tensor")));
  QuantizedCodes q;
  q.n = codes.dim(0);
  q.k = codes.dim(1);
  const auto k = static_cast<std::size_t>(q.k);
  std::vector<float> hi(k, -std::numeric_limits<float>::infinity());
  q.lo.assign(k, std::numeric_limits<float>::infinity());
  for (std::int64_t i = 0; i < q.n; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      const float v = codes(i, static_cast<std::int64_t>(j));
      if (!std::isfinite(v))
        throw ValueError("quantize_codes: code (" + std::to_string(i) + ", " + std::to_string(j) + ") is " +
                         std::to_string(v) + "; codes must be finite");
      q.lo[j] = std::min(q.lo[j], v);
      hi[j] = std::max(hi[j], v);
    }
  q.step.resize(k);
  for (std::size_t j = 0; j < k; ++j) q.step[j] = hi[j] > q.lo[j] ? (hi[j] - q.lo[j]) / 255.f : 1.f;
  q.values.resize(static_cast<std::size_t>(q.n) * k);
  for (std::int64_t i = 0; i < q.n; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      const float t = std::round((codes(i, static_cast<std::int64_t>(j)) - q.lo[j]) / q.step[j]);
      q.values[static_cast<std::size_t>(i) * k + j] = static_cast<std::uint8_t>(std::clamp(t, 0.f, 255.f));
    }
  return q;
}
#else
    ;
#endif

/// The codes back, lo + q * step, [n, k].
inline Tensor<float> dequantize_codes(const QuantizedCodes& q) {
  detail::check_codes(q, "dequantize_codes");
  const auto k = static_cast<std::size_t>(q.k);
  Tensor<float> out(Shape{q.n, q.k});
  for (std::int64_t i = 0; i < q.n; ++i)
    for (std::size_t j = 0; j < k; ++j)
      out(i, static_cast<std::int64_t>(j)) = q.lo[j] + q.step[j] * q.values[static_cast<std::size_t>(i) * k + j];
  return out;
}

/// Writes quantized codes to `path` atomically; returns the file's size in bytes.
inline std::uint64_t save_quantized_codes(const std::string& path, const QuantizedCodes& q) {
  detail::check_codes(q, "save_quantized_codes");
  std::vector<unsigned char> bytes;
  bytes.reserve(static_cast<std::size_t>(detail::kCodesHeader) + 8 * q.lo.size() + q.values.size() + 4);
  genmod::detail::put_raw(bytes, detail::kCodesMagic, 4);
  genmod::detail::put_le32(bytes, detail::kCodesVersion);
  genmod::detail::put_le64(bytes, static_cast<std::uint64_t>(q.n));
  genmod::detail::put_le64(bytes, static_cast<std::uint64_t>(q.k));
  for (const auto* table : {&q.lo, &q.step})
    for (float v : *table) {
      std::uint32_t u;
      std::memcpy(&u, &v, 4);
      genmod::detail::put_le32(bytes, u);
    }
  genmod::detail::put_raw(bytes, q.values.data(), q.values.size());
  genmod::detail::put_le32(bytes, genmod::detail::crc32_update(0, bytes.data(), bytes.size()));
  genmod::detail::AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
  return bytes.size();
}

/// Reads codes written by save_quantized_codes; any mismatch of size, magic, version or
/// checksum is an IOError naming the file and what was expected.
GENMOD_DETAIL_NONTEMPLATE QuantizedCodes load_quantized_codes(const std::string& path)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 36;
  const std::vector<unsigned char> b = genmod::detail::read_file_bytes(path, kMaxBytes);
  const auto fail = [&](const std::string& what) { return genmod::detail::io_error(path, what); };
  if (b.size() < detail::kCodesHeader + 4)
    throw fail("expected a quantized-codes file of at least " + std::to_string(detail::kCodesHeader + 4) +
               " bytes, found " + std::to_string(b.size()));
  if (std::memcmp(b.data(), detail::kCodesMagic, 4) != 0)
    throw fail("not a quantized-codes file (magic 'GMQC' missing)");
  const std::uint32_t version = genmod::detail::load_le32(b.data() + 4);
  if (version != detail::kCodesVersion)
    throw fail("unsupported quantized-codes version " + std::to_string(version) + ", expected " +
               std::to_string(detail::kCodesVersion));
  const std::uint64_t n = genmod::detail::load_le64(b.data() + 8), k = genmod::detail::load_le64(b.data() + 16);
  std::uint64_t nk = 0;
  const std::uint64_t limit = kMaxBytes;
  if (n == 0 || k == 0 || k > limit / 8 || !genmod::detail::checked_mul(n, k, nk) || nk > limit)
    throw fail("implausible code table size n = " + std::to_string(n) + ", k = " + std::to_string(k));
  const std::uint64_t expected = detail::kCodesHeader + 8 * k + nk + 4;
  if (b.size() != expected)
    throw fail("expected " + std::to_string(expected) + " bytes for " + std::to_string(n) + " x " + std::to_string(k) +
               " codes, found " + std::to_string(b.size()) +
               (b.size() < expected ? " (truncated)" : " (trailing bytes)"));
  const std::uint32_t stored = genmod::detail::load_le32(b.data() + expected - 4);
  const std::uint32_t actual = genmod::detail::crc32_update(0, b.data(), static_cast<std::size_t>(expected - 4));
  if (stored != actual) throw fail("checksum mismatch: the file is corrupt");
  QuantizedCodes q;
  q.n = static_cast<std::int64_t>(n);
  q.k = static_cast<std::int64_t>(k);
  const unsigned char* p = b.data() + detail::kCodesHeader;
  for (auto* table : {&q.lo, &q.step}) {
    table->resize(static_cast<std::size_t>(k));
    for (auto& v : *table) {
      const std::uint32_t u = genmod::detail::load_le32(p);
      std::memcpy(&v, &u, 4);
      p += 4;
      if (!std::isfinite(v)) throw fail("a quantization table entry is not finite");
    }
  }
  q.values.assign(p, p + nk);
  return q;
}
#else
    ;
#endif

}  // namespace genmod::io
