#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "genmod/data/npz.hpp"
#include "support/temp_dir.hpp"

namespace data_npz_test {

using namespace genmod;
using Bytes = std::vector<unsigned char>;

namespace {

using test::TempDir;

// numpy 1.24: np.savez_compressed(f, w=np.arange(6, dtype=np.float32).reshape(2, 3),
//                                 labels=np.array([3, 1, 4], dtype=np.int64))
// (its local headers carry ZIP64 extra fields: numpy writes with force_zip64=True)
const unsigned char kNpCompressedNpz[] = {
    80, 75, 3, 4, 20, 0, 0, 0, 8, 0, 0, 0, 33, 0, 79, 233, 0, 42, 85, 0, 0, 0, 152, 0, 0, 0, 5, 0, 20, 0, 119, 46,
    110, 112, 121, 1, 0, 16, 0, 152, 0, 0, 0, 0, 0, 0, 0, 85, 0, 0, 0, 0, 0, 0, 0, 155, 236, 23, 234, 27, 16, 201,
    200, 80, 198, 80, 173, 158, 146, 90, 156, 92, 164, 110, 165, 160, 110, 147, 102, 162, 174, 163, 160, 158, 150,
    95, 84, 82, 148, 152, 23, 159, 95, 148, 146, 10, 18, 119, 75, 204, 41, 78, 5, 138, 23, 103, 36, 22, 164, 2, 249,
    26, 70, 58, 10, 198, 154, 58, 10, 181, 10, 100, 3, 46, 6, 48, 104, 176, 7, 18, 14, 64, 4, 196, 13, 64, 188, 192,
    1, 0, 80, 75, 3, 4, 20, 0, 0, 0, 8, 0, 0, 0, 33, 0, 88, 224, 99, 116, 77, 0, 0, 0, 152, 0, 0, 0, 10, 0, 20, 0,
    108, 97, 98, 101, 108, 115, 46, 110, 112, 121, 1, 0, 16, 0, 152, 0, 0, 0, 0, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0,
    155, 236, 23, 234, 27, 16, 201, 200, 80, 198, 80, 173, 158, 146, 90, 156, 92, 164, 110, 165, 160, 110, 147, 105,
    161, 174, 163, 160, 158, 150, 95, 84, 82, 148, 152, 23, 159, 95, 148, 146, 10, 18, 119, 75, 204, 41, 78, 5, 138,
    23, 103, 36, 22, 164, 2, 249, 26, 198, 58, 154, 58, 10, 181, 10, 20, 0, 46, 102, 6, 8, 96, 132, 210, 44, 80, 26,
    0, 80, 75, 1, 2, 20, 3, 20, 0, 0, 0, 8, 0, 0, 0, 33, 0, 79, 233, 0, 42, 85, 0, 0, 0, 152, 0, 0, 0, 5, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 128, 1, 0, 0, 0, 0, 119, 46, 110, 112, 121, 80, 75, 1, 2, 20, 3, 20, 0, 0, 0, 8, 0, 0, 0,
    33, 0, 88, 224, 99, 116, 77, 0, 0, 0, 152, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 1, 140, 0, 0, 0,
    108, 97, 98, 101, 108, 115, 46, 110, 112, 121, 80, 75, 5, 6, 0, 0, 0, 0, 2, 0, 2, 0, 107, 0, 0, 0, 21, 1, 0, 0,
    0, 0,
};
// numpy 1.24: np.savez(f, x=np.array([[1.5, -2.0]]), u=np.array([7, 8, 9], dtype=np.uint8))
const unsigned char kNpStoredNpz[] = {
    80, 75, 3, 4, 20, 0, 0, 0, 0, 0, 0, 0, 33, 0, 117, 216, 177, 126, 144, 0, 0, 0, 144, 0, 0, 0, 5, 0, 20, 0, 120,
    46, 110, 112, 121, 1, 0, 16, 0, 144, 0, 0, 0, 0, 0, 0, 0, 144, 0, 0, 0, 0, 0, 0, 0, 147, 78, 85, 77, 80, 89, 1,
    0, 118, 0, 123, 39, 100, 101, 115, 99, 114, 39, 58, 32, 39, 60, 102, 56, 39, 44, 32, 39, 102, 111, 114, 116, 114,
    97, 110, 95, 111, 114, 100, 101, 114, 39, 58, 32, 70, 97, 108, 115, 101, 44, 32, 39, 115, 104, 97, 112, 101, 39,
    58, 32, 40, 49, 44, 32, 50, 41, 44, 32, 125, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 10, 0, 0, 0, 0, 0, 0, 248, 63, 0, 0, 0, 0, 0, 0, 0, 192, 80,
    75, 3, 4, 20, 0, 0, 0, 0, 0, 0, 0, 33, 0, 12, 158, 57, 175, 131, 0, 0, 0, 131, 0, 0, 0, 5, 0, 20, 0, 117, 46,
    110, 112, 121, 1, 0, 16, 0, 131, 0, 0, 0, 0, 0, 0, 0, 131, 0, 0, 0, 0, 0, 0, 0, 147, 78, 85, 77, 80, 89, 1, 0,
    118, 0, 123, 39, 100, 101, 115, 99, 114, 39, 58, 32, 39, 124, 117, 49, 39, 44, 32, 39, 102, 111, 114, 116, 114,
    97, 110, 95, 111, 114, 100, 101, 114, 39, 58, 32, 70, 97, 108, 115, 101, 44, 32, 39, 115, 104, 97, 112, 101, 39,
    58, 32, 40, 51, 44, 41, 44, 32, 125, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 10, 7, 8, 9, 80, 75, 1, 2, 20, 3, 20, 0, 0, 0, 0, 0, 0, 0,
    33, 0, 117, 216, 177, 126, 144, 0, 0, 0, 144, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 1, 0, 0, 0, 0,
    120, 46, 110, 112, 121, 80, 75, 1, 2, 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 33, 0, 12, 158, 57, 175, 131, 0, 0, 0, 131,
    0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 1, 199, 0, 0, 0, 117, 46, 110, 112, 121, 80, 75, 5, 6, 0, 0, 0,
    0, 2, 0, 2, 0, 102, 0, 0, 0, 129, 1, 0, 0, 0, 0,
};

std::vector<data::NpzEntry> sample_entries() {
  return {{"encoder.0.weight", from_data<float>({2, 3}, {1, 2, 3, 4, 5, 6})},
          {"step", from_data<std::int64_t>({1}, {1234})},
          {"pixels", from_data<std::uint8_t>({4}, {0, 1, 254, 255})},
          {"scale", scalar<double>(0.125)}};
}

void check_sample(const data::NpzArchive& a) {
  REQUIRE(a.size() == 4);
  CHECK(a.entries()[0].name == "encoder.0.weight");
  CHECK(allclose(a.at("encoder.0.weight").get<float>(), from_data<float>({2, 3}, {1, 2, 3, 4, 5, 6}), 0, 0));
  CHECK(a.at("step").get<std::int64_t>()[0] == 1234);
  CHECK(a.at("pixels").get<std::uint8_t>()[3] == 255);
  CHECK(a.at("scale").get<double>().item() == 0.125);
}

}  // namespace

TEST_CASE("NPZ round-trips stored and deflated archives", "[data][npz]") {
  TempDir dir;
  data::write_npz(dir.file("s.npz"), sample_entries());
  data::write_npz(dir.file("c.npz"), sample_entries(), {.compress = true});
  check_sample(data::read_npz(dir.file("s.npz")));
  check_sample(data::read_npz(dir.file("c.npz")));
  // Deterministic bytes: the same arrays give the same file.
  CHECK(data::encode_npz(sample_entries()) == data::encode_npz(sample_entries()));
  CHECK_THROWS_WITH(data::read_npz(dir.file("s.npz")).at("nope"),
                    Catch::Contains("s.npz") && Catch::Contains("'nope'") && Catch::Contains("'step'"));
  // No temporary file is left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++files;
  CHECK(files == 2);
}

TEST_CASE("NPZ reads archives written by NumPy", "[data][npz]") {
  const auto c = data::parse_npz(kNpCompressedNpz, "np_compressed.npz");
  REQUIRE(c.size() == 2);
  CHECK(c.at("w").shape() == (Shape{2, 3}));
  CHECK(c.at("w").get<float>()[5] == 5.f);
  CHECK(c.at("labels").get<std::int64_t>()[2] == 4);
  const auto s = data::parse_npz(kNpStoredNpz, "np_stored.npz");
  CHECK(s.at("x").get<double>()[1] == -2.0);
  CHECK(s.at("u").get<std::uint8_t>()[0] == 7);
}

TEST_CASE("NPZ rejects invalid entries before writing anything", "[data][npz]") {
  TempDir dir;
  std::vector<data::NpzEntry> dup = {{"a", zeros<float>({1})}, {"a", zeros<float>({1})}};
  CHECK_THROWS_WITH(data::write_npz(dir.file("d.npz"), dup), Catch::Contains("'a' appears twice"));
  CHECK_THROWS_AS(data::write_npz(dir.file("e.npz"), {{"", zeros<float>({1})}}), ValueError);
  CHECK_THROWS_AS(data::write_npz(dir.file("u.npz"), {{"x", data::NpyArray{}}}), ValueError);
  CHECK_FALSE(std::filesystem::exists(dir.file("d.npz")));
}

TEST_CASE("NPZ rejects every truncation with IOError", "[data][npz][robustness]") {
  for (bool compress : {false, true}) {
    const Bytes full = data::encode_npz({{"w", from_data<float>({3}, {1, 2, 3})}, {"n", from_data<std::int64_t>({1}, {7})}},
                                        {.compress = compress});
    REQUIRE_NOTHROW(data::parse_npz(full));
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO("compress = " << compress << ", truncated to " << n << " of " << full.size() << " bytes");
      CHECK_THROWS_AS(data::parse_npz(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))), IOError);
    }
  }
  const Bytes np(kNpCompressedNpz, kNpCompressedNpz + sizeof kNpCompressedNpz);
  for (std::size_t n = 0; n < np.size(); ++n)
    CHECK_THROWS_AS(data::parse_npz(Bytes(np.begin(), np.begin() + static_cast<std::ptrdiff_t>(n))), IOError);
}

