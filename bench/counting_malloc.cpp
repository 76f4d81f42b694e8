// The replaced malloc family of counting_malloc.hpp.
#include "counting_malloc.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>

namespace {
// One thread allocates in the benches, but OpenSSL or Asio may start a thread of
// their own: relaxed atomics cost nothing that matters and leave no doubt.
std::atomic<std::uint64_t> calls{0};
} // namespace

std::uint64_t cartesia_bench::allocation_count() noexcept
{
    return calls.load(std::memory_order_relaxed);
}

#ifndef CARTESIA_BENCH_UNDER_SANITIZER
namespace {
void count_call() noexcept
{
    calls.fetch_add(1, std::memory_order_relaxed);
}
} // namespace

// glibc's allocator under its internal names (exported for exactly this use).
// NOLINTBEGIN(bugprone-reserved-identifier, cert-dcl37-c, cert-dcl51-cpp,
// readability-inconsistent-declaration-parameter-name)
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* block, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* block);

void* malloc(std::size_t size) noexcept
{
    count_call();
    return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept
{
    count_call();
    return __libc_calloc(count, size);
}
void* realloc(void* block, std::size_t size) noexcept
{
    count_call();
    return __libc_realloc(block, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept
{
    count_call();
    return __libc_memalign(alignment, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept
{
    count_call();
    return __libc_memalign(alignment, size);
}
int posix_memalign(void** block, std::size_t alignment, std::size_t size) noexcept
{
    if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    count_call();
    void* allocated = __libc_memalign(alignment, size);
    if (allocated == nullptr)
        return ENOMEM;
    *block = allocated;
    return 0;
}
void free(void* block) noexcept
{
    __libc_free(block);
}
}
// NOLINTEND(bugprone-reserved-identifier, cert-dcl37-c, cert-dcl51-cpp,
// readability-inconsistent-declaration-parameter-name)
#endif
