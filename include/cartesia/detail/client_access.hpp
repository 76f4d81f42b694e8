// Private access to a cartesia::client: statistics for the benchmark, and its shared
// state for the library's own objects that mint through it. Not part of the API.
#ifndef CARTESIA_DETAIL_CLIENT_ACCESS_HPP
#define CARTESIA_DETAIL_CLIENT_ACCESS_HPP

#include <cartesia/client.hpp>

#include <cstddef>
#include <memory>

namespace cartesia::detail {

struct client_access {
    // Connections the pool has begun to open so far, whether the opening
    // succeeded, failed or goes on (but not those that close() aborted, which
    // client_stats counts nowhere). Any thread.
    static std::size_t connections_opened(const client& c);

    // What a token_reserve mints through: it outlives a move of the client, and
    // fails operations with operation_aborted once the client is closed or
    // destroyed, instead of leaving a dangling reference. Null for a moved-from client.
    static std::shared_ptr<client_impl> impl(const client& c) noexcept { return c.impl_; }
};

} // namespace cartesia::detail

#endif
