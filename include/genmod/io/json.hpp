#pragma once
/// \file json.hpp
/// genmod's one JSON reader and writer, for the small flat objects it exchanges with other tools:
/// a checkpoint's metadata (`{"step": "1200", ...}`), the lines of metrics.jsonl
/// (`{"epoch": 3, "train_loss": 0.2871}`), the records an example appends.
///
/// What it covers, on purpose no more: one object whose values are scalars (string, number,
/// true/false, null) or arrays of numbers. Nested objects, arrays of strings and the like are
/// rejected by the reader with an IOError naming the column; nothing in genmod writes them.
///
/// Decisions, so that a file written here reads back the same everywhere:
/// - **NaN and Inf.** JSON has no spelling for them. By default the writer writes `null` (a NaN
///   loss must still be logged, and Python's `json.loads`, pandas and jq all read `null`), and a
///   reader asked for a number gets NaN back (`JsonValue::number_or_nan`). So +Inf and -Inf read
///   back as NaN: the sign is lost, which the docs state. `JsonWriteOptions{.non_finite =
///   NonFinite::reject}` makes the writer throw a NumericError naming the key instead.
/// - **Numbers** are written in the shortest decimal form that reads back as exactly the same
///   double (`0.1`, `1e-08`, `3`); a value that came from a float is written in the shortest form
///   that reads back as the same float (`0.1f` gives `0.1`, not `0.10000000149011612`). Integers
///   beyond 2^53 cannot be held exactly and are refused (write them as strings).
/// - **Strings** must be valid UTF-8 (the writer throws ValueError, the reader IOError); `"`,
///   `\` and control characters are escaped, everything else is written as is. The reader decodes
///   every JSON escape, `\uXXXX` surrogate pairs included (what `json.dumps` writes for non-ASCII).
/// - **Keys** are unique: the writer refuses a duplicate key (ValueError), the reader a file that
///   repeats one (IOError), rather than silently keeping one of the two values.
/// - Malformed input of any kind throws IOError naming the source, the column, what was expected
///   and what was found; it never crashes and never reads past the text. For example:
///   `cfg.json: malformed JSON at column 6: expected ':' after the key, found '1'`

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/detail/explicit_instantiation.hpp"

namespace genmod::io {

/// What the JSON writer does with a NaN or an infinity.
enum class NonFinite {
  null,    ///< write `null` (reads back as NaN)
  reject,  ///< throw NumericError naming the key
};

/// How to_json writes.
struct JsonWriteOptions {
  NonFinite non_finite = NonFinite::null;  ///< NaN and Inf: `null`, or an error
};

/// The shortest decimal text that reads back as exactly `v` ("0.1", "1e-08", "3"); "null" for NaN
/// and Inf, which JSON cannot spell.
inline std::string format_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// The shortest decimal text that reads back as exactly the float `v`; "null" for NaN and Inf.
inline std::string format_number(float v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

namespace detail {

/// Length of the JSON number at the start of `s` (RFC 8259 grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`), or 0 when it does not start with one.
inline std::size_t json_number_length(std::string_view s) noexcept {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0')
    ++i;
  else if (digits() == 0)
    return 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return 0;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return 0;
  }
  return i;
}

/// Length of the valid UTF-8 prefix of `s` (overlong forms, surrogates and code points above
/// U+10FFFF are invalid, as RFC 3629 says); equals s.size() when all of `s` is valid.
inline std::size_t utf8_valid_prefix(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1Fu, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0Fu, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07u, min = 0x10000;
    } else {
      return i;
    }
    if (s.size() - i <= n) return i;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return i;
    i += n + 1;
  }
  return i;
}

/// Appends the UTF-8 encoding of code point `cp` (< 0x110000, not a surrogate).
inline void put_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace detail

