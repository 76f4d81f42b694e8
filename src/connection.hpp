// One TLS connection to the API and the exchanges over it: the I/O shared by the
// one-shot operation and the pool. Private to src/ (Beast and SSL heavy).
#ifndef CARTESIA_SRC_CONNECTION_HPP
#define CARTESIA_SRC_CONNECTION_HPP

#include "exchange.hpp"
#include "happy_eyeballs.hpp"

#include "protocol.hpp"

#include <cartesia/events.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cartesia::detail {

// asio, error_code and nothrow_awaitable come from exchange.hpp.
using tcp = asio::ip::tcp;

// The addresses of connect_target_of(where), the proxy's when tunnelling
// (proxy_tunnel.hpp): an IP literal directly (no getaddrinfo thread, no wait), a
// name that client_config::resolve pins from there, any other name through
// `resolver`, which is created on first use so that an owner's abort can cancel
// it. Fills diag on failure.
asio::awaitable<error_code> resolve_endpoints(const endpoint& where, std::unique_ptr<tcp::resolver>& resolver,
                                              const asio::any_io_executor& executor, tcp::resolver::results_type& out,
                                              diagnostics& diag);

// Not thread-safe: its owner runs it on one strand. A deadline or a cancellation
// calls abort(), which makes whatever step is pending fail at once.
class connection {
public:
    connection(const asio::any_io_executor& executor, asio::ssl::context& tls);

    // Connects to the first of `endpoints` that answers, racing them (Happy
    // Eyeballs, see happy_eyeballs_fsm.hpp) with the connect timings of
    // `where.network`, opens the CONNECT tunnel when there is a proxy
    // (open_tunnel()), then performs the TLS handshake with SNI and with peer and
    // host name verification against the API (whatever `tls` says).
    asio::awaitable<error_code> open(const endpoint& where, const tcp::resolver::results_type& endpoints,
                                     diagnostics& diag);

    // Writes one request (the head, then the length and body serialized from
    // `request`, joined in a buffer the connection keeps, so that it goes out in
    // one TLS record) and reads its response under the configured limits, skipping
    // 1xx interim responses, then interprets it. Completes with `void()`; outcome()
    // then says how it went: the error, whether a response began, its status and
    // its retry headers. The exchange itself is exchange_op's (exchange.hpp), which
    // the fuzzer runs too. Every reference must outlive it.
    template <class Handler>
    void async_exchange(std::string_view request_head, const token_request& request, const client_config& config,
                        token_response& response, diagnostics& diag, Handler&& handler)
    {
        // Should the exchange fail to start for want of memory, outcome() says so,
        // as the driver tells the request algorithm: not the previous exchange's.
        outcome_ = {};
        outcome_.ec = make_error_code(boost::system::errc::not_enough_memory);
        request_buffer_.assign(request_head);
        request_buffer_.append(serialize_request_tail(request).view());
        detail::async_exchange(stream_, asio::buffer(request_buffer_), response_, config, outcome_, response, diag,
                               [this, done = std::forward<Handler>(handler)](error_code ec) mutable {
                                   outcome_.ec = ec;
                                   std::move(done)();
                               });
    }

    // How the last exchange went. The outcome lives here rather than in the
    // request, which then carries nothing of an exchange while it waits in a queue.
    const attempt_outcome& outcome() const noexcept { return outcome_; }

    // A graceful TLS shutdown, `void(error_code)`; its errors do not matter, the
    // exchange is over. A peer that skips close_notify (stream_truncated) is common.
    template <class Handler> void async_shutdown(Handler&& handler)
    {
        response_.keep_alive = false;
        stream_.async_shutdown(std::forward<Handler>(handler));
    }

    // Abortive close: pending steps fail with operation_aborted. Idempotent.
    void abort() noexcept;

    // Closes a healthy connection without a TLS close_notify (the server already
    // closed its side, or the connection idled out), telling OpenSSL that it ended
    // properly: a connection freed without that makes its TLS session
    // non-resumable, which would spoil resumption for the whole pool.
    void close_quietly() noexcept;

    // Its number in the process, for events.
    std::uint64_t number() const noexcept { return number_; }
    // When open() completed its TLS handshake; the epoch before.
    std::chrono::steady_clock::time_point opened_at() const noexcept { return opened_at_; }
    // The TLS handshake resumed a session.
    bool session_resumed() noexcept { return SSL_session_reused(stream_.native_handle()) == 1; }
    // What a `connected` event says of an open connection: its number, peer, TLS
    // version, resumption and how long open() took.
    void describe_to(event& e) noexcept;
    // A `connection_closed` event for it, `reason` and `exchanges` as given: open
    // for as long as it was, or, when it never opened, since its opening began.
    event closed_event(std::string_view reason, std::size_t exchanges) const noexcept;

    // The OpenSSL handle, for TLS session resumption by the pool.
    SSL* native_handle() noexcept { return stream_.native_handle(); }

    // Neither aborted nor closed by the server: another exchange may follow.
    bool reusable() const noexcept { return !aborted_ && response_.keep_alive; }

    // What the last whole response's Keep-Alive header said; empty without one.
    const keep_alive_hint& server_hint() const noexcept { return response_.server_hint; }

    // While the connection idles in a pool: completes, `void(error_code)`, when
    // the socket becomes readable (the server closed, or sent something), or fails
    // (abort()). Nothing is read: an exchange may start meanwhile, and reads the
    // stream as usual.
    template <class Handler> void async_wait_readable(Handler&& handler)
    {
        stream_.next_layer().async_wait(tcp::socket::wait_read, std::forward<Handler>(handler));
    }

    // After async_wait_readable() completed: reads what came, without blocking,
    // and tells whether the connection is still good. TLS 1.3 servers send session
    // tickets after the handshake, which a warm connection receives while idle:
    // OpenSSL takes them in, and the connection is good. It is not when the server
    // closed it (close_notify or a bare FIN), sent application data (HTTP/1.1 does
    // not, unasked), or the read failed.
    bool still_good_while_idle() noexcept;

private:
    asio::ssl::stream<tcp::socket> stream_;
    std::string request_buffer_;             // reused: no allocation after the first request
    response_state response_;                // read buffer, parser arena, keep-alive, completeness
    attempt_outcome outcome_;                // of the last exchange
    std::weak_ptr<connect_race> connecting_; // while open() races its addresses, for abort()
    std::uint64_t number_;
    std::chrono::steady_clock::time_point open_started_{};
    std::chrono::steady_clock::time_point opened_at_{};
    bool aborted_ = false;
};

} // namespace cartesia::detail

#endif
