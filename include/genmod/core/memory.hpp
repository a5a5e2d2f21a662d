#pragma once
/// \file memory.hpp
/// The caching pool behind every tensor buffer: 64-byte aligned blocks, recycled by size class so
/// that a training step that repeats the shapes of the previous one makes no heap allocation.
///
/// Why a caching pool and not a bump arena: tensors outlive the step that made them (parameters,
/// optimizer state, a sample kept by the user), so a rewound arena would need every tensor to be
/// copied out; a size-class pool gives the same steady state (no malloc after warm-up) without
/// that rule. Freed blocks are poisoned under AddressSanitizer, so use-after-release is still caught.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

#include "genmod/config.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define GENMOD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GENMOD_ASAN 1
#endif
#endif
#ifdef GENMOD_ASAN
#include <sanitizer/asan_interface.h>
#define GENMOD_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define GENMOD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
/// Marks the n bytes at p unaddressable for AddressSanitizer (a freed pool block); a no-op without ASan.
#define GENMOD_POISON(p, n) ((void)(p), (void)(n))
/// Makes the n bytes at p addressable again (a block leaving the pool); a no-op without ASan.
#define GENMOD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace genmod {

/// Alignment of every tensor buffer, in bytes (one cache line, one AVX-512 register).
inline constexpr std::size_t kTensorAlignment = 64;

/// Counters of the tensor memory pool (bytes are payload capacities).
struct MemoryStats {
  std::size_t bytes_in_use = 0;     ///< held by live tensors
  std::size_t bytes_cached = 0;     ///< freed by tensors, kept for reuse
  std::uint64_t system_allocations = 0;  ///< blocks obtained from the system allocator, ever
};

namespace detail {

/// Header placed in front of every pooled block; the payload starts kTensorAlignment bytes later.
struct alignas(kTensorAlignment) BufferHeader {
  std::atomic<std::int32_t> refs{1};
  std::int32_t size_class = 0;
  std::size_t capacity = 0;  // payload bytes
  BufferHeader* next_free = nullptr;

  void* payload() noexcept { return reinterpret_cast<unsigned char*>(this) + sizeof(BufferHeader); }
};
static_assert(sizeof(BufferHeader) == kTensorAlignment);

/// Size classes: exact multiples of 64 bytes up to 1 KiB, then four classes per power of two,
/// so a block wastes at most a quarter of its size.
struct SizeClass {
  int index;
  std::size_t capacity;
};

inline SizeClass size_class_for(std::size_t bytes) noexcept {
  std::size_t units = (bytes + 63) / 64;
  if (units == 0) units = 1;
  if (units <= 16) return {static_cast<int>(units - 1), units * 64};
  int p = 0;
  while ((std::size_t{1} << (p + 1)) < units) ++p;  // 2^p < units <= 2^(p+1)
  const std::size_t base = std::size_t{1} << p;
  const std::size_t step = base >> 2;
  const std::size_t sub = (units - base + step - 1) / step;  // 1..4
  return {16 + (p - 4) * 4 + static_cast<int>(sub - 1), (base + sub * step) * 64};
}

class CachingPool {
 public:
  static constexpr int kClasses = 16 + 60 * 4;

  static CachingPool& instance() {
    static CachingPool pool;  // intentionally leaked blocks at exit are returned by the OS
    return pool;
  }

  BufferHeader* acquire(std::size_t bytes) {
    const SizeClass sc = size_class_for(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      BufferHeader* h = free_[sc.index];
      if (h) {
        GENMOD_UNPOISON(h, sizeof(BufferHeader) + h->capacity);
        free_[sc.index] = h->next_free;
        h->next_free = nullptr;
        h->refs.store(1, std::memory_order_relaxed);
        stats_.bytes_cached -= h->capacity;
        stats_.bytes_in_use += h->capacity;
        return h;
      }
      stats_.system_allocations += 1;
      stats_.bytes_in_use += sc.capacity;
    }
    void* raw = std::aligned_alloc(kTensorAlignment, sizeof(BufferHeader) + sc.capacity);
    if (!raw) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.bytes_in_use -= sc.capacity;
      throw std::bad_alloc();
    }
    auto* h = new (raw) BufferHeader;
    h->size_class = sc.index;
    h->capacity = sc.capacity;
    return h;
  }

  void release(BufferHeader* h) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_in_use -= h->capacity;
    stats_.bytes_cached += h->capacity;
    h->next_free = free_[h->size_class];
    free_[h->size_class] = h;
    // Poison the payload only: the header is the free-list link.
    GENMOD_POISON(h->payload(), h->capacity);
  }

  void empty_cache() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& head : free_) {
      while (head) {
        BufferHeader* next = head->next_free;
        GENMOD_UNPOISON(head, sizeof(BufferHeader) + head->capacity);
        stats_.bytes_cached -= head->capacity;
        head->~BufferHeader();
        std::free(head);
        head = next;
      }
    }
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  CachingPool() = default;
  std::mutex mu_;
  BufferHeader* free_[kClasses] = {};
  MemoryStats stats_;
};

}  // namespace detail

/// Snapshot of the tensor memory pool's counters.
inline MemoryStats memory_stats() { return detail::CachingPool::instance().stats(); }

/// Returns every cached (unused) tensor block to the system allocator.
inline void empty_cache() { detail::CachingPool::instance().empty_cache(); }

}  // namespace genmod
