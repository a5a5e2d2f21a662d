#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "genmod/data/attribute_table.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace data_attribute_table_test {

using namespace genmod;
using Catch::Matchers::Contains;
using test::error_of;
using test::TempDir;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// A CelebA-layout table as the real file spells it: count line, names with a trailing space,
// rows with '1' padded by two spaces and '-1' by one.
const char* kCelebA =
    "3\n"
    "Bald Smiling Young \n"
    "000001.jpg -1  1  1\n"
    "000002.jpg  1 -1  1\n"
    "000003.jpg -1 -1 -1\n";

// The same attributes as the comparison expects them: file, Bald, Smiling, Young.
const std::vector<float> kValues = {0, 1, 1, 1, 0, 1, 0, 0, 0};

std::vector<float> values_of(const Tensor<float>& t) {
  return {t.begin(), t.end()};
}

}  // namespace

TEST_CASE("read_attribute_table reads CelebA's layout", "[attributes]") {
  TempDir dir;
  write_text(dir.file("list_attr_celeba.txt"), kCelebA);
  const auto t = data::read_attribute_table(dir.file("list_attr_celeba.txt"));
  CHECK(t.names == std::vector<std::string>{"Bald", "Smiling", "Young"});
  CHECK(t.files == std::vector<std::string>{"000001.jpg", "000002.jpg", "000003.jpg"});
  CHECK(t.size() == 3);
  CHECK(t.values.shape() == (Shape{3, 3}));
  CHECK(values_of(t.values) == kValues);
  CHECK(t.column("Smiling") == 1);
  CHECK_THROWS_WITH(t.column("Eyeglasses"), Contains("Eyeglasses") && Contains("Bald, Smiling, Young"));

  // CRLF line ends, tabs, blank lines and 0 for absent are tolerated too.
  write_text(dir.file("crlf.txt"),
             "3\r\nBald\tSmiling Young\r\n\r\n000001.jpg 0 1 +1\r\n000002.jpg 1\t0 1\r\n"
             "000003.jpg -1 -1 0\r\n");
  CHECK(values_of(data::read_attribute_table(dir.file("crlf.txt")).values) == kValues);
}

TEST_CASE("read_attribute_table reads CSV with 1/0, +1/-1 and true/false", "[attributes]") {
  TempDir dir;
  write_text(dir.file("a.csv"), "image_id,Bald,Smiling,Young\n000001.jpg,0,1,1\n000002.jpg,1,0,1\n000003.jpg,0,0,0\n");
  write_text(dir.file("b.csv"),
             "file,Bald,Smiling,Young\n000001.jpg,-1,1,+1\n000002.jpg,1,-1,1\n000003.jpg,-1,-1,-1\n");
  write_text(dir.file("c.csv"),
             "file, Bald, Smiling, Young\r\n000001.jpg, false, True, TRUE\r\n\"000002.jpg\",true,false,true\r\n"
             "000003.jpg,False,FALSE,false\r\n");
  for (const char* name : {"a.csv", "b.csv", "c.csv"}) {
    INFO(name);
    const auto t = data::read_attribute_table(dir.file(name));
    CHECK(t.names == std::vector<std::string>{"Bald", "Smiling", "Young"});
    CHECK(t.files == std::vector<std::string>{"000001.jpg", "000002.jpg", "000003.jpg"});
    CHECK(values_of(t.values) == kValues);
  }
}

