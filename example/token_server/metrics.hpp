// What the token server counts, and its /metrics page in Prometheus' text format.
#ifndef TOKEN_SERVER_METRICS_HPP
#define TOKEN_SERVER_METRICS_HPP

#include <cartesia/client.hpp>

#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace token_server {

/// The Content-Type of the text exposition format, version 0.0.4.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The kind of an upstream failure, one of a fixed few so that a label of it stays
/// cheap: "rate_limited" (429), "http_4xx", "http_5xx", "http_other" (an error status
/// of the API), "timeout", "network" (resolve, connect, proxy, I/O), "tls" (a handshake
/// or a certificate), "cancelled" (shutdown), "other" (a malformed or oversized answer,
/// a bad configuration).
std::string_view upstream_failure_kind(const boost::system::error_code& ec);

/// A name for an error code in a log: the enumerator's name for the library's own
/// ("unauthorized", "timeout"), else "<category>:<value>" ("system:111").
std::string error_name(const boost::system::error_code& ec);

/// The `route` label of a request path: one of the server's endpoints, or "static" for
/// any other path (the page's files, and what is not found), so that callers cannot
/// make new series by asking for new paths.
std::string_view route_of(std::string_view path);

/// The server's own counters. Single-threaded, like the server.
class server_metrics {
public:
    server_metrics();

    void count_request(std::string_view route, unsigned status, std::chrono::steady_clock::duration duration);
    void count_rate_limited() { ++rate_limited_; }
    void count_upstream_failure(const boost::system::error_code& ec);

    /// The server's families in the text format, each with # HELP and # TYPE.
    void write(std::string& out) const;

private:
    // Prometheus' default buckets, in seconds: they span a static file to a slow upstream.
    static constexpr std::array<double, 11> bucket_bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    struct histogram {
        std::array<std::uint64_t, bucket_bounds.size()> buckets{}; // not cumulative: one per bound
        std::uint64_t count = 0;
        double sum = 0;
    };

    std::map<std::pair<std::string, unsigned>, std::uint64_t, std::less<>> requests_;
    std::map<std::string, histogram, std::less<>> durations_;
    std::uint64_t rate_limited_ = 0;
    std::map<std::string_view, std::uint64_t> upstream_failures_;
};

/// Lines of the text format, for the writers of families.
namespace exposition {
/// A family's # HELP and # TYPE lines, which come once, before its samples.
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help);
/// One sample; `labels` is what goes between the braces (`route="/healthz"`), or empty.
void sample(std::string& out, std::string_view name, std::string_view labels, double value);
void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value);
} // namespace exposition

/// The embedded client's statistics (client::stats()) in the text format.
void write_client_stats(std::string& out, const cartesia::client_stats& stats);

} // namespace token_server

#endif
