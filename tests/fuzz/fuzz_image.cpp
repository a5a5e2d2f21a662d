// libFuzzer target: PNG/JPEG decoding must return an image or throw genmod::IOError, never crash.
// Note: libstb.so (Debian's libstb-dev) is a prebuilt library, not compiled with the sanitizers or
// the fuzzer's coverage instrumentation, so this target mainly exercises genmod's side (format
// sniffing, the header checks and size limit, stb's buffer lifetime, the CHW copy) and reaches
// stb's decoders blind; an out-of-bounds access inside stb itself is only caught when it faults.
#include <cstddef>
#include <cstdint>

#include "genmod/data/images/image_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using genmod::data::ImageChannels;
  try {
    const auto info = genmod::data::image_info({data, size}, "fuzz.img");
    for (const auto channels : {ImageChannels::keep, ImageChannels::rgb}) {
      const auto t = genmod::data::decode_image({data, size}, channels, "fuzz.img");
      // A decoded image has the size its header announced.
      if (t.dim(1) != info.height || t.dim(2) != info.width ||
          t.dim(0) != genmod::data::channel_count(channels, info.channels))
        __builtin_trap();
      unsigned sum = 0;
      for (std::int64_t i = 0; i < t.numel(); ++i) sum += t.data()[i];
      (void)sum;
    }
  } catch (const genmod::IOError&) {
  }
  return 0;
}
