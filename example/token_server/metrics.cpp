#include "metrics.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <charconv>
#include <system_error>

namespace token_server {

namespace asio = boost::asio;

namespace {

constexpr std::array<std::string_view, 9> upstream_failure_kinds{
    "rate_limited", "http_4xx", "http_5xx", "http_other", "timeout", "network", "tls", "cancelled", "other"};

// The shortest text that reads back as the same double.
std::string number_text(double value)
{
    std::array<char, 32> text{};
    const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(), value);
    return {text.data(), ec == std::errc() ? end : text.data()};
}

} // namespace

namespace exposition {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
{
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

namespace {

void sample_head(std::string& out, std::string_view name, std::string_view labels)
{
    out.append(name);
    if (!labels.empty())
        out.append("{").append(labels).append("}");
    out += ' ';
}

} // namespace

void sample(std::string& out, std::string_view name, std::string_view labels, double value)
{
    sample_head(out, name, labels);
    out.append(number_text(value));
    out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value)
{
    sample_head(out, name, labels);
    out.append(std::to_string(value));
    out += '\n';
}

} // namespace exposition

std::string_view upstream_failure_kind(const boost::system::error_code& ec)
{
    using cartesia::error;
    if (ec.category() == cartesia::error_category()) {
        switch (static_cast<error>(ec.value())) {
        case error::rate_limited:
            return "rate_limited";
        case error::bad_request:
        case error::unauthorized:
        case error::forbidden:
        case error::not_found:
        case error::conflict:
        case error::unprocessable_entity:
            return "http_4xx";
        case error::server_error:
            return "http_5xx";
        case error::unexpected_status:
            return "http_other";
        case error::timeout:
            return "timeout";
        case error::proxy_error:
        case error::proxy_auth_required:
            return "network";
        case error::invalid_argument:
        case error::bad_response:
        case error::response_too_large:
            return "other";
        }
        return "other";
    }
    if (ec == asio::error::operation_aborted)
        return "cancelled";
    if (ec.category() == asio::error::get_ssl_category())
        return "tls";
    // The system's, Asio's misc and resolver categories, and a TLS stream cut short.
    return "network";
}

std::string error_name(const boost::system::error_code& ec)
{
    using cartesia::error;
    if (ec.category() == cartesia::error_category()) {
        switch (static_cast<error>(ec.value())) {
        case error::invalid_argument:
            return "invalid_argument";
        case error::bad_request:
            return "bad_request";
        case error::unauthorized:
            return "unauthorized";
        case error::forbidden:
            return "forbidden";
        case error::not_found:
            return "not_found";
        case error::conflict:
            return "conflict";
        case error::unprocessable_entity:
            return "unprocessable_entity";
        case error::rate_limited:
            return "rate_limited";
        case error::server_error:
            return "server_error";
        case error::unexpected_status:
            return "unexpected_status";
        case error::bad_response:
            return "bad_response";
        case error::response_too_large:
            return "response_too_large";
        case error::timeout:
            return "timeout";
        case error::proxy_error:
            return "proxy_error";
        case error::proxy_auth_required:
            return "proxy_auth_required";
        }
    }
    if (ec == asio::error::operation_aborted)
        return "operation_aborted";
    return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

std::string_view route_of(std::string_view path)
{
    for (const std::string_view route : {"/api/token", "/healthz", "/metrics"})
        if (path == route)
            return route;
    return "static";
}

server_metrics::server_metrics()
{
    // Every kind from the start: a series that appears only with its first failure
    // makes rate() and alerts blind to that first one.
    for (const std::string_view kind : upstream_failure_kinds)
        upstream_failures_[kind] = 0;
}

void server_metrics::count_request(std::string_view route, unsigned status,
                                   std::chrono::steady_clock::duration duration)
{
    ++requests_[{std::string(route), status}];
    auto found = durations_.find(route);
    if (found == durations_.end())
        found = durations_.emplace(std::string(route), histogram{}).first;
    histogram& h = found->second;
    const double seconds = std::chrono::duration<double>(duration).count();
    for (std::size_t i = 0; i < bucket_bounds.size(); ++i) {
        if (seconds <= bucket_bounds.at(i)) {
            ++h.buckets.at(i);
            break;
        }
    }
    ++h.count;
    h.sum += seconds;
}

void server_metrics::count_upstream_failure(const boost::system::error_code& ec)
{
    ++upstream_failures_[upstream_failure_kind(ec)];
}

void server_metrics::write(std::string& out) const
{
    using exposition::family;
    using exposition::sample;
    family(out, "token_server_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (const auto& [key, count] : requests_)
        sample(out, "token_server_requests_total",
               "route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"", count);

    family(out, "token_server_request_duration_seconds", "histogram",
           "Time from a request's first byte to the end of its answer, by route.");
    for (const auto& [route, h] : durations_) {
        const std::string labels = "route=\"" + route + "\"";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < bucket_bounds.size(); ++i) {
            cumulative += h.buckets.at(i);
            sample(out, "token_server_request_duration_seconds_bucket",
                   labels + ",le=\"" + number_text(bucket_bounds.at(i)) + "\"", cumulative);
        }
        sample(out, "token_server_request_duration_seconds_bucket", labels + ",le=\"+Inf\"", h.count);
        sample(out, "token_server_request_duration_seconds_sum", labels, h.sum);
        sample(out, "token_server_request_duration_seconds_count", labels, h.count);
    }

    family(out, "token_server_rate_limited_total", "counter",
           "Token requests refused with 429 by the per-caller rate limit.");
    sample(out, "token_server_rate_limited_total", "", rate_limited_);

    family(out, "token_server_upstream_failures_total", "counter",
           "Token requests whose upstream call failed, by kind of failure.");
    for (const auto& [kind, count] : upstream_failures_)
        sample(out, "token_server_upstream_failures_total", "kind=\"" + std::string(kind) + "\"", count);
}

} // namespace token_server
