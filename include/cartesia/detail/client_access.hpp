// Private statistics of a cartesia::client, for the benchmark. Not part of the API.
#ifndef CARTESIA_DETAIL_CLIENT_ACCESS_HPP
#define CARTESIA_DETAIL_CLIENT_ACCESS_HPP

#include <cartesia/client.hpp>

#include <cstddef>

namespace cartesia::detail {

struct client_access {
    // Connections the pool has begun to open so far, whether the opening
    // succeeded, failed or goes on (but not those that close() aborted, which
    // client_stats counts nowhere). Any thread.
    static std::size_t connections_opened(const client& c);
};

} // namespace cartesia::detail

#endif
