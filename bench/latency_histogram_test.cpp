// bench_latency_histogram: the histogram's quantiles against those of the sorted
// samples (as cartesia-bench computed them before), within its stated precision;
// its edges: empty, out of range, negative, one value. Exits non-zero on a failure.
#include "latency_histogram.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

namespace {

using cartesia_bench::latency_histogram;
using std::chrono::nanoseconds;

int failures = 0;

void check(bool ok, const char* what, double got = 0, double expected = 0)
{
    if (!ok) {
        ++failures;
        std::printf("FAIL %s: got %.3f, expected %.3f\n", what, got, expected);
    }
}

// Within the stated precision: 2^-8 of the value, relative.
bool close_to(double got, double expected)
{
    return std::abs(got - expected) <= expected / 256.0;
}

// The quantile as a sorted vector gives it: rank floor(q * n), at most n - 1.
double exact_quantile(const std::vector<std::uint64_t>& sorted, double q)
{
    const auto rank = std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())));
    return static_cast<double>(sorted[rank]);
}

void check_against_sorted(const char* name, std::vector<std::uint64_t> samples)
{
    auto h = std::make_unique<latency_histogram>();
    double sum = 0;
    for (auto ns : samples) {
        h->record(nanoseconds(ns));
        sum += static_cast<double>(ns);
    }
    std::sort(samples.begin(), samples.end());
    for (double q : {0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0}) {
        const double got = h->quantile_ns(q), expected = exact_quantile(samples, q);
        if (!close_to(got, expected)) {
            std::printf("  %s, q = %g\n", name, q);
            check(false, "quantile", got, expected);
        }
    }
    check(h->count() == samples.size(), "count");
    check(h->overflow() == 0, "no overflow");
    check(h->min_ns() == static_cast<double>(samples.front()), "exact min", h->min_ns(),
          static_cast<double>(samples.front()));
    check(h->max_ns() == static_cast<double>(samples.back()), "exact max", h->max_ns(),
          static_cast<double>(samples.back()));
    const double mean = sum / static_cast<double>(samples.size());
    check(std::abs(h->mean_ns() - mean) <= mean * 1e-12, "mean", h->mean_ns(), mean);
}

} // namespace

int main()
{
    // Every bucket: its index is in range and increases with the value, and its
    // midpoint is within the precision of every value that falls into it.
    {
        std::size_t previous = 0;
        bool monotonic = true, precise = true;
        for (std::uint64_t ns = 0; ns < latency_histogram::limit_ns; ns = ns < 4096 ? ns + 1 : ns + ns / 1000 + 1) {
            const std::size_t index = latency_histogram::index_of(ns);
            monotonic = monotonic && index >= previous && index < latency_histogram::bucket_count;
            precise = precise && close_to(latency_histogram::midpoint_of(index), static_cast<double>(ns));
            if (ns < 256)
                precise = precise && latency_histogram::midpoint_of(index) == static_cast<double>(ns);
            previous = index;
        }
        check(monotonic, "bucket index increases and stays in range");
        check(precise, "every bucket's midpoint within 2^-8 of its values");
        check(latency_histogram::index_of(latency_histogram::limit_ns - 1) == latency_histogram::bucket_count - 1,
              "the last value in range has the last bucket");
    }

    // Known distributions, against the sorted samples.
    {
        std::vector<std::uint64_t> uniform; // 1 us to 10 ms, every 100 ns
        for (std::uint64_t ns = 1000; ns <= 10'000'000; ns += 100)
            uniform.push_back(ns);
        check_against_sorted("uniform 1 us..10 ms", uniform);

        std::mt19937_64 random(13);
        std::vector<std::uint64_t> log_uniform; // 1 us to 100 s, uniform in log
        std::uniform_real_distribution<double> exponent(3.0, 11.0);
        log_uniform.reserve(200'000);
        for (int i = 0; i < 200'000; ++i)
            log_uniform.push_back(static_cast<std::uint64_t>(std::pow(10.0, exponent(random))));
        check_against_sorted("log-uniform 1 us..100 s", log_uniform);

        std::vector<std::uint64_t> tail; // a latency-like shape: ~300 us, 1% at ~40 ms
        std::lognormal_distribution<double> body(std::log(300'000.0), 0.3);
        tail.reserve(100'000);
        for (int i = 0; i < 100'000; ++i)
            tail.push_back(static_cast<std::uint64_t>(i % 100 == 0 ? 40'000'000.0 + i : body(random)));
        check_against_sorted("lognormal with a 1% tail", tail);
    }

    // Empty: every figure is 0.
    {
        latency_histogram h;
        check(h.count() == 0 && h.overflow() == 0, "empty count");
        check(h.quantile_ns(0.5) == 0 && h.quantile_ns(0.0) == 0 && h.quantile_ns(1.0) == 0, "empty quantiles");
        check(h.min_ns() == 0 && h.max_ns() == 0 && h.mean_ns() == 0, "empty min, max, mean");
    }

    // One value: every quantile is that value exactly (clamped to min and max).
    {
        latency_histogram h;
        h.record(nanoseconds(123'457'000));
        for (double q : {0.0, 0.5, 0.999, 1.0})
            check(h.quantile_ns(q) == 123'457'000.0, "one value", h.quantile_ns(q), 123'457'000.0);
    }

    // Out of range: counted in overflow() and count(), exact in max() and mean(); a
    // quantile among them is max(); the quantiles below them are unaffected.
    {
        latency_histogram h;
        for (int i = 0; i < 98; ++i)
            h.record(std::chrono::microseconds(500));
        h.record(std::chrono::seconds(200));
        h.record(std::chrono::seconds(150));
        check(h.count() == 100 && h.overflow() == 2, "overflow counted");
        check(h.max_ns() == 200e9, "exact max beyond the range", h.max_ns(), 200e9);
        check(h.quantile_ns(0.99) == 200e9 && h.quantile_ns(1.0) == 200e9, "a quantile among the overflow is max");
        check(close_to(h.quantile_ns(0.97), 500'000.0), "quantiles below the overflow", h.quantile_ns(0.97), 500'000.0);
        check(std::abs(h.mean_ns() - (98 * 500'000.0 + 350e9) / 100) < 1, "mean with the overflow");
    }

    // A negative duration is recorded as 0.
    {
        latency_histogram h;
        h.record(nanoseconds(-5));
        check(h.count() == 1 && h.min_ns() == 0 && h.max_ns() == 0 && h.quantile_ns(0.5) == 0, "negative as 0");
    }

    if (failures == 0)
        std::printf("bench_latency_histogram: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
