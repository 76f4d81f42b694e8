// The connect step: happy_eyeballs_fsm's race run over real sockets, one
// tcp::socket per attempt and one steady_timer, on the caller's executor (the
// owner's strand: the race is not thread-safe). The winner's socket is moved into
// the caller's. Compiled once, in happy_eyeballs.cpp, behind
// any_completion_handler. Private to src/.
//
// Why callbacks and not a coroutine: a race waits for several things at once (each
// attempt's connect, and the timer), and a coroutine awaits one. Its state is in a
// shared_ptr that every pending handler holds, so that sockets closed by an abort
// may report after the race completed.
#ifndef CARTESIA_SRC_HAPPY_EYEBALLS_HPP
#define CARTESIA_SRC_HAPPY_EYEBALLS_HPP

#include "happy_eyeballs_fsm.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>

namespace cartesia::detail {

// A race under way. Its owner keeps a weak_ptr to it, so as to abort it.
class connect_race;

// What the caller learns besides the error.
struct connect_report {
    std::size_t addresses_tried = 0;
};

// Races connections to `endpoints` (RFC 8305, see happy_eyeballs_fsm.hpp) and
// moves the first socket connected into `destination`, which must not be open.
// Completes once with `void(error_code)`: no error, `destination` connected; the
// last attempt's error when every address failed; operation_aborted after
// abort_connect_race() or a cancellation through the handler's slot (any type but
// none). Every socket but the winner is closed by then. `report` is written on
// completion; `race` may be used to abort it until then. `destination`, `report`
// and `race` must outlive the operation.
void start_connect_race(const boost::asio::any_io_executor& executor,
                        const boost::asio::ip::tcp::resolver::results_type& endpoints, const connect_timing& timing,
                        boost::asio::ip::tcp::socket& destination, connect_report& report,
                        std::weak_ptr<connect_race>& race,
                        boost::asio::any_completion_handler<void(boost::system::error_code)> handler);

template <class CompletionToken>
auto async_connect_race(const boost::asio::any_io_executor& executor,
                        const boost::asio::ip::tcp::resolver::results_type& endpoints, const connect_timing& timing,
                        boost::asio::ip::tcp::socket& destination, connect_report& report,
                        std::weak_ptr<connect_race>& race, CompletionToken&& token)
{
    // Pointers, not references: an awaitable runs the initiation after the
    // caller suspended, from a copy of it.
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
        [executor, endpoints, timing, destination = &destination, report = &report, race = &race](auto handler) {
            start_connect_race(executor, endpoints, timing, *destination, *report, *race, std::move(handler));
        },
        token);
}

// Closes every socket of the race, if it is still under way, and makes it complete
// with operation_aborted: not from inside this call (so that an owner's abort()
// never calls back into the owner), but from the handler of the first closed
// socket to report, which comes at once. A no-op once it completed.
void abort_connect_race(const std::weak_ptr<connect_race>& race) noexcept;

} // namespace cartesia::detail

#endif
