// What freed heap blocks still hold: a test program linking freed_memory.cpp has its
// operator new and delete replaced, and while a scan runs, every block freed through
// operator delete on the scanning thread is searched for a marker before it goes back
// to malloc. A secret that was erased before its memory was freed leaves no copy
// behind; one merely freed does. Only that thread's frees count, so that a test
// server's own copies, freed on its threads, do not. One scan at a time.
#ifndef CARTESIA_TEST_INTEGRATION_FREED_MEMORY_HPP
#define CARTESIA_TEST_INTEGRATION_FREED_MEMORY_HPP

#include <string_view>

namespace cartesia::test {

/// Starts counting the blocks this thread frees that contain `marker` (at most 63 bytes).
void start_scanning_freed_blocks(std::string_view marker) noexcept;

/// Stops; returns how many freed blocks contained the marker since the start.
int stop_scanning_freed_blocks() noexcept;

} // namespace cartesia::test

#endif
