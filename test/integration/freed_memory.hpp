// What freed heap blocks still hold: a test program linking freed_memory.cpp has its
// operator new and delete replaced, and while a scan runs, every block freed through
// operator delete on the scanning thread is searched for a marker before it goes back
// to malloc. A secret that was erased before its memory was freed leaves no copy
// behind; one merely freed does. Only that thread's frees count, so that a test
// server's own copies, freed on its threads, do not. One scan at a time.
#ifndef CARTESIA_TEST_INTEGRATION_FREED_MEMORY_HPP
#define CARTESIA_TEST_INTEGRATION_FREED_MEMORY_HPP

#include <cstddef>
#include <string_view>

namespace cartesia::test {

/// What a scan saw of the blocks this thread freed.
struct freed_blocks {
    int holding_marker = 0; ///< Still holding the marker: a secret freed unerased.
    int wiped = 0;          ///< Zeros over their first `wiped_size` bytes: erased, then freed.
};

/// Starts counting the blocks this thread frees that contain `marker` (at most 63
/// bytes), and those whose first `wiped_size` bytes (0: none counted) are zeros,
/// as a secret's buffer is once erased: that the secrets were freed at all.
void start_scanning_freed_blocks(std::string_view marker, std::size_t wiped_size = 0) noexcept;

/// Stops; returns what was seen since the start.
freed_blocks stop_scanning_freed_blocks() noexcept;

} // namespace cartesia::test

#endif
