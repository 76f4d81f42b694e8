#include "stats_recorder.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/error.hpp>

namespace cartesia {

namespace detail {

struct stats_access {
    static void set_latency(client_stats& s, std::shared_ptr<const latency_snapshot> latency) noexcept
    {
        s.latency_ = std::move(latency);
    }
    static const latency_snapshot* latency(const client_stats& s) noexcept { return s.latency_.get(); }
};

namespace {

enum class failure_kind { http, timeout, cancelled, network, other };

failure_kind kind_of(boost::system::error_code ec) noexcept
{
    if (ec == boost::asio::error::operation_aborted)
        return failure_kind::cancelled;
    if (ec.category() != error_category())
        return failure_kind::network; // the system's and OpenSSL's: resolving, connecting, TLS, I/O
    switch (static_cast<error>(ec.value())) {
    case error::bad_request:
    case error::unauthorized:
    case error::forbidden:
    case error::not_found:
    case error::conflict:
    case error::unprocessable_entity:
    case error::rate_limited:
    case error::server_error:
    case error::unexpected_status:
        return failure_kind::http;
    case error::timeout:
        return failure_kind::timeout;
    case error::proxy_error:
    case error::proxy_auth_required:
        return failure_kind::network;
    default:
        return failure_kind::other; // a bad or oversized response, an invalid argument
    }
}

} // namespace

void stats_recorder::store(const pool_gauges& now) noexcept
{
    counters_.connections_open = now.open;
    counters_.connections_idle = now.idle;
    counters_.connections_opening = now.opening;
    counters_.requests_queued = now.queued;
}

void stats_recorder::completed(boost::system::error_code ec, std::chrono::nanoseconds latency, unsigned attempts,
                               unsigned stale_moves, std::uint64_t retries_refused, const pool_gauges& now) noexcept
{
    const std::lock_guard lock(mutex_);
    store(now);
    latency_.record(latency);
    counters_.retries += attempts > 1 ? attempts - 1 : 0;
    counters_.stale_moves += stale_moves;
    counters_.retries_refused = retries_refused;
    if (!ec) {
        ++counters_.tokens_minted;
        return;
    }
    ++counters_.failures;
    switch (kind_of(ec)) {
    case failure_kind::http:
        ++counters_.failures_http;
        break;
    case failure_kind::timeout:
        ++counters_.failures_timeout;
        break;
    case failure_kind::cancelled:
        ++counters_.failures_cancelled;
        break;
    case failure_kind::network:
        ++counters_.failures_network;
        break;
    case failure_kind::other:
        ++counters_.failures_other;
        break;
    }
}

void stats_recorder::opened(bool resumed, const pool_gauges& now) noexcept
{
    const std::lock_guard lock(mutex_);
    store(now);
    ++counters_.connections_opened;
    ++(resumed ? counters_.handshakes_resumed : counters_.handshakes_full);
}

void stats_recorder::opening_failed(const pool_gauges& now) noexcept
{
    const std::lock_guard lock(mutex_);
    store(now);
    ++counters_.connection_failures;
}

void stats_recorder::set(const pool_gauges& now) noexcept
{
    const std::lock_guard lock(mutex_);
    store(now);
}

client_stats stats_recorder::snapshot() const
{
    auto latency = std::make_shared<latency_snapshot>(); // outside the lock: it allocates
    client_stats copy;
    {
        const std::lock_guard lock(mutex_);
        copy = counters_;
        latency->histogram = latency_;
    }
    if (latency->histogram.count() > 0)
        stats_access::set_latency(copy, std::move(latency));
    return copy;
}

} // namespace detail

std::chrono::microseconds client_stats::latency_quantile(double q) const noexcept
{
    const auto* latency = detail::stats_access::latency(*this);
    if (latency == nullptr)
        return {};
    return std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::duration<double, std::nano>(latency->histogram.quantile_ns(q)));
}

std::uint64_t client_stats::latency_count() const noexcept
{
    const auto* latency = detail::stats_access::latency(*this);
    return latency ? latency->histogram.count() : 0;
}

} // namespace cartesia
