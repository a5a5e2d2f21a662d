#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "genmod/data/npy.hpp"
#include "support/temp_dir.hpp"

namespace data_npy_test {

using namespace genmod;
using Bytes = std::vector<unsigned char>;

namespace {

using test::TempDir;

// numpy 1.24: np.save(f, np.array([1.0, 2.0], dtype='>f8'))
const unsigned char kBeNpy[] = {
    147, 78, 85, 77, 80, 89, 1, 0, 118, 0, 123, 39, 100, 101, 115, 99, 114, 39, 58, 32, 39, 62, 102, 56, 39, 44, 32,
    39, 102, 111, 114, 116, 114, 97, 110, 95, 111, 114, 100, 101, 114, 39, 58, 32, 70, 97, 108, 115, 101, 44, 32, 39,
    115, 104, 97, 112, 101, 39, 58, 32, 40, 50, 44, 41, 44, 32, 125, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 10, 63, 240, 0, 0, 0, 0, 0, 0,
    64, 0, 0, 0, 0, 0, 0, 0,
};
// numpy 1.24: np.save(f, np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
const unsigned char kFortranNpy[] = {
    147, 78, 85, 77, 80, 89, 1, 0, 118, 0, 123, 39, 100, 101, 115, 99, 114, 39, 58, 32, 39, 60, 102, 52, 39, 44, 32,
    39, 102, 111, 114, 116, 114, 97, 110, 95, 111, 114, 100, 101, 114, 39, 58, 32, 84, 114, 117, 101, 44, 32, 39,
    115, 104, 97, 112, 101, 39, 58, 32, 40, 50, 44, 32, 51, 41, 44, 32, 125, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32,
    32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 10, 0, 0, 0, 0, 0, 0, 64, 64,
    0, 0, 128, 63, 0, 0, 128, 64, 0, 0, 0, 64, 0, 0, 160, 64,
};

// A version 1.0 .npy file with the given header dict and data_bytes zero bytes of data.
Bytes npy_with_header(const std::string& dict, std::size_t data_bytes) {
  Bytes b(10 + dict.size() + data_bytes, 0);
  const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::memcpy(b.data(), magic, 8);
  b[8] = static_cast<unsigned char>(dict.size() & 0xff);
  b[9] = static_cast<unsigned char>(dict.size() >> 8);
  std::memcpy(b.data() + 10, dict.data(), dict.size());
  return b;
}

}  // namespace

TEST_CASE("NPY round-trips the four element types", "[data][npy]") {
  TempDir dir;
  auto f = from_data<float>({2, 3}, {0.f, 1.5f, -2.f, 3.25f, 1e-30f, 7.f});
  auto d = from_data<double>({3}, {1.0, -0.5, 1e300});
  auto u = from_data<std::uint8_t>({2, 2}, {0, 127, 128, 255});
  auto i = from_data<std::int64_t>({1, 1, 1, 2}, {-5, std::int64_t{1} << 40});
  data::write_npy(dir.file("f.npy"), f);
  data::write_npy(dir.file("d.npy"), d);
  data::write_npy(dir.file("u.npy"), u);
  data::write_npy(dir.file("i.npy"), i);
  const auto rf = data::read_npy(dir.file("f.npy"));
  CHECK(rf.dtype() == data::DType::float32);
  CHECK(allclose(rf.get<float>(), f, 0, 0));
  CHECK(allclose(data::read_npy(dir.file("d.npy")).get<double>(), d, 0, 0));
  CHECK(allclose(data::read_npy(dir.file("u.npy")).get<std::uint8_t>(), u, 0, 0));
  const auto ri = data::read_npy(dir.file("i.npy"));
  CHECK(ri.shape() == (Shape{1, 1, 1, 2}));
  CHECK(ri.get<std::int64_t>()[1] == (std::int64_t{1} << 40));
  // A scalar (shape ()) and an empty array.
  CHECK(data::parse_npy(data::encode_npy(scalar<double>(2.5))).get<double>().item() == 2.5);
  CHECK(data::parse_npy(data::encode_npy(zeros<float>({0, 4}))).shape() == (Shape{0, 4}));
}

TEST_CASE("NPY files are laid out as NumPy writes them", "[data][npy]") {
  const Bytes b = data::encode_npy(from_data<float>({2, 3}, {0, 1, 2, 3, 4, 5}));
  // Version 1.0 and a preamble padded to 64 bytes, exactly as numpy 1.24 writes for this array.
  REQUIRE(b.size() == 128 + 24);
  const std::string header(b.begin() + 10, b.begin() + 128);
  CHECK(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0) == 0);
  CHECK(header.back() == '\n');
  CHECK(data::encode_npy(zeros<float>({5})).size() == 128 + 20);  // "(5,)" form
  const std::string one(reinterpret_cast<const char*>(data::encode_npy(zeros<float>({5})).data()) + 10, 60);
  CHECK(one.find("'shape': (5,)") != std::string::npos);
}

