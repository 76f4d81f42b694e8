// The retry budget of client_config::retry_budget_ratio and
// retry_budget_min_per_second: a cap on retries relative to the traffic, so that a
// struggling API is not hit by max_retries times the load (after gRPC's retry
// throttling and Finagle's RetryBudget). Sans-io: every call takes the time, from
// steady_clock. Private to src/ and the unit tests; the caller serializes the calls.
//
// The rule. Time is cut into one-second buckets (whole seconds of steady_clock);
// the window is the current bucket and the 9 before it, about 10 s. A retry is
// allowed when, counting it, the retries allowed in the window are at most
//
//     ratio * R + min_per_second * max(1, A)
//
// where R is the number of requests started in the window (on_request, first
// attempts only: a retry is not a request) and A the number of the window's
// seconds in which at least one started. A refused retry is not counted.
//
// Why A, and not the 10 s of the window (Finagle's reserve) nor a token bucket: the
// minimum is there so that a client with little traffic can still retry, and
// `min_per_second` per second that actually saw requests grants exactly that, but
// does not hand a burst the allowance of seconds it did not use. The figures, with
// the defaults (ratio 0.2, 10 per second) and max_retries = 2, for a burst of 200
// requests started within one second while the API fails every attempt:
// - this rule: 0.2 * 200 + 10 * 1 = 50 retries, 250 API requests in all (60 and
//   260 if the burst straddles two seconds); the other 150 first failures and all
//   50 second failures are delivered at once. Without a budget: 600 requests.
// - Finagle's reserve (min * 10 s, at once): 40 + 100 retries, 340 requests.
// - a token bucket of one second's minimum refilled continuously: 40 + 10 at the
//   first retries, plus about 10 more refilled by the time the second ones come
//   (backoff 0.375-0.5 s, then 0.75-1 s): some 260 requests, depending on timing.
// `max(1, A)`: a request whose attempt outlasted the window (a 60 s timeout) has
// left it, and a lone client retrying it still has one second's minimum.
// In a steady state the ratio is what binds: at 1000 requests a second and 20% of
// them failing once, 2000 retries a window against 0.2 * 10000 + 10 * 10 = 2100:
// all retried.
//
// O(1) per call and constant memory: a ring of 10 buckets of counts, not a list of
// timestamps. Counts saturate at 2^32 - 1 per bucket, so that the sums and
// products below stay far from overflow whatever the traffic.
#ifndef CARTESIA_SRC_RETRY_BUDGET_HPP
#define CARTESIA_SRC_RETRY_BUDGET_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace cartesia::detail {

class retry_budget {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t window_seconds = 10;

    // `ratio` in [0, 1], as validate() checks client_config::retry_budget_ratio;
    // it is kept to the millionth.
    retry_budget(double ratio, unsigned min_per_second) noexcept;

    // A request started (its first attempt).
    void on_request(clock::time_point now) noexcept;
    // Whether a retry may be sent now; true counts it against the budget.
    bool try_spend_retry(clock::time_point now) noexcept;

    // The window as of the last call, for tests and diagnostics.
    std::uint64_t requests_in_window() const noexcept { return requests_; }
    std::uint64_t retries_in_window() const noexcept { return retries_; }
    // Retries refused so far (client_stats::retries_refused).
    std::uint64_t refused() const noexcept { return refused_; }

private:
    struct bucket {
        std::uint32_t requests = 0;
        std::uint32_t retries = 0;
    };

    // Moves the window to `now`'s second, emptying the buckets it leaves. A time
    // before the current second (a clock read by another thread just before the
    // caller's lock) counts in the current second.
    void advance(clock::time_point now) noexcept;
    bucket& current() noexcept;
    void empty(bucket& b) noexcept;

    std::array<bucket, window_seconds> buckets_{};
    std::int64_t current_second_ = std::numeric_limits<std::int64_t>::min();
    std::uint64_t requests_ = 0;       // the sum of the buckets' requests
    std::uint64_t retries_ = 0;        // the sum of the buckets' retries
    std::uint64_t active_seconds_ = 0; // the buckets with a request
    std::uint64_t ratio_millionths_;
    std::uint64_t min_per_second_;
    std::uint64_t refused_ = 0;
};

} // namespace cartesia::detail

#endif
