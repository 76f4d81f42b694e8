// cartesia::client: a pool of keep-alive TLS connections for minting many tokens.
#ifndef CARTESIA_CLIENT_HPP
#define CARTESIA_CLIENT_HPP

#include <cartesia/events.hpp>
#include <cartesia/generate_token.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace cartesia {

namespace detail {
class client_impl;
struct latency_snapshot;
struct stats_access;
struct client_access;
const boost::asio::any_io_executor& client_executor(const client_impl& impl) noexcept;
void start_client_generate_token(const std::shared_ptr<client_impl>& impl, token_handler handler,
                                 bool handler_has_own_executor, token_request request, diagnostics* diag);
} // namespace detail

/// What a `cartesia::client` has done so far, and what it holds now: a snapshot
/// from client::stats(). The counters count from the client's construction.
struct client_stats {
    // --- now --------------------------------------------------------------------
    std::size_t connections_open = 0; ///< Open and usable (idle or carrying a request), not opening.
    std::size_t connections_idle = 0; ///< Of those, the idle ones.
    std::size_t connections_opening = 0;
    std::size_t requests_queued = 0; ///< Waiting for a free connection.

    // --- so far -----------------------------------------------------------------
    std::uint64_t tokens_minted = 0;       ///< Operations that completed with a token.
    std::uint64_t failures = 0;            ///< Operations that completed with an error (the sum of the next five).
    std::uint64_t failures_http = 0;       ///< The API answered with an error status (4xx, 5xx).
    std::uint64_t failures_timeout = 0;    ///< `error::timeout`: an attempt's or the total deadline.
    std::uint64_t failures_cancelled = 0;  ///< `operation_aborted`: cancelled, or the client closed.
    std::uint64_t failures_network = 0;    ///< No answer: name resolution, connect, proxy, TLS, I/O.
    std::uint64_t failures_other = 0;      ///< A malformed or oversized response, out of memory.
    std::uint64_t retries = 0;             ///< Attempts after the first, as scheduled.
    std::uint64_t retries_refused = 0;     ///< Retryable failures delivered at once: the retry budget was spent.
    std::uint64_t stale_moves = 0;         ///< Requests moved past a pooled connection the server had closed.
    std::uint64_t connections_opened = 0;  ///< Connections whose TLS handshake completed.
    std::uint64_t connection_failures = 0; ///< Openings that failed (resolve, connect, proxy, TLS, deadline).
    std::uint64_t handshakes_full = 0;     ///< Of the opened, those with a full TLS handshake.
    std::uint64_t handshakes_resumed = 0;  ///< Of the opened, those that resumed a session.

    /// The q-quantile (0 to 1) of the time operations took from start to completion,
    /// over every completed operation (with a token or an error), within 3% (the
    /// histogram has log buckets, in constant memory). Zero before the first.
    std::chrono::microseconds latency_quantile(double q) const noexcept;
    /// The operations latency_quantile() reads: tokens_minted + failures.
    std::uint64_t latency_count() const noexcept;

private:
    friend struct detail::stats_access;
    std::shared_ptr<const detail::latency_snapshot> latency_; // null before the first
};

/// Mints tokens over a pool of keep-alive TLS connections: a backend minting a
/// token per user session pays for a TLS handshake once per connection, not once
/// per token, and new connections resume the TLS session of earlier ones.
///
/// The pool opens connections on demand up to `client_config::max_connections`
/// (one request in flight per connection, no pipelining), queues requests FIFO
/// when all are busy, and closes connections idle for `client_config::idle_timeout`.
/// A pooled connection that the server closed while idle (or after `Connection:
/// close`, or at its keep-alive request limit) is never an error: the request goes
/// to a fresh connection, and that does not count as a retry. The server's
/// `Keep-Alive: timeout=N, max=M` is obeyed: a connection is retired before the
/// server would close it, and carries no more than M requests.
///
/// With `client_config::min_connections`, the pool keeps that many connections
/// open and ready from construction on, replacing in the background any that the
/// server closes or that fail (with backoff while the API is down), so that the
/// first token and the first after a quiet period cost one round trip. Such a
/// client always has work on its executor: `run()` returns after close().
///
/// Retries are bounded by a budget shared by the client's requests
/// (`client_config::retry_budget_ratio`): when the API fails for many at once, most
/// failures are delivered at once rather than retried.
///
/// Each operation has the guarantees of the free `async_generate_token`: any
/// completion token, completion exactly once and never inside the initiating
/// function, retries and a deadline per attempt (`timeout` also bounds the wait
/// for a free connection) and `total_timeout` over it all, terminal and partial
/// cancellation.
///
/// @par Thread safety
/// All member functions may be called concurrently from any thread, also while the
/// executor's io_context runs on several threads: shared state lives on an
/// internal strand. The client owns no threads.
class client {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Checks `config` now, but reports a bad one through each operation
    /// (`error::invalid_argument`). No I/O happens inside the constructor: with
    /// `min_connections`, opening them is posted to `executor`; without, nothing
    /// happens until the first operation.
    /// `tls` must outlive the client and its operations.
    client(executor_type executor, boost::asio::ssl::context& tls, client_config config);

    /// Closes the client (see close()); operations in flight complete with
    /// `operation_aborted` once the executor runs them.
    ~client(); // NOLINT(bugprone-exception-escape): only bad_alloc, see client.cpp

    client(client&&) noexcept = default;
    client& operator=(client&& other) noexcept; // NOLINT(bugprone-exception-escape): as ~client
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Mints one token over a pooled connection.
    ///
    /// @par Completion
    /// `void(boost::system::error_code, token_response)`, on the handler's associated
    /// executor (default: `get_executor()`).
    ///
    /// @par Errors
    /// As `cartesia::async_generate_token`; and `asio::error::operation_aborted` when
    /// the client is closed (or destroyed) first.
    ///
    /// @par Cancellation
    /// `terminal` and `partial`: a queued request leaves the queue; one in progress
    /// closes its connection. Either completes promptly with `operation_aborted`.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
    auto async_generate_token(token_request request, CompletionToken&& token = CompletionToken())
    {
        return boost::asio::async_initiate<CompletionToken, token_signature>(initiation{impl_}, token, request,
                                                                             nullptr);
    }

    /// As above, filling `diag` on failure; `diag` must outlive the operation.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
    auto async_generate_token(token_request request, diagnostics& diag, CompletionToken&& token = CompletionToken())
    {
        return boost::asio::async_initiate<CompletionToken, token_signature>(initiation{impl_}, token, request, &diag);
    }

    /// A consistent snapshot of the client's statistics: every member read at one
    /// instant. Cheap (a lock and a copy of a few KiB); any thread, also from
    /// on_event.
    client_stats stats() const;

    /// The executor the client was constructed with.
    executor_type get_executor() const noexcept;

    /// Completes every pending operation with `operation_aborted` and closes every
    /// connection. Later operations complete with `operation_aborted` too.
    /// Idempotent; any thread.
    void close();

private:
    friend struct detail::client_access;

    struct initiation {
        std::shared_ptr<detail::client_impl> impl;
        template <class Handler> void operator()(Handler&& handler, token_request request, diagnostics* diag) const
        {
            const bool own_executor = detail::has_own_executor(handler, detail::client_executor(*impl));
            detail::start_client_generate_token(impl, detail::token_handler(std::forward<Handler>(handler)),
                                                own_executor, request, diag);
        }
    };

    std::shared_ptr<detail::client_impl> impl_;
};

} // namespace cartesia

#endif
