// Private statistics of a cartesia::client, for the benchmark. Not part of the API.
#ifndef CARTESIA_DETAIL_CLIENT_ACCESS_HPP
#define CARTESIA_DETAIL_CLIENT_ACCESS_HPP

#include <cartesia/client.hpp>

#include <cstddef>

namespace cartesia::detail {

struct client_access {
    // Connections the pool has opened so far. Read it where the client's
    // executor runs (single-threaded use), or after the io_context stopped.
    static std::size_t connections_opened(const client& c);
};

} // namespace cartesia::detail

#endif
