// A token bucket per caller: the token server's defence against a caller that
// would mint tokens (and spend the account's upstream rate limit) in a loop.
#ifndef TOKEN_SERVER_RATE_LIMITER_HPP
#define TOKEN_SERVER_RATE_LIMITER_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace token_server {

/// Each caller has a bucket of `burst` tokens that refills at `rate_per_second`;
/// a request takes one token. Not thread-safe: the server runs on one thread.
class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    struct settings {
        double rate_per_second = 5;
        double burst = 10;
    };

    explicit rate_limiter(settings limits) : limits_(limits) {}

    /// Takes a token from `caller`'s bucket. Returns zero when there was one,
    /// otherwise how long until there will be (and takes nothing).
    clock::duration acquire(const std::string& caller, clock::time_point now)
    {
        if (buckets_.size() >= max_tracked_callers)
            forget_full_buckets(now);
        auto& callers_bucket = buckets_.try_emplace(caller, limits_.burst, now).first->second;
        refill(callers_bucket, now);
        if (callers_bucket.tokens >= 1) {
            callers_bucket.tokens -= 1;
            return clock::duration::zero();
        }
        const std::chrono::duration<double> wait((1 - callers_bucket.tokens) / limits_.rate_per_second);
        return std::chrono::ceil<clock::duration>(wait);
    }

private:
    // Beyond this many callers, full buckets are dropped: a full bucket is what a
    // new caller gets anyway, so forgetting it changes nothing but the memory used.
    static constexpr std::size_t max_tracked_callers = 10'000;

    struct bucket {
        bucket(double initial_tokens, clock::time_point when) : tokens(initial_tokens), updated(when) {}
        double tokens;
        clock::time_point updated;
    };

    double tokens_at(const bucket& of, clock::time_point now) const
    {
        const std::chrono::duration<double> elapsed = now - of.updated;
        return std::min(limits_.burst, of.tokens + elapsed.count() * limits_.rate_per_second);
    }

    void refill(bucket& to_refill, clock::time_point now) const
    {
        to_refill.tokens = tokens_at(to_refill, now);
        to_refill.updated = now;
    }

    void forget_full_buckets(clock::time_point now)
    {
        std::erase_if(buckets_, [&](const auto& entry) { return tokens_at(entry.second, now) >= limits_.burst; });
    }

    settings limits_;
    std::unordered_map<std::string, bucket> buckets_;
};

} // namespace token_server

#endif
