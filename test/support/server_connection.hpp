// One client connection of the test server: its TLS stream, the loop that reads requests and
// writes answers, and the ways a connection ends. Private to the test server.
//
// The coroutines here take the connection by reference: it lives in the frame of
// serve_connection(), which awaits them.
#ifndef CARTESIA_TEST_SUPPORT_SERVER_CONNECTION_HPP
#define CARTESIA_TEST_SUPPORT_SERVER_CONNECTION_HPP

#include "support/http_format.hpp"
#include "support/test_server.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

namespace cartesia::test::detail {

using tcp = boost::asio::ip::tcp;
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// Client connections currently open, which a test can wait on without polling.
class connection_gauge {
public:
    void opened()
    {
        change([this] { ++value_; });
    }
    void closed()
    {
        change([this] { --value_; });
    }

    std::size_t value() const noexcept { return value_; }

    bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return value_ == n; });
    }

private:
    // Applies `how` under the lock, so that a waiter cannot miss the notification.
    template <typename Change> void change(Change how)
    {
        {
            const std::lock_guard lock(mutex_);
            how();
        }
        changed_.notify_all();
    }

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::atomic<std::size_t> value_{0}; // atomic too, so that value() needs no lock
};

// What the server counts across its connections; tests read it from other threads.
struct traffic {
    std::atomic<std::size_t> bytes_written{0};
    // Handshakes that resumed an earlier TLS session.
    std::atomic<std::size_t> resumed_handshakes{0};
    // Handshakes completed, resumed or not: counted up only, so that a test can wait for a count.
    connection_gauge handshakes;
    connection_gauge open_connections;
};

// One client connection, counted as open from its construction until its socket is closed.
struct connection {
    connection(tcp::socket socket, boost::asio::ssl::context& tls, traffic& counters);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    tls_stream stream;
    boost::beast::flat_buffer buffer; // read from the stream and not parsed yet
    traffic& tally;
    std::size_t number = 0;   // in the order the server accepted connections, from 1
    std::size_t requests = 0; // read on it so far
    // When it last became idle: the handshake's end, then each answer's.
    std::chrono::steady_clock::time_point idle_since{};
};

// Writes `bytes`, counting what went out; false when the connection broke.
boost::asio::awaitable<bool> write(connection& c, std::string_view bytes);

// Waits `delay` on an asio timer; false when cancelled.
boost::asio::awaitable<bool> pause(std::chrono::milliseconds delay);

// Holds a connection open without answering, discarding whatever the client sends, until
// the client leaves or the server stops.
boost::asio::awaitable<void> hold_open(connection& c);

// Runs `work` (a wait, or writes the client may not be reading) until it is done or the client
// leaves: a write would notice a departed client late, and a wait never. True when `work`
// finished and succeeded; when the client left first, `work` is cancelled.
boost::asio::awaitable<bool> unless_client_leaves(connection& c, boost::asio::awaitable<bool> work);

// The server's answer to one request on `c`: what to send, how, and what to do with the
// connection after.
using request_handler = std::function<boost::asio::awaitable<canned_response>(connection& c, const request_type&)>;

// How the server keeps connections alive.
struct keep_alive_policy {
    // A connection idle this long (no byte of a next request) is closed, without close_notify,
    // as nginx's keepalive_timeout does. Unset: kept until the client leaves.
    std::optional<std::chrono::milliseconds> idle_close_after;
};

// Serves one client: the TLS handshake, then requests answered by `respond` until either side
// ends the connection. `tls` and `tally` belong to the server and outlive its connections.
// `number` is the connection's, from 1.
boost::asio::awaitable<void> serve_connection(tcp::socket socket, boost::asio::ssl::context& tls, traffic& tally,
                                              request_handler respond, std::size_t number,
                                              keep_alive_policy keep_alive);

} // namespace cartesia::test::detail

#endif
