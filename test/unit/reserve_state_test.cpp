// The token reserve's bookkeeping (src/reserve_state.hpp) over an injected clock.
#include "reserve_state.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace cd = cartesia::detail;
using namespace std::chrono_literals;
using state = cd::reserve_state<std::string>;
using kind = state::take_kind;
using minted = state::minted_kind;

namespace {

const cd::reserve_clock::time_point t0 = cd::reserve_clock::time_point{} + 1000s;

double no_jitter() noexcept
{
    return 0.0;
}

state reserve_of(std::size_t size, std::chrono::seconds max_age = 60s)
{
    return state({size, max_age}, &no_jitter);
}

// Completes `n` mints in flight at `now`, each usable for `life`; returns how many
// went to waiters.
std::size_t mint(state& r, std::size_t n, cd::reserve_clock::time_point now, cd::reserve_clock::duration life = 60s)
{
    std::size_t to_waiters = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::string token = "token-" + std::to_string(i);
        to_waiters += r.minted(token, now, now + life) == minted::to_waiter;
    }
    return to_waiters;
}

// The driver's side of expire() and close(): collects what they discard.
auto into(std::vector<std::string>& discarded)
{
    return [&discarded](std::string& token) noexcept { discarded.push_back(std::move(token)); };
}

std::string failed(state::failed_waiters f)
{
    return std::to_string(f.oldest) + " oldest, " + std::to_string(f.youngest) + " youngest";
}

} // namespace

BOOST_AUTO_TEST_CASE(it_fills_itself_to_its_size_with_at_most_size_mints_in_flight)
{
    auto r = reserve_of(4);
    BOOST_TEST(r.mints_due(t0) == 4u);
    BOOST_TEST(r.mints_due(t0) == 0u); // already in flight
    BOOST_TEST(mint(r, 4, t0 + 100ms) == 0u);
    BOOST_TEST(r.ready() == 4u);
    BOOST_TEST(r.mints_due(t0 + 100ms) == 0u);
}

BOOST_AUTO_TEST_CASE(a_take_gets_the_oldest_ready_token_and_it_is_replaced)
{
    auto r = reserve_of(2);
    r.mints_due(t0);
    std::string first = "first", second = "second";
    r.minted(first, t0, t0 + 60s);
    r.minted(second, t0 + 1s, t0 + 61s);
    const auto got = r.take(t0 + 2s);
    BOOST_TEST((got.kind == kind::ready));
    BOOST_TEST(*got.token == "first");
    BOOST_TEST(r.ready() == 1u);
    BOOST_TEST(r.mints_due(t0 + 2s) == 1u); // the one taken
}

BOOST_AUTO_TEST_CASE(each_token_is_handed_out_once)
{
    auto r = reserve_of(3);
    r.mints_due(t0);
    mint(r, 3, t0);
    std::vector<std::string> taken;
    for (int i = 0; i < 3; ++i) {
        auto got = r.take(t0 + 1s);
        BOOST_TEST_REQUIRE((got.kind == kind::ready));
        taken.push_back(*got.token);
    }
    BOOST_TEST((r.take(t0 + 1s).kind == kind::wait)); // none left
    std::sort(taken.begin(), taken.end());
    BOOST_TEST((std::adjacent_find(taken.begin(), taken.end()) == taken.end()));
}

BOOST_AUTO_TEST_CASE(waiting_takers_are_served_first_come_first_served_beyond_the_target)
{
    auto r = reserve_of(2);
    BOOST_TEST(r.mints_due(t0) == 2u);
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST(r.waiting() == 3u);
    // 2 wanted + 3 waiting, 2 in flight, at most 2 in flight: none more yet.
    BOOST_TEST(r.mints_due(t0) == 0u);
    BOOST_TEST(mint(r, 2, t0 + 1s) == 2u); // both to waiters
    BOOST_TEST(r.waiting() == 1u);
    BOOST_TEST(r.mints_due(t0 + 1s) == 2u); // one for the last waiter, one toward the target
    BOOST_TEST(mint(r, 2, t0 + 2s) == 1u);
    BOOST_TEST(r.ready() == 1u);
    BOOST_TEST(r.mints_due(t0 + 2s) == 1u); // the target is 2
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_is_owed_nothing)
{
    auto r = reserve_of(1);
    r.mints_due(t0);
    BOOST_TEST((r.take(t0).kind == kind::wait));
    r.leave();
    BOOST_TEST(r.waiting() == 0u);
    BOOST_TEST(mint(r, 1, t0 + 1s) == 0u); // kept, not handed to anyone
    BOOST_TEST(r.ready() == 1u);
}

