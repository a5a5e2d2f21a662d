#pragma once
/// \file image_file.hpp
/// PNG and JPEG files as uint8 tensors [C, H, W], decoded by stb_image (Debian's libstb: link
/// genmod::images, or -lstb) and written by genmod's own PNG encoder or stb_image_write's JPEG
/// encoder.
///
/// Only PNG and JPEG are accepted. stb_image also reads BMP, GIF, PSD, TGA, HDR, PIC and PNM, but
/// those decoders see far less use and scrutiny; we sniff the magic bytes ourselves (PNG signature
/// 89 50 4E 47 0D 0A 1A 0A, JPEG start-of-image FF D8 FF) and refuse anything else before stb sees
/// a byte of it.
///
/// Before decoding, stbi_info_from_memory reads the header only, and images with a zero extent or
/// more than kMaxImageBytes decoded bytes (H * W * C) are refused, and a PNG's chunks are walked
/// so that none declares more bytes than the file holds, and a JPEG must be long enough to code
/// every block of the image its frame announces: a 100-byte file cannot make us (or stb) allocate
/// gigabytes, nor decode hundreds of megabytes of padding.
///
/// Thread safety: decoding runs in parallel workers (ImageLoader). stb_image keeps no mutable
/// global state on the decode path except (a) its failure reason, which this stb build stores in a
/// thread-local variable (stb_image.h defines STBI_THREAD_LOCAL as thread_local/_Thread_local on
/// every compiler we support, and Debian's libstb.so is built that way: stbi_failure_reason reads
/// it through __tls_get_addr), so each worker reads its own reason; and (b) process-wide flags such
/// as stbi_set_flip_vertically_on_load, which genmod never sets and nobody else should.
///
/// 16-bit PNGs are decoded to 8 bits (stbi_load_from_memory keeps the high byte of each sample).

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/check.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/io/image.hpp"

namespace genmod::data {

/// Channel layout wanted from a decoded image.
enum class ImageChannels {
  keep,  ///< as stored: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)
  grey,  ///< 1 channel; colour is converted to luma (see decode_image)
  rgb,   ///< 3 channels; grey is replicated, alpha dropped
  rgba,  ///< 4 channels; missing alpha is 255 (opaque)
};

/// The container format, sniffed from the first bytes (PNG signature, JPEG SOI FF D8 FF).
enum class ImageFormat { png, jpeg };

/// What a file holds without decoding its pixels.
struct ImageInfo {
  std::int64_t height = 0;                ///< rows
  std::int64_t width = 0;                 ///< columns
  std::int64_t channels = 0;              ///< as stored: 1, 2, 3 or 4 (a palette PNG counts 3, or 4 with transparency)
  ImageFormat format = ImageFormat::png;  ///< the container format
};

/// Largest decoded image accepted, in bytes (H * W * C): 2^28 = 256 MiB, e.g. 9000 x 9000 RGB.
/// Checked from the header before anything is allocated.
inline constexpr std::uint64_t kMaxImageBytes = std::uint64_t{1} << 28;

/// Largest image file read (1 GiB); stb takes the length as an int, so it must stay below 2^31.
inline constexpr std::uint64_t kMaxImageFileBytes = std::uint64_t{1} << 30;

/// "grey", "rgb", "rgba" or "keep".
inline std::string_view channels_name(ImageChannels c) noexcept {
  switch (c) {
    case ImageChannels::keep:
      return "keep";
    case ImageChannels::grey:
      return "grey";
    case ImageChannels::rgb:
      return "rgb";
    case ImageChannels::rgba:
      return "rgba";
  }
  return "?";
}

/// "PNG" or "JPEG".
inline std::string_view format_name(ImageFormat f) noexcept {
  return f == ImageFormat::png ? "PNG" : "JPEG";
}

/// The number of channels a decode with `c` produces from an image storing `stored` channels:
/// 1, 3 or 4, or `stored` for keep.
inline std::int64_t channel_count(ImageChannels c, std::int64_t stored) {
  switch (c) {
    case ImageChannels::keep:
      return stored;
    case ImageChannels::grey:
      return 1;
    case ImageChannels::rgb:
      return 3;
    case ImageChannels::rgba:
      return 4;
  }
  throw ValueError("channel_count: expected an ImageChannels value, got " + std::to_string(static_cast<int>(c)));
}

namespace detail {

/// "42 4d 36 00" for the first (up to) n bytes.
inline std::string hex_prefix(std::span<const unsigned char> bytes, std::size_t n = 8) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < std::min(n, bytes.size()); ++i) {
    if (i) s += ' ';
    s += kDigits[bytes[i] >> 4];
    s += kDigits[bytes[i] & 15];
  }
  return s;
}

