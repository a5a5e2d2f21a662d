#pragma once
/// \file random.hpp
/// Seeded, reproducible random numbers: a counter-based Philox4x32-10 engine.
///
/// Why counter-based: the value drawn for element i of a fill depends only on (seed, stream,
/// offset + i), never on which thread computed it, so a tensor filled by 1 or 2 threads is the same
/// bit for bit. A Generator is (seed, stream, offset): `seed` is the user's seed, `stream` selects an
/// independent sequence (e.g. one per data loader or per model component), and `offset` counts the
/// 128-bit blocks consumed so far. Threads never share a generator's offset: a parallel fill reserves
/// its blocks up front and hands each thread a disjoint range of counters.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <type_traits>

namespace genmod {

namespace detail {

/// One Philox4x32-10 block: 4 random 32-bit words for a 128-bit counter and a 64-bit key.
inline std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr,
                                                  std::array<std::uint32_t, 2> key) noexcept {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{kM0} * ctr[0];
    const std::uint64_t p1 = std::uint64_t{kM1} * ctr[2];
    ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<std::uint32_t>(p1),
           static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<std::uint32_t>(p0)};
    key[0] += kW0;
    key[1] += kW1;
  }
  return ctr;
}

// 24 random bits -> float in [0, 1); 53 random bits -> double in [0, 1).
inline float u32_to_unit_float(std::uint32_t x) noexcept {
  return static_cast<float>(x >> 8) * 0x1.0p-24f;
}
inline double u64_to_unit_double(std::uint64_t x) noexcept {
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

}  // namespace detail

/// Serializable state of a Generator (what a checkpoint stores).
struct GeneratorState {
  /// The key: two generators with different seeds give unrelated sequences.
  std::uint64_t seed = 0;
  /// The stream within a seed (fork() makes independent streams).
  std::uint64_t stream = 0;
  /// Number of 128-bit blocks already drawn: the position in the sequence.
  std::uint64_t offset = 0;
};

/// Which rows of a batch-sized draw this process computes, when a global batch of `total` samples
/// is split across data-parallel ranks and this rank holds samples [first, first + count). While a
/// Generator carries an active window (count > 0), a tensor fill whose leading dimension is
/// `count` draws exactly rows [first, first + count) of the fill a single process would have made
/// for the whole [total, ...] batch, and advances the generator as that whole fill would: noise
/// drawn per sample (a VAE's epsilon, a GAN's z, dropout masks) is keyed by the global sample
/// index, so N ranks of B samples draw what one process with N B samples draws. Fills of any other
/// leading dimension are unaffected.
struct SampleWindow {
  std::int64_t first = 0;  ///< global index of this rank's first sample within the batch
  std::int64_t count = 0;  ///< samples this rank holds (0: no window)
  std::int64_t total = 0;  ///< samples in the global batch, over every rank
  /// True when the window changes fills (a real shard of a larger batch).
  bool active() const noexcept { return count > 0 && total > count; }
};