TEST_CASE("read_attribute_table names the path and line of every defect", "[attributes]") {
  TempDir dir;
  const auto fails = [&](const std::string& text) {
    write_text(dir.file("bad.txt"), text);
    try {
      data::read_attribute_table(dir.file("bad.txt"));
    } catch (const IOError& e) {
      const std::string msg = e.what();
      CHECK_THAT(msg, Contains(dir.file("bad.txt")));
      return msg;
    }
    FAIL("expected an IOError for:\n" << text);
    return std::string();
  };
  CHECK_THAT(fails("4\nBald Smiling\na.jpg 1 -1\nb.jpg -1 1\n"),
             Contains("line 1") && Contains("says 4 rows") && Contains("has 2"));
  CHECK_THAT(fails("2\nBald Smiling\na.jpg 1 -1\nb.jpg -1\n"),
             Contains("line 4") && Contains("'b.jpg'") && Contains("expected the file name and 2 values, found 2"));
  CHECK_THAT(fails("2\nBald Smiling\na.jpg 1 -1\nb.jpg -1 2\n"),
             Contains("line 4") && Contains("'Smiling'") && Contains("'b.jpg'") && Contains("found '2'"));
  CHECK_THAT(fails("2\nBald Smiling\na.jpg 1 -1\na.jpg -1 1\n"),
             Contains("line 4") && Contains("'a.jpg' already has a row, at line 3"));
  CHECK_THAT(fails("1\nBald Smiling Bald\na.jpg 1 -1 1\n"),
             Contains("line 2") && Contains("'Bald' appears twice (columns 1 and 3)"));
  // A corrupt count cannot make the reader allocate for it.
  CHECK_THAT(fails("999999999999\nBald\na.jpg 1\n"), Contains("says 999999999999 rows"));
  CHECK_THAT(fails("9999999999999\nBald\na.jpg 1\n"), Contains("line 1") && Contains("too large"));
  CHECK_THAT(fails(""), Contains("empty"));
  CHECK_THAT(fails("\n  \n"), Contains("empty"));
  CHECK_THAT(fails("0\nBald Smiling\n"), Contains("no rows"));
  CHECK_THAT(fails("3\n"), Contains("line 1") && Contains("attribute names"));
  // CSV defects.
  CHECK_THAT(fails("file,Bald,Smiling\na.jpg,1,0\nb.jpg,1\n"),
             Contains("line 3") && Contains("'b.jpg'") && Contains("CSV"));
  CHECK_THAT(fails("file,Bald,Smiling\na.jpg,1,0\nb.jpg,yes,0\n"), Contains("line 3") && Contains("found 'yes'"));
  CHECK_THAT(fails("file,Bald,Bald\na.jpg,1,0\n"), Contains("line 1") && Contains("'Bald' appears twice"));
  CHECK_THAT(fails("file\na.jpg\n"), Contains("line 1") && Contains("at least one attribute"));
  CHECK_THAT(fails("file,Bald\n"), Contains("no rows"));
  CHECK_THAT(fails("file,Bald\na.jpg,1\nb.jpg,0\na.jpg,0\n"), Contains("line 4") && Contains("at line 2"));
  // A missing file.
  CHECK_THROWS_AS(data::read_attribute_table(dir.file("absent.txt")), IOError);
}

TEST_CASE("write_celeba_attributes round-trips and writes CelebA's spacing", "[attributes]") {
  TempDir dir;
  data::AttributeTable t;
  t.names = {"Bald", "Smiling", "Young"};
  t.files = {"000001.jpg", "000002.jpg", "000003.jpg"};
  t.values = from_data<float>(Shape{3, 3}, kValues);
  data::write_celeba_attributes(dir.file("out.txt"), t);
  std::ifstream f(dir.file("out.txt"));
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(text == "3\nBald Smiling Young\n000001.jpg -1  1  1\n000002.jpg  1 -1  1\n000003.jpg -1 -1 -1\n");
  const auto back = data::read_attribute_table(dir.file("out.txt"));
  CHECK(back.names == t.names);
  CHECK(back.files == t.files);
  CHECK(values_of(back.values) == kValues);
  // No temporary file is left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++entries;
  CHECK(entries == 1);

  auto bad = t;
  bad.values = t.values.clone();
  bad.values[4] = 0.5f;
  CHECK_THAT(error_of([&] { data::write_celeba_attributes(dir.file("bad.txt"), bad); }),
             Contains("'Smiling'") && Contains("'000002.jpg'") && Contains("expected 0 or 1"));
  CHECK_FALSE(std::filesystem::exists(dir.file("bad.txt")));
  bad = t;
  bad.names[0] = "Two words";
  CHECK_THROWS_AS(data::write_celeba_attributes(dir.file("bad.txt"), bad), ValueError);
  bad = t;
  bad.files.pop_back();
  CHECK_THROWS_AS(data::write_celeba_attributes(dir.file("bad.txt"), bad), ShapeError);
}

