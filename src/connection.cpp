#include "connection.hpp"
#include "event_sink.hpp"

#include "proxy_tunnel.hpp"

#include <cartesia/error.hpp>

#include <boost/beast/http/error.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace cartesia::detail {
namespace {

namespace http = boost::beast::http;
namespace ssl = asio::ssl;

error_code fail(diagnostics& diag, error_code ec, std::string message)
{
    diagnostics_access::set_client_message(diag, std::move(message));
    return ec;
}

// Replaces the verify callback that SSL_new copied from the caller's context: such
// a callback could accept a certificate OpenSSL rejected (a debugging leftover that
// returns true would switch verification off). The context's callback is still
// asked, so that it may reject more (certificate pinning), never less.
int verify_keeping_openssls_verdict(int preverified, X509_STORE_CTX* store)
{
    const auto* ssl = static_cast<const SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl != nullptr) {
        if (auto* context_callback = SSL_CTX_get_verify_callback(SSL_get_SSL_CTX(ssl));
            context_callback != nullptr && context_callback(preverified, store) == 0)
            return 0;
    }
    return preverified;
}

// "could not connect to api.cartesia.ai:443 (tried 2 addresses); last error: Connection refused",
// or to "the proxy 127.0.0.1:3128" when tunnelling.
std::string connect_failure_message(const endpoint& where, std::size_t addresses_tried, error_code last_error)
{
    std::string message = "could not connect to ";
    if (where.network.proxy) {
        message += connect_target_name(where);
    } else {
        const bool ipv6_literal = where.host.find(':') != std::string::npos;
        message += ipv6_literal ? "[" + where.host + "]" : where.host;
        message += ":" + where.port;
    }
    message += " (tried " + std::to_string(addresses_tried) + (addresses_tried == 1 ? " address" : " addresses") +
               "); last error: " + last_error.message();
    return message;
}

} // namespace

asio::awaitable<error_code> resolve_endpoints(const endpoint& where, std::unique_ptr<tcp::resolver>& resolver,
                                              const asio::any_io_executor& executor, tcp::resolver::results_type& out,
                                              diagnostics& diag)
{
    const connect_target target = connect_target_of(where);
    const std::string host(target.host), port_text(target.port);
    const auto port = static_cast<unsigned short>(std::stoul(port_text));
    if (target.host_is_ip) {
        out = tcp::resolver::results_type::create(tcp::endpoint(asio::ip::make_address(host), port), host, port_text);
        co_return error_code{};
    }
    if (const auto pinned = where.network.resolve.lookup(host, port); !pinned.empty()) {
        // client_config::resolve names these addresses: the resolver is not asked.
        std::vector<tcp::endpoint> addresses;
        addresses.reserve(pinned.size());
        for (const auto& address : pinned)
            addresses.emplace_back(address, port);
        out = tcp::resolver::results_type::create(addresses.begin(), addresses.end(), host, port_text);
        co_return error_code{};
    }
    if (!resolver)
        resolver = std::make_unique<tcp::resolver>(executor);
    auto [ec, resolved] = co_await resolver->async_resolve(host, port_text, nothrow_awaitable);
    if (ec)
        co_return fail(diag, ec, std::string("cannot resolve ") + (target.is_proxy ? "the proxy " : "") + host);
    out = std::move(resolved);
    co_return error_code{};
}