inline bool starts_with(std::span<const unsigned char> bytes, std::string_view magic) noexcept {
  if (bytes.size() < magic.size()) return false;
  for (std::size_t i = 0; i < magic.size(); ++i)
    if (bytes[i] != static_cast<unsigned char>(magic[i])) return false;
  return true;
}

/// The format from the magic bytes, or IOError naming what was found instead.
inline ImageFormat sniff_image_format(std::span<const unsigned char> bytes, const std::string& name) {
  if (starts_with(bytes, std::string_view("\x89PNG\r\n\x1a\n", 8))) return ImageFormat::png;
  if (starts_with(bytes, "\xff\xd8\xff")) return ImageFormat::jpeg;
  std::string found;
  if (bytes.empty())
    found = "an empty file";
  else if (starts_with(bytes, "BM"))
    found = "a BMP image";
  else if (starts_with(bytes, "GIF8"))
    found = "a GIF image";
  else if (starts_with(bytes, "8BPS"))
    found = "a PSD image";
  else if (starts_with(bytes, "#?RADIANCE") || starts_with(bytes, "#?RGBE"))
    found = "an HDR image";
  else if (starts_with(bytes, "RIFF"))
    found = "a RIFF (WebP?) file";
  else if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '7')
    found = "a PNM image";
  else
    found = "neither signature";
  if (!bytes.empty()) found += " (first bytes " + hex_prefix(bytes) + ")";
  throw genmod::detail::io_error(name, "expected a PNG or JPEG image, found " + found);
}

/// stb's reason for the last failure on this thread (thread-local, see the file comment).
inline std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r && *r ? r : "unknown error";
}

/// Frees stb's pixel buffer on every path.
struct StbFree {
  void operator()(stbi_uc* p) const noexcept { stbi_image_free(p); }
};

/// The header read by stb (no pixels decoded), with the format checks and the size limit applied
/// for an output of `channels`.
inline ImageInfo checked_info(std::span<const unsigned char> bytes, const std::string& name,
                              ImageChannels channels = ImageChannels::keep) {
  const ImageFormat format = sniff_image_format(bytes, name);
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw genmod::detail::io_error(
        name, "file is " + std::to_string(bytes.size()) + " bytes, more than stb_image can read (2^31 - 1)");
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c))
    throw genmod::detail::io_error(
        name, "corrupt or truncated " + std::string(format_name(format)) + " header: " + stb_reason());
  if (w <= 0 || h <= 0 || c < 1 || c > 4)
    throw genmod::detail::io_error(name, "corrupt " + std::string(format_name(format)) +
                                             " header: " + std::to_string(h) + " x " + std::to_string(w) + " pixels, " +
                                             std::to_string(c) + " channels");
  const auto out_c = static_cast<std::uint64_t>(std::max<std::int64_t>(channel_count(channels, c), c));
  const std::uint64_t bytes_needed = static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) * out_c;
  if (bytes_needed > kMaxImageBytes)
    throw genmod::detail::io_error(name, "image of " + std::to_string(h) + " x " + std::to_string(w) + " x " +
                                             std::to_string(out_c) + " would decode to " +
                                             std::to_string(bytes_needed) + " bytes, more than the limit of " +
                                             std::to_string(kMaxImageBytes));
  return {h, w, c, format};
}

/// Walks a PNG's chunks (4-byte big-endian length, 4-byte type, data, 4-byte CRC) up to IEND and
/// refuses a chunk whose data runs past the end of the file. stb_image grows its IDAT buffer to the
/// declared length before it finds the data missing, so without this a 100-byte file declaring a
/// 1.6 GB chunk makes it allocate 2 GiB. The PNG specification caps a chunk at 2^31 - 1 bytes.
/// Chunk headers cut short are left to stb, which reports them.
inline void check_png_chunks(std::span<const unsigned char> bytes, const std::string& name) {
  std::size_t at = 8;  // after the signature
  while (bytes.size() - at >= 8) {
    const std::uint32_t length = genmod::detail::load_be32(bytes.data() + at);
    const std::string type(reinterpret_cast<const char*>(bytes.data() + at + 4), 4);
    const std::size_t remain = bytes.size() - at - 8;
    const auto what = [&] {
      std::string printable;
      for (const char ch : type) printable += ch >= 32 && ch < 127 ? ch : '?';
      return "PNG chunk '" + printable + "' at byte " + std::to_string(at) + " declares " + std::to_string(length) +
             " bytes";
    };
    if (length > 0x7fffffffu)
      throw genmod::detail::io_error(name, "corrupt " + what() + ", more than the PNG limit of 2^31 - 1");
    if (length > remain)
      throw genmod::detail::io_error(
          name, "truncated or corrupt " + what() + " but only " + std::to_string(remain) + " remain in the file");
    if (type == "IEND") return;
    at += 8 + std::size_t{length} + std::min<std::size_t>(4, remain - length);  // data, then CRC
  }
}

