// libFuzzer target: the .npy reader must accept or throw genmod::IOError, never crash.
#include <cstddef>
#include <cstdint>

#include "genmod/data/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto a = genmod::data::parse_npy({data, size}, "fuzz.npy");
    unsigned sum = 0;
    for (const unsigned char b : a.bytes()) sum += b;
    (void)sum;
    // A successfully parsed array must re-encode and parse back to the same bytes.
    const auto again = genmod::data::parse_npy(genmod::data::encode_npy(a), "re-encoded.npy");
    if (!(again.shape() == a.shape()) || again.dtype() != a.dtype()) __builtin_trap();
  } catch (const genmod::IOError&) {
  }
  return 0;
}
