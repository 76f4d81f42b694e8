// The retry policy: which failures are worth another attempt, how long to wait
// before it, and what the server says about that. Pure functions, unit tested.
// Private to src/, the unit tests and the fuzzers.
#ifndef CARTESIA_SRC_RETRY_POLICY_HPP
#define CARTESIA_SRC_RETRY_POLICY_HPP

#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace cartesia::detail {

// What one attempt learnt that decides whether to try again.
struct attempt_outcome {
    boost::system::error_code ec;
    bool response_started = false;                        // a response byte arrived
    unsigned status = 0;                                  // 0 when no status line was parsed
    std::optional<bool> should_retry_header;              // x-should-retry: true|false
    std::optional<std::chrono::milliseconds> retry_after; // from retry-after-ms / Retry-After
};

// The rule of the official SDKs, made precise: retry connection failures before
// any response byte, attempt timeouts, 408, 409, 429 and 5xx; never a certificate
// verification failure, a bad response or an invalid argument; x-should-retry wins.
bool is_retryable(const attempt_outcome& outcome) noexcept;

// The delay before retry number `retry` (0-based): min(0.5 * 2^retry, 8) s, times
// (1 - 0.25 * jitter) with jitter in [0, 1); a server-given delay between 0 and 60 s wins.
std::chrono::milliseconds retry_delay(unsigned retry, double jitter,
                                      std::optional<std::chrono::milliseconds> server_delay) noexcept;

// The jitter of retry_delay, uniform in [0, 1), from a generator per thread.
double random_jitter() noexcept;

// Reads retry-after-ms (milliseconds, may be fractional), else Retry-After (delta
// seconds or an HTTP date, relative to `now`). nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after_ms,
                                                           std::string_view retry_after,
                                                           std::chrono::system_clock::time_point now);

} // namespace cartesia::detail

#endif
