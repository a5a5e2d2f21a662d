#pragma once
/// \file metrics.hpp
/// Per-epoch metrics as JSON lines (`OUT/metrics.jsonl`): one flat object per line,
/// `{"epoch": 3, "step": 1407, "train_loss": 0.2871, "test_loss": 0.3012, "seconds": 11.92}`.
///
/// Why JSON lines: each line is a complete record, so a run killed mid-write loses at most its
/// last line, `tail -f` shows progress, and `pandas.read_json(path, lines=True)` reads the file.
/// The JSON itself is io/json.hpp's: numbers in the shortest form that reads back to the same
/// double, NaN and Inf (which JSON cannot spell) written as `null` and read back as NaN.
///
/// An example program that keeps its own records appends one with append_metrics:
///
/// ```cpp
/// train::append_metrics(out + "/metrics.jsonl", {{"task", "denoise"}, {"sigma", 0.3}, {"psnr", psnr}});
/// ```

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "genmod/config.hpp"
#include "genmod/detail/explicit_instantiation.hpp"
#include "genmod/io/json.hpp"

namespace genmod::train {

/// Named scalar metrics of one epoch (what an evaluation function returns: {"test_loss", 0.31}).
using Metrics = std::map<std::string, double>;

/// One line of metrics.jsonl as numbers: the epoch number plus named values, in file order.
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

using io::append_line;    ///< one line appended in a single write (io/json.hpp)
using io::format_number;  ///< shortest round-trip decimal, "null" for NaN/Inf (io/json.hpp)
using io::parse_number;   ///< one JSON number (io/json.hpp)

/// The record as a JSON object (numbers; NaN and Inf become null).
inline io::JsonObject to_json_object(const MetricsRecord& record) {
  io::JsonObject o;
  for (const auto& [k, v] : record.values) o.add(k, v);
  return o;
}

/// The numeric fields of a JSON object as a record: null reads as NaN, true/false as 1/0; strings
/// and arrays are not metrics and are left out.
inline MetricsRecord to_metrics_record(const io::JsonObject& object) {
  MetricsRecord r;
  for (const auto& [k, v] : object.fields()) {
    if (v.is_number() || v.is_null())
      r.values.emplace_back(k, v.number_or_nan());
    else if (v.is_bool())
      r.values.emplace_back(k, v.boolean() ? 1.0 : 0.0);
  }
  return r;
}

/// One JSON line `{"k": v, ...}` (no trailing newline) from (name, value) pairs, in order.
inline std::string metrics_to_json(const std::vector<std::pair<std::string, double>>& values) {
  return io::to_json(to_json_object(MetricsRecord{values}));
}

/// Parses one metrics line (a flat JSON object); throws IOError naming the column otherwise.
inline MetricsRecord parse_metrics_line(std::string_view line) {
  return to_metrics_record(io::parse_json_object(line, "metrics line"));
}

/// Every record of a metrics.jsonl file, in order (numeric fields only; see to_metrics_record). A
/// torn last line (a run killed mid-write) is skipped; a bad line elsewhere throws IOError naming
/// the file and line, `"<path>:<line>: malformed JSON at column ..."`. A missing file gives none.
GENMOD_DETAIL_NONTEMPLATE std::vector<MetricsRecord> read_metrics(const std::string& path)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  std::vector<MetricsRecord> out;
  for (const auto& o : io::read_json_lines(path)) out.push_back(to_metrics_record(o));
  return out;
}
#else
    ;
#endif

/// Appends one record (any flat JSON object: numbers, strings, booleans, arrays of numbers) as a
/// line of a metrics.jsonl file, in one write, fsynced. NaN and Inf are written as null. For a
/// MetricsRecord: append_metrics(path, to_json_object(record)).
GENMOD_DETAIL_NONTEMPLATE void append_metrics(const std::string& path, const io::JsonObject& record)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  io::append_json_line(path, record);
}
#else
    ;
#endif

/// Rewrites a metrics file atomically with exactly `records` (what resuming does to drop the
/// epochs after the checkpoint it resumes from, so the file never holds an epoch twice).
GENMOD_DETAIL_NONTEMPLATE void write_metrics(const std::string& path, const std::vector<MetricsRecord>& records)
#if GENMOD_DETAIL_NONTEMPLATE_BODIES
{
  std::vector<io::JsonObject> objects;
  objects.reserve(records.size());
  for (const auto& r : records) objects.push_back(to_json_object(r));
  io::write_json_lines(path, objects);
}
#else
    ;
#endif

}  // namespace genmod::train
