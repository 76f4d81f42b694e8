// async_generate_token: mint one access token over a fresh TLS connection.
#ifndef CARTESIA_GENERATE_TOKEN_HPP
#define CARTESIA_GENERATE_TOKEN_HPP

#include <cartesia/diagnostics.hpp>
#include <cartesia/types.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <type_traits>
#include <utility>

namespace cartesia {

/// The completion signature of every token-minting operation.
using token_signature = void(boost::system::error_code, token_response);

namespace detail {

using token_handler = boost::asio::any_completion_handler<token_signature>;

// Whether the handler has an executor of its own, other than the one the operation
// runs on. Only then must the operation keep that executor busy (Asio's
// outstanding-work rule) and hand the result over to it; otherwise it calls the
// handler as dispatch() on its own executor would. Decided here, where the
// handler's type is known: asking a type-erased handler costs heap allocations.
template <class Handler> bool has_own_executor(const Handler& handler, const boost::asio::any_io_executor& executor)
{
    using associated = boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;
    if constexpr (std::is_same_v<associated, boost::asio::any_io_executor>)
        return boost::asio::get_associated_executor(handler, executor) != executor;
    else
        return true;
}

// Compiled once in src/generate_token.cpp: all the Beast, SSL and JSON code lives
// behind this type-erased handler, so that including this header stays cheap.
void start_generate_token(token_handler handler, bool handler_has_own_executor,
                          const boost::asio::any_io_executor& executor, boost::asio::ssl::context& tls,
                          client_config config, token_request request, diagnostics* diag);

struct generate_token_initiation {
    // Arguments are taken by value so that a deferred operation owns copies of the
    // configuration and request, and may be launched after the caller's are gone.
    template <class Handler>
    void operator()(Handler&& handler, const boost::asio::any_io_executor& executor, boost::asio::ssl::context* tls,
                    client_config config, token_request request, diagnostics* diag) const
    {
        const bool own_executor = has_own_executor(handler, executor);
        start_generate_token(token_handler(std::forward<Handler>(handler)), own_executor, executor, *tls,
                             std::move(config), request, diag);
    }
};

template <class T>
concept io_executor = boost::asio::execution::is_executor<T>::value || boost::asio::is_executor<T>::value;

template <class T>
concept execution_context = std::is_convertible_v<T&, boost::asio::execution_context&>;

template <class CompletionToken>
auto async_generate_token(const boost::asio::any_io_executor& executor, boost::asio::ssl::context& tls,
                          const client_config& config, const token_request& request, diagnostics* diag,
                          CompletionToken&& token)
{
    return boost::asio::async_initiate<CompletionToken, token_signature>(generate_token_initiation{}, token, executor,
                                                                         &tls, config, request, diag);
}

} // namespace detail

/// Mints one access token: resolves the host of `config.base_url`, connects over
/// TCP, performs the TLS handshake (SNI, peer and host name verification), sends
/// `POST <prefix>/access-token` and reads the JSON answer, then shuts TLS down.
/// Each attempt uses a new connection; for throughput use the pooled `cartesia::client`.
///
/// @param executor_or_context The I/O executor (or an execution context such as an
///   `io_context`) on which the operation runs. If it may run handlers on several
///   threads at once, the operation still serialises its own work on an internal strand.
/// @param tls The client TLS context, e.g. from `make_tls_context()`. It must outlive
///   the operation.
/// @param config Copied at initiation; may be destroyed right after the call.
/// @param request The body: only the fields set are sent.
/// @param diag (overload) Cleared at start, filled on failure with the HTTP status,
///   the server's title, message and request id, or this library's own message. It
///   must outlive the operation.
/// @param token Any completion token for `void(boost::system::error_code, token_response)`:
///   a callback, `asio::use_future`, `asio::use_awaitable`, `asio::deferred` (the
///   default), `asio::as_tuple(...)`, `asio::redirect_error(...)`, a `yield_context`...
///
/// @par Completion
/// Exactly once, with a token or with an error; never inside the initiating
/// function (even bad input is reported through a post). The handler runs on its
/// associated executor (default: `executor_or_context`), and the type-erased
/// handler is allocated with its associated allocator.
///
/// @par Errors
/// - `error::invalid_argument`: bad configuration or request, before any I/O.
/// - `error::bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
///   `unprocessable_entity`, `rate_limited`, `server_error`, `unexpected_status`:
///   the HTTP status of the answer; see the diagnostics.
/// - `error::bad_response`, `error::response_too_large`: an unusable answer.
/// - `error::timeout`: an attempt exceeded `config.timeout`, or the operation
///   `config.total_timeout` (also when the wait before a retry would end after it).
/// - `asio::error::operation_aborted`: cancelled.
/// - Asio and SSL error codes for network and TLS failures, e.g.
///   `asio::error::connection_refused`, or an SSL verification failure whose
///   diagnostics say which check failed.
///
/// @par Cancellation
/// Supports `terminal` and `partial` cancellation through the handler's associated
/// cancellation slot: the operation closes its socket and completes promptly with
/// `asio::error::operation_aborted`. This is what `asio::experimental::awaitable_operators`
/// (`||`) emit. `total` cancellation is not supported (a token may have been minted).
///
/// @par Thread safety
/// The function may be called concurrently from any thread; concurrent
/// operations share nothing but `tls`, which OpenSSL allows.
template <detail::io_executor Executor,
          BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
auto async_generate_token(const Executor& executor, boost::asio::ssl::context& tls, const client_config& config,
                          token_request request, CompletionToken&& token = CompletionToken())
{
    return detail::async_generate_token(executor, tls, config, request, nullptr, std::forward<CompletionToken>(token));
}

/// As above, filling `diag` on failure.
template <detail::io_executor Executor,
          BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
auto async_generate_token(const Executor& executor, boost::asio::ssl::context& tls, const client_config& config,
                          token_request request, diagnostics& diag, CompletionToken&& token = CompletionToken())
{
    return detail::async_generate_token(executor, tls, config, request, &diag, std::forward<CompletionToken>(token));
}

/// As above, on `context.get_executor()`.
template <detail::execution_context ExecutionContext,
          BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
auto async_generate_token(ExecutionContext& context, boost::asio::ssl::context& tls, const client_config& config,
                          token_request request, CompletionToken&& token = CompletionToken())
{
    return detail::async_generate_token(context.get_executor(), tls, config, request, nullptr,
                                        std::forward<CompletionToken>(token));
}

/// As above, on `context.get_executor()`, filling `diag` on failure.
template <detail::execution_context ExecutionContext,
          BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
auto async_generate_token(ExecutionContext& context, boost::asio::ssl::context& tls, const client_config& config,
                          token_request request, diagnostics& diag, CompletionToken&& token = CompletionToken())
{
    return detail::async_generate_token(context.get_executor(), tls, config, request, &diag,
                                        std::forward<CompletionToken>(token));
}

} // namespace cartesia

#endif
