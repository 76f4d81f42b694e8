// The token server's HTTP side: connections, routing and the endpoints.
#ifndef TOKEN_SERVER_TOKEN_SERVER_HPP
#define TOKEN_SERVER_TOKEN_SERVER_HPP

#include "access_log.hpp"
#include "metrics.hpp"
#include "rate_limiter.hpp"
#include "token_policy.hpp"

#include <cartesia/cartesia.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace token_server {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

struct server_config {
    boost::asio::ip::tcp::endpoint endpoint;
    /// Where index.html, app.js and style.css are.
    std::filesystem::path web_root;
    /// What callers present as `Authorization: Bearer <secret>`: a stand-in for real authentication.
    std::string session_secret;
    token_policy policy;
    rate_limiter::settings rate_limit;
    /// Origins whose pages may call POST /api/token from another origin (CORS).
    std::vector<std::string> allowed_origins;
    /// Tokens minted ahead for the default order (a body that asks for nothing
    /// in particular: the policy's grants and lifetime), through a
    /// cartesia::token_reserve of this size; 0: none, every token is minted when asked for.
    std::size_t reserve = 0;
    /// One JSON line per request on stderr.
    bool access_log = true;
};

/// An HTTP/1.1 server that mints tokens through `upstream` for its callers, and
/// serves the page that asks for them. Single-threaded: run its executor on one thread.
class server {
public:
    /// Listens at once (or throws), so that the port is known before run().
    server(const boost::asio::any_io_executor& executor, cartesia::client& upstream, server_config config);

    boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    /// Accepts connections and serves them, until shutdown().
    boost::asio::awaitable<void> run();

    /// Stops accepting, closes idle connections and lets requests in progress finish;
    /// after `grace`, closes the connections still open.
    boost::asio::awaitable<void> shutdown(std::chrono::steady_clock::duration grace);

private:
    struct connection;
    // One request being answered: what the handlers read, and what the access log and
    // the metrics add to the status.
    struct exchange {
        const http_request& req;
        std::string_view path; ///< The target without its query string.
        const std::string& caller;
        std::chrono::steady_clock::time_point started;
        std::chrono::system_clock::time_point began;
        std::optional<upstream_outcome> upstream; ///< For a request that reached the upstream.
    };

    boost::asio::awaitable<void> wait_for_free_slot();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
    boost::asio::awaitable<void> serve_requests(connection& conn);
    boost::asio::awaitable<bool> next_request_arrives(connection& conn);
    struct sent {
        boost::system::error_code error;
        std::size_t bytes = 0;
    };
    boost::asio::awaitable<sent> send(connection& conn, http_response& answer, unsigned version, bool keep_alive);
    void record(const exchange& ex, const http_response& answer, const sent& delivery);

    boost::asio::awaitable<http_response> respond(exchange& ex);
    boost::asio::awaitable<http_response> token_endpoint(exchange& ex);
    boost::asio::awaitable<http_response> mint(exchange& ex);
    boost::asio::awaitable<http_response> mint_upstream(exchange& ex, const token_order& order);
    static std::int64_t seconds_left(const token_order& order, const cartesia::token_response& minted);
    static token_order default_order_of(const token_policy& policy);
    bool is_authorized(const http_request& req) const;
    bool is_allowed_origin(std::string_view origin) const;
    http_response static_file(const http_request& req, std::string_view path) const;
    http_response health(const http_request& req) const;
    http_response metrics() const;

    cartesia::client& upstream_;
    std::optional<cartesia::token_reserve> reserve_; // with --reserve
    server_config config_;
    token_order default_order_; // what an empty body asks for: the most allowed
    rate_limiter limiter_;
    server_metrics metrics_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::unordered_set<connection*> connections_;
    // Timers used as events: cancelled when a connection ends, never left to expire
    // (but for drained_, whose expiry is the end of the grace period).
    boost::asio::steady_timer slot_freed_;
    boost::asio::steady_timer drained_;
    bool stopping_ = false;
};

} // namespace token_server

#endif
