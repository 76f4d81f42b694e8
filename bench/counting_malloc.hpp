// Counting allocations: every heap allocation of the process that links
// counting_malloc.cpp (cartesia-bench, bench_driver_styles).
//
// glibc lets a program replace malloc and its family (its manual: "Replacing
// malloc"); counting_malloc.cpp counts each call and hands it to glibc's own
// allocator. Counting operator new would miss much: OpenSSL's allocations, and Asio's
// recycling allocator, which calls aligned_alloc directly whenever its per-thread
// cache of two blocks is empty. The C++ allocations arrive there through operator
// new. Sanitizers bring allocators of their own, which the replacements would fight:
// under them nothing is replaced and nothing is counted.
#pragma once

#include <cstdint>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CARTESIA_BENCH_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define CARTESIA_BENCH_UNDER_SANITIZER 1
#endif
#endif

namespace cartesia_bench {

#ifdef CARTESIA_BENCH_UNDER_SANITIZER
constexpr bool allocations_counted = false;
#else
constexpr bool allocations_counted = true;
#endif

// Calls of malloc, calloc, realloc, aligned_alloc, memalign and posix_memalign so far
// (relaxed: a count, not a synchronisation); always 0 under a sanitizer.
std::uint64_t allocation_count() noexcept;

} // namespace cartesia_bench
