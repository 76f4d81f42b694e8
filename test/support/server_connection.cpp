// The test server's connections; see server_connection.hpp.
#include "support/server_connection.hpp"

#include "support/fake_api.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cartesia::test::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

// Asynchronous operations report errors as a value, so that a misbehaving client is an
// ordinary outcome rather than an exception.
constexpr auto use_nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t header_limit = std::size_t{16} * 1024;
constexpr std::size_t body_limit = std::size_t{1024} * 1024;
// While the server answers, it reads what the client sends, to notice at once a client that
// leaves. Data is kept for the next request, up to what one request may hold; a client that
// sends more before reading the answer is flooding us and is hung up on.
constexpr std::size_t read_ahead_limit = header_limit + body_limit;
constexpr std::size_t read_ahead_step = std::size_t{4} * 1024;
// How long a graceful close waits for the client's close_notify.
constexpr std::chrono::seconds shutdown_timeout{5};

// Writes `bytes` one at a time, `interval` apart.
asio::awaitable<bool> drip(connection& c, std::string_view bytes, std::chrono::milliseconds interval)
{
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i > 0 && !co_await pause(interval))
            co_return false;
        if (!co_await write(c, bytes.substr(i, 1)))
            co_return false;
    }
    co_return true;
}

// Completes when the client leaves, or floods us (see read_ahead_limit). What it sends
// meanwhile stays in the connection's buffer, where the next request is read from.
asio::awaitable<void> watch_for_departure(connection& c)
{
    while (c.buffer.size() < read_ahead_limit) {
        const auto [error, size] =
            co_await c.stream.async_read_some(c.buffer.prepare(read_ahead_step), use_nothrow_awaitable);
        if (error)
            co_return;
        c.buffer.commit(size);
    }
}

// Writes `answer` as its delivery fields say; false when the connection broke or the client left.
asio::awaitable<bool> deliver(connection& c, const canned_response& answer, unsigned version, bool keep_alive)
{
    const std::string bytes = answer.raw ? *answer.raw : format_response(answer, version, keep_alive);
    const std::string_view sent = std::string_view(bytes).substr(0, answer.truncate_after);
    if (answer.byte_interval == std::chrono::milliseconds::zero())
        co_return co_await write(c, sent);
    co_return co_await unless_client_leaves(c, drip(c, sent, answer.byte_interval));
}

// Ends the connection as `how` says; keep_alive means a request that asked to close, and closes politely.
asio::awaitable<void> end_connection(connection& c, ending how)
{
    auto& transport = beast::get_lowest_layer(c.stream);
    switch (how) {
    case ending::keep_alive:
    case ending::close:
        // Say goodbye properly, but don't let a client that never answers our close_notify keep us.
        transport.expires_after(shutdown_timeout);
        co_await c.stream.async_shutdown(use_nothrow_awaitable);
        break;
    case ending::reset: {
        // A zero linger time makes close() send RST instead of FIN.
        beast::error_code ignored; // the client may be gone already, which is as good
        transport.socket().set_option(tcp::socket::linger(true, 0), ignored);
        break;
    }
    case ending::drop:
        break;
    }
    transport.close();
}

// The status that tells a client why its request could not be parsed, or nullopt when the
// connection simply ended and there is nobody left to answer.
std::optional<unsigned> status_for_read_error(const beast::error_code& error)
{
    if (error == http::error::header_limit)
        return 431;
    if (error == http::error::body_limit)
        return 413;
    if (error.category() == beast::error_code(http::error::end_of_stream).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
        return 400;
    }
    return std::nullopt;
}

} // namespace

connection::connection(tcp::socket socket, ssl::context& tls, traffic& counters)
    : stream(std::move(socket), tls), tally(counters)
{
    tally.open_connections.opened();
    // What we write goes out at once: Nagle's algorithm would clump a drip, and hold back
    // the bytes that an abortive close (ending::reset) then discards instead of sending.
    beast::error_code ignored; // only a lost optimisation, and only if the client is gone already
    beast::get_lowest_layer(stream).socket().set_option(tcp::no_delay(true), ignored);
}

connection::~connection()
{
    beast::get_lowest_layer(stream).close(); // before it counts as closed
    tally.open_connections.closed();
}

asio::awaitable<bool> write(connection& c, std::string_view bytes)
{
    if (bytes.empty())
        co_return true;
    const auto [error, size] = co_await asio::async_write(c.stream, asio::buffer(bytes), use_nothrow_awaitable);
    c.tally.bytes_written += size;
    co_return !error;
}

asio::awaitable<bool> pause(std::chrono::milliseconds delay)
{
    asio::steady_timer timer(co_await asio::this_coro::executor, delay);
    const auto [error] = co_await timer.async_wait(use_nothrow_awaitable);
    co_return !error;
}

asio::awaitable<void> hold_open(connection& c)
{
    std::array<char, 1024> discarded{};
    for (;;) {
        const auto [error, size] = co_await c.stream.async_read_some(asio::buffer(discarded), use_nothrow_awaitable);
        if (error)
            co_return;
    }
}

asio::awaitable<bool> unless_client_leaves(connection& c, asio::awaitable<bool> work)
{
    using namespace asio::experimental::awaitable_operators;
    const auto outcome = co_await (std::move(work) || watch_for_departure(c));
    co_return outcome.index() == 0 && std::get<0>(outcome);
}

asio::awaitable<void> serve_connection(tcp::socket socket, ssl::context& tls, traffic& tally, request_handler respond,
                                       std::size_t number, keep_alive_policy keep_alive)
{
    connection c(std::move(socket), tls, tally);
    c.number = number;
    if (const auto [error] = co_await c.stream.async_handshake(ssl::stream_base::server, use_nothrow_awaitable);
        error) {
        co_return; // e.g. a client that does not trust our CA
    }
    if (SSL_session_reused(c.stream.native_handle()))
        ++tally.resumed_handshakes;
    tally.handshakes.opened();

    for (;;) {
        c.idle_since = std::chrono::steady_clock::now();
        if (keep_alive.idle_close_after && c.buffer.size() == 0) {
            // Idle: the first byte of the next request must come in time, or the server hangs up.
            auto& transport = beast::get_lowest_layer(c.stream);
            transport.expires_after(*keep_alive.idle_close_after);
            const auto [error, size] =
                co_await c.stream.async_read_some(c.buffer.prepare(read_ahead_step), use_nothrow_awaitable);
            transport.expires_never();
            if (error == beast::error::timeout) {
                // The timeout closed the socket; reopen nothing, just count the close as ours.
                co_return;
            }
            if (error)
                break;
            c.buffer.commit(size);
        }
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        if (const auto [error, size] = co_await http::async_read(c.stream, c.buffer, parser, use_nothrow_awaitable);
            error) {
            if (const auto status = status_for_read_error(error)) {
                co_await write(c,
                               format_response(json_error(*status, "malformed_request", error.message()), 11, false));
            }
            break;
        }

        const request_type& request = parser.get();
        ++c.requests;
        const canned_response answer = co_await respond(c, request);
        if (!co_await deliver(c, answer, request.version(), request.keep_alive()))
            co_return; // the connection broke or the client left: there is nobody to say goodbye to
        if (answer.then != ending::keep_alive || !request.keep_alive()) {
            co_await end_connection(c, answer.then);
            co_return;
        }
    }
    co_await end_connection(c, ending::close);
}

} // namespace cartesia::test::detail