connection::connection(const asio::any_io_executor& executor, asio::ssl::context& tls)
    : stream_(executor, tls), number_(event_sink::next_connection_number())
{
    // Asio turns SSL_MODE_RELEASE_BUFFERS on for every stream: OpenSSL then frees
    // its record buffers (about 17 KiB each way) whenever they empty and allocates
    // them again for the next record: several large allocations per token. A
    // pooled connection exchanges again and again: keep them, for about 34 KiB per
    // open connection.
    SSL_clear_mode(stream_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

asio::awaitable<error_code> connection::open(const endpoint& where, const tcp::resolver::results_type& endpoints,
                                             diagnostics& diag)
{
    open_started_ = std::chrono::steady_clock::now();
    const connect_timing timing{where.network.connect_timeout, where.network.connection_attempt_delay};
    if (aborted_) // before the race could start: there is none to abort
        co_return fail(diag, asio::error::operation_aborted, "cannot connect to " + connect_target_name(where));
    connect_report report;
    if (auto [ec] = co_await async_connect_race(stream_.get_executor(), endpoints, timing, stream_.next_layer(), report,
                                                connecting_, nothrow_awaitable);
        ec) {
        if (ec == asio::error::operation_aborted) // abort() was called: the owner tells why
            co_return fail(diag, ec, "cannot connect to " + connect_target_name(where));
        co_return fail(diag, ec, connect_failure_message(where, report.addresses_tried, ec));
    }
    error_code ignored;
    stream_.next_layer().set_option(tcp::no_delay(true), ignored);
    if (where.network.proxy) {
        if (auto ec = co_await open_tunnel(stream_.next_layer(), where, diag))
            co_return ec;
    }

    // Verification is on, whatever the context says: the peer, and its name.
    SSL* handle = stream_.native_handle();
    SSL_set_verify(handle, SSL_VERIFY_PEER, &verify_keeping_openssls_verdict);
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
    response_.keep_alive = true;
    response_.complete = true; // at a record boundary: close_quietly() keeps the session resumable
    opened_at_ = std::chrono::steady_clock::now();
    co_return error_code{};
}

event connection::closed_event(std::string_view reason, std::size_t exchanges) const noexcept
{
    event e;
    e.kind = event_kind::connection_closed;
    e.connection = number_;
    e.reason = reason;
    e.exchanges = exchanges;
    const auto since = opened_at_ != std::chrono::steady_clock::time_point{} ? opened_at_ : open_started_;
    if (since != std::chrono::steady_clock::time_point{}) // else open() never began
        e.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - since);
    return e;
}

void connection::describe_to(event& e) noexcept
{
    e.connection = number_;
    error_code ignored;
    e.peer = stream_.next_layer().remote_endpoint(ignored);
    e.tls_version = SSL_get_version(stream_.native_handle()); // a static string
    e.session_resumed = session_resumed();
    e.connect_time = std::chrono::duration_cast<std::chrono::microseconds>(opened_at_ - open_started_);
}

void connection::close_quietly() noexcept
{
    if (!aborted_ && response_.complete)
        SSL_set_shutdown(stream_.native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    abort();
}

bool connection::still_good_while_idle() noexcept
{
    if (aborted_)
        return false;
    // A synchronous read on a non-blocking socket: it ends with would_block once
    // OpenSSL has taken in every whole record there and wants more. Nothing else
    // is pending on the stream while the connection idles.
    auto& socket = stream_.next_layer();
    error_code ec;
    socket.non_blocking(true, ec);
    if (ec)
        return false;
    std::array<char, 1> byte{};
    std::size_t got = 0;
    try {
        got = stream_.read_some(asio::buffer(byte), ec);
    } catch (...) { // out of memory in OpenSSL: the connection is not worth keeping
        ec = make_error_code(boost::system::errc::not_enough_memory);
    }
    error_code ignored; // a socket that cannot go back to blocking mode fails its next operation
    socket.non_blocking(false, ignored);
    // A record that asks for an answer (a TLS 1.3 KeyUpdate, a TLS 1.2 renegotiation)
    // needs a write, which a non-blocking socket may have cut short: not worth the risk.
    SSL* handle = stream_.native_handle();
    if (SSL_get_key_update_type(handle) != SSL_KEY_UPDATE_NONE || SSL_renegotiate_pending(handle) != 0)
        return false;
    return got == 0 && ec == asio::error::would_block;
}

void connection::abort() noexcept
{
    aborted_ = true;
    abort_connect_race(connecting_);
    error_code ignored;
    stream_.next_layer().close(ignored);
}

error_code read_failure(error_code ec, const client_config& config, const attempt_outcome& facts, const char* part,
                        diagnostics& diag)
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
