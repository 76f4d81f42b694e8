// The retry budget (src/retry_budget.hpp) over an injected clock.
#include "retry_budget.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>

namespace cd = cartesia::detail;
using clock_type = cd::retry_budget::clock;

namespace {

// `seconds` after an arbitrary origin, 1000 s into the clock.
clock_type::time_point at(double seconds)
{
    return clock_type::time_point(
        std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1000.0 + seconds)));
}

// The defaults of client_config.
cd::retry_budget default_budget()
{
    return {0.2, 10};
}

// A burst of `count` requests started between `start` and `start` + 0.2 s, against
// an API that fails every attempt, each request retried up to `max_retries` times
// after 0.45 s, then 0.9 s more: the API requests it costs in all.
unsigned burst_against_a_down_api(cd::retry_budget& budget, double start, unsigned count, unsigned max_retries)
{
    unsigned api_requests = 0;
    for (unsigned i = 0; i < count; ++i) {
        budget.on_request(at(start + 0.2 * i / count));
        ++api_requests;
    }
    unsigned retrying = count; // the requests whose last attempt has just failed
    double when = start + 0.45;
    for (unsigned retry = 0; retry < max_retries; ++retry) {
        unsigned allowed = 0;
        for (unsigned i = 0; i < retrying; ++i)
            if (budget.try_spend_retry(at(when)))
                ++allowed;
        api_requests += allowed;
        retrying = allowed;
        when += 0.9;
    }
    return api_requests;
}

} // namespace

BOOST_AUTO_TEST_SUITE(retry_budget)

BOOST_AUTO_TEST_CASE(a_burst_of_200_against_a_down_api_costs_250_requests)
{
    auto budget = default_budget();
    // 0.2 * 200 + 10 * 1 second with requests = 50 retries, all on the first round.
    BOOST_TEST(burst_against_a_down_api(budget, 0.0, 200, 2) == 250u);
    BOOST_TEST(budget.requests_in_window() == 200u);
    BOOST_TEST(budget.retries_in_window() == 50u);

    // Straddling two seconds, the burst has two seconds of minimum: 40 + 20.
    auto straddling = default_budget();
    BOOST_TEST(burst_against_a_down_api(straddling, 0.9, 200, 2) == 260u);

    // Without a budget it would be 600; with max_retries 10, still 250.
    auto more_retries = default_budget();
    BOOST_TEST(burst_against_a_down_api(more_retries, 0.0, 200, 10) == 250u);
}

