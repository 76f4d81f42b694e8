// The embedded cartesia::client's statistics as Prometheus families.
#include "metrics.hpp"

#include <array>

namespace token_server {

void write_client_stats(std::string& out, const cartesia::client_stats& stats)
{
    using exposition::family;
    using exposition::sample;
    // What the pool holds now: gauges.
    const auto gauge = [&out](std::string_view name, std::string_view help, std::size_t value) {
        family(out, name, "gauge", help);
        sample(out, name, "", static_cast<std::uint64_t>(value));
    };
    gauge("cartesia_client_connections_open", "Connections to the API open and usable, idle or carrying a request.",
          stats.connections_open);
    gauge("cartesia_client_connections_idle", "Of the open connections, the idle ones.", stats.connections_idle);
    gauge("cartesia_client_connections_opening", "Connections to the API being opened.", stats.connections_opening);
    gauge("cartesia_client_requests_queued", "Token requests waiting for a free connection.", stats.requests_queued);

    // What it has done since it was made: counters.
    const auto counter = [&out](std::string_view name, std::string_view help, std::uint64_t value) {
        family(out, name, "counter", help);
        sample(out, name, "", value);
    };
    counter("cartesia_client_tokens_minted_total", "Operations that completed with a token.", stats.tokens_minted);

    family(out, "cartesia_client_failures_total", "counter", "Operations that completed with an error, by kind.");
    const std::array<std::pair<std::string_view, std::uint64_t>, 5> failures{{
        {"http", stats.failures_http},
        {"timeout", stats.failures_timeout},
        {"cancelled", stats.failures_cancelled},
        {"network", stats.failures_network},
        {"other", stats.failures_other},
    }};
    for (const auto& [kind, count] : failures)
        sample(out, "cartesia_client_failures_total", "kind=\"" + std::string(kind) + "\"", count);

    counter("cartesia_client_retries_total", "Attempts after the first, as scheduled.", stats.retries);
    counter("cartesia_client_retries_refused_total",
            "Retryable failures delivered at once because the retry budget was spent.", stats.retries_refused);
    counter("cartesia_client_stale_moves_total", "Requests moved past a pooled connection that the server had closed.",
            stats.stale_moves);
    counter("cartesia_client_connections_opened_total", "Connections whose TLS handshake completed.",
            stats.connections_opened);
    counter("cartesia_client_connection_failures_total",
            "Connection openings that failed: resolve, connect, proxy, TLS or deadline.", stats.connection_failures);

    family(out, "cartesia_client_handshakes_total", "counter", "TLS handshakes of the opened connections, by type.");
    sample(out, "cartesia_client_handshakes_total", "type=\"full\"", stats.handshakes_full);
    sample(out, "cartesia_client_handshakes_total", "type=\"resumed\"", stats.handshakes_resumed);

    // Not a summary: the text format's summary has a _sum, which the client does not
    // keep. These quantiles are over the client's whole life, not a recent window. The
    // label is `q`: promtool refuses a `quantile` label outside a summary.
    family(out, "cartesia_client_latency_quantile_seconds", "gauge",
           "Quantiles of the time operations took from start to completion, over every operation so far.");
    constexpr std::array<std::pair<double, std::string_view>, 3> quantiles{
        {{0.5, "0.5"}, {0.9, "0.9"}, {0.99, "0.99"}}};
    for (const auto& [q, label] : quantiles) {
        const std::chrono::duration<double> latency = stats.latency_quantile(q);
        sample(out, "cartesia_client_latency_quantile_seconds", "q=\"" + std::string(label) + "\"", latency.count());
    }
    counter("cartesia_client_latency_observations_total",
            "Operations the latency quantiles are computed over: tokens minted plus failures.", stats.latency_count());
}

} // namespace token_server
