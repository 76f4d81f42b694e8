// What an operation does, step by step, for a log or a trace: client_config::on_event.
#ifndef CARTESIA_EVENTS_HPP
#define CARTESIA_EVENTS_HPP

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cartesia {

/// The steps an operation reports, in the order they happen. One operation gives
/// `attempt_started`, `connected`, `response_received` for each attempt (the last
/// two only as far as the attempt got), `retry_scheduled` between attempts, and
/// `completed` once, last. `connection_closed` belongs to a connection rather than
/// to an operation: a pool closes connections on its own too. A pooled request
/// that moves past a stale connection reports `connected` again in the same
/// attempt; one handed a connection just as a deadline or a cancellation cut its
/// wait reports `connected`, then gives it back unused.
enum class event_kind {
    attempt_started,   ///< An attempt began: it waits for a connection, or opens one.
    connected,         ///< The attempt has its connection: a pooled one, or one just opened.
    response_received, ///< The head of a response arrived (any status).
    retry_scheduled,   ///< The attempt failed and another follows after `retry_delay`.
    connection_closed, ///< A connection was closed, for `reason`.
    completed,         ///< The operation completed, with a token or with `error`.
};

/// "attempt_started", "connected", ...: the enumerator's name.
std::string_view to_string(event_kind kind) noexcept;

/// One step of an operation, with what is known at that point. A member that the
/// kind does not mention is left at its default.
///
/// Never contains the API key, a token or a proxy's password: the texts are the
/// library's own, and the server's text in them is cleaned of the key, the proxy's
/// password and the base64 of its credentials, and of control characters.
///
/// The string_views refer to storage that lives only during the on_event call:
/// copy what you keep.
struct event {
    event_kind kind = event_kind::attempt_started;

    /// The operation's number, from 1, unique in the process; 0 for a
    /// `connection_closed` that no operation caused (an idle connection the pool
    /// retires or that the server closed, close()).
    std::uint64_t operation = 0;

    /// The connection's number, from 1, unique in the process: `connected`,
    /// `response_received`, `connection_closed`; 0 otherwise.
    std::uint64_t connection = 0;

    /// The attempt's number, from 1: `attempt_started`, `connected`,
    /// `response_received`; for `retry_scheduled`, the attempt that failed; for
    /// `completed`, the attempts made (0 when none started).
    unsigned attempt = 0;

    /// Since the operation started (for `connection_closed`: since the connection
    /// was opened).
    std::chrono::microseconds elapsed{};

    // --- connected -----------------------------------------------------------------

    /// The connection served an exchange before (pooled keep-alive).
    bool reused = false;
    /// The address the connection went to: the API's, or the proxy's when
    /// `via_proxy`.
    boost::asio::ip::tcp::endpoint peer{};
    bool via_proxy = false;
    /// The negotiated protocol, e.g. "TLSv1.3".
    std::string_view tls_version{};
    /// The TLS handshake resumed an earlier session (an abbreviated handshake).
    bool session_resumed = false;
    /// For a connection not `reused`: how long opening it took (resolving,
    /// connecting, the proxy's tunnel, the TLS handshake), also when a pool opened
    /// it ahead of the request. Zero for a reused one.
    std::chrono::microseconds connect_time{};

    // --- response_received -----------------------------------------------------

    unsigned http_status = 0;
    /// The server's `x-request-id`, or empty.
    std::string_view request_id{};

    // --- retry_scheduled, completed, connection_closed -------------------------

    /// retry_scheduled: the wait before the next attempt.
    std::chrono::milliseconds retry_delay{};
    /// retry_scheduled: the failure retried; completed: the operation's result
    /// (empty for a token); connection_closed: the failure that closed it, if any.
    boost::system::error_code error{};
    /// One line: for retry_scheduled and a failed completed, the failure as
    /// `describe(error, diagnostics)` says it; for connection_closed, why (e.g.
    /// "closed after its token", "the server closed it while idle", "the server's
    /// Keep-Alive max reached", "the client was closed").
    std::string_view reason{};
    /// connection_closed: the exchanges it carried.
    std::size_t exchanges = 0;
};

/// One line for a log, without a newline, e.g.
/// `op 7 attempt 1 connected: conn 3 to 203.0.113.5:443 TLSv1.3 resumed, opened in 41.2 ms (+41.5 ms)`.
std::string describe(const event& e);

} // namespace cartesia

#endif
