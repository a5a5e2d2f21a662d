#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "genmod/kernels/simd.hpp"

using namespace genmod::kernels;

namespace {

// Buffers with sentinels around and between the elements a helper may touch: every test checks
// that what it must not write keeps its sentinel.
constexpr double kSentinel = -777;

template <class T>
std::vector<T> ramp(std::int64_t n, T start) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = start + static_cast<T>(i);
  return v;
}

template <class T>
void check_row_helpers() {
  for (std::int64_t n = 0; n <= 40; ++n) {
    INFO("n = " << n);
    const std::vector<T> src = ramp<T>(n + 8, T(1));
    std::vector<T> dst(static_cast<std::size_t>(n + 16), T(kSentinel));
    simd::short_row<false>(src.data(), dst.data() + 4, n);
    for (std::int64_t i = 0; i < n + 16; ++i) {
      const bool inside = i >= 4 && i < n + 4;
      CHECK(dst[static_cast<std::size_t>(i)] == (inside ? src[static_cast<std::size_t>(i - 4)] : T(kSentinel)));
    }
    simd::short_row<true>(src.data(), dst.data() + 4, n);
    for (std::int64_t i = 0; i < n; ++i)
      CHECK(dst[static_cast<std::size_t>(i + 4)] == 2 * src[static_cast<std::size_t>(i)]);
    CHECK(dst[static_cast<std::size_t>(n + 4)] == T(kSentinel));
  }
}

template <class T>
void check_masked_sum() {
  constexpr std::int64_t lanes = simd::masked_lanes<T>;
  if constexpr (lanes > 0) {
    // Lanes [lo, hi) of each add; the pointer may sit before the row (those lanes are not read).
    const std::vector<T> row = ramp<T>(3 * lanes, T(1));
    simd::MaskedSum<T> sum;
    sum.add(row.data() + lanes, 0, lanes);      // lane l += row[lanes + l]
    sum.add(row.data() + lanes - 2, 2, lanes);  // lane l += row[lanes - 2 + l] for l >= 2
    sum.add(row.data() + lanes + 3, 1, 3);      // lanes 1, 2 += row[lanes + 3 + l]
    std::vector<T> out(static_cast<std::size_t>(lanes + 4), T(kSentinel));
    sum.store(out.data(), lanes - 1);
    for (std::int64_t l = 0; l < lanes + 4; ++l) {
      T want = T(kSentinel);
      if (l < lanes - 1) {
        want = row[static_cast<std::size_t>(lanes + l)];
        if (l >= 2) want += row[static_cast<std::size_t>(lanes - 2 + l)];
        if (l >= 1 && l < 3) want += row[static_cast<std::size_t>(lanes + 3 + l)];
      }
      CHECK(out[static_cast<std::size_t>(l)] == want);
    }
  }
}

}  // namespace

TEST_CASE("Short-row SIMD helpers copy and add exactly the elements asked", "[kernels][simd]") {
  check_row_helpers<float>();
  check_row_helpers<double>();
}

TEST_CASE("MaskedSum adds partial rows lane by lane and stores a prefix", "[kernels][simd]") {
  check_masked_sum<float>();
  check_masked_sum<double>();
}
