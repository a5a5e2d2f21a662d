#pragma once
/// \file attribute_table.hpp
/// Binary attributes of images (CelebA's 40 face attributes and the like): one row per image file.
///
/// Two layouts are read, chosen by content rather than by file name:
///
/// - CelebA's `list_attr_celeba.txt`: a line holding the row count, a line of attribute names,
///   then one line per image, `000001.jpg -1  1  1 -1 ...`, fields separated by any run of spaces
///   or tabs (CelebA pads `1` to the width of `-1` with a second space). A file whose first
///   non-blank line is a single integer is read this way.
/// - CSV with a header `file,a1,...,aA` (the first column's name is free: Kaggle's copy calls it
///   `image_id`), values 1/0, +1/-1 or true/false.
///
/// Either way +1/1/true mean "present" (1 in `values`) and -1/0/false "absent" (0). Every defect is
/// an IOError that starts with the path and the line: a count that disagrees with the rows, a row of
/// the wrong length, a value that is none of the above, a file or attribute name that repeats, an
/// empty table. Parsing is a single pass over the bytes (CelebA's 202,599 x 40 table takes a
/// fraction of a second).

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/core/tensor.hpp"
#include "genmod/data/binary.hpp"
#include "genmod/data/csv.hpp"

namespace genmod::data {

/// Binary attributes of images, one row per file.
struct AttributeTable {
  std::vector<std::string> names;  ///< attribute names, column order
  std::vector<std::string> files;  ///< image file name of each row
  Tensor<float> values;            ///< [rows, names.size()], 1 present, 0 absent

  /// Number of rows (files).
  std::int64_t size() const noexcept { return static_cast<std::int64_t>(files.size()); }

  /// Index of the attribute called `name`; ValueError listing the names when there is none.
  std::int64_t column(std::string_view name) const {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return static_cast<std::int64_t>(i);
    std::string known;
    for (std::size_t i = 0; i < names.size(); ++i) known += (i ? ", " : "") + names[i];
    throw ValueError("AttributeTable::column: no attribute named '" + std::string(name) + "'; the table has " +
                     std::to_string(names.size()) + ": " + known);
  }
};

namespace detail {

/// Largest attribute file read (they are read whole; CelebA's is 26 MB).
inline constexpr std::uint64_t kMaxAttributeBytes = std::uint64_t{1} << 31;

/// Splits on runs of spaces and tabs (CelebA's separator), dropping a trailing '\r'.
inline void split_whitespace(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (true) {
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i >= n) break;
    const std::size_t start = i;
    while (i < n && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    out.push_back(line.substr(start, i - start));
  }
}

/// 1 for "1", "+1", "true"; 0 for "-1", "0", "false" (any letter case); -1 for anything else.
inline int parse_attribute_value(std::string_view f) noexcept {
  if (f == "1" || f == "+1") return 1;
  if (f == "-1" || f == "0") return 0;
  const auto is = [f](std::string_view word) {
    if (f.size() != word.size()) return false;
    for (std::size_t i = 0; i < f.size(); ++i)
      if ((f[i] | 0x20) != word[i]) return false;  // ASCII lower-casing; word is lower case
    return true;
  };
  if (is("true")) return 1;
  if (is("false")) return 0;
  return -1;
}

/// "'abc'" quoted for an error message, cut to 40 characters.
inline std::string quoted_field(std::string_view f) {
  return "'" + std::string(f.substr(0, 40)) + (f.size() > 40 ? "...'" : "'");
}

/// Reads the lines of `text` one at a time, numbering them from 1 and skipping blank ones.
class LineCursor {
 public:
  explicit LineCursor(std::string_view text) : text_(text) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a UTF-8 byte-order mark
  }
  /// The next non-blank line (without its '\n'); false at the end.
  bool next(std::string_view& line) {
    while (pos_ < text_.size()) {
      std::size_t nl = text_.find('\n', pos_);
      if (nl == std::string_view::npos) nl = text_.size();
      line = text_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      ++number_;
      if (!trim(line).empty()) return true;
    }
    return false;
  }
  /// Bytes not yet read.
  std::size_t remaining() const noexcept { return pos_ < text_.size() ? text_.size() - pos_ : 0; }
  /// Number of the line last returned (1-based).
  std::size_t number() const noexcept { return number_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0, number_ = 0;
};

/// Builds the table from parsed fields, checking names and files for repeats.
class AttributeTableBuilder {
 public:
  AttributeTableBuilder(const std::string& path, std::string_view format) : path_(path), format_(format) {}

