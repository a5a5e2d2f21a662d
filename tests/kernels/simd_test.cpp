#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "genmod/kernels/simd.hpp"

namespace kernels_simd_test {

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

// xsimd::select on an integer batch: lanes whose condition holds take the first branch. On AVX-512BW
// this is the overload simd.hpp adds (xsimd 8's own does not compile without optimisation).
template <class I>
void check_integer_select() {
  using B = xsimd::batch<I>;
  std::vector<I> a(B::size), b(B::size), want(B::size), got(B::size);
  for (std::size_t l = 0; l < B::size; ++l) {
    a[l] = static_cast<I>(l + 1);
    b[l] = static_cast<I>(100 - static_cast<int>(l));
    want[l] = l % 3 == 0 ? a[l] : b[l];
  }
  const B va = B::load_unaligned(a.data()), vb = B::load_unaligned(b.data());
  std::vector<I> pick(B::size);
  for (std::size_t l = 0; l < B::size; ++l) pick[l] = l % 3 == 0 ? I(1) : I(0);
  xsimd::select(B::load_unaligned(pick.data()) == B(I(1)), va, vb).store_unaligned(got.data());
  CHECK(got == want);
}

}  // namespace

TEST_CASE("select on integer batches takes the first branch where the condition holds", "[kernels][simd]") {
  check_integer_select<std::int8_t>();
  check_integer_select<std::int16_t>();
  check_integer_select<std::int32_t>();
  check_integer_select<std::int64_t>();
}

TEST_CASE("simd::log of subnormal, normal and zero inputs matches std::log", "[kernels][simd]") {
  // xsimd's log rescales subnormal inputs through an integer select before extracting the exponent.
  using B = simd::Batch<float>;
  std::vector<float> x(B::size), got(B::size);
  for (std::size_t l = 0; l < B::size; ++l)
    x[l] = l % 2 == 0 ? std::numeric_limits<float>::denorm_min() * static_cast<float>(l + 1)
                      : std::ldexp(1.5f, static_cast<int>(l) - 8);
  simd::storeu(got.data(), simd::log(simd::loadu<B>(x.data())));
  for (std::size_t l = 0; l < B::size; ++l) {
    INFO("x = " << x[l]);
    CHECK(got[l] == Approx(std::log(x[l])).epsilon(1e-6));
  }
  CHECK(simd::log(0.0f) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("Short-row SIMD helpers copy and add exactly the elements asked", "[kernels][simd]") {
  check_row_helpers<float>();
  check_row_helpers<double>();
}

TEST_CASE("MaskedSum adds partial rows lane by lane and stores a prefix", "[kernels][simd]") {
  check_masked_sum<float>();
  check_masked_sum<double>();
}

}  // namespace kernels_simd_test
