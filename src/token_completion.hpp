// A token handler's completion, queued to the handler's own executor: what both the
// client's operations and the reserve's takes post or dispatch there. Private to src/.
#ifndef CARTESIA_SRC_TOKEN_COMPLETION_HPP
#define CARTESIA_SRC_TOKEN_COMPLETION_HPP

#include "erase_token.hpp"

#include <cartesia/generate_token.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <utility>

namespace cartesia::detail {

// The caller's cancellation slot is cleared here, on the handler's executor, where
// the caller may emit it, and not on the strand that completed the operation while
// the caller does (Asio's rule: a slot is emitted and cleared on one executor). The
// hop offers the handler's allocator to the executor that queues it (a concrete
// one takes it; a type-erased any_io_executor has no such property and uses its
// own), and the token is erased if the completion is destroyed without running.
struct token_completion {
    token_handler handler;
    boost::asio::cancellation_slot slot;
    boost::system::error_code ec;
    token_in_transit response;

    using allocator_type = boost::asio::associated_allocator_t<token_handler>;
    allocator_type get_allocator() const noexcept { return boost::asio::get_associated_allocator(handler); }

    void operator()()
    {
        if (slot.is_connected())
            slot.clear();
        std::move(handler)(ec, response.take());
    }
};

} // namespace cartesia::detail

#endif
