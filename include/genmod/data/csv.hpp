#pragma once
/// \file csv.hpp
/// Numeric CSV files to Tensor<float> or Tensor<double> of shape [rows, columns].
///
/// Accepted: a delimiter of your choice (',' by default), an optional header row, LF or CRLF line
/// ends, spaces around fields, numbers optionally in double quotes, "nan"/"inf", blank lines
/// (skipped), and '#' comment lines when enabled. Every data row must have the same number of
/// fields; an error names the file, the line, and what was expected vs found.

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"

namespace genmod::data {

/// Options for read_csv.
struct CsvOptions {
  char delimiter = ',';           ///< field separator
  bool header = false;            ///< the first non-blank line holds column names
  bool comments = false;          ///< lines whose first non-space character is '#' are skipped
  std::uint64_t max_bytes = std::uint64_t{1} << 32;  ///< refuse larger files (they are read whole)
};

/// A CSV file's values and, when it had a header, its column names.
template <class T>
struct CsvTable {
  std::vector<std::string> columns = {};  ///< header names (empty without a header)
  Tensor<T> values = {};                  ///< [rows, columns]
};

namespace detail {

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Splits a line into fields; quotes are stripped from a field that is entirely quoted.
inline void split_fields(std::string_view line, char delim, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  while (true) {
    const std::size_t end = line.find(delim, start);
    std::string_view f = trim(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = trim(f.substr(1, f.size() - 2));
    out.push_back(f);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

template <class T>
T parse_csv_number(std::string_view f, const std::string& file, std::size_t line, std::size_t col) {
  T v{};
  const char* b = f.data();
  const char* e = f.data() + f.size();
  if (!f.empty() && *b == '+') ++b;  // from_chars refuses a leading '+', which spreadsheets write
  const auto r = std::from_chars(b, e, v);
  if (f.empty() || r.ec == std::errc::invalid_argument || r.ptr != e)
    throw genmod::detail::io_error(file, "line " + std::to_string(line) + ", column " + std::to_string(col) +
                                             ": expected a number, found '" + std::string(f.substr(0, 40)) +
                                             (f.size() > 40 ? "...'" : "'"));
  if (r.ec == std::errc::result_out_of_range)
    throw genmod::detail::io_error(file, "line " + std::to_string(line) + ", column " + std::to_string(col) + ": '" +
                                             std::string(f.substr(0, 40)) + "' is out of range for " +
                                             (std::is_same_v<T, float> ? "float" : "double"));
  return v;
}

template <class T>
CsvTable<T> parse_csv_text(std::string_view text, const std::string& file, const CsvOptions& options) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "read_csv makes float or double tensors");
  if (options.delimiter == '\n' || options.delimiter == '\r' || options.delimiter == '"')
    throw ValueError("read_csv: the delimiter cannot be a newline or a quote");
  CsvTable<T> table;
  std::vector<T> values;
  std::vector<std::string_view> fields;
  std::size_t cols = 0, rows = 0, line_no = 0, pos = 0;
  bool need_header = options.header;
  // A UTF-8 byte-order mark (Excel writes one) is not part of the first field.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    const std::string_view content = trim(line);
    if (content.empty() || (options.comments && content.front() == '#')) continue;
    if (content.find('\0') != std::string_view::npos)
      throw genmod::detail::io_error(file, "line " + std::to_string(line_no) + ": unexpected NUL byte (a binary file?)");
    split_fields(content, options.delimiter, fields);
    if (need_header) {
      for (auto f : fields) table.columns.emplace_back(f);
      cols = fields.size();
      need_header = false;
      continue;
    }
    if (cols == 0) cols = fields.size();
    if (fields.size() != cols)
      throw genmod::detail::io_error(file, "line " + std::to_string(line_no) + ": expected " + std::to_string(cols) +
                                               " fields (as in the " + (options.header ? "header" : "first row") +
                                               "), found " + std::to_string(fields.size()));
    for (std::size_t c = 0; c < fields.size(); ++c) values.push_back(parse_csv_number<T>(fields[c], file, line_no, c + 1));
    ++rows;
  }
  table.values = Tensor<T>(Shape{static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)});
  std::copy(values.begin(), values.end(), table.values.data());
  return table;
}

}  // namespace detail

/// Reads a numeric CSV file into a [rows, columns] tensor, keeping the header's column names.
template <class T = float>
CsvTable<T> read_csv_table(const std::string& path, CsvOptions options = {}) {
  const auto bytes = genmod::detail::read_file_bytes(path, options.max_bytes);
  return detail::parse_csv_text<T>(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path,
                                   options);
}

/// Reads a numeric CSV file into a [rows, columns] tensor (float or double).
template <class T = float>
Tensor<T> read_csv(const std::string& path, CsvOptions options = {}) {
  return read_csv_table<T>(path, options).values;
}

/// Parses CSV text held in memory; `name` starts every error message.
template <class T = float>
CsvTable<T> parse_csv(std::string_view text, CsvOptions options = {}, std::string name = "<memory>") {
  return detail::parse_csv_text<T>(text, name, options);
}

}  // namespace genmod::data