/// Refuses a JPEG too short for the image its frame header announces. stb_image decodes a JPEG
/// whose entropy-coded data ends early by padding the rest, so without this a 560-byte file
/// announcing 4102 x 20744 pixels decodes (to grey) into 255 MB, which takes seconds. The bound:
/// stb decodes Huffman-coded JPEGs only, every 8 x 8 block of every component is coded with at least
/// one Huffman symbol (its DC difference; a baseline block also needs an AC symbol), and a symbol
/// takes at least one bit, so the file holds at least blocks / 8 bytes for its largest component,
/// which has floor(floor(W h_i / h_max) / 8) x floor(floor(H v_i / v_max) / 8) blocks for
/// sampling factors h_i x v_i. Segments it cannot follow are left to stb, which reports them.
inline void check_jpeg_length(std::span<const unsigned char> bytes, const std::string& name) {
  std::size_t at = 2;  // after SOI
  while (at + 4 <= bytes.size()) {
    if (bytes[at] != 0xff) {  // stb skips bytes between segments until the next marker
      ++at;
      continue;
    }
    const unsigned char marker = bytes[at + 1];
    if (marker == 0xff) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {  // TEM, RSTn: no length
      at += 2;
      continue;
    }
    const std::size_t length = genmod::detail::load_be16(bytes.data() + at + 2);
    const bool frame = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (marker == 0xda || marker == 0xd9) return;  // start of scan or end of image before a frame
    if (!frame) {
      at += 2 + length;
      continue;
    }
    // SOFn: length, precision, height (2), width (2), components, then (id, h << 4 | v, table).
    if (length < 8 || at + 2 + length > bytes.size()) return;
    const std::uint64_t height = genmod::detail::load_be16(bytes.data() + at + 5);
    const std::uint64_t width = genmod::detail::load_be16(bytes.data() + at + 7);
    const std::size_t components = bytes[at + 9];
    if (components == 0 || length < 8 + 3 * components) return;
    std::uint64_t h_max = 1, v_max = 1;
    for (std::size_t i = 0; i < components; ++i) {
      h_max = std::max<std::uint64_t>(h_max, bytes[at + 11 + 3 * i] >> 4);
      v_max = std::max<std::uint64_t>(v_max, bytes[at + 11 + 3 * i] & 15);
    }
    std::uint64_t blocks = 0;
    for (std::size_t i = 0; i < components; ++i) {
      // One component alone is coded at full size whatever its sampling factors say.
      const std::uint64_t h = components == 1 ? 1 : bytes[at + 11 + 3 * i] >> 4;
      const std::uint64_t v = components == 1 ? 1 : bytes[at + 11 + 3 * i] & 15;
      const std::uint64_t hm = components == 1 ? 1 : h_max, vm = components == 1 ? 1 : v_max;
      blocks = std::max(blocks, (width * h / hm / 8) * (height * v / vm / 8));
    }
    const std::uint64_t needed = blocks / 8;
    if (bytes.size() < needed)
      throw genmod::detail::io_error(
          name, "truncated or corrupt JPEG: a " + std::to_string(height) + " x " + std::to_string(width) +
                    " image of " + std::to_string(blocks) + " coded 8 x 8 blocks needs at least one bit per block, " +
                    std::to_string(needed) + " bytes, but the file has " + std::to_string(bytes.size()));
    return;
  }
}

}  // namespace detail

/// Height, width, stored channels and format of a PNG or JPEG in memory, from its header only.
/// IOError when it is not a PNG or JPEG, the header is corrupt, or the image exceeds kMaxImageBytes.
inline ImageInfo image_info(std::span<const unsigned char> bytes, const std::string& name = "<memory>") {
  return detail::checked_info(bytes, name);
}