BOOST_AUTO_TEST_CASE(a_token_at_its_end_is_discarded_never_handed_out)
{
    auto r = reserve_of(1, 60s);
    r.mints_due(t0);
    mint(r, 1, t0, 60s);
    BOOST_TEST((r.next_wakeup(t0) == t0 + 60s));
    std::vector<std::string> discarded;
    r.expire(t0 + 59s, into(discarded));
    BOOST_TEST(discarded.empty());
    r.expire(t0 + 60s, into(discarded));
    BOOST_TEST(discarded.size() == 1u);
    BOOST_TEST(r.ready() == 0u);
    BOOST_TEST((r.take(t0 + 60s).kind == kind::wait)); // not the discarded one
}

BOOST_AUTO_TEST_CASE(idle_it_mints_its_size_once_then_nothing_until_a_take)
{
    auto r = reserve_of(4, 60s);
    std::size_t mints = r.mints_due(t0);
    mint(r, 4, t0);
    std::vector<std::string> discarded;
    // An hour with no taker: the first tokens reach their end and are not replaced.
    for (auto now = t0; now < t0 + 3600s; now += 1s) {
        r.expire(now, into(discarded));
        const auto due = r.mints_due(now);
        mints += due;
        mint(r, due, now);
    }
    BOOST_TEST(mints == 4u);
    BOOST_TEST(discarded.size() == 4u);
    BOOST_TEST(r.target() == 0u);
    // A taker brings it back.
    BOOST_TEST((r.take(t0 + 3600s).kind == kind::wait));
    BOOST_TEST(r.mints_due(t0 + 3600s) == 4u); // its own, and the target again
}

BOOST_AUTO_TEST_CASE(a_token_discarded_after_a_take_during_its_life_is_replaced)
{
    auto r = reserve_of(2, 60s);
    r.mints_due(t0);
    mint(r, 2, t0);
    BOOST_TEST((r.take(t0 + 10s).kind == kind::ready)); // demand while the other lives
    BOOST_TEST(r.mints_due(t0 + 10s) == 1u);
    mint(r, 1, t0 + 10s);
    std::vector<std::string> discarded;
    r.expire(t0 + 60s, into(discarded)); // the t0 token
    BOOST_TEST(discarded.size() == 1u);
    BOOST_TEST(r.mints_due(t0 + 60s) == 1u); // replaced
}

BOOST_AUTO_TEST_CASE(a_failed_mint_fails_the_waiters_and_backs_off_then_probes_one_at_a_time)
{
    auto r = reserve_of(4);
    const auto first = r.mint_epoch();
    BOOST_TEST(r.mints_due(t0) == 4u);
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST((r.take(t0).kind == kind::wait));
    const boost::system::error_code down = boost::asio::error::connection_refused;
    // Its error is the first waiter's; the second waits for a mint still under way.
    BOOST_TEST(failed(r.mint_failed(down, t0 + 1s, first)) == "1 oldest, 0 youngest");
    BOOST_TEST(r.waiting() == 1u);
    // The other three, started with it, fail with it: one failure, not four steps.
    BOOST_TEST(failed(r.mint_failed(down, t0 + 1s, first)) == "1 oldest, 0 youngest");
    BOOST_TEST(r.waiting() == 0u);
    BOOST_TEST(r.mint_failed(down, t0 + 1s, first).total() == 0u);
    BOOST_TEST(r.mint_failed(down, t0 + 1s, first).total() == 0u);
    // While backing off (retry_delay's first step, no jitter: 0.5 s): no mint, and
    // a taker fails at once with the last error.
    BOOST_TEST(r.backing_off(t0 + 1200ms));
    BOOST_TEST(r.mints_due(t0 + 1200ms) == 0u);
    const auto refused = r.take(t0 + 1200ms);
    BOOST_TEST((refused.kind == kind::fail));
    BOOST_TEST(refused.error == down);
    BOOST_TEST((r.next_wakeup(t0 + 1200ms) == t0 + 1500ms));
    // Then one probe; its failure is the next step (1 s).
    const auto probe = r.mint_epoch();
    BOOST_TEST(r.mints_due(t0 + 1500ms) == 1u);
    BOOST_TEST(r.mints_due(t0 + 1500ms) == 0u);
    BOOST_TEST(r.mint_failed(down, t0 + 2s, probe).total() == 0u);
    BOOST_TEST(r.backing_off(t0 + 2900ms));
    BOOST_TEST(!r.backing_off(t0 + 3s));
    BOOST_TEST(r.mints_due(t0 + 3s) == 1u);
    BOOST_TEST(mint(r, 1, t0 + 3100ms) == 0u); // recovered
    BOOST_TEST(!r.backing_off(t0 + 3100ms));
    BOOST_TEST(r.mints_due(t0 + 3100ms) == 3u); // back to filling at full width
}

