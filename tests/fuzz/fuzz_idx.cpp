// libFuzzer target: the IDX reader (plain and gzip) must accept or throw genmod::IOError, never
// crash, leak, hit UB, or allocate beyond what the input can hold.
#include <cstddef>
#include <cstdint>

#include "genmod/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto t = genmod::data::parse_idx({data, size}, "fuzz.idx");
    // Touch every element so ASan sees any out-of-bounds buffer.
    unsigned sum = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) sum += t[i];
    (void)sum;
  } catch (const genmod::IOError&) {
  }
  return 0;
}