/// Parses one JSON number (exactly the RFC 8259 grammar, so not "+1", ".5", "nan" or "0x10");
/// false when `s` is not one number or it is out of the range of a double.
inline bool parse_number(std::string_view s, double& out) {
  if (s.empty() || detail::json_number_length(s) != s.size()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

/// A JSON string literal for `s`: `"`, `\` and control characters escaped, the rest (UTF-8)
/// written as is. Throws ValueError naming the first bad byte when `s` is not valid UTF-8.
/// `what` names the text in that message ("the value of 'note'").
inline std::string json_quote(std::string_view s, std::string_view what = "the text") {
  if (const std::size_t bad = detail::utf8_valid_prefix(s); bad != s.size()) {
    const auto c = static_cast<unsigned char>(s[bad]);
    throw ValueError("json_quote: " + std::string(what) + " is not valid UTF-8 (byte " + std::to_string(bad) +
                     " is 0x" + "0123456789abcdef"[c >> 4] + "0123456789abcdef"[c & 15] + ")");
  }
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

/// One value of a flat JSON object: null, a boolean, a number, a string or an array of numbers.
class JsonValue {
 public:
  /// Which of the five a value is.
  enum class Kind { null, boolean, number, string, array };

  /// null.
  JsonValue() noexcept = default;
  /// null.
  JsonValue(std::nullptr_t) noexcept {}
  /// true or false.
  JsonValue(bool b) noexcept : v_(std::in_place_type<bool>, b) {}
  /// A number. Integers must be exactly representable as a double (|v| <= 2^53): ValueError
  /// otherwise. A float is written in float precision (see the file comment).
  template <class N>
  requires(std::is_arithmetic_v<N> && !std::is_same_v<N, bool> && !std::is_same_v<N, char>) JsonValue(N v)
      : v_(std::in_place_type<double>, static_cast<double>(v)), single_(std::is_same_v<N, float>) {
    if constexpr (std::is_integral_v<N>) {
      constexpr std::int64_t limit = std::int64_t{1} << 53;  // above 2^53, not every integer is a double
      if (std::cmp_greater(v, limit) || std::cmp_less(v, -limit))
        throw ValueError("JsonValue: integer " + std::to_string(v) +
                         " is beyond 2^53 and cannot be held exactly by a JSON number; write it as a string");
    }
  }
  /// A string (must be valid UTF-8 when written).
  JsonValue(const char* s) : v_(std::in_place_type<std::string>, s) {}
  /// A string.
  JsonValue(std::string s) noexcept : v_(std::in_place_type<std::string>, std::move(s)) {}
  /// A string.
  JsonValue(std::string_view s) : v_(std::in_place_type<std::string>, s) {}
  /// An array of numbers.
  JsonValue(std::vector<double> a) noexcept : v_(std::move(a)) {}
  /// An array of numbers.
  JsonValue(std::initializer_list<double> a) : v_(std::vector<double>(a)) {}
  /// An array of numbers.
  JsonValue(std::span<const double> a) : v_(std::vector<double>(a.begin(), a.end())) {}
  /// An array of numbers, written in float precision.
  JsonValue(std::span<const float> a) : v_(std::vector<double>(a.begin(), a.end())), single_(true) {}

  /// Which kind of value this is.
  Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  /// True for null.
  bool is_null() const noexcept { return kind() == Kind::null; }
  /// True for true and false.
  bool is_bool() const noexcept { return kind() == Kind::boolean; }
  /// True for a number.
  bool is_number() const noexcept { return kind() == Kind::number; }
  /// True for a string.
  bool is_string() const noexcept { return kind() == Kind::string; }
  /// True for an array of numbers.
  bool is_array() const noexcept { return kind() == Kind::array; }

  /// The boolean; ValueError when this is not one.
  bool boolean() const { return get<bool>("a boolean"); }
  /// The number; ValueError when this is not one.
  double number() const { return get<double>("a number"); }
  /// The number, or NaN for null (how NaN and Inf come back); ValueError for anything else.
  double number_or_nan() const { return is_null() ? std::nan("") : number(); }
  /// The string; ValueError when this is not one.
  const std::string& string() const { return get<std::string>("a string"); }
  /// The array (null elements read back as NaN); ValueError when this is not one.
  const std::vector<double>& array() const { return get<std::vector<double>>("an array of numbers"); }

  /// "null", "a boolean", "a number", "a string" or "an array" (for error messages).
  const char* kind_name() const noexcept {
    static constexpr const char* names[] = {"null", "a boolean", "a number", "a string", "an array"};
    return names[v_.index()];
  }

  /// Equal kinds and values (NaN is unequal to itself, as for double).
  friend bool operator==(const JsonValue& a, const JsonValue& b) noexcept { return a.v_ == b.v_; }

  /// Appends this value's JSON text to `out`. `key` names the value in error messages.
  void write(std::string& out, std::string_view key, const JsonWriteOptions& options = {}) const {
    const auto number = [&](double x) {
      if (!std::isfinite(x) && options.non_finite == NonFinite::reject)
        throw NumericError("to_json: '" + std::string(key) + "' is " + std::to_string(x) +
                           ", which JSON cannot spell (NonFinite::null writes it as null)");
      out += single_ ? format_number(static_cast<float>(x)) : format_number(x);
    };
    switch (kind()) {
      case Kind::null:
        out += "null";
        break;
      case Kind::boolean:
        out += std::get<bool>(v_) ? "true" : "false";
        break;
      case Kind::number:
        number(std::get<double>(v_));
        break;
      case Kind::string: {
        const std::string& str = std::get<std::string>(v_);
        out += detail::utf8_valid_prefix(str) == str.size()
                   ? json_quote(str)
                   : json_quote(str, "the value of '" + std::string(key) + "'");
        break;
      }
      case Kind::array: {
        out += '[';
        bool first = true;
        for (const double x : std::get<std::vector<double>>(v_)) {
          if (!first) out += ", ";
          first = false;
          number(x);
        }
        out += ']';
        break;
      }
    }
  }

 private:
  template <class V>
  const V& get(const char* what) const {
    if (const V* p = std::get_if<V>(&v_)) return *p;
    throw ValueError(std::string("JsonValue: expected ") + what + ", found " + kind_name());
  }

  std::variant<std::monostate, bool, double, std::string, std::vector<double>> v_;
  bool single_ = false;  // came from float: written with float's shortest form
};

/// A flat JSON object: (key, value) fields with unique keys, in insertion (or file) order.
class JsonObject {
 public:
  /// One field.
  using Field = std::pair<std::string, JsonValue>;

  /// An empty object.
  JsonObject() = default;
  /// `{{"epoch", 3}, {"task", "features"}, {"loss", 0.25}}`; ValueError on a repeated key.
  JsonObject(std::initializer_list<Field> fields) {
    for (const auto& f : fields) add(f.first, f.second);
  }

  /// Appends a field; ValueError when `key` is already present (use set to replace).
  JsonObject& add(std::string key, JsonValue value) {
    if (find(key)) throw ValueError("JsonObject: key '" + key + "' appears twice");
    fields_.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  /// Sets `key` to `value`, in place when present, else at the end.
  JsonObject& set(std::string key, JsonValue value) {
    for (auto& f : fields_)
      if (f.first == key) {
        f.second = std::move(value);
        return *this;
      }
    fields_.emplace_back(std::move(key), std::move(value));
    return *this;
  }

  /// The value of `key`, or nullptr.
  const JsonValue* find(std::string_view key) const noexcept {
    for (const auto& f : fields_)
      if (f.first == key) return &f.second;
    return nullptr;
  }
  /// The value of `key`; ValueError naming it when absent.
  const JsonValue& at(std::string_view key) const {
    if (const JsonValue* v = find(key)) return *v;
    throw ValueError("JsonObject: no key '" + std::string(key) + "'");
  }
  /// Every field, in order.
  const std::vector<Field>& fields() const noexcept { return fields_; }
  /// Number of fields.
  std::size_t size() const noexcept { return fields_.size(); }
  /// True without fields.
  bool empty() const noexcept { return fields_.empty(); }

  /// Same fields in the same order.
  friend bool operator==(const JsonObject&, const JsonObject&) = default;

 private:
  std::vector<Field> fields_;
};

/// One line of JSON text, `{"k": v, "k2": v2}` (no newline), fields in order.
inline std::string to_json(const JsonObject& object, const JsonWriteOptions& options = {}) {
  std::string out = "{";
  for (const auto& [k, v] : object.fields()) {
    if (out.size() > 1) out += ", ";
    out += json_quote(k, "a key");
    out += ": ";
    v.write(out, k, options);
  }
  out += '}';
  return out;
}

namespace detail {

/// The flat-object reader behind parse_json_object.
class JsonReader {
 public:
  JsonReader(std::string_view text, std::string_view source);

  JsonObject object() {
    JsonObject out;
    ws();
    expect('{', "'{' (a JSON object)");
    ws();
    if (peek() == '}') {
      ++i_;
    } else {
      while (true) {
        ws();
        const std::size_t key_at = i_;
        std::string key = string("a key (a string in double quotes)");
        if (out.find(key)) {
          i_ = key_at;
          fail("a key not seen before", "'" + key + "' a second time");
        }
        ws();
        expect(':', "':' after the key");
        ws();
        JsonValue v = value();
        out.add(std::move(key), std::move(v));
        ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}', "',' or '}' after a value");
        break;
      }
    }
    ws();
    if (i_ != s_.size()) fail("the end of the text after the object", found());
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& expected, const std::string& found_text) const {
    throw IOError(std::string(source_) + ": malformed JSON at column " + std::to_string(i_ + 1) + ": expected " +
                  expected + ", found " + found_text);
  }
  [[noreturn]] void fail(const std::string& expected) const { fail(expected, found()); }

  // What is at the cursor, for messages: a quoted character, its code, or the end of the text.
  std::string found() const {
    if (i_ >= s_.size()) return "the end of the text";
    const auto c = static_cast<unsigned char>(s_[i_]);
    // Appended piece by piece: GCC 12's -Wrestrict misfires on `"'" + std::string(1, c) + "'"`
    // (GCC bug 105329) in -O2 builds with -Werror.
    std::string out;
    if (c < 0x20 || c >= 0x7F) {
      out.append("byte 0x");
      out.push_back("0123456789abcdef"[c >> 4]);
      out.push_back("0123456789abcdef"[c & 15]);
    } else {
      out.push_back('\'');
      out.push_back(static_cast<char>(c));
      out.push_back('\'');
    }
    return out;
  }
  // Text in single quotes, built without operator+ chains (see found()).
  static std::string quoted(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('\'');
    out.append(text);
    out.push_back('\'');
    return out;
  }
  char peek() const noexcept { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() noexcept {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  void expect(char c, const char* what) {
    if (i_ >= s_.size() || s_[i_] != c) fail(what);
    ++i_;
  }
  bool word(std::string_view w) noexcept {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  double number() {
    const std::size_t n = json_number_length(s_.substr(i_));
    if (n == 0) fail("a value (string, number, true, false, null or an array of numbers)");
    double v = 0;
    const auto r = std::from_chars(s_.data() + i_, s_.data() + i_ + n, v);
    if (r.ec != std::errc()) fail("a number within the range of a double", quoted(s_.substr(i_, n)));
    i_ += n;
    return v;
  }

  JsonValue value();

  std::uint32_t hex4() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = peek();
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else
        fail("four hex digits after \\u");
      ++i_;
    }
    return v;
  }

  std::string string(const char* what);

  std::string_view s_;
  std::string_view source_;
  std::size_t i_ = 0;
};

#if GENMOD_DETAIL_NONTEMPLATE_BODIES
// JsonReader's larger members: compiled where used in a header-only build, once in
// genmod/instantiate.cpp under GENMOD_EXTERN_TEMPLATES (genmod/detail/explicit_instantiation.hpp).

GENMOD_DETAIL_NONTEMPLATE JsonReader::JsonReader(std::string_view text, std::string_view source)
    : s_(text), source_(source) {}

GENMOD_DETAIL_NONTEMPLATE JsonValue JsonReader::value() {
  const char c = peek();
  if (c == '"') return string("a string");
  if (word("null")) return nullptr;
  if (word("true")) return true;
  if (word("false")) return false;
  if (c == '{') fail("a scalar value (this reader takes flat objects only)", "a nested object");
  if (c == '[') {
    ++i_;
    std::vector<double> a;
    ws();
    if (peek() == ']') {
      ++i_;
      return a;
    }
    while (true) {
      ws();
      if (word("null"))
        a.push_back(std::nan(""));
      else if (peek() == '"' || peek() == '[' || peek() == '{' || peek() == 't' || peek() == 'f')
        fail("a number (arrays hold numbers only)");
      else
        a.push_back(number());
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect(']', "',' or ']' in an array");
      return a;
    }
  }
  return number();
}

GENMOD_DETAIL_NONTEMPLATE std::string JsonReader::string(const char* what) {
  expect('"', what);
  std::string out;
  while (true) {
    if (i_ >= s_.size()) fail("a closing '\"'");
    const char c = s_[i_];
    if (c == '"') {
      ++i_;
      return out;
    }
    if (static_cast<unsigned char>(c) < 0x20) fail("a string character (control characters must be escaped)");
    if (static_cast<unsigned char>(c) >= 0x80) {  // copy a whole UTF-8 sequence, checked
      std::size_t n = 1;
      while (i_ + n < s_.size() && n < 4 && (static_cast<unsigned char>(s_[i_ + n]) & 0xC0) == 0x80) ++n;
      if (utf8_valid_prefix(s_.substr(i_, n)) != n) fail("valid UTF-8 text");
      out += s_.substr(i_, n);
      i_ += n;
      continue;
    }
    ++i_;
    if (c != '\\') {
      out += c;
      continue;
    }
    const char e = peek();
    ++i_;
    switch (e) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        std::uint32_t cp = hex4();
        if (cp >= 0xD800 && cp < 0xDC00) {  // a UTF-16 surrogate pair: U+10000 + (hi-D800)*2^10 + (lo-DC00)
          if (s_.substr(i_, 2) != "\\u") fail("a low surrogate \\uDC00-\\uDFFF after a high surrogate");
          i_ += 2;
          const std::uint32_t lo = hex4();
          if (lo < 0xDC00 || lo >= 0xE000) fail("a low surrogate \\uDC00-\\uDFFF after a high surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          fail("a code point, not a lone low surrogate");
        }
        put_utf8(out, cp);
        break;
      }
      default:
        --i_;
        fail("an escape (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    }
  }
}
#endif  // GENMOD_DETAIL_NONTEMPLATE_BODIES

}  // namespace detail

/// Parses one flat JSON object (see the file comment for what it takes). Throws IOError,
/// `"<source>: malformed JSON at column c: expected ..., found ..."`, for anything else.
inline JsonObject parse_json_object(std::string_view text, std::string_view source = "JSON text") {
  return detail::JsonReader(text, source).object();
}

/// Appends `line` and a newline to a file in one write(2) on an O_APPEND descriptor, then fsyncs:
/// a reader never sees half a line from a live writer, and a crash loses at most this line.
inline void append_line(const std::string& path, std::string_view line) {
  std::string buf(line);
  buf += '\n';
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    throw genmod::detail::io_error(path, std::string("cannot open for appending: ") + std::strerror(err));
  }
  const char* p = buf.data();
  std::size_t n = buf.size();
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      const int err = errno;
      ::close(fd);
      throw genmod::detail::io_error(path, std::string("write failed: ") + std::strerror(err));
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  (void)::fsync(fd);
  ::close(fd);
}

/// Appends one object as a line of a JSON-lines file (append_line's guarantees).
inline void append_json_line(const std::string& path, const JsonObject& object, const JsonWriteOptions& options = {}) {
  append_line(path, to_json(object, options));
}

/// Replaces a JSON-lines file with `objects`, one per line, atomically (temporary file, fsync,
/// rename): a crash leaves the old file or the new one.
inline void write_json_lines(const std::string& path, const std::vector<JsonObject>& objects,
                             const JsonWriteOptions& options = {}) {
  std::string text;
  for (const auto& o : objects) {
    text += to_json(o, options);
    text += '\n';
  }
  genmod::detail::write_file_atomic(
      path, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

/// Every object of a JSON-lines file, in order; blank lines are skipped, a missing file gives none.
/// A last line without its newline that does not parse is what a writer killed mid-line leaves: it
/// is skipped. Any other bad line throws IOError `"<path>:<line>: malformed JSON at column ..."`.
GENMOD_DETAIL_NONTEMPLATE std::vector<JsonObject> read_json_lines(const std::string& path)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  std::vector<JsonObject> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw genmod::detail::io_error(path, "read error");
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    ++line_no;
    const std::size_t nl = text.find('\n', pos);
    const bool terminated = nl != std::string::npos;
    const std::string_view line = std::string_view(text).substr(pos, terminated ? nl - pos : std::string::npos);
    pos = terminated ? nl + 1 : text.size();
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    try {
      out.push_back(parse_json_object(line, path + ":" + std::to_string(line_no)));
    } catch (const IOError&) {
      if (!terminated) break;  // torn last line
      throw;
    }
  }
  return out;
}
#else
    ;
#endif

}  // namespace genmod::io