BOOST_AUTO_TEST_CASE(idle_facing_a_failing_api_it_stops_after_size_failed_mints)
{
    auto r = reserve_of(2);
    const boost::system::error_code down = boost::asio::error::connection_refused;
    std::size_t mints = 0;
    // A virtual hour without a take, every mint failing at once.
    for (auto now = t0; now < t0 + 3600s; now += 100ms) {
        const auto epoch = r.mint_epoch();
        const std::size_t due = r.mints_due(now);
        mints += due;
        for (std::size_t i = 0; i < due; ++i)
            r.mint_failed(down, now, epoch);
    }
    BOOST_TEST(mints == 2u); // its size, once
    BOOST_TEST(r.target() == 0u);
    BOOST_TEST((r.next_wakeup(t0 + 3600s) == cd::reserve_clock::time_point::max()));
    // A take brings the demand back: it waits for one probe.
    BOOST_TEST((r.take(t0 + 3600s).kind == kind::wait));
    BOOST_TEST(r.mints_due(t0 + 3600s) == 1u);
}

BOOST_AUTO_TEST_CASE(backing_off_a_taker_waits_for_a_mint_still_under_way)
{
    auto r = reserve_of(2);
    BOOST_TEST(r.mints_due(t0) == 2u);
    const boost::system::error_code down = boost::asio::error::connection_refused;
    BOOST_TEST(r.mint_failed(down, t0, 0).total() == 0u); // the first of the two fails
    BOOST_TEST(r.backing_off(t0));
    // The other was sent before the failure and may succeed: wait for it.
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST(mint(r, 1, t0 + 10ms) == 1u);
    BOOST_TEST(!r.backing_off(t0 + 10ms)); // it did: recovered
    // Had it failed too, the taker would have had its error, and the next one
    // nothing to wait for.
    auto failing = reserve_of(2);
    BOOST_TEST(failing.mints_due(t0) == 2u);
    BOOST_TEST(failing.mint_failed(down, t0, 0).total() == 0u);
    BOOST_TEST((failing.take(t0).kind == kind::wait));
    // One mint under way, owed to that taker: the next one has nothing to wait for.
    BOOST_TEST((failing.take(t0).kind == kind::fail));
    BOOST_TEST(failed(failing.mint_failed(down, t0, 0)) == "1 oldest, 0 youngest");
    BOOST_TEST((failing.take(t0).kind == kind::fail));
}

BOOST_AUTO_TEST_CASE(a_failed_mint_fails_the_oldest_waiter_and_those_no_mint_under_way_serves)
{
    auto r = reserve_of(2);
    BOOST_TEST(r.mints_due(t0) == 2u);
    for (int i = 0; i < 5; ++i)
        BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST(r.mints_due(t0) == 0u); // two in flight, the most there may be
    const boost::system::error_code down = boost::asio::error::connection_refused;
    // The first waiter gets the error; the next one waits for the other mint; the
    // three latest comers have none coming while the reserve backs off.
    BOOST_TEST(failed(r.mint_failed(down, t0 + 1s, 0)) == "1 oldest, 3 youngest");
    BOOST_TEST(r.waiting() == 1u);
    BOOST_TEST(mint(r, 1, t0 + 1100ms) == 1u); // that one succeeds: it is served
    BOOST_TEST(r.waiting() == 0u);
}

