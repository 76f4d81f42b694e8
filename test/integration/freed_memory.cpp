// The replaced operator new and delete of freed_memory.hpp. In a translation unit of
// their own: GCC, inlining them into a caller's new-expression, mistakes their free()
// for a mismatched deallocation (-Wmismatched-new-delete).
#include "freed_memory.hpp"

#include <malloc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <thread>

namespace {

// Written only while no scan runs, read by operator delete on any thread.
std::array<char, 64> marker_bytes{};
std::atomic<std::size_t> marker_size{0};
std::atomic<bool> scanning{false};
std::atomic<std::thread::id> scanned_thread{};
std::atomic<std::size_t> zeros_wanted{0};
std::atomic<int> found{0};
std::atomic<int> wiped{0};

void scan(void* block) noexcept
{
    if (block == nullptr || !scanning.load(std::memory_order_acquire) ||
        scanned_thread.load(std::memory_order_relaxed) != std::this_thread::get_id())
        return;
    const std::string_view marker(marker_bytes.data(), marker_size.load(std::memory_order_relaxed));
    const std::string_view bytes(static_cast<const char*>(block), malloc_usable_size(block));
    if (bytes.find(marker) != std::string_view::npos)
        found.fetch_add(1, std::memory_order_relaxed);
    const std::size_t zeros = zeros_wanted.load(std::memory_order_relaxed);
    if (zeros > 0 && bytes.size() >= zeros &&
        std::all_of(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(zeros), [](char c) { return c == 0; }))
        wiped.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

namespace cartesia::test {

void start_scanning_freed_blocks(std::string_view marker, std::size_t wiped_size) noexcept
{
    const std::size_t size = std::min(marker.size(), marker_bytes.size() - 1);
    std::copy_n(marker.data(), size, marker_bytes.data());
    marker_size.store(size, std::memory_order_relaxed);
    found.store(0, std::memory_order_relaxed);
    zeros_wanted.store(wiped_size, std::memory_order_relaxed);
    wiped.store(0, std::memory_order_relaxed);
    scanned_thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
    scanning.store(size > 0, std::memory_order_release);
}

freed_blocks stop_scanning_freed_blocks() noexcept
{
    scanning.store(false, std::memory_order_release);
    return {found.load(std::memory_order_relaxed), wiped.load(std::memory_order_relaxed)};
}

} // namespace cartesia::test

// malloc and free underneath, so that a sanitizer's interceptors still check every
// block. Every plain form is replaced, nothrow and array ones too: ASan reports a block
// from its own nothrow new freed by this delete as a mismatch. (malloc and free by
// hand: they are what operator new and delete are made of.) The aligned forms are
// left to the runtime, whole.
void* operator new(std::size_t size)
{
    if (void* block = std::malloc(size == 0 ? 1 : size)) // NOLINT(cppcoreguidelines-no-malloc)
        return block;
    throw std::bad_alloc();
}

void* operator new(std::size_t size, const std::nothrow_t&) noexcept
{
    return std::malloc(size == 0 ? 1 : size); // NOLINT(cppcoreguidelines-no-malloc)
}

void* operator new[](std::size_t size)
{
    return ::operator new(size);
}

void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept
{
    return ::operator new(size, tag);
}

void operator delete(void* block) noexcept
{
    scan(block);
    std::free(block); // NOLINT(cppcoreguidelines-no-malloc)
}

void operator delete(void* block, std::size_t) noexcept
{
    ::operator delete(block);
}

void operator delete(void* block, const std::nothrow_t&) noexcept
{
    ::operator delete(block);
}

void operator delete[](void* block) noexcept
{
    ::operator delete(block);
}

void operator delete[](void* block, std::size_t) noexcept
{
    ::operator delete(block);
}

void operator delete[](void* block, const std::nothrow_t&) noexcept
{
    ::operator delete(block);
}
