#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "genmod/data/idx.hpp"
#include "support/temp_dir.hpp"

namespace data_idx_test {

using namespace genmod;
using Bytes = std::vector<unsigned char>;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test.
using test::TempDir;

Tensor<std::uint8_t> small_images() {
  Tensor<std::uint8_t> t(Shape{3, 4, 5});
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return t;
}

bool same(const Tensor<std::uint8_t>& a, const Tensor<std::uint8_t>& b) {
  if (!(a.shape() == b.shape())) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace

TEST_CASE("IDX round-trips plain and gzip files", "[data][idx]") {
  TempDir dir;
  const auto images = small_images();
  data::write_idx(dir.file("a-idx3-ubyte"), images);
  data::write_idx(dir.file("a-idx3-ubyte.gz"), images, {.gzip = true});
  const auto plain = data::read_idx(dir.file("a-idx3-ubyte"));
  const auto gz = data::read_idx(dir.file("a-idx3-ubyte.gz"));
  CHECK(plain.shape() == (Shape{3, 4, 5}));
  CHECK(same(plain, images));
  CHECK(same(gz, images));
  // Labels are rank 1.
  auto labels = from_data<std::uint8_t>({4}, {9, 2, 1, 1});
  const auto back = data::parse_idx(data::encode_idx(labels));
  CHECK(back.shape() == (Shape{4}));
  CHECK(same(back, labels));
}

TEST_CASE("IDX parser reads the documented byte layout", "[data][idx]") {
  // magic 00 00 08 01, one big-endian extent (3), then the bytes.
  const Bytes b = {0, 0, 8, 1, 0, 0, 0, 3, 10, 20, 30};
  const auto t = data::parse_idx(b, "labels.idx");
  REQUIRE(t.shape() == (Shape{3}));
  CHECK(t[0] == 10);
  CHECK(t[2] == 30);
}

TEST_CASE("IDX rejects every truncation of a plain and a gzip file with IOError", "[data][idx][robustness]") {
  for (bool gzip : {false, true}) {
    const Bytes full = data::encode_idx(small_images(), {.gzip = gzip});
    REQUIRE_NOTHROW(data::parse_idx(full));
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO("gzip = " << gzip << ", truncated to " << n << " of " << full.size() << " bytes");
      const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_THROWS_AS(data::parse_idx(cut, "cut.idx"), IOError);
    }
  }
}

TEST_CASE("IDX errors name the file and what was expected vs found", "[data][idx][robustness]") {
  TempDir dir;
  const std::string path = dir.file("bad-idx");
  {
    const Bytes b = {0, 0, 8, 1, 0, 0, 0, 5, 1, 2};  // claims 5 bytes, has 2
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
  }
  CHECK_THROWS_WITH(data::read_idx(path), Catch::Contains(path) && Catch::Contains("5 bytes") && Catch::Contains("2 bytes"));
  // Wrong magic, wrong element type, bad rank, trailing bytes.
  CHECK_THROWS_WITH(data::parse_idx(Bytes{'P', 'K', 3, 4, 0, 0, 0, 0}, "x.idx"),
                    Catch::Contains("x.idx") && Catch::Contains("not an IDX file"));
  CHECK_THROWS_WITH(data::parse_idx(Bytes{0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "f.idx"),
                    Catch::Contains("float32") && Catch::Contains("expected 0x08"));
  CHECK_THROWS_WITH(data::parse_idx(Bytes{0, 0, 8, 0}, "r.idx"), Catch::Contains("rank 0"));
  CHECK_THROWS_WITH(data::parse_idx(Bytes{0, 0, 8, 5}, "r.idx"), Catch::Contains("rank 5"));
  CHECK_THROWS_WITH(data::parse_idx(Bytes{0, 0, 8, 1, 0, 0, 0, 1, 7, 8}, "t.idx"),
                    Catch::Contains("t.idx") && Catch::Contains("expected 1 bytes") && Catch::Contains("found 2"));
  CHECK_THROWS_AS(data::read_idx(dir.file("does-not-exist")), IOError);
  CHECK_THROWS_WITH(data::read_idx(dir.path.string()), Catch::Contains("not a regular file"));
}

TEST_CASE("IDX refuses absurd dimensions without allocating", "[data][idx][robustness]") {
  // 20 bytes claiming 2^16 * 2^16 * 2^8 = 2^40 elements.
  const Bytes b = {0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 2, 3, 4};
  const auto before = memory_stats();
  CHECK_THROWS_WITH(data::parse_idx(b, "huge.idx"), Catch::Contains("1099511627776") && Catch::Contains("4 bytes remain"));
  CHECK(memory_stats().system_allocations == before.system_allocations);
  CHECK(memory_stats().bytes_in_use == before.bytes_in_use);
  // Extents whose product overflows 64 bits.
  const Bytes o = {0, 0, 8, 4, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
  CHECK_THROWS_WITH(data::parse_idx(o, "overflow.idx"), Catch::Contains("overflow"));
  // Found by the fuzzer: a zero extent makes the element count 0, but the other extents still
  // overflow any partial product (Shape::numel, strides), so the header must be refused.
  const Bytes z = {0, 0, 8, 4, 0xf5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 4, 0, 8};
  CHECK_THROWS_WITH(data::parse_idx(z, "zero.idx"), Catch::Contains("overflow"));
  // A zero extent with small others is a valid empty tensor.
  CHECK(data::parse_idx(Bytes{0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 5}).shape() == (Shape{0, 5}));
}

TEST_CASE("gzip IDX claims are capped by the trailer and by deflate's ratio limit", "[data][idx][robustness]") {
  // A small gzip stream whose header claims 10^9 bytes: rejected by the trailer (ISIZE) check...
  Bytes raw = {0, 0, 8, 1};
  genmod::detail::put_be32(raw, 1000000000u);
  raw.resize(raw.size() + 100, 0);
  Bytes gz = genmod::detail::deflate_bytes(raw, genmod::detail::Deflater::Format::gzip);
  const auto before = memory_stats();
  CHECK_THROWS_WITH(data::parse_idx(gz, "bomb.gz"), Catch::Contains("gzip trailer"));
  // ... and, with the trailer forged to agree, by the ratio limit, before allocating a gigabyte.
  const std::uint32_t claimed = 8 + 1000000000u;
  for (int i = 0; i < 4; ++i) gz[gz.size() - 4 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(claimed >> (8 * i));
  CHECK_THROWS_WITH(data::parse_idx(gz, "bomb.gz"), Catch::Contains("at most"));
  CHECK(memory_stats().system_allocations == before.system_allocations);
}

TEST_CASE("Corrupting any byte of a gzip IDX file never crashes", "[data][idx][robustness]") {
  const Bytes full = data::encode_idx(small_images(), {.gzip = true});
  int detected = 0;
  for (std::size_t i = 0; i < full.size(); ++i) {
    Bytes b = full;
    b[i] ^= 0x5A;
    try {
      (void)data::parse_idx(b, "flip.gz");
    } catch (const IOError&) {
      ++detected;
    }
  }
  // Only the gzip header's mtime/xfl/os bytes are free to change (bytes 4..9).
  CHECK(detected >= static_cast<int>(full.size()) - 6);
}

}  // namespace data_idx_test