BOOST_AUTO_TEST_CASE(a_mint_of_an_earlier_period_failing_after_the_backoff_fails_only_the_oldest_waiter)
{
    auto r = reserve_of(2);
    const auto first = r.mint_epoch();
    BOOST_TEST(r.mints_due(t0) == 2u);
    const boost::system::error_code down = boost::asio::error::connection_refused;
    BOOST_TEST(r.mint_failed(down, t0, first).total() == 0u); // backing off until t0 + 0.5 s
    BOOST_TEST(!r.backing_off(t0 + 1s));
    for (int i = 0; i < 4; ++i)
        BOOST_TEST((r.take(t0 + 1s).kind == kind::wait)); // not backing off: they wait
    // The other mint of the first period, which hung, fails now: its error is the first
    // waiter's, and the others wait for the probe that starts at once.
    BOOST_TEST(failed(r.mint_failed(down, t0 + 1s, first)) == "1 oldest, 0 youngest");
    BOOST_TEST(r.waiting() == 3u);
    BOOST_TEST(r.mints_due(t0 + 1s) == 1u);
}

BOOST_AUTO_TEST_CASE(a_token_that_ends_before_an_older_one_goes_first)
{
    auto r = reserve_of(3);
    r.mints_due(t0);
    std::string old_one = "old", short_lived = "short", young = "young";
    r.minted(old_one, t0, t0 + 60s);
    r.minted(short_lived, t0 + 1s, t0 + 20s); // its own expiry comes first
    r.minted(young, t0 + 2s, t0 + 62s);
    BOOST_TEST((r.next_wakeup(t0 + 2s) == t0 + 20s));
    std::vector<std::string> discarded;
    r.expire(t0 + 20s, into(discarded)); // not only the front is looked at
    BOOST_TEST(discarded == std::vector<std::string>{"short"});
    BOOST_TEST(r.ready() == 2u);
    BOOST_TEST((r.next_wakeup(t0 + 20s) == t0 + 60s));
    // A take gets the one nearest its end.
    auto s = reserve_of(2);
    s.mints_due(t0);
    std::string a = "a", b = "b";
    s.minted(a, t0, t0 + 60s);
    s.minted(b, t0 + 1s, t0 + 30s);
    BOOST_TEST(*s.take(t0 + 2s).token == "b");
    BOOST_TEST(*s.take(t0 + 2s).token == "a");
}

BOOST_AUTO_TEST_CASE(a_token_with_too_little_life_left_stops_the_minting_ahead_even_when_a_taker_gets_it)
{
    auto r = reserve_of(4);
    BOOST_TEST((r.take(t0).kind == kind::wait)); // before anything was minted
    BOOST_TEST(r.mints_due(t0) == 4u);
    std::string brief = "brief";
    BOOST_TEST((r.minted(brief, t0, t0 + 500ms) == minted::to_waiter)); // less than a second left
    BOOST_TEST(r.target() == 0u);
    BOOST_TEST(r.mints_due(t0) == 0u);                                // no fifth mint to refill
    BOOST_TEST((r.minted(brief, t0, t0 + 500ms) == minted::discard)); // nor is the rest kept
    BOOST_TEST(r.ready() == 0u);
    // A second is enough: kept (minted already), and the next take brings the
    // target back.
    std::string second = "second";
    BOOST_TEST((r.minted(second, t0, t0 + 1s) == minted::kept));
    BOOST_TEST((r.take(t0).kind == kind::ready));
    BOOST_TEST(r.mints_due(t0) == 3u); // the one still in flight counts
}

BOOST_AUTO_TEST_CASE(a_token_is_usable_until_its_max_age_or_its_expiry_margin)
{
    // A long-lived token: max_age decides.
    BOOST_TEST((cd::usable_until(t0, 60s, std::optional<cd::reserve_clock::duration>(600s)) == t0 + 60s));
    // One that expires in a minute: 10 s before it.
    BOOST_TEST((cd::usable_until(t0, 60s, std::optional<cd::reserve_clock::duration>(60s)) == t0 + 50s));
    // A short-lived one: a quarter of its life before.
    BOOST_TEST((cd::usable_until(t0, 60s, std::optional<cd::reserve_clock::duration>(8s)) == t0 + 6s));
    // Expired already (a skewed clock): at once.
    BOOST_TEST((cd::usable_until(t0, 60s, std::optional<cd::reserve_clock::duration>(-1s)) <= t0));
    // An opaque token of unknown life.
    BOOST_TEST((cd::usable_until(t0, 60s, std::nullopt) == t0 + 60s));
}