BOOST_AUTO_TEST_CASE(a_steady_20_percent_failure_rate_is_fully_retried)
{
    auto budget = default_budget();
    unsigned refused = 0;
    // 1000 requests a second for a minute, one in five failing once and retried
    // at once: 2000 retries a window against 2000 + 100.
    for (int ms = 0; ms < 60'000; ++ms) {
        budget.on_request(at(ms / 1000.0));
        if (ms % 5 == 4 && !budget.try_spend_retry(at(ms / 1000.0)))
            ++refused;
    }
    BOOST_TEST(refused == 0u);
    BOOST_TEST(budget.requests_in_window() == 10'000u);
    BOOST_TEST(budget.retries_in_window() == 2'000u);

    // One in four failing is beyond it: the budget cuts the retries to about 21%.
    auto strained = default_budget();
    unsigned allowed = 0;
    for (int ms = 0; ms < 60'000; ++ms) {
        strained.on_request(at(ms / 1000.0));
        if (ms % 4 == 3 && strained.try_spend_retry(at(ms / 1000.0)))
            ++allowed;
    }
    BOOST_TEST(allowed < 15'000u);
    BOOST_TEST(allowed > 12'000u);
    BOOST_TEST(strained.retries_in_window() <= 2'100u);
}

BOOST_AUTO_TEST_CASE(the_budget_recovers_when_the_window_slides)
{
    auto budget = default_budget();
    BOOST_TEST(burst_against_a_down_api(budget, 0.0, 200, 2) == 250u);
    BOOST_TEST(!budget.try_spend_retry(at(5.0)));
    BOOST_TEST(!budget.try_spend_retry(at(9.99))); // the burst's second is still in the window
    // At 10 s its second leaves: no request, no retry in the window, one second's minimum.
    for (int i = 0; i < 10; ++i)
        BOOST_TEST(budget.try_spend_retry(at(10.0)));
    BOOST_TEST(!budget.try_spend_retry(at(10.5)));
    BOOST_TEST(budget.requests_in_window() == 0u);
    // A long gap empties everything at once.
    BOOST_TEST(burst_against_a_down_api(budget, 3600.0, 200, 2) == 250u);
}

BOOST_AUTO_TEST_CASE(the_minimum_lets_a_low_traffic_client_retry)
{
    auto budget = default_budget();
    unsigned refused = 0;
    // A request every 3 s, each failing twice then succeeding: the ratio allows
    // nothing (0.2 * 4 requests), the minimum all of it.
    for (int i = 0; i < 100; ++i) {
        budget.on_request(at(3.0 * i));
        refused += budget.try_spend_retry(at(3.0 * i + 0.45)) ? 0U : 1U;
        refused += budget.try_spend_retry(at(3.0 * i + 1.35)) ? 0U : 1U;
    }
    BOOST_TEST(refused == 0u);

    // A lone request whose attempt timed out after 60 s, its start out of the window.
    auto lone = default_budget();
    lone.on_request(at(0.0));
    BOOST_TEST(lone.try_spend_retry(at(60.0)));
    BOOST_TEST(lone.try_spend_retry(at(120.5)));
}

BOOST_AUTO_TEST_CASE(ratio_zero_leaves_the_minimum_and_no_minimum_leaves_the_ratio)
{
    cd::retry_budget minimum_only(0.0, 10);
    BOOST_TEST(burst_against_a_down_api(minimum_only, 0.0, 200, 2) == 210u);

    cd::retry_budget nothing(0.0, 0);
    BOOST_TEST(burst_against_a_down_api(nothing, 0.0, 200, 2) == 200u);
    BOOST_TEST(!nothing.try_spend_retry(at(100.0)));

    cd::retry_budget ratio_only(0.2, 0);
    BOOST_TEST(burst_against_a_down_api(ratio_only, 0.0, 200, 2) == 240u);
    cd::retry_budget everything(1.0, 0);
    BOOST_TEST(burst_against_a_down_api(everything, 0.0, 200, 2) == 400u); // one retry per request in the window
}

BOOST_AUTO_TEST_CASE(large_counts_and_extreme_times_do_not_overflow)
{
    cd::retry_budget budget(1.0, 0);
    constexpr unsigned count = 2'000'000;
    for (unsigned i = 0; i < count; ++i)
        budget.on_request(at(0.5));
    unsigned allowed = 0;
    for (unsigned i = 0; i < count + 10; ++i)
        allowed += budget.try_spend_retry(at(0.5)) ? 1U : 0U;
    BOOST_TEST(allowed == count);
    BOOST_TEST(budget.requests_in_window() == count);
    BOOST_TEST(budget.retries_in_window() == count);

    // The largest minimum: everything goes, and the arithmetic stays exact.
    cd::retry_budget generous(1.0, std::numeric_limits<unsigned>::max());
    unsigned granted = 0;
    for (unsigned i = 0; i < count; ++i)
        granted += generous.try_spend_retry(at(0.5)) ? 1U : 0U;
    BOOST_TEST(granted == count);
    BOOST_TEST(generous.retries_in_window() == count);

    // The ends of the clock, and a time going backwards (counted in the current second).
    cd::retry_budget ends(0.2, 10);
    ends.on_request(clock_type::time_point::min());
    BOOST_TEST(ends.try_spend_retry(clock_type::time_point::min()));
    ends.on_request(clock_type::time_point::max());
    BOOST_TEST(ends.requests_in_window() == 1u);
    BOOST_TEST(ends.retries_in_window() == 0u);
    ends.on_request(clock_type::time_point::min());
    BOOST_TEST(ends.requests_in_window() == 2u);
    for (int i = 0; i < 10; ++i)
        BOOST_TEST(ends.try_spend_retry(clock_type::time_point::max()));
    BOOST_TEST(!ends.try_spend_retry(clock_type::time_point::max()));
}

BOOST_AUTO_TEST_SUITE_END()
