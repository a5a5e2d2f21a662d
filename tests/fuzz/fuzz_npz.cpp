// libFuzzer target: the .npz (zip) reader, and the checkpoint metadata JSON parser on any
// "__metadata__" member, must accept or throw genmod::IOError, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "genmod/data/npz.hpp"
#include "genmod/io/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto archive = genmod::data::parse_npz({data, size}, "fuzz.npz");
    for (const auto& e : archive.entries()) {
      unsigned sum = 0;
      for (const unsigned char b : e.array.bytes()) sum += b;
      (void)sum;
      if (e.name == genmod::io::kMetadataKey && e.array.holds<std::uint8_t>()) {
        const auto& m = e.array.get<std::uint8_t>();
        const std::string_view text(reinterpret_cast<const char*>(m.data()), static_cast<std::size_t>(m.numel()));
        (void)genmod::io::detail::metadata_from_json(text, "fuzz.npz");
      }
    }
  } catch (const genmod::IOError&) {
  }
  return 0;
}
