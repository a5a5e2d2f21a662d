#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "genmod/data/csv.hpp"

namespace data_csv_test {

using namespace genmod;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("genmod_csv_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (path / name).string();
    std::FILE* f = std::fopen(p.c_str(), "wb");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return p;
  }
};

}  // namespace

TEST_CASE("CSV reads numbers into a rows x columns tensor", "[data][csv]") {
  TempDir dir;
  const auto p = dir.write("a.csv", "x,y,z\r\n1, 2.5 ,-3e2\r\n\r\n\"4\",+5,nan\n7,8,inf");
  const auto table = data::read_csv_table<double>(p, {.header = true});
  CHECK(table.columns == std::vector<std::string>{"x", "y", "z"});
  const auto& v = table.values;
  REQUIRE(v.shape() == (Shape{3, 3}));
  CHECK(v(0, 1) == 2.5);
  CHECK(v(0, 2) == -300.0);
  CHECK(v(1, 0) == 4.0);
  CHECK(v(1, 1) == 5.0);
  CHECK(std::isnan(v(1, 2)));
  CHECK(std::isinf(v(2, 2)));
  const auto f = data::read_csv<float>(dir.write("b.csv", "# comment\n1;2\n3;4\n"), {.delimiter = ';', .comments = true});
  CHECK(f.shape() == (Shape{2, 2}));
  CHECK(f(1, 0) == 3.f);
  CHECK(data::parse_csv<float>("").values.shape() == (Shape{0, 0}));
  CHECK(data::parse_csv<float>("\xEF\xBB\xBF" "1,2\n").values(0, 1) == 2.f);
}

TEST_CASE("CSV errors name the file, the line and expected vs found", "[data][csv][robustness]") {
  TempDir dir;
  const auto ragged = dir.write("ragged.csv", "1,2,3\n4,5\n");
  CHECK_THROWS_WITH(data::read_csv(ragged), Catch::Contains(ragged) && Catch::Contains("line 2") &&
                                                Catch::Contains("expected 3 fields") && Catch::Contains("found 2"));
  const auto text = dir.write("text.csv", "1,2\n3,abc\n");
  CHECK_THROWS_WITH(data::read_csv(text), Catch::Contains("line 2, column 2") && Catch::Contains("'abc'"));
  CHECK_THROWS_WITH(data::read_csv(dir.write("empty.csv", "1,,2\n")), Catch::Contains("expected a number, found ''"));
  CHECK_THROWS_WITH(data::read_csv<float>(dir.write("big.csv", "1e60\n")), Catch::Contains("out of range for float"));
  CHECK_THROWS_AS(data::read_csv(dir.write("nul.csv", std::string("1,2\n3,\0", 7))), IOError);
  CHECK_THROWS_AS(data::read_csv((dir.path / "missing.csv").string()), IOError);
  CHECK_THROWS_WITH(data::read_csv(dir.write("cap.csv", "1,2,3\n"), {.max_bytes = 4}), Catch::Contains("limit of 4 bytes"));
}

TEST_CASE("CSV prefixes either parse or throw IOError", "[data][csv][robustness]") {
  const std::string full = "a,b\n1.5,2\n-3,4e-2\n";
  for (std::size_t n = 0; n <= full.size(); ++n) {
    try {
      const auto t = data::parse_csv<double>(full.substr(0, n), {.header = true}).values;
      CHECK(t.rank() == 2);
    } catch (const IOError&) {
    }
  }
}

}  // namespace data_csv_test