  [[noreturn]] void fail(std::size_t line, const std::string& what) const {
    throw genmod::detail::io_error(path_, "line " + std::to_string(line) + ": " + what + " (" + format_ + ")");
  }

  void set_names(const std::vector<std::string_view>& names, std::size_t line) {
    if (names.empty()) fail(line, "expected attribute names, found none");
    std::unordered_map<std::string_view, std::size_t> seen;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i].empty()) fail(line, "attribute " + std::to_string(i + 1) + " has an empty name");
      const auto [it, fresh] = seen.emplace(names[i], i);
      if (!fresh)
        fail(line, "the attribute name " + quoted_field(names[i]) + " appears twice (columns " +
                       std::to_string(it->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
    table_.names.assign(names.begin(), names.end());
  }

  /// Reserves room for `rows` rows, but no more than `bytes` of text can hold (a row takes at least
  /// two bytes per field), so that a corrupt count line cannot force a huge allocation.
  void reserve(std::size_t rows, std::size_t bytes) {
    const std::size_t cap = std::min(rows, bytes / (2 * (table_.names.size() + 1)) + 1);
    table_.files.reserve(cap);
    values_.reserve(cap * table_.names.size());
    line_of_.reserve(cap);
  }

  /// One row: `fields[0]` is the file, the rest its values.
  void add_row(const std::vector<std::string_view>& fields, std::size_t line) {
    const std::size_t a = table_.names.size();
    if (fields.size() != a + 1)
      fail(line, "expected the file name and " + std::to_string(a) + " values, found " + std::to_string(fields.size()) +
                     " fields" + (fields.empty() ? "" : " in the row of " + quoted_field(fields[0])));
    if (fields[0].empty()) fail(line, "empty file name");
    const auto [it, fresh] = line_of_.emplace(fields[0], line);
    if (!fresh)
      fail(line, "the file " + quoted_field(fields[0]) + " already has a row, at line " + std::to_string(it->second));
    for (std::size_t c = 1; c <= a; ++c) {
      const int v = parse_attribute_value(fields[c]);
      if (v < 0)
        fail(line, "attribute '" + table_.names[c - 1] + "' of " + quoted_field(fields[0]) + ": expected 1, -1, 0, " +
                       "true or false, found " + quoted_field(fields[c]));
      values_.push_back(static_cast<float>(v));
    }
    table_.files.emplace_back(fields[0]);
  }

  AttributeTable finish(std::size_t last_line) {
    if (table_.files.empty()) fail(last_line, "the table has attribute names but no rows");
    table_.values = Tensor<float>(Shape{table_.size(), static_cast<std::int64_t>(table_.names.size())});
    std::copy(values_.begin(), values_.end(), table_.values.data());
    return std::move(table_);
  }

 private:
  const std::string& path_;
  std::string format_;
  AttributeTable table_;
  std::vector<float> values_;
  std::unordered_map<std::string_view, std::size_t> line_of_;  // views into the file's text
};

/// True when `s` is a non-empty run of decimal digits (CelebA's count line).
inline bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

inline AttributeTable parse_celeba_attributes(LineCursor& cursor, std::string_view count_line,
                                              const std::string& path) {
  AttributeTableBuilder b(path, "CelebA layout");
  const std::string_view digits = trim(count_line);
  if (digits.size() > 12) b.fail(cursor.number(), "the row count " + quoted_field(digits) + " is too large");
  const std::size_t declared = std::stoull(std::string(digits));
  const std::size_t count_line_no = cursor.number();
  std::string_view line;
  if (!cursor.next(line))
    b.fail(cursor.number(), "expected a line of attribute names after the row count, found the end");
  std::vector<std::string_view> fields;
  split_whitespace(line, fields);
  b.set_names(fields, cursor.number());
  b.reserve(declared, cursor.remaining());
  std::size_t rows = 0;
  while (cursor.next(line)) {
    split_whitespace(line, fields);
    b.add_row(fields, cursor.number());
    ++rows;
  }
  if (rows != declared)
    b.fail(count_line_no,
           "the row count says " + std::to_string(declared) + " rows, but the file has " + std::to_string(rows));
  return b.finish(cursor.number());
}

inline AttributeTable parse_csv_attributes(LineCursor& cursor, std::string_view header, const std::string& path) {
  AttributeTableBuilder b(path, "CSV layout");
  std::vector<std::string_view> fields;
  split_fields(trim(header), ',', fields);
  if (fields.size() < 2)
    b.fail(cursor.number(),
           "expected a header 'file,a1,...,aA' with at least one attribute, found " + quoted_field(trim(header)));
  fields.erase(fields.begin());  // the file column's own name is free
  b.set_names(fields, cursor.number());
  std::string_view line;
  while (cursor.next(line)) {
    split_fields(trim(line), ',', fields);
    b.add_row(fields, cursor.number());
  }
  return b.finish(cursor.number());
}

}  // namespace detail

/// Parses attribute-table text held in memory (either layout, see the file comment); `name`
/// starts every error message.
inline AttributeTable parse_attribute_table(std::string_view text, const std::string& name = "<memory>") {
  if (text.find('\0') != std::string_view::npos)
    throw genmod::detail::io_error(name, "unexpected NUL byte: not an attribute table (a binary file?)");
  detail::LineCursor cursor(text);
  std::string_view first;
  if (!cursor.next(first))
    throw genmod::detail::io_error(name,
                                   "the attribute table is empty (expected CelebA's list_attr_celeba.txt "
                                   "layout or a CSV with a header 'file,a1,...,aA')");
  if (detail::all_digits(detail::trim(first))) return detail::parse_celeba_attributes(cursor, first, name);
  return detail::parse_csv_attributes(cursor, first, name);
}

/// Reads an attribute table: CelebA's list_attr_celeba.txt layout or a CSV with a header
/// "file,a1,...,aA" (see the file comment). IOError naming the path and line for any defect.
inline AttributeTable read_attribute_table(const std::string& path) {
  const auto bytes = genmod::detail::read_file_bytes(path, detail::kMaxAttributeBytes);
  return parse_attribute_table(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

namespace detail {

/// ValueError unless the table is well formed: values [files, names] of 0/1, names and files
/// non-empty and free of whitespace (what the CelebA layout can hold).
inline void check_attribute_table(std::string_view op, const AttributeTable& t) {
  const auto rows = static_cast<std::int64_t>(t.files.size()), cols = static_cast<std::int64_t>(t.names.size());
  if (!t.values.defined() || t.values.rank() != 2 || t.values.dim(0) != rows || t.values.dim(1) != cols)
    throw ShapeError(std::string(op) + ": expected values of shape [" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "] (files x names), got " +
                     (t.values.defined() ? t.values.shape().to_string() : std::string("an undefined tensor")));
  const auto check_word = [op](const std::string& s, const char* what) {
    if (s.empty() || s.find_first_of(" \t\r\n") != std::string::npos)
      throw ValueError(std::string(op) + ": the " + what + " '" + s + "' is empty or contains whitespace");
  };
  for (const auto& n : t.names) check_word(n, "attribute name");
  for (const auto& f : t.files) check_word(f, "file name");
}

}  // namespace detail

/// Writes `table` in CelebA's list_attr_celeba.txt layout (count line, names line, rows of
/// 1 / -1 padded to equal width as CelebA does), atomically (temporary file, fsync, rename).
/// ValueError when a value is not 0 or 1 or a name holds whitespace.
inline void write_celeba_attributes(const std::string& path, const AttributeTable& table) {
  detail::check_attribute_table("write_celeba_attributes", table);
  const std::size_t cols = table.names.size();
  std::string out = std::to_string(table.files.size()) + "\n";
  for (std::size_t c = 0; c < cols; ++c) out += (c ? " " : "") + table.names[c];
  out += '\n';
  genmod::detail::AtomicFile file(path);
  file.write(out.data(), out.size());
  const float* v = table.values.data();
  for (std::size_t r = 0; r < table.files.size(); ++r) {
    out = table.files[r];
    for (std::size_t c = 0; c < cols; ++c) {
      const float x = v[r * cols + c];
      if (x != 0.f && x != 1.f)
        throw ValueError("write_celeba_attributes: attribute '" + table.names[c] + "' of '" + table.files[r] + "' is " +
                         std::to_string(x) + "; expected 0 or 1");
      out += x == 1.f ? "  1" : " -1";
    }
    out += '\n';
    file.write(out.data(), out.size());
  }
  file.commit();
}

/// The rows of `table` for `files`, in that order: [files.size(), A], joined by file name. Rows
/// of the table without an image are ignored; a file without a row is a ValueError naming it and
/// saying how many are missing; two files of the same name are a ValueError.
inline Tensor<float> attributes_for(const AttributeTable& table, const std::vector<std::string>& files) {
  const auto cols = static_cast<std::int64_t>(table.names.size());
  if (!table.values.defined() || table.values.rank() != 2 || table.values.dim(0) != table.size() ||
      table.values.dim(1) != cols)
    throw ShapeError("attributes_for: the table's values " +
                     (table.values.defined() ? table.values.shape().to_string() : std::string("(undefined)")) +
                     " do not match its " + std::to_string(table.size()) + " files and " + std::to_string(cols) +
                     " names");
  std::unordered_map<std::string_view, std::int64_t> row_of;
  row_of.reserve(table.files.size());
  for (std::size_t r = 0; r < table.files.size(); ++r) row_of.emplace(table.files[r], static_cast<std::int64_t>(r));
  // Two images with the same name (a recursive folder: a/1.png and b/1.png) would silently share
  // one row: refused.
  {
    std::unordered_map<std::string_view, std::size_t> seen;
    seen.reserve(files.size());
    for (std::size_t i = 0; i < files.size(); ++i)
      if (const auto [it, fresh] = seen.emplace(files[i], i); !fresh)
        throw ValueError("attributes_for: files " + std::to_string(it->second) + " and " + std::to_string(i) +
                         " are both named '" + files[i] + "'; the table joins by file name, so names must be unique");
  }
  Tensor<float> out(Shape{static_cast<std::int64_t>(files.size()), cols});
  std::size_t missing = 0;
  std::string examples;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto it = row_of.find(files[i]);
    if (it == row_of.end()) {
      if (++missing <= 3) examples += (missing > 1 ? ", '" : "'") + files[i] + "'";
      continue;
    }
    std::copy_n(table.values.data() + it->second * cols, cols, out.data() + static_cast<std::int64_t>(i) * cols);
  }
  if (missing > 0)
    throw ValueError("attributes_for: " + std::to_string(missing) + " of " + std::to_string(files.size()) +
                     " files have no row in the attribute table (" + std::to_string(table.size()) + " rows), e.g. " +
                     examples);
  return out;
}

/// A table with only the attributes `names`, in that order (ValueError for an unknown or
/// repeated name).
inline AttributeTable select_columns(const AttributeTable& table, const std::vector<std::string>& names) {
  const auto cols = static_cast<std::int64_t>(table.names.size());
  if (!table.values.defined() || table.values.rank() != 2 || table.values.dim(0) != table.size() ||
      table.values.dim(1) != cols)
    throw ShapeError("select_columns: the table's values do not match its " + std::to_string(table.size()) +
                     " files and " + std::to_string(cols) + " names");
  std::vector<std::int64_t> picked;
  for (const auto& n : names) {
    const std::int64_t c = table.column(n);
    if (std::find(picked.begin(), picked.end(), c) != picked.end())
      throw ValueError("select_columns: the attribute '" + n + "' is asked for twice");
    picked.push_back(c);
  }
  AttributeTable out;
  out.names = names;
  out.files = table.files;
  const auto k = static_cast<std::int64_t>(picked.size());
  out.values = Tensor<float>(Shape{table.size(), k});
  const float* src = table.values.data();
  float* dst = out.values.data();
  for (std::int64_t r = 0; r < table.size(); ++r)
    for (std::int64_t j = 0; j < k; ++j) dst[r * k + j] = src[r * cols + picked[static_cast<std::size_t>(j)]];
  return out;
}

}  // namespace genmod::data
