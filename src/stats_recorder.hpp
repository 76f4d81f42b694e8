// cartesia::client's statistics (client_stats): written on the client's strand as
// things happen, read by client::stats() from any thread. One mutex makes each
// snapshot consistent; it is taken a few times per token, uncontended but for a
// reader, and held for a few stores. Private to src/.
#ifndef CARTESIA_SRC_STATS_RECORDER_HPP
#define CARTESIA_SRC_STATS_RECORDER_HPP

#include "log_histogram.hpp"

#include <cartesia/client.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace cartesia::detail {

// 16 buckets per power of two (each quantile within 3.1%) up to 2^40 ns (18 min,
// beyond any deadline in practice): 592 buckets, 4.6 KiB.
using latency_histogram = log_histogram<4, 40>;

struct latency_snapshot {
    latency_histogram histogram;
};

// What the pool holds now.
struct pool_gauges {
    std::size_t open = 0;
    std::size_t idle = 0;
    std::size_t opening = 0;
    std::size_t queued = 0;
};

class stats_recorder {
public:
    // An operation completed with `ec` (none: a token) after `latency`. The
    // retries it made, the stale connections it moved past, the retries the budget
    // has refused so far, and the pool as it is now.
    void completed(boost::system::error_code ec, std::chrono::nanoseconds latency, unsigned attempts,
                   unsigned stale_moves, std::uint64_t retries_refused, const pool_gauges& now) noexcept;
    // An opening ended: with a connection (`resumed`: its TLS session), or not.
    void opened(bool resumed, const pool_gauges& now) noexcept;
    void opening_failed(const pool_gauges& now) noexcept;
    void set(const pool_gauges& now) noexcept;

    client_stats snapshot() const;

private:
    void store(const pool_gauges& now) noexcept; // under the lock

    mutable std::mutex mutex_;
    client_stats counters_; // without its latency: that is latency_
    latency_histogram latency_;
};

} // namespace cartesia::detail

#endif