BOOST_AUTO_TEST_CASE(close_discards_the_ready_tokens)
{
    auto r = reserve_of(2);
    r.mints_due(t0);
    mint(r, 2, t0);
    std::vector<std::string> discarded;
    BOOST_TEST(r.close(into(discarded)) == 0u);
    BOOST_TEST(discarded.size() == 2u);
    BOOST_TEST(r.ready() == 0u);
    BOOST_TEST(r.mints_due(t0) == 0u);
    const auto after = r.take(t0);
    BOOST_TEST((after.kind == kind::fail));
    BOOST_TEST(after.error == boost::asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(close_fails_the_waiters_and_mints_that_end_after_it_are_discarded)
{
    auto r = reserve_of(2);
    BOOST_TEST(r.mints_due(t0) == 2u);
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST((r.take(t0).kind == kind::wait));
    std::vector<std::string> discarded;
    BOOST_TEST(r.close(into(discarded)) == 2u);
    BOOST_TEST(r.waiting() == 0u);
    std::string late = "late";
    BOOST_TEST((r.minted(late, t0, t0 + 60s) == minted::discard));
    BOOST_TEST(r.mint_failed(boost::asio::error::operation_aborted, t0, r.mint_epoch()).total() == 0u);
    BOOST_TEST(r.in_flight() == 0u);
}

BOOST_AUTO_TEST_CASE(a_token_minted_past_its_end_is_discarded_and_not_minted_again_for_nobody)
{
    auto r = reserve_of(2);
    BOOST_TEST(r.mints_due(t0) == 2u);
    std::string stale = "stale";
    BOOST_TEST((r.minted(stale, t0, t0) == minted::discard));
    BOOST_TEST((r.minted(stale, t0, t0 - 1s) == minted::discard));
    BOOST_TEST(r.target() == 0u);
    BOOST_TEST(r.mints_due(t0) == 0u); // no loop of mints nobody wants
    BOOST_TEST((r.take(t0).kind == kind::wait));
    BOOST_TEST(r.mints_due(t0) == 1u); // the taker's own: none ahead, they would end as these did
    BOOST_TEST((r.minted(stale, t0, t0) == minted::to_waiter)); // a waiter takes the freshest there is
}

// A local clock ahead of the API's by more than a token's life: every token arrives
// past its end. Each take must then cost one call, as without a reserve, and not
// `size` more minted ahead to be discarded on arrival.
BOOST_AUTO_TEST_CASE(while_tokens_arrive_past_their_end_a_take_costs_one_mint)
{
    auto r = reserve_of(4);
    BOOST_TEST(r.mints_due(t0) == 4u);
    std::string dead = "dead";
    BOOST_TEST((r.minted(dead, t0, t0) == minted::discard));
    std::size_t mints = 4;
    auto now = t0;
    for (int take = 0; take < 100; ++take) {
        now += 1s;
        while (r.in_flight() > 0) // the rest of the first batch, dead too
            BOOST_TEST((r.minted(dead, now, now) == minted::discard));
        BOOST_TEST_REQUIRE((r.take(now).kind == kind::wait));
        mints += r.mints_due(now);
        BOOST_TEST_REQUIRE((r.minted(dead, now, now) == minted::to_waiter));
        mints += r.mints_due(now);
    }
    BOOST_TEST(mints == 4u + 100u);
    // The clock is right again: the next waiter's token has time left, and the
    // take after it brings the minting ahead back.
    BOOST_TEST((r.take(now).kind == kind::wait));
    BOOST_TEST(r.mints_due(now) == 1u);
    std::string fresh = "fresh";
    BOOST_TEST((r.minted(fresh, now, now + 60s) == minted::to_waiter));
    BOOST_TEST(r.mints_due(now) == 0u);
    BOOST_TEST((r.take(now).kind == kind::wait));
    BOOST_TEST(r.mints_due(now) == 4u); // at most `size` at once: the taker's and 3 ahead
}