/// Decodes a PNG or JPEG in memory to uint8 [C, H, W], C = channel_count(channels, stored).
///
/// Conversions are stb_image's: grey -> RGB replicates the grey value; RGBA -> RGB (and grey +
/// alpha -> grey) drops the alpha channel without compositing; added alpha is 255; colour -> grey
/// is the integer luma (77 R + 150 G + 29 B) >> 8 for PNG, and the decoded Y plane for a YCbCr JPEG.
/// IOError naming `name` and stb's reason for a truncated or corrupt image.
inline Tensor<std::uint8_t> decode_image(std::span<const unsigned char> bytes,
                                         ImageChannels channels = ImageChannels::keep,
                                         const std::string& name = "<memory>") {
  const ImageInfo info = detail::checked_info(bytes, name, channels);
  if (info.format == ImageFormat::png) detail::check_png_chunks(bytes, name);
  if (info.format == ImageFormat::jpeg) detail::check_jpeg_length(bytes, name);
  const int wanted = channels == ImageChannels::keep ? 0 : static_cast<int>(channel_count(channels, info.channels));
  int w = 0, h = 0, stored = 0;
  const std::unique_ptr<stbi_uc, detail::StbFree> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &stored, wanted));
  if (!pixels)
    throw genmod::detail::io_error(
        name, "corrupt or truncated " + std::string(format_name(info.format)) + " image: " + detail::stb_reason());
  // The header was read twice (info, then load); a mismatch would mean stb disagrees with itself.
  if (w != info.width || h != info.height || stored != info.channels)
    throw genmod::detail::io_error(name, "inconsistent " + std::string(format_name(info.format)) + " header");
  const std::int64_t c = wanted ? wanted : stored, plane = std::int64_t{h} * w;
  Tensor<std::uint8_t> out(Shape{c, h, w});
  std::uint8_t* dst = out.data();
  const stbi_uc* src = pixels.get();
  // stb returns interleaved HWC; transpose to planar CHW.
  for (std::int64_t i = 0; i < plane; ++i)
    for (std::int64_t k = 0; k < c; ++k) dst[k * plane + i] = src[i * c + k];
  return out;
}

namespace detail {

/// The first bytes of a file (all of it when smaller than `limit`).
inline std::vector<unsigned char> read_file_prefix(genmod::detail::DiskFile& f, std::uint64_t limit) {
  std::vector<unsigned char> bytes(static_cast<std::size_t>(std::min(f.size(), limit)));
  f.read_at(0, bytes.data(), bytes.size());
  return bytes;
}

}  // namespace detail

/// Reads and decodes a PNG or JPEG file to uint8 [C, H, W] (see decode_image). A missing file is an
/// IOError naming the path.
inline Tensor<std::uint8_t> read_image(const std::string& path, ImageChannels channels = ImageChannels::keep) {
  const auto bytes = genmod::detail::read_file_bytes(path, kMaxImageFileBytes);
  return decode_image(bytes, channels, path);
}

/// The header of an image file (see image_info). Reads the first 64 KiB, which holds the PNG
/// header and, for nearly every JPEG, the frame header after its EXIF/ICC segments; when that is
/// not enough, the whole file.
inline ImageInfo read_image_info(const std::string& path) {
  genmod::detail::DiskFile f(path);
  constexpr std::uint64_t kPrefix = std::uint64_t{1} << 16;
  if (f.size() > kPrefix) {
    const auto head = detail::read_file_prefix(f, kPrefix);
    (void)detail::sniff_image_format(head, path);
    int w = 0, h = 0, c = 0;
    if (stbi_info_from_memory(head.data(), static_cast<int>(head.size()), &w, &h, &c)) return image_info(head, path);
  }
  if (f.size() > kMaxImageFileBytes)
    throw genmod::detail::io_error(path, "file is " + std::to_string(f.size()) + " bytes, more than the limit of " +
                                             std::to_string(kMaxImageFileBytes) + " bytes");
  return image_info(detail::read_file_prefix(f, kMaxImageFileBytes), path);
}

