#include "proxy_tunnel.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/assert.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <openssl/crypto.h>

#include <memory>

namespace cartesia::detail {
namespace {

namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

// A CONNECT answer is a status line and a few headers; a proxy's error page may
// follow, which is never read. Anything larger is not a proxy worth talking to.
constexpr std::size_t max_connect_answer_bytes = std::size_t{16} * 1024;
constexpr std::size_t max_reason_bytes = 64;

error_code fail(diagnostics& diag, error_code ec, std::string message)
{
    diagnostics_access::set_client_message(diag, std::move(message));
    return ec;
}

// Bounds the CONNECT exchange by connect_timeout: a proxy that accepts the TCP
// connection and never answers must not hold the attempt until its deadline. The
// timer's handler owns this state and may run after the exchange ended (and the
// socket is gone), so it touches the socket only while the exchange is pending.
struct connect_watchdog {
    explicit connect_watchdog(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool finished = false;
    bool fired = false;
};

// Ends the watch however the coroutine ends, also when its frame is destroyed
// without resuming (its executor shut down).
struct watch_ender {
    std::shared_ptr<connect_watchdog> watchdog;
    ~watch_ender()
    {
        watchdog->finished = true; // enough by itself: the handler then leaves the socket alone
        try {
            watchdog->timer.cancel();
        } catch (...) { // then the timer runs out later, harmlessly
        }
    }
};

bool is_closed(error_code ec) noexcept
{
    return ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
           ec == asio::error::connection_reset;
}

} // namespace

connect_target connect_target_of(const endpoint& where) noexcept
{
    if (where.network.proxy)
        return {where.network.proxy->host, where.network.proxy->port, where.network.proxy->host_is_ip, true};
    return {where.host, where.port, where.host_is_ip, false};
}

std::string connect_target_name(const endpoint& where)
{
    if (where.network.proxy)
        return "the proxy " + where.network.proxy->display_name;
    return where.host_header;
}

std::string tunnel_authority(const endpoint& where)
{
    const bool is_ipv6 = where.host.find(':') != std::string::npos;
    return (is_ipv6 ? "[" + where.host + "]" : where.host) + ":" + where.port;
}

std::string serialize_connect_request(const endpoint& where)
{
    BOOST_ASSERT(where.network.proxy);
    const std::string authority = tunnel_authority(where);
    std::string request = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (!where.network.proxy->authorization.empty())
        request += "Proxy-Authorization: " + where.network.proxy->authorization + "\r\n";
    request += "\r\n";
    return request;
}

std::string sanitized_reason(std::string_view reason)
{
    std::string out;
    for (char c : reason.substr(0, max_reason_bytes))
        out += c >= 0x20 && c < 0x7f ? c : '?';
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

asio::awaitable<error_code> open_tunnel(tcp::socket& socket, const endpoint& where, diagnostics& diag)
{
    BOOST_ASSERT(where.network.proxy);
    const std::string proxy_name = "the proxy " + where.network.proxy->display_name;

    const watch_ender watch{std::make_shared<connect_watchdog>(socket.get_executor())};
    watch.watchdog->timer.expires_after(where.network.connect_timeout);
    watch.watchdog->timer.async_wait([watchdog = watch.watchdog, &socket](error_code ec) {
        if (ec || watchdog->finished)
            return;
        watchdog->fired = true;
        error_code ignored;
        socket.close(ignored); // the pending write or read fails at once
    });
    auto transport_failure = [&](error_code ec, const char* step) {
        if (watch.watchdog->fired)
            return fail(diag, asio::error::timed_out,
                        proxy_name + " did not answer CONNECT within " +
                            std::to_string(where.network.connect_timeout.count()) + " ms");
        if (is_closed(ec))
            return fail(diag, ec, proxy_name + " closed the connection before answering CONNECT");
        return fail(diag, ec, std::string("the connection to ") + proxy_name + " failed while " + step + " CONNECT");
    };

    {
        std::string request = serialize_connect_request(where);
        auto [ec, written] = co_await asio::async_write(socket, asio::buffer(request), nothrow_awaitable);
        // The request holds the proxy's credentials: leave no copy in freed memory.
        OPENSSL_cleanse(request.data(), request.size());
        if (ec)
            co_return transport_failure(ec, "sending");
    }

    boost::beast::flat_buffer buffer(max_connect_answer_bytes);
    http::response_parser<http::empty_body> parser;
    parser.header_limit(max_connect_answer_bytes);
    parser.skip(true); // a 2xx answer to CONNECT has no body, whatever its headers say
    if (auto [ec, read] = co_await http::async_read_header(socket, buffer, parser, nothrow_awaitable); ec) {
        if (!watch.watchdog->fired && ec.category() == http::make_error_code(http::error::bad_version).category() &&
            !is_closed(ec))
            co_return fail(diag, error::proxy_error, proxy_name + " answered CONNECT with something that is not HTTP");
        co_return transport_failure(ec, "reading the answer to");
    }

    const auto& answer = parser.get();
    const unsigned status = answer.result_int();
    if (status < 200 || status > 299) {
        diagnostics_access::set_http_status(diag, status);
        std::string message =
            proxy_name + " refused CONNECT to " + tunnel_authority(where) + ": " + std::to_string(status);
        if (std::string reason = sanitized_reason(answer.reason()); !reason.empty())
            message += " " + reason;
        co_return fail(diag, status == 407 ? error::proxy_auth_required : error::proxy_error, std::move(message));
    }
    // The TLS handshake must be the first thing inside the tunnel: bytes that came
    // before it are not the API's.
    if (buffer.size() != 0)
        co_return fail(diag, error::proxy_error, proxy_name + " sent data after accepting CONNECT, before TLS began");
    co_return error_code{};
}

} // namespace cartesia::detail