TEST_CASE("NPZ detects corrupted member data through CRC-32 and zlib", "[data][npz][robustness]") {
  for (bool compress : {false, true}) {
    const Bytes full = data::encode_npz({{"w", from_data<float>({4}, {1, 2, 3, 4})}}, {.compress = compress});
    // Member data spans from after the 30-byte local header and the name "w.npy" to the central directory.
    const std::size_t begin = 30 + 5;
    const std::size_t cd = genmod::detail::load_le32(full.data() + full.size() - 6);
    for (std::size_t i = begin; i < cd; ++i) {
      Bytes b = full;
      b[i] ^= 0x01;
      INFO("compress = " << compress << ", flipped byte " << i);
      CHECK_THROWS_AS(data::parse_npz(b, "flip.npz"), IOError);
    }
    // Any byte anywhere: success or IOError, never a crash.
    for (std::size_t i = 0; i < full.size(); ++i) {
      Bytes b = full;
      b[i] ^= 0xA5;
      try {
        (void)data::parse_npz(b, "flip.npz");
      } catch (const IOError&) {
      }
    }
  }
  Bytes b = data::encode_npz({{"w", from_data<float>({4}, {1, 2, 3, 4})}});
  b[30 + 5 + 128] ^= 0x01;  // first data byte of the stored member
  CHECK_THROWS_WITH(data::parse_npz(b, "crc.npz"), Catch::Contains("crc.npz") && Catch::Contains("'w.npy'") &&
                                                       Catch::Contains("CRC-32 mismatch"));
}