TEST_CASE("NPY reads big-endian arrays and refuses Fortran order", "[data][npy]") {
  const auto be = data::parse_npy(kBeNpy, "be.npy");
  REQUIRE(be.holds<double>());
  CHECK(be.get<double>()[0] == 1.0);
  CHECK(be.get<double>()[1] == 2.0);
  CHECK_THROWS_WITH(data::parse_npy(kFortranNpy, "fortran.npy"),
                    Catch::Contains("fortran.npy") && Catch::Contains("Fortran order"));
}

TEST_CASE("NpyArray converts between element types on request only", "[data][npy]") {
  data::NpyArray a(from_data<double>({2}, {1.5, -2.0}));
  CHECK(a.holds<double>());
  CHECK_THROWS_WITH(a.get<float>(), Catch::Contains("float64") && Catch::Contains("float32"));
  const auto f = a.to<float>();
  CHECK(f[0] == 1.5f);
  CHECK(a.to<double>().shares_buffer_with(a.get<double>()));
  CHECK_THROWS_AS(data::NpyArray{}.dtype(), ValueError);
}

TEST_CASE("NPY rejects every truncation with IOError", "[data][npy][robustness]") {
  for (const Bytes& full : {data::encode_npy(from_data<float>({2, 3}, {0, 1, 2, 3, 4, 5})), Bytes(kBeNpy, kBeNpy + sizeof kBeNpy)}) {
    REQUIRE_NOTHROW(data::parse_npy(full));
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO("truncated to " << n << " of " << full.size() << " bytes");
      CHECK_THROWS_AS(data::parse_npy(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))), IOError);
    }
  }
}

TEST_CASE("NPY header errors say what was expected and found", "[data][npy][robustness]") {
  const auto bad = [](const std::string& dict, std::size_t data_bytes) { return npy_with_header(dict, data_bytes); };
  CHECK_THROWS_WITH(data::parse_npy(Bytes{'N', 'U', 'M', 'P', 'Y', 0, 0, 0, 0, 0}, "m.npy"),
                    Catch::Contains("m.npy") && Catch::Contains("magic"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n", 8), "i4.npy"),
                    Catch::Contains("i4.npy") && Catch::Contains("'<i4'"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }\n", 4)),
                    Catch::Contains("more than 4 dimensions"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 8), "short.npy"),
                    Catch::Contains("short.npy") && Catch::Contains("12 bytes") && Catch::Contains("only 8"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", 8), "long.npy"),
                    Catch::Contains("expected 4 bytes") && Catch::Contains("found 8"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<f4', 'shape': (1,), }\n", 4)), Catch::Contains("fortran_order"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", 4)),
                    Catch::Contains("structured"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", 4)),
                    Catch::Contains("unexpected key"));
  CHECK_THROWS_WITH(data::parse_npy(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk\n", 4)),
                    Catch::Contains("after the header"));
  Bytes v9 = data::encode_npy(zeros<float>({1}));
  v9[6] = 9;
  CHECK_THROWS_WITH(data::parse_npy(v9), Catch::Contains("version 9.0"));
}

TEST_CASE("NPY refuses absurd shapes without allocating", "[data][npy][robustness]") {
  const auto before = memory_stats();
  const Bytes b = npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1024), }\n", 16);
  CHECK_THROWS_WITH(data::parse_npy(b, "huge.npy"), Catch::Contains("huge.npy") && Catch::Contains("only 16 bytes remain"));
  const Bytes o = npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", 16);
  CHECK_THROWS_WITH(data::parse_npy(o, "overflow.npy"), Catch::Contains("overflow"));
  const Bytes z = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }\n", 0);
  CHECK_THROWS_WITH(data::parse_npy(z, "zero.npy"), Catch::Contains("overflow"));
  // A version 2.0 header length of 4 GiB in a 16-byte file.
  const Bytes v2 = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff, '{', '}', ' ', '\n'};
  CHECK_THROWS_WITH(data::parse_npy(v2, "v2.npy"), Catch::Contains("header length"));
  CHECK(memory_stats().system_allocations == before.system_allocations);
}

TEST_CASE("Corrupting any byte of an NPY file never crashes", "[data][npy][robustness]") {
  const Bytes full = data::encode_npy(from_data<std::int64_t>({2, 2}, {1, 2, 3, 4}));
  // Any other exception type escapes and fails the test; a crash fails it under the sanitizers.
  std::size_t rejected = 0, accepted = 0;
  for (std::size_t i = 0; i < full.size(); ++i)
    for (unsigned char v : {0x00, 0x20, 0x29, 0x2c, 0x39, 0xff}) {
      Bytes b = full;
      b[i] = v;
      try {
        (void)data::parse_npy(b, "flip.npy");
        ++accepted;  // e.g. a flipped data byte: still a valid file
      } catch (const IOError&) {
        ++rejected;
      }
    }
  CHECK(rejected + accepted == full.size() * 6);
  CHECK(rejected > 0);  // corrupt headers are detected
  CHECK(accepted > 0);  // flips inside the data are not mistaken for corruption
}

}  // namespace data_npy_test