/// Philox4x32-10 random number generator. Cheap to copy; copies continue the same sequence.
class Generator {
 public:
  /// A generator at the start of the sequence (seed, stream); equal arguments give equal sequences.
  explicit Generator(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept : seed_(seed), stream_(stream) {}

  /// The 4 words of block `index` (absolute, independent of the current offset).
  std::array<std::uint32_t, 4> block(std::uint64_t index) const noexcept {
    return detail::philox4x32_10({static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                                  static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
                                 {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
  }

  /// Reserves `n` consecutive blocks and returns the index of the first.
  std::uint64_t reserve_blocks(std::uint64_t n) noexcept {
    const std::uint64_t first = offset_;
    offset_ += n;
    return first;
  }

  /// 64 random bits.
  std::uint64_t next_u64() noexcept {
    const auto b = block(reserve_blocks(1));
    return (std::uint64_t{b[0]} << 32) | b[1];
  }

  /// Uniform integer in [0, n), unbiased (rejection), n > 0.
  std::uint64_t uniform_int(std::uint64_t n) noexcept {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next_u64();
    while (x >= limit);
    return x % n;
  }

  /// Uniform double in [0, 1).
  double uniform() noexcept { return detail::u64_to_unit_double(next_u64()); }

  /// A generator for an independent stream derived from this one's seed (e.g. per component).
  Generator fork(std::uint64_t stream) const noexcept { return Generator(seed_, stream); }

  /// Seed, stream and position, enough to resume the sequence exactly (checkpoints).
  GeneratorState state() const noexcept { return {seed_, stream_, offset_}; }
  /// Resumes the sequence saved by state().
  void set_state(const GeneratorState& s) noexcept {
    seed_ = s.seed;
    stream_ = s.stream;
    offset_ = s.offset;
  }

  /// The seed this generator was made with.
  std::uint64_t seed() const noexcept { return seed_; }

  /// The data-parallel window of batch-sized fills (see SampleWindow); inactive by default. Not
  /// part of state(): it describes the current batch, not the position in the sequence.
  const SampleWindow& sample_window() const noexcept { return window_; }
  /// Sets the window for the fills of the current batch (distributed::SampleWindowGuard sets and
  /// clears it around a step).
  void set_sample_window(const SampleWindow& w) noexcept { window_ = w; }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t offset_ = 0;
  SampleWindow window_ = {};
};

/// The generator layers use for their default initialization when given none (as PyTorch's
/// global generator). One per thread, seeded 0 until manual_seed.
inline Generator& default_generator() noexcept {
  thread_local Generator g(0);
  return g;
}

/// Reseeds this thread's default generator: the same seed gives the same initial weights.
inline void manual_seed(std::uint64_t seed) noexcept {
  default_generator() = Generator(seed);
}

namespace detail {

/// Values per Philox block for T: 4 floats (32 bits each) or 2 doubles (64 bits each).
template <class T>
inline constexpr std::int64_t values_per_block = std::is_same_v<T, float> ? 4 : 2;

/// The uniform in [0,1) for element i of a fill that starts at block `first_block`.
template <class T>
T uniform_in_block(const std::array<std::uint32_t, 4>& w, std::size_t lane) noexcept {
  if constexpr (std::is_same_v<T, float>)
    return detail::u32_to_unit_float(w[lane]);
  else
    return static_cast<T>(detail::u64_to_unit_double((std::uint64_t{w[2 * lane]} << 32) | w[2 * lane + 1]));
}

template <class T>
T uniform_at(const Generator& g, std::uint64_t first_block, std::int64_t i) noexcept {
  constexpr std::int64_t vpb = values_per_block<T>;
  const std::int64_t blk = i / vpb;
  return uniform_in_block<T>(g.block(first_block + static_cast<std::uint64_t>(blk)),
                             static_cast<std::size_t>(i - blk * vpb));
}

/// Fills elements [begin, end) of the stream with uniforms in [0,1); element i is uniform_at(i),
/// whoever computes it, and is written to out[i - base] (base > 0: a window of a longer fill).
template <class T>
void fill_uniform_range(const Generator& g, std::uint64_t first_block, T* out, std::int64_t begin, std::int64_t end,
                        std::int64_t base = 0) noexcept {
  // One Philox block gives values_per_block values: compute each block once, not once per value.
  constexpr std::int64_t vpb = values_per_block<T>;
  for (std::int64_t blk = begin / vpb; blk * vpb < end; ++blk) {
    const auto w = g.block(first_block + static_cast<std::uint64_t>(blk));
    for (std::int64_t i = std::max(begin, blk * vpb); i < std::min(end, (blk + 1) * vpb); ++i)
      out[i - base] = uniform_in_block<T>(w, static_cast<std::size_t>(i - blk * vpb));
  }
}

/// Standard normals by Box-Muller on pairs (2k, 2k+1) of uniforms, so any range can be produced
/// independently of the others (a range starting at an odd index recomputes its pair). Element i
/// is written to out[i - base], as in fill_uniform_range.
template <class T>
void fill_normal_range(const Generator& g, std::uint64_t first_block, T* out, std::int64_t begin, std::int64_t end,
                       std::int64_t base = 0) noexcept {
  constexpr std::int64_t vpb = values_per_block<T>;  // even: a pair never straddles two blocks
  for (std::int64_t p = begin / 2 * 2; p < end; p += 2) {
    const std::int64_t blk = p / vpb;
    const auto w = g.block(first_block + static_cast<std::uint64_t>(blk));
    const auto lane = static_cast<std::size_t>(p - blk * vpb);
    const double u0 = static_cast<double>(uniform_in_block<T>(w, lane));
    const double u1 = static_cast<double>(uniform_in_block<T>(w, lane + 1));
    const double r = std::sqrt(-2.0 * std::log(1.0 - u0));  // 1 - u0 is in (0, 1]: finite log
    const double theta = 2.0 * std::numbers::pi * u1;
    if (p >= begin) out[p - base] = static_cast<T>(r * std::cos(theta));
    if (p + 1 < end) out[p + 1 - base] = static_cast<T>(r * std::sin(theta));
  }
}

template <class T>
std::uint64_t blocks_for(std::int64_t n) noexcept {
  return static_cast<std::uint64_t>((n + values_per_block<T> - 1) / values_per_block<T>);
}

}  // namespace detail

}  // namespace genmod
