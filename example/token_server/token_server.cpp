#include "token_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <tuple>

namespace token_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// What one caller may cost us: a request's size, and how long it may keep a connection.
constexpr std::size_t max_header_bytes = std::size_t{8} * 1024;
constexpr std::size_t max_body_bytes = std::size_t{4} * 1024;
constexpr auto idle_timeout = 30s;    // waiting for the next request on a keep-alive connection
constexpr auto request_timeout = 10s; // reading the rest of a request once it began; writing a response
constexpr std::size_t max_connections = 256;

std::string_view path_of(std::string_view target)
{
    return target.substr(0, target.find('?'));
}

http_response json_response(http::status status, const json::object& body)
{
    http_response answer{status, 11};
    answer.set(http::field::content_type, "application/json");
    // Tokens are credentials and errors are of the moment: neither belongs in a cache.
    answer.set(http::field::cache_control, "no-store");
    answer.body() = json::serialize(body);
    return answer;
}

http_response json_error(http::status status, std::string_view message)
{
    return json_response(status, {{"error", message}});
}

http_response method_not_allowed(std::string_view allowed_methods)
{
    auto answer = json_error(http::status::method_not_allowed, "method not allowed");
    answer.set(http::field::allow, allowed_methods);
    return answer;
}

http_response unauthorized()
{
    auto answer = json_error(http::status::unauthorized, "missing or wrong session secret");
    answer.set(http::field::www_authenticate, "Bearer");
    return answer;
}

http_response too_many_requests(rate_limiter::clock::duration wait)
{
    auto answer = json_error(http::status::too_many_requests, "too many token requests");
    answer.set(http::field::retry_after, std::to_string(std::chrono::ceil<std::chrono::seconds>(wait).count()));
    return answer;
}

// The browser asks this before a cross-origin POST carrying Authorization. Other
// origins get no CORS headers, so the browser never sends their POST.
http_response preflight(bool origin_allowed)
{
    if (!origin_allowed)
        return json_error(http::status::forbidden, "origin not allowed");
    http_response answer{http::status::no_content, 11};
    answer.set(http::field::access_control_allow_methods, "POST");
    answer.set(http::field::access_control_allow_headers, "Authorization, Content-Type");
    answer.set(http::field::access_control_max_age, "600");
    return answer;
}

void allow_origin(http_response& answer, std::string_view origin)
{
    answer.set(http::field::access_control_allow_origin, origin);
    // Not a CORS-safelisted header: without this, the page could not read it on a 429.
    answer.set(http::field::access_control_expose_headers, "Retry-After");
    // The answer depends on the Origin header: a cache must not give it to another origin.
    answer.set(http::field::vary, "Origin");
}