TEST_CASE("NPZ refuses absurd directory and member sizes without allocating", "[data][npz][robustness]") {
  // An end record claiming 65534 members in a 46-byte directory.
  Bytes eocd = {0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xfe, 0xff, 0xfe, 0xff, 46, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Bytes z(46, 0);
  z.insert(z.end(), eocd.begin(), eocd.end());
  // A deflated member claiming 2^32 - 2 bytes from a few compressed bytes.
  Bytes c = data::encode_npz({{"w", from_data<float>({1}, {1})}}, {.compress = true});
  const std::size_t cd = genmod::detail::load_le32(c.data() + c.size() - 6);
  c[cd + 24] = 0xfe;  // uncompressed size field of the central record
  c[cd + 25] = 0xff;
  c[cd + 26] = 0xff;
  c[cd + 27] = 0xff;
  const auto before = memory_stats();  // after building the inputs, which use the tensor pool
  CHECK_THROWS_WITH(data::parse_npz(z, "many.npz"), Catch::Contains("65534 members"));
  CHECK_THROWS_WITH(data::parse_npz(c, "bomb.npz"), Catch::Contains("ratio limit"));
  // Not a zip at all.
  CHECK_THROWS_WITH(data::parse_npz(Bytes(100, 'x'), "text.npz"), Catch::Contains("text.npz") && Catch::Contains("not a zip"));
  CHECK(memory_stats().system_allocations == before.system_allocations);
}

TEST_CASE("NPZ refuses unsupported zip features by name", "[data][npz][robustness]") {
  Bytes b = data::encode_npz({{"w", from_data<float>({1}, {1})}});
  const std::size_t cd = genmod::detail::load_le32(b.data() + b.size() - 6);
  Bytes enc = b;
  enc[cd + 8] |= 1;  // encrypted flag
  CHECK_THROWS_WITH(data::parse_npz(enc, "enc.npz"), Catch::Contains("encrypted"));
  Bytes m = b;
  m[cd + 10] = 12;  // bzip2
  CHECK_THROWS_WITH(data::parse_npz(m, "bz.npz"), Catch::Contains("compression method 12"));
}

}  // namespace data_npz_test
