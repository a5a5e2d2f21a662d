#pragma once
/// \file metrics.hpp
/// Per-epoch metrics as JSON lines (`OUT/metrics.jsonl`): one flat object per line,
/// `{"epoch": 3, "step": 1407, "train_loss": 0.2871, "test_loss": 0.3012, "seconds": 11.92}`.
///
/// Why JSON lines: each line is a complete record, so a run killed mid-write loses at most its
/// last line, `tail -f` shows progress, and `pandas.read_json(path, lines=True)` reads the file.
/// Numbers are printed in the shortest form that reads back to the same double; a NaN or Inf
/// (which JSON cannot spell) is written as `null` and read back as NaN.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/io/checkpoint.hpp"

namespace genmod::train {

/// Named scalar metrics of one epoch (what an evaluation function returns: {"test_loss", 0.31}).
using Metrics = std::map<std::string, double>;

/// One line of metrics.jsonl: the epoch number plus named values, in the order they are written.
struct MetricsRecord {
  std::vector<std::pair<std::string, double>> values = {};  ///< in file order

  /// The value named `name`, or nullptr.
  const double* find(std::string_view name) const noexcept {
    for (const auto& [k, v] : values)
      if (k == name) return &v;
    return nullptr;
  }
  /// The value named `name`; throws ValueError naming it when absent.
  double at(std::string_view name) const {
    if (const double* v = find(name)) return *v;
    throw ValueError("metrics record has no '" + std::string(name) + "'");
  }
};

/// The shortest decimal text that reads back as exactly `v` ("0.1", "1e-08", "3"); "null" for
/// NaN and Inf, which JSON has no words for.
inline std::string format_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

/// Parses what format_number writes (and any JSON number); false when `s` is not one number.
inline bool parse_number(std::string_view s, double& out) {
  if (s.empty()) return false;
  const char* b = s.data();
  if (*b == '+') return false;
  const auto r = std::from_chars(b, b + s.size(), out);
  return r.ec == std::errc() && r.ptr == b + s.size();
}

/// One JSON line `{"k": v, ...}` (no trailing newline) from (name, value) pairs, in order.
inline std::string metrics_to_json(const std::vector<std::pair<std::string, double>>& values) {
  std::string out = "{";
  for (const auto& [k, v] : values) {
    if (out.size() > 1) out += ", ";
    out += io::detail::json_quote(k) + ": " + format_number(v);
  }
  return out + "}";
}

namespace detail {

/// A parser for one flat JSON object whose values are numbers, null, booleans or strings
/// (strings are skipped: they are not metrics). Enough for metrics.jsonl, strict about the rest.
class FlatJsonParser {
 public:
  explicit FlatJsonParser(std::string_view s) : s_(s) {}

  MetricsRecord parse() {
    MetricsRecord rec;
    ws();
    expect('{');
    ws();
    if (peek() == '}') {
      ++i_;
    } else {
      while (true) {
        ws();
        std::string key = string();
        ws();
        expect(':');
        ws();
        if (peek() == '"') {
          (void)string();
        } else if (word("null")) {
          rec.values.emplace_back(std::move(key), std::numeric_limits<double>::quiet_NaN());
        } else if (word("true")) {
          rec.values.emplace_back(std::move(key), 1.0);
        } else if (word("false")) {
          rec.values.emplace_back(std::move(key), 0.0);
        } else {
          const std::size_t start = i_;
          while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_]) != nullptr) ++i_;
          double v = 0;
          if (!parse_number(s_.substr(start, i_ - start), v)) fail("a number");
          rec.values.emplace_back(std::move(key), v);
        }
        ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        break;
      }
    }
    ws();
    if (i_ != s_.size()) fail("the end of the line");
    return rec;
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("'") + c + "'");
    ++i_;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  // Keys are ASCII in practice; escapes are decoded for the simple cases and \uXXXX kept verbatim
  // (a key is only compared, never displayed as something else).
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("a closing '\"'");
      const char c = s_[i_++];
      if (c == '"') break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("an escape");
      const char e = s_[i_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': out += "\\u"; break;
        default: out += e;
      }
    }
    return out;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw ValueError("metrics line: expected " + what + " at column " + std::to_string(i_ + 1) + " of '" +
                     std::string(s_) + "'");
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace detail

/// Parses one metrics line (a flat JSON object); throws ValueError naming the column otherwise.
inline MetricsRecord parse_metrics_line(std::string_view line) { return detail::FlatJsonParser(line).parse(); }

/// Every record of a metrics.jsonl file, in order. A last line that does not parse (a run killed
/// mid-write) is skipped; a bad line elsewhere throws ValueError naming the file and line.
/// A missing file gives no records.
inline std::vector<MetricsRecord> read_metrics(const std::string& path) {
  std::vector<MetricsRecord> out;
  std::ifstream in(path);
  if (!in) return out;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    try {
      out.push_back(parse_metrics_line(lines[i]));
    } catch (const ValueError& e) {
      if (i + 1 == lines.size()) break;
      throw ValueError(path + ":" + std::to_string(i + 1) + ": " + e.what());
    }
  }
  return out;
}

/// Appends one line to a file in a single write(2) on an O_APPEND descriptor, then fsyncs it: a
/// reader never sees half a line from a live run, and a crash loses at most the line being written.
inline void append_line(const std::string& path, std::string_view line) {
  std::string buf(line);
  buf += '\n';
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    throw IOError(path + ": cannot open for appending: " + std::strerror(err));
  }
  const char* p = buf.data();
  std::size_t n = buf.size();
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      const int err = errno;
      ::close(fd);
      throw IOError(path + ": write failed: " + std::strerror(err));
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  (void)::fsync(fd);
  ::close(fd);
}

/// Rewrites a metrics file atomically with exactly `records` (what resuming does to drop the
/// epochs after the checkpoint it resumes from, so the file never holds an epoch twice).
inline void write_metrics(const std::string& path, const std::vector<MetricsRecord>& records) {
  std::string text;
  for (const auto& r : records) text += metrics_to_json(r.values) + "\n";
  genmod::detail::AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace genmod::train
