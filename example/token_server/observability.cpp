// The server's metrics and access log: what each request leaves behind, and GET /metrics.
#include "token_server.hpp"

#include <iostream>

namespace token_server {

namespace http = boost::beast::http;

// Once the answer is written, so that its duration covers the writing, and a scrape of
// /metrics counts the requests before it, not itself.
void server::record(const exchange& ex, const http_response& answer, const sent& delivery)
{
    const auto status = static_cast<unsigned>(answer.result());
    const auto duration = std::chrono::steady_clock::now() - ex.started;
    metrics_.count_request(route_of(ex.path), status, duration);
    if (!config_.access_log)
        return;
    const std::string delivery_error = delivery.error ? delivery.error.message() : "";
    const access_record line{.time = ex.began,
                             .remote_address = ex.caller,
                             .method = ex.req.method_string(),
                             .path = ex.path,
                             .status = status,
                             .duration = duration,
                             .bytes_sent = delivery.bytes,
                             .upstream = ex.upstream,
                             .delivery_error = delivery_error};
    // One write per line, so that lines from elsewhere in the process never cut into it.
    std::cerr << access_log_line(line) << std::flush;
}

// Not behind the session secret, which scrapers do not have: firewall it in production.
// Nothing in it comes from a caller but the routes and statuses, from fixed sets.
http_response server::metrics() const
{
    http_response answer{http::status::ok, 11};
    answer.set(http::field::content_type, metrics_content_type);
    answer.set(http::field::cache_control, "no-store");
    metrics_.write(answer.body());
    if (reserve_) {
        exposition::family(answer.body(), "token_server_reserve_ready", "gauge",
                           "Tokens of the default order minted ahead and ready to hand out (--reserve).");
        exposition::sample(answer.body(), "token_server_reserve_ready", "",
                           static_cast<std::uint64_t>(reserve_->ready()));
    }
    write_client_stats(answer.body(), upstream_.stats());
    return answer;
}

} // namespace token_server
