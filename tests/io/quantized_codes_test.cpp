#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <vector>

#include "genmod/io/quantized_codes.hpp"
#include "support/temp_dir.hpp"

namespace io_quantized_codes_test {

using namespace genmod;

namespace {

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("Quantized codes: 8-bit round trip within half a step, exact file size", "[io][codes]") {
  test::TempDir dir("genmod_codes_test");
  Generator g(2);
  Tensor<float> codes = randn<float>({37, 5}, g);
  for (std::int64_t i = 0; i < 37; ++i) codes(i, 4) = 2.5f;  // a constant dimension stays exact
  const auto q = io::quantize_codes(codes);
  const std::string path = dir.file("codes.gmqc");
  const std::uint64_t bytes = io::save_quantized_codes(path, q);
  CHECK(bytes == 4 + 4 + 8 + 8 + 8 * 5 + 37 * 5 + 4);
  CHECK(std::filesystem::file_size(path) == bytes);
  const Tensor<float> back = io::dequantize_codes(io::load_quantized_codes(path));
  REQUIRE(back.shape() == codes.shape());
  for (std::int64_t i = 0; i < 37; ++i)
    for (std::int64_t j = 0; j < 5; ++j)
      CHECK(std::abs(back(i, j) - codes(i, j)) <= 0.5f * q.step[static_cast<std::size_t>(j)] * 1.0001f + 1e-6f);
  CHECK(back(3, 4) == 2.5f);
  // Extremes map to 0 and 255.
  bool saw0 = false, saw255 = false;
  for (auto v : q.values) saw0 |= v == 0, saw255 |= v == 255;
  CHECK((saw0 && saw255));
  CHECK_THROWS_AS(io::quantize_codes(Tensor<float>(Shape{3})), ShapeError);
  codes(0, 0) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(io::quantize_codes(codes), ValueError);
}

TEST_CASE("Quantized codes: truncated, padded, flipped or foreign files are IOErrors", "[io][codes]") {
  test::TempDir dir("genmod_codes_test");
  Generator g(3);
  const std::string path = dir.file("codes.gmqc"), bad = dir.file("bad.gmqc");
  io::save_quantized_codes(path, io::quantize_codes(randn<float>({4, 3}, g)));
  const std::vector<char> good = read_all(path);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    write_all(bad, std::vector<char>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut)));
    CHECK_THROWS_AS(io::load_quantized_codes(bad), IOError);
  }
  for (std::size_t at = 0; at < good.size(); ++at) {
    std::vector<char> flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    write_all(bad, flipped);
    CHECK_THROWS_AS(io::load_quantized_codes(bad), IOError);
  }
  std::vector<char> padded = good;
  padded.push_back(0);
  write_all(bad, padded);
  CHECK_THROWS_WITH(io::load_quantized_codes(bad), Catch::Contains("trailing bytes"));
  CHECK_THROWS_AS(io::load_quantized_codes(dir.file("missing.gmqc")), IOError);
  // A huge claimed size is refused before any allocation.
  std::vector<char> huge = good;
  for (int i = 8; i < 16; ++i) huge[static_cast<std::size_t>(i)] = static_cast<char>(0xff);
  write_all(bad, huge);
  CHECK_THROWS_AS(io::load_quantized_codes(bad), IOError);
}

}  // namespace io_quantized_codes_test
