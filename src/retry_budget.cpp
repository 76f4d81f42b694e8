#include "retry_budget.hpp"

#include <boost/assert.hpp>

#include <algorithm>
#include <cmath>

namespace cartesia::detail {
namespace {

constexpr std::uint64_t millionth = 1'000'000;
constexpr std::uint64_t bucket_max = std::numeric_limits<std::uint32_t>::max();

// The largest allowance: every count saturated, ratio 1, the largest minimum. It
// and the retries' side fit in 64 bits with room to spare.
static_assert(bucket_max * retry_budget::window_seconds * millionth +
                      std::uint64_t{std::numeric_limits<unsigned>::max()} * retry_budget::window_seconds * millionth <
                  std::numeric_limits<std::uint64_t>::max() / 2,
              "the budget's arithmetic cannot overflow");

std::size_t slot_of(std::int64_t second) noexcept
{
    constexpr auto size = static_cast<std::int64_t>(retry_budget::window_seconds);
    return static_cast<std::size_t>(((second % size) + size) % size);
}

} // namespace

retry_budget::retry_budget(double ratio, unsigned min_per_second) noexcept
    : ratio_millionths_(static_cast<std::uint64_t>(std::llround(std::clamp(ratio, 0.0, 1.0) * 1e6))),
      min_per_second_(min_per_second)
{
    BOOST_ASSERT(ratio >= 0.0 && ratio <= 1.0);
}

void retry_budget::advance(clock::time_point now) noexcept
{
    const std::int64_t second = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
    if (second <= current_second_)
        return;
    // In unsigned arithmetic: the first call's gap from the minimum does not fit in int64.
    const std::uint64_t gap = static_cast<std::uint64_t>(second) - static_cast<std::uint64_t>(current_second_);
    const auto leaving = static_cast<std::int64_t>(std::min<std::uint64_t>(gap, window_seconds));
    for (std::int64_t i = 1; i <= leaving; ++i)
        empty(buckets_[slot_of(current_second_ + i)]);
    current_second_ = second;
    BOOST_ASSERT(gap < window_seconds || (requests_ == 0 && retries_ == 0 && active_seconds_ == 0));
}

retry_budget::bucket& retry_budget::current() noexcept
{
    return buckets_[slot_of(current_second_)];
}

void retry_budget::empty(bucket& b) noexcept
{
    BOOST_ASSERT(requests_ >= b.requests && retries_ >= b.retries);
    requests_ -= b.requests;
    retries_ -= b.retries;
    if (b.requests != 0) {
        BOOST_ASSERT(active_seconds_ > 0);
        --active_seconds_;
    }
    b = {};
}

void retry_budget::on_request(clock::time_point now) noexcept
{
    advance(now);
    bucket& b = current();
    if (b.requests == bucket_max)
        return;
    if (b.requests == 0)
        ++active_seconds_;
    ++b.requests;
    ++requests_;
    BOOST_ASSERT(active_seconds_ <= window_seconds);
}

bool retry_budget::try_spend_retry(clock::time_point now) noexcept
{
    advance(now);
    bucket& b = current();
    const std::uint64_t allowance =
        ratio_millionths_ * requests_ + min_per_second_ * std::max<std::uint64_t>(1, active_seconds_) * millionth;
    if ((retries_ + 1) * millionth > allowance || b.retries == bucket_max) {
        ++refused_;
        return false;
    }
    ++b.retries;
    ++retries_;
    return true;
}

} // namespace cartesia::detail
