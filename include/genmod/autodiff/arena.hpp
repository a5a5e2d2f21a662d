#pragma once
/// \file arena.hpp
/// Bump allocator for tape nodes: chunks are kept when the arena is rewound, so a tape that records
/// the same step again allocates nothing (Stan Math's stack_alloc, with 64-byte alignment).

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace genmod::detail {

class Arena {
 public:
  static constexpr std::size_t kChunkBytes = std::size_t{1} << 16;
  static constexpr std::size_t kAlign = 64;

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() {
    for (auto& c : chunks_) ::operator delete(c.data, std::align_val_t{kAlign});
  }

  /// `bytes` with the given alignment (a power of two, at most 64). Valid until reset().
  void* allocate(std::size_t bytes, std::size_t align) {
    while (true) {
      if (chunk_ < chunks_.size()) {
        Chunk& c = chunks_[chunk_];
        const std::size_t start = (offset_ + align - 1) & ~(align - 1);
        if (start + bytes <= c.size) {
          offset_ = start + bytes;
          return c.data + start;
        }
        if (offset_ == 0) {
          // An oversized request in an unused chunk: replace the chunk by a large enough one.
          ::operator delete(c.data, std::align_val_t{kAlign});
          c = make_chunk(bytes);
          continue;
        }
        ++chunk_;
        offset_ = 0;
        continue;
      }
      chunks_.push_back(make_chunk(bytes > kChunkBytes ? bytes : kChunkBytes));
    }
  }

  /// Forgets every allocation; keeps the chunks for reuse.
  void reset() noexcept {
    chunk_ = 0;
    offset_ = 0;
  }

  /// Bytes held in chunks.
  std::size_t capacity() const noexcept {
    std::size_t total = 0;
    for (const auto& c : chunks_) total += c.size;
    return total;
  }

 private:
  struct Chunk {
    std::byte* data = nullptr;
    std::size_t size = 0;
  };
  static Chunk make_chunk(std::size_t bytes) {
    return {static_cast<std::byte*>(::operator new(bytes, std::align_val_t{kAlign})), bytes};
  }
  std::vector<Chunk> chunks_;
  std::size_t chunk_ = 0;
  std::size_t offset_ = 0;
};

}  // namespace genmod::detail