// An early-exit comparison would tell an attacker, by its timing, how much of a guess is right.
bool equal_in_constant_time(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Upstream failures, by class. The caller gets a fixed text per class and the request id to quote;
// never the upstream's own message, which goes to our log only.
struct failure_class {
    http::status status;
    std::string_view message;
};

failure_class classify_upstream_failure(const boost::system::error_code& ec)
{
    using cartesia::error;
    if (ec == error::timeout)
        return {http::status::gateway_timeout, "upstream timed out"};
    if (ec == error::rate_limited || ec == error::server_error)
        return {http::status::service_unavailable, "upstream unavailable"};
    // Any other API status (401 for a revoked key...), a malformed answer, a bad configuration:
    // retrying will not help, an operator must look.
    if (ec.category() == cartesia::error_category())
        return {http::status::bad_gateway, "bad answer from upstream"};
    if (ec == asio::error::operation_aborted)
        return {http::status::service_unavailable, "shutting down"};
    // A certificate that does not verify is a configuration or an attack, not an outage.
    if (ec.category() == asio::error::get_ssl_category())
        return {http::status::bad_gateway, "upstream TLS failure"};
    return {http::status::service_unavailable, "upstream unreachable"};
}

// Request ids are UUIDs; anything else the upstream put there is not echoed.
bool is_plain_request_id(std::string_view id)
{
    return !id.empty() && id.size() <= 64 &&
           std::ranges::all_of(id, [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

http_response upstream_failure(const boost::system::error_code& ec, const cartesia::diagnostics& diag)
{
    const auto [status, message] = classify_upstream_failure(ec);
    json::object body{{"error", message}};
    if (is_plain_request_id(diag.request_id()))
        body["request_id"] = diag.request_id();
    return json_response(status, body);
}

// For a request too large to read, an answer; for other read failures (the caller
// left, was too slow, or does not speak HTTP), nothing: there is nobody to answer.
std::optional<http_response> answer_unreadable(const boost::system::error_code& ec)
{
    if (ec == http::error::header_limit)
        return json_error(http::status::request_header_fields_too_large, "request headers too large");
    if (ec == http::error::body_limit)
        return json_error(http::status::payload_too_large, "request body too large");
    return std::nullopt;
}

// --- static files ---

struct static_file_name {
    std::string name;
    std::string_view content_type;
};

std::optional<std::string_view> content_type_for(std::string_view extension)
{
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> types{{
        {"html", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
    }};
    const auto found = std::ranges::find(types, extension, [](const auto& type) { return type.first; });
    if (found == types.end())
        return std::nullopt;
    return found->second;
}

// Only a plain name directly in the web root, with a known type, is served: no path
// from a caller reaches the file system as it is, so "/../" cannot escape.
std::optional<static_file_name> static_file_for(std::string_view path)
{
    if (path == "/")
        path = "/index.html";
    const std::string_view name = path.substr(1);
    const auto dot = name.find('.');
    const std::string_view stem = name.substr(0, dot);
    const bool plain_stem =
        std::ranges::all_of(stem, [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
    if (dot == std::string_view::npos || stem.empty() || !plain_stem)
        return std::nullopt;
    const auto content_type = content_type_for(name.substr(dot + 1));
    if (!content_type)
        return std::nullopt;
    return static_file_name{std::string(name), *content_type};
}

// Blocking, but the files are a few KiB: simpler than asynchronous file I/O, for no noticeable cost.
std::optional<std::string> read_file(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Listens at once, so that the port is known, and a port in use reported, before run().
tcp::acceptor listen_on(const asio::any_io_executor& executor, const tcp::endpoint& endpoint)
{
    tcp::acceptor acceptor(executor, endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    boost::system::error_code ec;
    acceptor.bind(endpoint, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::ostringstream message;
        message << "cannot listen on " << endpoint << ": " << ec.message();
        throw std::runtime_error(message.str());
    }
    return acceptor;
}

} // namespace

struct server::connection {
    explicit connection(tcp::socket socket) : stream(std::move(socket)) {}

    // Idle: no request in progress, and none waiting to be read. Shutdown closes idle connections.
    bool is_idle() const
    {
        boost::system::error_code ec;
        return !busy && stream.socket().available(ec) == 0;
    }

    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bool busy = false; // from the first byte of a request to the end of its response
};

server::server(const asio::any_io_executor& executor, cartesia::client& upstream, server_config config)
    : upstream_(upstream), config_(std::move(config)), default_order_(default_order_of(config_.policy)),
      limiter_(config_.rate_limit), acceptor_(listen_on(executor, config_.endpoint)), slot_freed_(executor),
      drained_(executor)
{
    if (config_.reserve > 0)
        reserve_.emplace(upstream_, to_token_request(default_order_), cartesia::token_reserve_options{config_.reserve});
}

token_order server::default_order_of(const token_policy& policy)
{
    return std::get<token_order>(read_token_order("", policy)); // an empty body: the most allowed
}

asio::awaitable<void> server::run()
{
    const auto executor = co_await asio::this_coro::executor;
    while (acceptor_.is_open()) {
        co_await wait_for_free_slot();
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (!acceptor_.is_open())
            break;
        if (ec) {
            std::cerr << "accept: " << ec.message() << '\n';
            continue;
        }
        asio::co_spawn(executor, serve(std::move(socket)), asio::detached);
    }
}

// At the cap, stop accepting until a connection ends: the kernel's backlog holds newcomers meanwhile.
asio::awaitable<void> server::wait_for_free_slot()
{
    while (connections_.size() >= max_connections && acceptor_.is_open()) {
        slot_freed_.expires_at(asio::steady_timer::time_point::max());
        co_await slot_freed_.async_wait(use_tuple);
    }
}

asio::awaitable<void> server::shutdown(std::chrono::steady_clock::duration grace)
{
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    slot_freed_.cancel();
    // A request that has reached us is answered, even if it arrived just now.
    for (connection* conn : connections_)
        if (conn->is_idle())
            conn->stream.cancel();

    drained_.expires_after(grace);
    while (!connections_.empty()) {
        auto [ec] = co_await drained_.async_wait(use_tuple);
        if (!ec)
            break; // the grace period is over
    }
    for (connection* conn : connections_)
        conn->stream.close();
    // Only now: the requests of the grace period took their tokens from it. Its
    // tokens are erased; a request still waiting for one ends (its connection is
    // closed already).
    if (reserve_)
        reserve_->close();
}

asio::awaitable<void> server::serve(tcp::socket socket)
{
    connection conn(std::move(socket));
    connections_.insert(&conn);
    try {
        co_await serve_requests(conn);
    } catch (const std::exception& e) {
        std::cerr << "connection failed: " << e.what() << '\n';
    }
    connections_.erase(&conn);
    slot_freed_.cancel();
    if (connections_.empty())
        drained_.cancel();
}

asio::awaitable<void> server::serve_requests(connection& conn)
{
    boost::system::error_code ec;
    const std::string caller = conn.stream.socket().remote_endpoint(ec).address().to_string();
    while (!stopping_ && co_await next_request_arrives(conn)) {
        conn.busy = true;
        const auto started = std::chrono::steady_clock::now();
        const auto began = std::chrono::system_clock::now();
        http::request_parser<http::string_body> parser;
        parser.header_limit(max_header_bytes);
        parser.body_limit(max_body_bytes);
        conn.stream.expires_after(request_timeout);
        const auto [read_error, bytes_read] = co_await http::async_read(conn.stream, conn.buffer, parser, use_tuple);
        if (read_error) {
            if (auto answer = answer_unreadable(read_error)) {
                const auto delivery = co_await send(conn, *answer, 11, false);
                record(exchange{parser.get(), path_of(parser.get().target()), caller, started, began, {}}, *answer,
                       delivery);
            }
            break;
        }

        exchange ex{parser.get(), path_of(parser.get().target()), caller, started, began, {}};
        http_response answer = co_await respond(ex);
        const bool keep_alive = ex.req.keep_alive() && !stopping_;
        const auto delivery = co_await send(conn, answer, ex.req.version(), keep_alive);
        record(ex, answer, delivery);
        conn.busy = false;
        if (delivery.error || !keep_alive)
            break;
    }
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Waits for the first bytes of the next request. Until they come the connection is
// idle, under the idle timeout rather than the request timeout.
asio::awaitable<bool> server::next_request_arrives(connection& conn)
{
    if (conn.buffer.size() > 0)
        co_return true; // pipelined behind the previous one
    conn.stream.expires_after(idle_timeout);
    const auto [ec, bytes] = co_await conn.stream.async_read_some(conn.buffer.prepare(max_header_bytes), use_tuple);
    conn.buffer.commit(bytes);
    co_return !ec;
}

asio::awaitable<server::sent> server::send(connection& conn, http_response& answer, unsigned version, bool keep_alive)
{
    answer.version(version);
    answer.keep_alive(keep_alive);
    answer.prepare_payload();
    conn.stream.expires_after(request_timeout);
    const auto [ec, bytes] = co_await http::async_write(conn.stream, answer, use_tuple);
    co_return sent{ec, bytes};
}

asio::awaitable<http_response> server::respond(exchange& ex)
{
    const std::string_view path = ex.path;
    if (path == "/api/token")
        co_return co_await token_endpoint(ex);
    if (path == "/healthz")
        co_return health(ex.req);
    if (path == "/metrics")
        co_return ex.req.method() == http::verb::get ? metrics() : method_not_allowed("GET");
    co_return static_file(ex.req, path);
}

asio::awaitable<http_response> server::token_endpoint(exchange& ex)
{
    const std::string_view origin = ex.req[http::field::origin];
    const bool origin_allowed = is_allowed_origin(origin);
    http_response answer;
    if (ex.req.method() == http::verb::options)
        answer = preflight(origin_allowed);
    else if (ex.req.method() == http::verb::post)
        answer = co_await mint(ex);
    else
        answer = method_not_allowed("POST, OPTIONS");
    if (origin_allowed)
        allow_origin(answer, origin);
    co_return answer;
}

asio::awaitable<http_response> server::mint(exchange& ex)
{
    // Before authentication, so that guessing the secret is rate limited too.
    if (const auto wait = limiter_.acquire(ex.caller, rate_limiter::clock::now()); wait > wait.zero()) {
        metrics_.count_rate_limited();
        co_return too_many_requests(wait);
    }
    if (!is_authorized(ex.req))
        co_return unauthorized();
    const auto order = read_token_order(ex.req.body(), config_.policy);
    if (const auto* refused = std::get_if<refusal>(&order))
        co_return json_error(refused->status, refused->reason);
    co_return co_await mint_upstream(ex, std::get<token_order>(order));
}

asio::awaitable<http_response> server::mint_upstream(exchange& ex, const token_order& order)
{
    cartesia::diagnostics diag;
    const bool from_reserve =
        reserve_ && order.grants == default_order_.grants && order.expires_in == default_order_.expires_in;
    // Not one conditional expression with a co_await in each branch: GCC 12
    // destroys such a result twice.
    boost::system::error_code ec;
    cartesia::token_response minted;
    if (from_reserve)
        std::tie(ec, minted) = co_await reserve_->async_take(use_tuple);
    else
        std::tie(ec, minted) = co_await upstream_.async_generate_token(to_token_request(order), diag, use_tuple);
    // A take makes no attempt of its own: its log line says where the token came from.
    ex.upstream =
        upstream_outcome{ec, diag.attempts(), ec ? cartesia::describe(ec, diag) : std::string(), from_reserve};
    if (ec) {
        metrics_.count_upstream_failure(ec);
        co_return upstream_failure(ec, diag);
    }
    co_return json_response(http::status::ok,
                            {{"token", minted.token},
                             {"expires_in", from_reserve ? seconds_left(order, minted) : order.expires_in.count()}});
}

// What the caller is told of a reserved token's life: minted up to the reserve's
// max_age ago, it has less left than the order asked for. (A token minted for the
// request has the order's whole life, give or take the round trip.)
std::int64_t server::seconds_left(const token_order& order, const cartesia::token_response& minted)
{
    if (!minted.expires_at)
        return order.expires_in.count();
    const auto left = std::chrono::floor<std::chrono::seconds>(*minted.expires_at - std::chrono::system_clock::now());
    return std::clamp<std::int64_t>(left.count(), 0, order.expires_in.count());
}

// PLACEHOLDER AUTHENTICATION. One shared secret stands in for the caller's identity so
// that the example runs on its own. A real deployment checks its own session or auth
// system here (a session cookie, an OAuth access token...), and may choose the grants
// and lifetime per user rather than per server.
bool server::is_authorized(const http_request& req) const
{
    constexpr std::string_view scheme = "Bearer ";
    const std::string_view credentials = req[http::field::authorization];
    if (credentials.size() <= scheme.size() || !beast::iequals(credentials.substr(0, scheme.size()), scheme))
        return false;
    return equal_in_constant_time(credentials.substr(scheme.size()), config_.session_secret);
}

bool server::is_allowed_origin(std::string_view origin) const
{
    return !origin.empty() && std::ranges::find(config_.allowed_origins, origin) != config_.allowed_origins.end();
}

// For a load balancer: 503 from the start of a shutdown, so that it sends no more callers.
http_response server::health(const http_request& req) const
{
    if (req.method() != http::verb::get)
        return method_not_allowed("GET");
    if (stopping_)
        return json_response(http::status::service_unavailable, {{"status", "shutting down"}});
    return json_response(http::status::ok, {{"status", "ok"}});
}

http_response server::static_file(const http_request& req, std::string_view path) const
{
    if (req.method() != http::verb::get)
        return method_not_allowed("GET");
    const auto file = static_file_for(path);
    auto content = file ? read_file(config_.web_root / file->name) : std::nullopt;
    if (!content)
        return json_error(http::status::not_found, "not found");
    http_response answer{http::status::ok, 11};
    answer.set(http::field::content_type, file->content_type);
    answer.set(http::field::cache_control, "no-cache");
    // The page shows tokens: it runs no script but its own and may not be framed.
    answer.set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
    answer.set("X-Content-Type-Options", "nosniff");
    answer.body() = std::move(*content);
    return answer;
}

} // namespace token_server
