#include "connection.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <tuple>

namespace cartesia::detail {
namespace {

namespace http = boost::beast::http;
namespace ssl = asio::ssl;

using arena_body = http::basic_string_body<char, std::char_traits<char>, std::pmr::polymorphic_allocator<char>>;

error_code fail(diagnostics& diag, error_code ec, std::string message)
{
    diagnostics_access::set_client_message(diag, std::move(message));
    return ec;
}

} // namespace

asio::awaitable<error_code> resolve_endpoints(const endpoint& where, std::optional<tcp::resolver>& resolver,
                                              const asio::any_io_executor& executor, tcp::resolver::results_type& out,
                                              diagnostics& diag)
{
    if (where.host_is_ip) {
        const tcp::endpoint address(asio::ip::make_address(where.host),
                                    static_cast<unsigned short>(std::stoul(where.port)));
        out = tcp::resolver::results_type::create(address, where.host, where.port);
        co_return error_code{};
    }
    if (!resolver)
        resolver.emplace(executor);
    auto [ec, resolved] = co_await resolver->async_resolve(where.host, where.port, nothrow_awaitable);
    if (ec)
        co_return fail(diag, ec, "cannot resolve " + where.host);
    out = std::move(resolved);
    co_return error_code{};
}

connection::connection(const asio::any_io_executor& executor, asio::ssl::context& tls) : stream_(executor, tls) {}

asio::awaitable<error_code> connection::open(const endpoint& where, const tcp::resolver::results_type& endpoints,
                                             diagnostics& diag)
{
    // The condition ends the walk over the endpoints once abort() closed the
    // socket, instead of letting async_connect open it again for the next one.
    auto keep_trying = [this](const error_code&, const tcp::endpoint&) { return !aborted_; };
    if (auto [ec, ep] = co_await asio::async_connect(stream_.next_layer(), endpoints, keep_trying, nothrow_awaitable);
        ec)
        co_return fail(diag, ec, "cannot connect to " + where.host_header);
    error_code ignored;
    stream_.next_layer().set_option(tcp::no_delay(true), ignored);

    // Verification is on whatever the context says: the peer, and its name.
    stream_.set_verify_mode(ssl::verify_peer);
    SSL* handle = stream_.native_handle();
    bool configured = false;
    if (where.host_is_ip) {
        configured = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), where.host.c_str()) == 1;
    } else {
        SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        configured =
            SSL_set_tlsext_host_name(handle, where.host.c_str()) == 1 && SSL_set1_host(handle, where.host.c_str()) == 1;
    }
    if (!configured)
        co_return fail(diag, ssl::error::make_error_code(ssl::error::unspecified_system_error),
                       "cannot set up host name verification for " + where.host);

    if (auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, nothrow_awaitable); ec) {
        const long verify_result = SSL_get_verify_result(handle);
        if (verify_result != X509_V_OK)
            co_return fail(diag, ec,
                           std::string("TLS certificate verification failed: ") +
                               X509_verify_cert_error_string(verify_result));
        co_return fail(diag, ec, "TLS handshake with " + where.host_header + " failed");
    }
    keep_alive_ = true;
    co_return error_code{};
}

asio::awaitable<error_code> connection::exchange(std::string_view request_head, std::string_view request_tail,
                                                 const client_config& config, attempt_outcome& facts,
                                                 token_response& response, diagnostics& diag)
{
    keep_alive_ = false; // until a complete response says otherwise
    response_complete_ = false;
    request_buffer_.assign(request_head);
    request_buffer_.append(request_tail);
    if (auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(request_buffer_), nothrow_awaitable); ec)
        co_return fail(diag, ec, "cannot send the request");

    // The response's fields and body live in an arena on the connection, reset for
    // each exchange: a token response costs the parser no heap allocation.
    std::pmr::monotonic_buffer_resource arena(arena_.data(), arena_.size());
    const std::pmr::polymorphic_allocator<char> allocator(&arena);
    std::optional<http::response_parser<arena_body, std::pmr::polymorphic_allocator<char>>> parser;
    do {
        // A 1xx interim response is followed by the real one: parse afresh.
        parser.emplace(std::piecewise_construct, std::make_tuple(allocator), std::make_tuple(allocator));
        parser->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(config.max_header_bytes, UINT32_MAX)));
        parser->body_limit(config.max_body_bytes);
        auto [ec, n] = co_await http::async_read_header(stream_, buffer_, *parser, nothrow_awaitable);
        facts.response_started = facts.response_started || parser->got_some() || buffer_.size() > 0;
        if (ec)
            co_return read_failure(ec, config, facts, "headers", diag);
    } while (parser->get().result_int() / 100 == 1 && parser->get().result_int() != 101);

    const auto& head = parser->get();
    facts.status = head.result_int();
    if (auto it = head.find("x-should-retry"); it != head.end()) {
        if (it->value() == "true")
            facts.should_retry_header = true;
        else if (it->value() == "false")
            facts.should_retry_header = false;
    }
    const auto retry_after_ms = head["retry-after-ms"];
    const auto retry_after = head[http::field::retry_after];
    if (!retry_after_ms.empty() || !retry_after.empty()) // rare: spare the clock read
        facts.retry_after = parse_retry_after(retry_after_ms, retry_after, std::chrono::system_clock::now());
    if (!parser->is_done()) {
        if (auto [ec, n] = co_await http::async_read(stream_, buffer_, *parser, nothrow_awaitable); ec)
            co_return read_failure(ec, config, facts, "body", diag);
    }

    const auto& message = parser->get();
    keep_alive_ = message.keep_alive() && !parser->need_eof();
    response_complete_ = true;
    const response_view view{message.result_int(), message[http::field::content_type], message["x-request-id"],
                             std::string_view(message.body())};
    co_return interpret_response(view, config.api_key, response, diag);
}

asio::awaitable<void> connection::shutdown()
{
    keep_alive_ = false;
    // A peer that skips close_notify (stream_truncated) is common and harmless.
    co_await stream_.async_shutdown(nothrow_awaitable);
}

void connection::close_quietly() noexcept
{
    if (!aborted_ && response_complete_)
        SSL_set_shutdown(stream_.native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    abort();
}

void connection::abort() noexcept
{
    aborted_ = true;
    error_code ignored;
    stream_.next_layer().close(ignored);
}

error_code connection::read_failure(error_code ec, const client_config& config, const attempt_outcome& facts,
                                    const char* part, diagnostics& diag)
{
    if (ec == http::error::body_limit)
        return fail(diag, error::response_too_large,
                    "the response body exceeds max_body_bytes (" + std::to_string(config.max_body_bytes) + ")");
    if (ec == http::error::header_limit)
        return fail(diag, error::response_too_large,
                    "the response headers exceed max_header_bytes (" + std::to_string(config.max_header_bytes) + ")");
    // A close, with or without TLS close_notify, reads as one of these. Before any
    // byte it is the network failing (and worth a retry); after, the response is
    // incomplete.
    const bool closed = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                        ec == ssl::error::stream_truncated || ec == asio::error::eof;
    if (closed && !facts.response_started)
        return fail(diag, asio::error::eof, "the server closed the connection before responding");
    if (closed)
        return fail(diag, error::bad_response,
                    std::string("the connection closed in the middle of the response ") + part);
    if (ec.category() == http::make_error_code(http::error::bad_version).category())
        return fail(diag, error::bad_response, "the answer is not valid HTTP: " + ec.message());
    return fail(diag, ec, std::string("the connection failed while reading the response ") + part);
}

} // namespace cartesia::detail
