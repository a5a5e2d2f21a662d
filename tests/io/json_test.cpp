#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "genmod/io/json.hpp"
#include "support/temp_dir.hpp"

namespace io_json_test {

using namespace genmod;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("JSON numbers print in the shortest form that reads back exactly", "[io][json]") {
  for (double v : {0.1, 1e-8, 3.0, -2.5e300, 0.30000000000000004, 1.0 / 3.0, 5e-324, -0.0, 1.7976931348623157e308}) {
    double back = 1;
    INFO(v);
    REQUIRE(io::parse_number(io::format_number(v), back));
    CHECK(back == v);
    CHECK(std::signbit(back) == std::signbit(v));
  }
  CHECK(io::format_number(0.1) == "0.1");
  CHECK(io::format_number(3.0) == "3");
  CHECK(io::format_number(0.1f) == "0.1");  // float precision, not 0.10000000149011612
  CHECK(io::format_number(std::nan("")) == "null");
  CHECK(io::format_number(-std::numeric_limits<double>::infinity()) == "null");
  // Exactly the JSON grammar: what other readers would reject is rejected here too.
  double x = 0;
  for (const char* bad : {"", "1.5x", "+1", ".5", "5.", "01", "-", "1e", "1e+", "nan", "inf", "0x10", " 1", "1e999"}) {
    INFO(bad);
    CHECK_FALSE(io::parse_number(bad, x));
  }
  CHECK(io::parse_number("-0.5E+2", x));
  CHECK(x == -50.0);
}

TEST_CASE("A JSON object round-trips every kind of value, in order", "[io][json]") {
  const io::JsonObject o = {{"task", "features"},
                            {"epoch", 3},
                            {"loss", 0.25},
                            {"ok", true},
                            {"no", false},
                            {"none", nullptr},
                            {"curve", {1.0, 0.5, 1e-3}},
                            {"lossf", 0.3f},
                            {"empty", std::vector<double>{}}};
  const std::string text = io::to_json(o);
  CHECK(text == R"({"task": "features", "epoch": 3, "loss": 0.25, "ok": true, "no": false, "none": null, )"
                R"("curve": [1, 0.5, 0.001], "lossf": 0.3, "empty": []})");
  const io::JsonObject back = io::parse_json_object(text);
  REQUIRE(back.size() == 9);
  for (std::size_t i = 0; i < back.size(); ++i) {
    INFO(back.fields()[i].first);
    CHECK(back.fields()[i].first == o.fields()[i].first);
    if (back.fields()[i].first != "lossf") CHECK(back.fields()[i].second == o.fields()[i].second);
  }
  CHECK(back.fields()[0].first == "task");
  CHECK(back.at("task").string() == "features");
  CHECK(back.at("epoch").number() == 3);
  CHECK(back.at("ok").boolean());
  CHECK(back.at("none").is_null());
  CHECK(back.at("curve").array() == std::vector<double>{1.0, 0.5, 1e-3});
  CHECK(back.at("lossf").number() == 0.3);  // float-precision text reads back as the nearest double
  CHECK(static_cast<float>(back.at("lossf").number()) == 0.3f);
  CHECK(back.find("missing") == nullptr);
  CHECK_THROWS_WITH(back.at("missing"), Catch::Contains("'missing'"));
  CHECK_THROWS_WITH(back.at("task").number(), Catch::Contains("expected a number, found a string"));
  // Whitespace of any JSON kind, and what Python's json.dumps writes (no spaces).
  const auto py = io::parse_json_object(" {\n\t\"a\":1,\"b\" :[ ]\r\n} ");
  CHECK(py.at("a").number() == 1);
  CHECK(py.at("b").array().empty());
  CHECK(io::parse_json_object("{}").empty());
  CHECK(io::to_json({}) == "{}");
}

TEST_CASE("NaN and Inf are written as null, or rejected on request", "[io][json]") {
  const double inf = std::numeric_limits<double>::infinity();
  const io::JsonObject o = {{"nan", std::nan("")}, {"inf", -inf}, {"arr", {1.0, inf}}};
  CHECK(io::to_json(o) == R"({"nan": null, "inf": null, "arr": [1, null]})");
  const auto back = io::parse_json_object(io::to_json(o));
  CHECK(std::isnan(back.at("nan").number_or_nan()));
  CHECK(std::isnan(back.at("inf").number_or_nan()));  // the sign of an infinity is lost, as documented
  CHECK(std::isnan(back.at("arr").array()[1]));
  CHECK_THROWS_AS(back.at("nan").number(), ValueError);
  CHECK_THROWS_WITH(io::to_json(o, {.non_finite = io::NonFinite::reject}),
                    Catch::Contains("'nan'") && Catch::Contains("cannot spell"));
  CHECK_THROWS_AS(io::to_json({{"arr", {1.0, inf}}}, {.non_finite = io::NonFinite::reject}), NumericError);
  CHECK_NOTHROW(io::to_json({{"x", 1.0}}, {.non_finite = io::NonFinite::reject}));
}

TEST_CASE("JSON strings escape what they must and decode every escape", "[io][json]") {
  const std::string nasty = std::string("quote \" backslash \\ slash / nl \n cr \r tab \t bs \b ff \f nul ") + '\0' +
                            " \x01 \x1f caf\xC3\xA9 \xF0\x9F\x98\x80 del \x7f";
  const std::string quoted = io::json_quote(nasty);
  CHECK(quoted ==
        "\"quote \\\" backslash \\\\ slash / nl \\n cr \\r tab \\t bs \\b ff \\f nul \\u0000 \\u0001 \\u001f "
        "caf\xC3\xA9 \xF0\x9F\x98\x80 del \x7f\"");
  const io::JsonObject o = {{nasty, nasty}};
  const auto back = io::parse_json_object(io::to_json(o));
  CHECK(back.fields()[0].first == nasty);
  CHECK(back.at(nasty).string() == nasty);
  // What json.dumps writes for non-ASCII text: \u escapes, a surrogate pair for the emoji; "\/".
  const auto py = io::parse_json_object(R"({"name": "caf\u00e9 \ud83d\ude00 \u00E9\/"})");
  CHECK(py.at("name").string() == "caf\xC3\xA9 \xF0\x9F\x98\x80 \xC3\xA9/");
  // The writer refuses text that is not UTF-8 rather than write JSON no one can read.
  for (const std::string bad : {"\xff", "caf\xE9", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"}) {
    CHECK_THROWS_AS(io::json_quote(bad), ValueError);
    CHECK_THROWS_AS(io::to_json({{"k", bad}}), ValueError);
  }
  CHECK_THROWS_WITH(io::to_json({{"note", "caf\xE9"}}),
                    Catch::Contains("the value of 'note'") && Catch::Contains("0xe9"));
  CHECK_THROWS_WITH(io::to_json({{"caf\xE9", 1}}), Catch::Contains("a key") && Catch::Contains("byte 3"));
}

TEST_CASE("JSON keys are unique", "[io][json]") {
  CHECK_THROWS_WITH((io::JsonObject{{"a", 1}, {"a", 2}}), Catch::Contains("'a' appears twice"));
  io::JsonObject o;
  o.add("a", 1).add("b", 2);
  CHECK_THROWS_AS(o.add("a", 3), ValueError);
  o.set("a", "x").set("c", nullptr);
  CHECK(io::to_json(o) == R"({"a": "x", "b": 2, "c": null})");
  CHECK_THROWS_WITH(io::parse_json_object(R"({"a": 1, "a": 2})", "f.json"),
                    Catch::Contains("f.json") && Catch::Contains("column 10") && Catch::Contains("'a' a second time"));
  // Integers a double cannot hold exactly are refused rather than silently rounded.
  CHECK_NOTHROW(io::JsonValue(std::int64_t{1} << 53));
  CHECK_THROWS_AS(io::JsonValue((std::int64_t{1} << 53) + 1), ValueError);
  CHECK_THROWS_AS(io::JsonValue(~std::uint64_t{0}), ValueError);
}

TEST_CASE("Malformed JSON throws IOError naming the source, column, expectation and what was found", "[io][json]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "column 1: expected '{' (a JSON object), found the end of the text"},
      {"[1]", "column 1: expected '{' (a JSON object), found '['"},
      {"{", "column 2: expected a key (a string in double quotes), found the end of the text"},
      {"{a: 1}", "column 2: expected a key (a string in double quotes), found 'a'"},
      {R"({"a" 1})", "column 6: expected ':' after the key, found '1'"},
      {R"({"a": 1,})", "column 9: expected a key"},
      {R"({"a": 1 "b": 2})", "column 9: expected ',' or '}' after a value, found '\"'"},
      {R"({"a": abc})", "column 7: expected a value"},
      {R"({"a": tru})", "column 7: expected a value"},
      {R"({"a": +1})", "column 7: expected a value"},
      {R"({"a": 01})", "column 8: expected ',' or '}'"},
      {R"({"a": 1.})", "column 7: expected a value"},
      {R"({"a": 1e999})", "expected a number within the range of a double, found '1e999'"},
      {R"({"a": {"b": 1}})", "expected a scalar value (this reader takes flat objects only), found a nested object"},
      {R"({"a": ["x"]})", "expected a number (arrays hold numbers only)"},
      {R"({"a": [1, [2]]})", "expected a number (arrays hold numbers only)"},
      {R"({"a": [1 2]})", "expected ',' or ']' in an array"},
      {R"({"a": "b)", "expected a closing '\"', found the end of the text"},
      {"{\"a\": \"b\nc\"}", "expected a string character (control characters must be escaped), found byte 0x0a"},
      {R"({"a": "\q"})", "column 9: expected an escape"},
      {R"({"a": "\u12"})", "expected four hex digits after \\u"},
      {R"({"a": "\ud800"})", "expected a low surrogate"},
      {R"({"a": "\ud800\u0041"})", "expected a low surrogate"},
      {R"({"a": "\udc00"})", "expected a code point, not a lone low surrogate"},
      {"{\"a\": \"\xff\"}", "expected valid UTF-8 text, found byte 0xff"},
      {"{\"a\": \"\xC3\"}", "expected valid UTF-8 text"},
      {R"({"a": 1} x)", "column 10: expected the end of the text after the object, found 'x'"},
      {R"({"a": 1}{})", "expected the end of the text after the object"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK_THROWS_AS(io::parse_json_object(c.text, "cfg.json"), IOError);
    CHECK_THROWS_WITH(io::parse_json_object(c.text, "cfg.json"),
                      Catch::StartsWith("cfg.json: malformed JSON at column ") && Catch::Contains(c.message));
  }
  // The reader never looks past the text it was given (a view into a larger buffer).
  const std::string buffer = R"({"a": 1}, "b": 2})";
  CHECK(io::parse_json_object(std::string_view(buffer).substr(0, 8)).size() == 1);
  CHECK_THROWS_AS(io::parse_json_object(std::string_view(buffer).substr(0, 7)), IOError);
}

TEST_CASE("JSON lines: append, rewrite atomically, read back, skip only a torn last line", "[io][json]") {
  test::TempDir dir;
  const std::string path = dir.file("log.jsonl");
  CHECK(io::read_json_lines(path).empty());  // a missing file holds no records
  io::append_json_line(path, {{"epoch", 1}, {"note", "a\nb"}});
  io::append_json_line(path, {{"epoch", 2}, {"loss", std::nan("")}});
  CHECK(read_text(path) == "{\"epoch\": 1, \"note\": \"a\\nb\"}\n{\"epoch\": 2, \"loss\": null}\n");
  {
    std::ofstream out(path, std::ios::app);
    out << "\n   \n"
        << R"({"epoch": 3, "lo)";  // blank lines, then a writer killed mid-line
  }
  auto objs = io::read_json_lines(path);
  REQUIRE(objs.size() == 2);
  CHECK(objs[0].at("note").string() == "a\nb");
  {
    std::ofstream out(path, std::ios::app);
    out << "\n";  // the bad line is now complete: corruption, not a torn write
  }
  CHECK_THROWS_AS(io::read_json_lines(path), IOError);
  CHECK_THROWS_WITH(io::read_json_lines(path), Catch::Contains(path + ":5: malformed JSON at column 17"));
  io::write_json_lines(path, objs);
  CHECK(io::read_json_lines(path) == objs);
  CHECK_THROWS_WITH(io::append_json_line(dir.file("no/such/dir/x.jsonl"), {{"a", 1}}),
                    Catch::Contains("no/such/dir/x.jsonl") && Catch::Contains("cannot open"));
}

}  // namespace io_json_test
