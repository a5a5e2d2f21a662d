// libFuzzer target: the numeric CSV reader must accept or throw genmod::IOError, never crash.
// The first byte picks the options, so the header and comment paths are fuzzed too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "genmod/data/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const genmod::data::CsvOptions options{.delimiter = (data[0] & 1) ? ';' : ',',
                                         .header = (data[0] & 2) != 0,
                                         .comments = (data[0] & 4) != 0};
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto t = genmod::data::parse_csv<float>(text, options, "fuzz.csv");
    if (t.values.rank() != 2) __builtin_trap();
  } catch (const genmod::IOError&) {
  }
  try {
    (void)genmod::data::parse_csv<double>(text, options, "fuzz.csv");
  } catch (const genmod::IOError&) {
  }
  return 0;
}