/// [H, W, C] -> [C, H, W] (interleaved to planar).
inline Tensor<std::uint8_t> chw_from_hwc(const Tensor<std::uint8_t>& hwc) {
  check_rank("chw_from_hwc", "image", hwc.defined() ? hwc.shape() : Shape{}, 3, "[H, W, C]");
  const std::int64_t h = hwc.dim(0), w = hwc.dim(1), c = hwc.dim(2), plane = h * w;
  Tensor<std::uint8_t> out(Shape{c, h, w});
  const std::uint8_t* src = hwc.data();
  std::uint8_t* dst = out.data();
  for (std::int64_t i = 0; i < plane; ++i)
    for (std::int64_t k = 0; k < c; ++k) dst[k * plane + i] = src[i * c + k];
  return out;
}

/// [C, H, W] -> [H, W, C] (planar to interleaved).
inline Tensor<std::uint8_t> hwc_from_chw(const Tensor<std::uint8_t>& chw) {
  check_rank("hwc_from_chw", "image", chw.defined() ? chw.shape() : Shape{}, 3, "[C, H, W]");
  const std::int64_t c = chw.dim(0), h = chw.dim(1), w = chw.dim(2), plane = h * w;
  Tensor<std::uint8_t> out(Shape{h, w, c});
  const std::uint8_t* src = chw.data();
  std::uint8_t* dst = out.data();
  for (std::int64_t i = 0; i < plane; ++i)
    for (std::int64_t k = 0; k < c; ++k) dst[i * c + k] = src[k * plane + i];
  return out;
}

namespace detail {

/// Lower-case extension of a path, with the dot ("" when none).
inline std::string lower_extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  for (char& ch : ext)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return ext;
}

/// Sink of stbi_write_jpg_to_func. It is called from C code, so nothing may throw through it: an
/// allocation failure is recorded and reported after stb returns.
struct JpegSink {
  std::vector<unsigned char> bytes;
  bool failed = false;
  static void append(void* context, void* data, int size) noexcept {
    auto* sink = static_cast<JpegSink*>(context);
    if (sink->failed || size <= 0) return;
    try {
      genmod::detail::put_raw(sink->bytes, data, static_cast<std::size_t>(size));
    } catch (...) {
      sink->failed = true;
    }
  }
};

}  // namespace detail

/// Writes uint8 [C, H, W] as a file whose extension picks the format: ".png" (C in {1, 3, 4},
/// lossless, genmod's encoder) or ".jpg"/".jpeg" (C in {1, 3}, baseline JPEG with 4:2:0 chroma
/// subsampling from stb_image_write at `jpeg_quality` in [1, 100]; stb always writes three
/// components, so a grey image comes back from read_image with 3 equal-ish channels unless read
/// with ImageChannels::grey). Written atomically.
/// ShapeError for other shapes, ValueError for other extensions or qualities.
inline void write_image(const std::string& path, const Tensor<std::uint8_t>& chw, int jpeg_quality = 95) {
  const std::string ext = detail::lower_extension(path);
  const bool png = ext == ".png", jpeg = ext == ".jpg" || ext == ".jpeg";
  check_arg(png || jpeg, "write_image", "a path ending in .png, .jpg or .jpeg", "", "'" + path + "'");
  check_rank("write_image", "image", chw.defined() ? chw.shape() : Shape{}, 3, "[C, H, W]");
  const std::int64_t c = chw.dim(0), h = chw.dim(1), w = chw.dim(2);
  check_shape_arg(png ? (c == 1 || c == 3 || c == 4) : (c == 1 || c == 3), "write_image",
                  png ? "a PNG image with 1, 3 or 4 channels" : "a JPEG image with 1 or 3 channels (no alpha)", "",
                  "shape " + chw.shape().to_string());
  // JPEG stores extents in 16 bits; PNG in 31 (encode_png checks those).
  check_shape_arg(h >= 1 && w >= 1 && (png || (h <= 65535 && w <= 65535)), "write_image",
                  png ? "positive extents" : "extents in [1, 65535]", "", "shape " + chw.shape().to_string());
  if (png) {
    io::write_png(path, hwc_from_chw(chw));
    return;
  }
  check_in_range("write_image", "jpeg_quality", jpeg_quality, 1, 100);
  const auto hwc = hwc_from_chw(chw);
  detail::JpegSink sink;
  const int ok = stbi_write_jpg_to_func(&detail::JpegSink::append, &sink, static_cast<int>(w), static_cast<int>(h),
                                        static_cast<int>(c), hwc.data(), jpeg_quality);
  if (!ok || sink.failed || sink.bytes.empty())
    throw genmod::detail::io_error(path, "JPEG encoding failed (stb_image_write)");
  genmod::detail::write_file_atomic(path, sink.bytes);
}

}  // namespace genmod::data
