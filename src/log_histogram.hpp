// log_histogram: durations recorded in constant memory, for client::stats() and
// for cartesia-bench. Private to src/ (the benchmark includes it from here).
//
// A log-linear histogram of durations in nanoseconds, as HdrHistogram lays out its
// buckets: with S = SubBucketBits, below 2^(S+1) ns every nanosecond has its
// bucket; above, each power of two [2^e, 2^(e+1)) is cut into 2^S equal buckets of
// width 2^(e-S).
//
//   precision  a quantile is the midpoint of its bucket (clamped to the exact min and
//              max), within half a bucket's width of the value it stands for:
//              within 2^-(S+1) of it, relative (S = 7: 0.39%; S = 4: 3.1%), and
//              exact below 2^(S+1) ns;
//   range      0 to 2^RangeBits ns: (RangeBits - S + 1) * 2^S buckets in a fixed
//              array (S = 7, RangeBits = 37: 137.4 s, 3,968 buckets, 31 KiB);
//   beyond it  a value of 2^RangeBits ns or more counts in `overflow()`, not in a
//              bucket; it still counts in count(), min(), max() and mean(), and a
//              quantile that falls among the overflowed values is max(). A negative
//              duration (impossible from a steady clock) is recorded as 0.
//
// record() is O(1): a count-leading-zeros, a shift, an increment; it never allocates.
// min(), max() and mean() are exact. Not thread-safe: one thread records.
#ifndef CARTESIA_SRC_LOG_HISTOGRAM_HPP
#define CARTESIA_SRC_LOG_HISTOGRAM_HPP

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace cartesia::detail {

template <unsigned SubBucketBits, unsigned RangeBits> class log_histogram {
public:
    static_assert(SubBucketBits >= 1 && RangeBits > SubBucketBits && RangeBits < 64);
    static constexpr unsigned sub_bucket_bits = SubBucketBits;
    static constexpr unsigned range_bits = RangeBits;
    static constexpr std::uint64_t limit_ns = std::uint64_t{1} << range_bits; // first value out of range
    static constexpr std::size_t bucket_count = std::size_t{range_bits - sub_bucket_bits + 1} << sub_bucket_bits;

    void record(std::chrono::nanoseconds duration) noexcept
    {
        const std::uint64_t ns = duration.count() < 0 ? 0 : static_cast<std::uint64_t>(duration.count());
        ++count_;
        sum_ns_ += static_cast<double>(ns);
        min_ns_ = std::min(min_ns_, ns);
        max_ns_ = std::max(max_ns_, ns);
        if (ns >= limit_ns)
            ++overflow_;
        else
            ++buckets_[index_of(ns)];
    }

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t overflow() const noexcept { return overflow_; }
    // 0 for an empty histogram, as are max(), mean() and every quantile.
    double min_ns() const noexcept { return count_ ? static_cast<double>(min_ns_) : 0.0; }
    double max_ns() const noexcept { return static_cast<double>(max_ns_); }
    double mean_ns() const noexcept { return count_ ? sum_ns_ / static_cast<double>(count_) : 0.0; }

    // The value of rank floor(q * count) (0-based, at most count - 1) in sorted order,
    // as a sorted vector of the samples gives it, within the precision above.
    double quantile_ns(double q) const noexcept
    {
        if (count_ == 0)
            return 0.0;
        const double wanted = std::clamp(q, 0.0, 1.0) * static_cast<double>(count_);
        const std::uint64_t rank = std::min(count_ - 1, static_cast<std::uint64_t>(wanted));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += buckets_[i];
            if (seen > rank)
                return std::clamp(midpoint_of(i), static_cast<double>(min_ns_), static_cast<double>(max_ns_));
        }
        return static_cast<double>(max_ns_); // among the overflowed values
    }

    // The bucket of a value below limit_ns, and the midpoint of a bucket (exposed for the test).
    static constexpr std::size_t index_of(std::uint64_t ns) noexcept
    {
        const auto width = static_cast<unsigned>(std::bit_width(ns)); // e + 1 for ns in [2^e, 2^(e+1))
        if (width <= sub_bucket_bits)
            return static_cast<std::size_t>(ns);
        const unsigned shift = width - 1 - sub_bucket_bits;
        // The octave's first bucket, then the offset inside it (ns >> shift is in [2^S, 2^(S+1))).
        return (std::size_t{shift + 1} << sub_bucket_bits) + static_cast<std::size_t>((ns >> shift) - sub_buckets);
    }
    static constexpr double midpoint_of(std::size_t index) noexcept
    {
        if (index < sub_buckets)
            return static_cast<double>(index);
        const auto shift = static_cast<unsigned>((index >> sub_bucket_bits) - 1);
        const std::uint64_t lower = (sub_buckets + (index & (sub_buckets - 1))) << shift;
        return static_cast<double>(lower) + static_cast<double>((std::uint64_t{1} << shift) - 1) / 2.0;
    }

private:
    static constexpr std::uint64_t sub_buckets = std::uint64_t{1} << sub_bucket_bits;

    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0, overflow_ = 0;
    std::uint64_t min_ns_ = std::numeric_limits<std::uint64_t>::max(), max_ns_ = 0;
    double sum_ns_ = 0;
};

} // namespace cartesia::detail

#endif