TEST_CASE("attributes_for joins rows by file name, select_columns picks attributes", "[attributes]") {
  data::AttributeTable t;
  t.names = {"Bald", "Smiling", "Young"};
  t.files = {"000001.jpg", "000002.jpg", "000003.jpg"};
  t.values = from_data<float>(Shape{3, 3}, kValues);

  // Rows follow `files`; the table's row 000003.jpg has no image and is ignored.
  const auto c = data::attributes_for(t, {"000002.jpg", "000001.jpg"});
  CHECK(c.shape() == (Shape{2, 3}));
  CHECK(values_of(c) == std::vector<float>{1, 0, 1, 0, 1, 1});
  CHECK(data::attributes_for(t, {}).shape() == (Shape{0, 3}));

  CHECK_THAT(error_of([&] {
               data::attributes_for(t, {"000001.jpg", "x.jpg", "y.jpg"});
             }),
             Contains("2 of 3 files have no row") && Contains("'x.jpg'") && Contains("'y.jpg'"));
  // Two images of the same name (a/000001.jpg and b/000001.jpg in a recursive folder) would share a row.
  CHECK_THAT(error_of([&] {
               data::attributes_for(t, {"000001.jpg", "000002.jpg", "000001.jpg"});
             }),
             Contains("files 0 and 2 are both named '000001.jpg'"));

  const auto s = data::select_columns(t, {"Young", "Bald"});
  CHECK(s.names == std::vector<std::string>{"Young", "Bald"});
  CHECK(s.files == t.files);
  CHECK(values_of(s.values) == std::vector<float>{1, 0, 1, 1, 0, 0});
  CHECK_THAT(error_of([&] {
               data::select_columns(t, {"Young", "Eyeglasses"});
             }),
             Contains("'Eyeglasses'") && Contains("Bald, Smiling, Young"));
  CHECK_THROWS_AS(data::select_columns(t, {"Young", "Young"}), ValueError);
}

TEST_CASE("read_attribute_table reads a CelebA-sized table", "[attributes]") {
  // 202,599 rows x 40 attributes, as list_attr_celeba.txt (26 MB). Correctness at full size only:
  // its speed (about 0.3 s in a Release build) is a benchmark figure, not a pass/fail bound.
  TempDir dir;
  const std::int64_t rows = 202599, cols = 40;
  std::string text = std::to_string(rows) + "\n";
  for (std::int64_t c = 0; c < cols; ++c) text += "Attribute_" + std::to_string(c) + " ";
  text += "\n";
  std::uint64_t state = 12345;
  std::vector<float> expected;
  expected.reserve(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    char name[32];
    std::snprintf(name, sizeof name, "%06lld.jpg", static_cast<long long>(r + 1));
    text += name;
    for (std::int64_t c = 0; c < cols; ++c) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      const bool on = (state >> 40) & 1;
      text += on ? "  1" : " -1";
      expected.push_back(on ? 1.f : 0.f);
    }
    text += "\n";
  }
  write_text(dir.file("list_attr_celeba.txt"), text);
  const auto t = data::read_attribute_table(dir.file("list_attr_celeba.txt"));
  CHECK(t.size() == rows);
  CHECK(t.files.back() == "202599.jpg");
  CHECK(values_of(t.values) == expected);
}

}  // namespace data_attribute_table_test
