// The pool's bookkeeping (pool_state.hpp) and the deadline list, stepped without
// I/O and with an injected clock. Compiled with BOOST_ENABLE_ASSERT_HANDLER (see
// request_fsm_test.cpp): a transition the pool must never make is seen to be refused.
#include "deadline_list.hpp"
#include "pool_state.hpp"

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <vector>

namespace {

namespace cd = cartesia::detail;
using namespace std::chrono_literals;
using cd::connection_status;

// The pool holds no real connection here: a name will do.
using pool = cd::pool_state<int>;
using waiter = cd::pool_waiter<int>;
using acquire_kind = pool::acquire_kind;
using release_kind = pool::release_kind;

const cd::pool_clock::time_point t0{std::chrono::hours(1)};
constexpr std::chrono::milliseconds idle_timeout = 30s;

// Opens a connection for the queue and hands it to the head waiter.
pool::node& open_for(pool& p, waiter& w)
{
    const auto answer = p.acquire(w);
    BOOST_REQUIRE((answer.kind == acquire_kind::wait));
    BOOST_REQUIRE(answer.open != nullptr);
    BOOST_TEST((answer.open->status == connection_status::opening));
    const auto opened = p.opened(*answer.open, {}, t0, idle_timeout);
    BOOST_REQUIRE(opened.to == &w);
    BOOST_REQUIRE(w.handed == answer.open);
    return *answer.open;
}

} // namespace

BOOST_AUTO_TEST_SUITE(pool_fsm)

BOOST_AUTO_TEST_CASE(the_first_request_opens_a_connection_and_waits_for_it)
{
    pool p(2);
    waiter w;
    pool::node& c = open_for(p, w);
    BOOST_TEST((c.status == connection_status::in_use));
    BOOST_TEST(!w.queued());
    BOOST_TEST(p.size() == 1u);
    BOOST_TEST(p.connections_opened() == 1u);
}

BOOST_AUTO_TEST_CASE(a_released_connection_is_kept_idle_then_reused_newest_first)
{
    pool p(2);
    waiter a, b;
    pool::node& first = open_for(p, a);
    pool::node& second = open_for(p, b);
    BOOST_TEST((p.release(first, true, t0, idle_timeout).kind == release_kind::kept_idle));
    BOOST_TEST((p.release(second, true, t0 + 1s, idle_timeout).kind == release_kind::kept_idle));
    BOOST_TEST(p.idle_count() == 2u);
    waiter c;
    const auto answer = p.acquire(c);
    BOOST_TEST((answer.kind == acquire_kind::use));
    BOOST_TEST(answer.connection == &second); // its TLS state is warmest
    BOOST_TEST((second.status == connection_status::in_use));
}

BOOST_AUTO_TEST_CASE(a_full_pool_queues_requests_fifo_and_hands_released_connections_over)
{
    pool p(1);
    waiter a, b, c;
    pool::node& only = open_for(p, a);
    auto queued_b = p.acquire(b);
    auto queued_c = p.acquire(c);
    BOOST_TEST((queued_b.kind == acquire_kind::wait && queued_b.open == nullptr)); // no room to open
    BOOST_TEST((queued_c.kind == acquire_kind::wait && queued_c.open == nullptr));
    auto released = p.release(only, true, t0, idle_timeout);
    BOOST_TEST((released.kind == release_kind::handed_over));
    BOOST_TEST(released.to == &b); // first come, first served
    BOOST_TEST(b.handed == &only);
    BOOST_TEST(c.queued());
    released = p.release(only, true, t0, idle_timeout);
    BOOST_TEST(released.to == &c);
    BOOST_TEST((p.release(only, true, t0, idle_timeout).kind == release_kind::kept_idle));
}

BOOST_AUTO_TEST_CASE(a_newcomer_does_not_jump_the_queue)
{
    pool p(1);
    waiter a, b;
    pool::node& only = open_for(p, a);
    p.acquire(b);
    p.release(only, true, t0, idle_timeout); // to b
    waiter newcomer;
    BOOST_TEST((p.acquire(newcomer).kind == acquire_kind::wait));
}

BOOST_AUTO_TEST_CASE(connections_opening_never_outnumber_waiters)
{
    pool p(8);
    waiter a, b;
    const auto first = p.acquire(a);
    const auto second = p.acquire(b);
    BOOST_TEST(first.open != nullptr);
    BOOST_TEST(second.open != nullptr);
    BOOST_TEST(p.opening_count() == 2u);
    // a leaves (its deadline): the connection opened for it goes to b, the other idles.
    p.leave(a);
    auto opened = p.opened(*first.open, {}, t0, idle_timeout);
    BOOST_TEST(opened.to == &b);
    opened = p.opened(*second.open, {}, t0, idle_timeout);
    BOOST_TEST(opened.to == nullptr);
    BOOST_TEST((second.open->status == connection_status::idle));
    BOOST_TEST(p.opening_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_opening_fails_the_head_waiter_and_opens_again_for_the_rest)
{
    pool p(1);
    waiter a, b;
    const auto answer = p.acquire(a);
    p.acquire(b);
    const boost::system::error_code refused = boost::asio::error::connection_refused;
    const auto opened = p.opened(*answer.open, refused, t0, idle_timeout);
    BOOST_TEST(opened.to == &a);
    BOOST_TEST(a.failure == refused);
    BOOST_TEST(a.handed == nullptr);
    BOOST_TEST((answer.open->status == connection_status::closing));
    pool::node* replacement = p.remove(*answer.open, t0);
    BOOST_TEST(replacement != nullptr); // b still waits, and the pool has room again
    BOOST_TEST(p.size() == 1u);
    BOOST_TEST(p.opened(*replacement, {}, t0, idle_timeout).to == &b);
}

BOOST_AUTO_TEST_CASE(a_connection_the_server_will_not_keep_is_closed_and_replaced_for_waiters)
{
    pool p(1);
    waiter a, b;
    pool::node& only = open_for(p, a);
    p.acquire(b);
    const auto released = p.release(only, /*reusable=*/false, t0, idle_timeout);
    BOOST_TEST((released.kind == release_kind::close));
    BOOST_TEST((only.status == connection_status::closing));
    BOOST_TEST(b.queued());
    pool::node* replacement = p.remove(only, t0);
    BOOST_REQUIRE(replacement != nullptr);
    BOOST_TEST(p.opened(*replacement, {}, t0, idle_timeout).to == &b);
}

BOOST_AUTO_TEST_CASE(idle_connections_expire_oldest_first_with_the_injected_clock)
{
    pool p(3);
    waiter a, b, c;
    pool::node& first = open_for(p, a);
    pool::node& second = open_for(p, b);
    pool::node& third = open_for(p, c);
    p.release(first, true, t0, idle_timeout);
    p.release(second, true, t0 + 10s, idle_timeout);
    p.release(third, true, t0 + 20s, idle_timeout);
    BOOST_TEST((p.next_maintenance() == t0 + idle_timeout));
    BOOST_TEST(p.expire_idle(t0 + idle_timeout - 1ms).empty());
    const auto expired = p.expire_idle(t0 + 10s + idle_timeout);
    BOOST_TEST(expired.size() == 2u);
    BOOST_TEST(expired[0] == &first);
    BOOST_TEST(expired[1] == &second);
    BOOST_TEST((first.status == connection_status::closing));
    BOOST_TEST((p.next_maintenance() == t0 + 20s + idle_timeout));
    p.remove(first, t0);
    p.remove(second, t0);
    BOOST_TEST(p.size() == 1u);
}

// A connection used again starts a new idle period; the other keeps its own.
BOOST_AUTO_TEST_CASE(a_reused_connection_gets_a_new_idle_period)
{
    pool p(2);
    waiter a, b, c;
    pool::node& first = open_for(p, a);
    pool::node& second = open_for(p, b);
    p.release(first, true, t0, idle_timeout);
    p.release(second, true, t0, idle_timeout);
    const auto reuse = p.acquire(c);
    BOOST_REQUIRE((reuse.kind == acquire_kind::use));
    pool::node& reused = *reuse.connection;
    pool::node& other = &reused == &first ? second : first;
    BOOST_TEST((p.next_maintenance() == t0 + idle_timeout)); // the other's
    p.release(reused, true, t0 + 150ms, idle_timeout);
    const auto expired = p.expire_idle(t0 + idle_timeout);
    BOOST_TEST_REQUIRE(expired.size() == 1u);
    BOOST_TEST(expired[0] == &other);
    BOOST_TEST((reused.status == connection_status::idle));
    BOOST_TEST((p.next_maintenance() == t0 + 150ms + idle_timeout));
    BOOST_TEST(p.expire_idle(t0 + 150ms + idle_timeout - 1ms).empty());
    BOOST_TEST(p.expire_idle(t0 + 150ms + idle_timeout).size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_idle_timeout_of_centuries_saturates)
{
    pool p(1);
    waiter a;
    pool::node& only = open_for(p, a);
    p.release(only, true, t0, std::chrono::milliseconds::max());
    BOOST_TEST((only.idle_until == cd::pool_clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(close_with_connections_and_requests_in_every_status)
{
    pool p(4);
    waiter holder, first_user, borrower, waiting;
    pool::node& busy = open_for(p, holder);       // in use
    pool::node& reused = open_for(p, first_user); // in use, then idle
    p.release(reused, true, t0, idle_timeout);
    BOOST_TEST((p.acquire(borrower).kind == acquire_kind::use)); // in use again, from idle
    const auto waits = p.acquire(waiting);                       // none idle: one opens for it
    BOOST_REQUIRE(waits.open != nullptr);

    const auto answer = p.close();
    BOOST_TEST(p.closed());
    BOOST_TEST(answer.close_now.empty()); // none idle at this moment
    BOOST_TEST(answer.abort_opening.size() == 1u);
    BOOST_TEST(answer.woken.size() == 1u);
    BOOST_TEST(answer.woken[0] == &waiting);
    BOOST_TEST(waiting.failure == boost::asio::error::operation_aborted);
    // The opening connection's task ends: close it, open nothing new.
    const auto opened = p.opened(*waits.open, {}, t0, idle_timeout);
    BOOST_TEST(opened.close_it);
    BOOST_TEST(p.remove(*waits.open, t0) == nullptr);
    // In-use connections close when they come back.
    BOOST_TEST((p.release(busy, true, t0, idle_timeout).kind == release_kind::close));
    BOOST_TEST((p.release(reused, true, t0, idle_timeout).kind == release_kind::close));
}

BOOST_AUTO_TEST_CASE(close_closes_idle_connections_now)
{
    pool p(2);
    waiter a;
    pool::node& c = open_for(p, a);
    p.release(c, true, t0, idle_timeout);
    const auto answer = p.close();
    BOOST_TEST(answer.close_now.size() == 1u);
    BOOST_TEST((c.status == connection_status::closing));
    BOOST_TEST(p.idle_count() == 0u);
}

BOOST_AUTO_TEST_CASE(transitions_outside_the_diagram_are_refused)
{
    pool p(1);
    waiter a;
    pool::node& c = open_for(p, a);
    p.release(c, true, t0, idle_timeout);
    // Releasing a connection that is not lent: the driver would be broken.
    BOOST_CHECK_THROW(p.release(c, true, t0, idle_timeout), std::logic_error);
    // Removing a connection that is not closing.
    BOOST_CHECK_THROW(p.remove(c, t0), std::logic_error);
}

BOOST_AUTO_TEST_CASE(a_waiter_that_leaves_is_handed_nothing)
{
    pool p(1);
    waiter a, leaving, staying;
    pool::node& only = open_for(p, a);
    p.acquire(leaving);
    p.acquire(staying);
    p.leave(leaving);
    BOOST_TEST(!leaving.queued());
    BOOST_CHECK_THROW(p.leave(leaving), std::logic_error); // twice is a bug
    const auto released = p.release(only, true, t0, idle_timeout);
    BOOST_TEST(released.to == &staying);
    BOOST_TEST(leaving.handed == nullptr);
}

BOOST_AUTO_TEST_CASE(the_opening_rule_counts_waiters_in_constant_time)
{
    // A burst with room to grow: one opening per waiter, never more, and leaving
    // waiters are no longer counted.
    pool p(64);
    std::vector<waiter> burst(40);
    std::size_t openings = 0;
    for (auto& w : burst)
        openings += p.acquire(w).open != nullptr ? 1u : 0u;
    BOOST_TEST(openings == 40u);
    for (std::size_t i = 0; i < 30; ++i)
        p.leave(burst[i]);
    waiter late;
    BOOST_TEST(p.acquire(late).open == nullptr); // 40 opening for 11 waiters already
    for (std::size_t i = 30; i < 40; ++i)
        p.leave(burst[i]);
    p.leave(late);
}

// --- the warm minimum -----------------------------------------------------------

// Opens what the minimum lacks, and reports each opening a success with nobody waiting.
std::vector<pool::node*> warm_up(pool& p, cd::pool_clock::time_point now)
{
    std::vector<pool::node*> opened;
    while (pool::node* fresh = p.open_for_minimum(now))
        opened.push_back(fresh);
    for (pool::node* c : opened) {
        const auto answer = p.opened(*c, {}, now, idle_timeout);
        BOOST_TEST(answer.to == nullptr);
        BOOST_TEST(!answer.close_it);
    }
    return opened;
}

BOOST_AUTO_TEST_CASE(a_warm_pool_opens_its_minimum_for_nobody_and_lends_it)
{
    pool p(4, 2);
    BOOST_TEST(warm_up(p, t0).size() == 2u);
    BOOST_TEST(p.open_for_minimum(t0) == nullptr); // two are open
    BOOST_TEST(p.idle_count() == 2u);
    waiter w;
    const auto answer = p.acquire(w);
    BOOST_TEST((answer.kind == acquire_kind::use)); // no opening: the first token costs one round trip
    BOOST_TEST(p.connections_opened() == 2u);
}

BOOST_AUTO_TEST_CASE(connections_opening_count_toward_the_minimum)
{
    pool p(4, 3);
    pool::node* first = p.open_for_minimum(t0);
    pool::node* second = p.open_for_minimum(t0);
    pool::node* third = p.open_for_minimum(t0);
    BOOST_TEST((first && second && third));
    BOOST_TEST(p.open_for_minimum(t0) == nullptr);
    BOOST_TEST(p.live_count() == 3u);
    // A request arriving meanwhile waits for one of them, and no fourth opens for it.
    waiter w;
    const auto answer = p.acquire(w);
    BOOST_TEST((answer.kind == acquire_kind::wait && answer.open == nullptr));
    BOOST_TEST(p.opened(*first, {}, t0, idle_timeout).to == &w);
}

BOOST_AUTO_TEST_CASE(the_idle_timeout_closes_only_connections_above_the_minimum)
{
    pool p(4, 1);
    warm_up(p, t0);
    waiter a, b;
    // A burst takes the warm one and opens one more.
    pool::node& warm = *p.acquire(a).connection;
    const auto waits = p.acquire(b);
    BOOST_REQUIRE(waits.open != nullptr);
    pool::node& extra = *waits.open;
    p.opened(extra, {}, t0, idle_timeout);
    p.release(warm, true, t0, idle_timeout);
    p.release(extra, true, t0 + 1s, idle_timeout);
    BOOST_TEST((p.next_maintenance() == t0 + idle_timeout)); // the oldest, a surplus one
    const auto expired = p.expire_idle(t0 + 1s + idle_timeout);
    // Both are past their idle time; the oldest goes, the other is the minimum.
    BOOST_TEST_REQUIRE(expired.size() == 1u);
    BOOST_TEST(expired[0] == &warm);
    BOOST_TEST((extra.status == connection_status::idle));
    BOOST_TEST((p.next_maintenance() == cd::pool_clock::time_point::max())); // nothing due: it stays
    BOOST_TEST(p.remove(warm, t0 + 1s + idle_timeout) == nullptr);           // no replacement: the minimum is there
    BOOST_TEST(p.expire_idle(t0 + 24h).empty());
}

BOOST_AUTO_TEST_CASE(a_warm_connection_that_goes_is_replaced)
{
    pool p(4, 2);
    const auto warm = warm_up(p, t0);
    // The server closed one after a while (the driver's watch saw it).
    p.retire(*warm[0], t0 + 30s);
    BOOST_TEST(p.live_count() == 1u);
    pool::node* replacement = p.remove(*warm[0], t0 + 30s);
    BOOST_TEST_REQUIRE(replacement != nullptr);
    BOOST_TEST((replacement->status == connection_status::opening));
    // One that a request found unusable, too.
    waiter w;
    pool::node& lent = *p.acquire(w).connection;
    BOOST_TEST((p.release(lent, /*reusable=*/false, t0, idle_timeout).kind == release_kind::close));
    BOOST_TEST(p.remove(lent, t0) != nullptr);
}

BOOST_AUTO_TEST_CASE(failed_openings_back_off_and_come_back_one_probe_at_a_time)
{
    const auto refused = make_error_code(boost::asio::error::connection_refused);
    pool p(8, 3, []() noexcept { return 0.0; }); // the longest delays: 500 ms, 1 s, 2 s, ...
    std::vector<pool::node*> first;
    while (pool::node* fresh = p.open_for_minimum(t0))
        first.push_back(fresh);
    BOOST_TEST(first.size() == 3u);
    for (pool::node* c : first) {
        p.opened(*c, refused, t0, idle_timeout);
        // No replacement at once: the API is down, and a storm would not help it.
        BOOST_TEST(p.remove(*c, t0) == nullptr);
    }
    BOOST_TEST(p.failed_openings() == 3u);
    // The third failure set the backoff: retry_delay(2) = 2 s.
    BOOST_TEST((p.next_maintenance() == t0 + 2s));
    BOOST_TEST(p.open_for_minimum(t0 + 2s - 1ms) == nullptr);
    pool::node* probe = p.open_for_minimum(t0 + 2s);
    BOOST_TEST_REQUIRE(probe != nullptr);
    BOOST_TEST(p.open_for_minimum(t0 + 2s) == nullptr);                      // one probe at a time
    BOOST_TEST((p.next_maintenance() == cd::pool_clock::time_point::max())); // the probe reports
    p.opened(*probe, refused, t0 + 2s, idle_timeout);
    BOOST_TEST(p.remove(*probe, t0 + 2s) == nullptr);
    BOOST_TEST((p.next_maintenance() == t0 + 2s + 4s)); // retry_delay(3) = 4 s
    // The API is back: the probe succeeds, and the rest open at once.
    probe = p.open_for_minimum(t0 + 6s);
    BOOST_REQUIRE(probe != nullptr);
    p.opened(*probe, {}, t0 + 6s, idle_timeout);
    BOOST_TEST(p.failed_openings() == 0u);
    BOOST_TEST(warm_up(p, t0 + 6s).size() == 2u);
    BOOST_TEST(p.live_count() == 3u);
}

BOOST_AUTO_TEST_CASE(a_connection_that_dies_unused_as_it_opens_counts_as_a_failed_opening)
{
    // A server that completes the handshake and hangs up at once must see the backoff.
    pool p(4, 1, []() noexcept { return 0.0; });
    pool::node& first = *warm_up(p, t0).front();
    p.retire(first, t0 + 100ms);
    BOOST_TEST(p.young_deaths() == 1u);
    BOOST_TEST(p.remove(first, t0 + 100ms) == nullptr);
    BOOST_TEST((p.next_maintenance() == t0 + 100ms + 500ms));
    // The next one opens fine and dies young too: the backoff grows, as for failures.
    pool::node* probe = p.open_for_minimum(t0 + 600ms);
    BOOST_REQUIRE(probe != nullptr);
    p.opened(*probe, {}, t0 + 600ms, idle_timeout);
    BOOST_TEST(p.open_for_minimum(t0 + 600ms) == nullptr); // its opening's success lifts nothing
    p.retire(*probe, t0 + 700ms);
    BOOST_TEST(p.young_deaths() == 2u);
    BOOST_TEST(p.remove(*probe, t0 + 700ms) == nullptr);
    BOOST_TEST((p.next_maintenance() == t0 + 700ms + 1s));
    // One that lives a while before the server closes it ends the backoff: replaced at once.
    probe = p.open_for_minimum(t0 + 1700ms);
    BOOST_REQUIRE(probe != nullptr);
    p.opened(*probe, {}, t0 + 1700ms, idle_timeout);
    const auto later = t0 + 1700ms + cd::pool_state<int>::died_young;
    p.retire(*probe, later);
    BOOST_TEST(p.young_deaths() == 0u);
    BOOST_TEST(p.remove(*probe, later) != nullptr);
}

BOOST_AUTO_TEST_CASE(the_backoff_does_not_hold_back_requests)
{
    pool p(4, 1);
    pool::node* warm = p.open_for_minimum(t0);
    BOOST_REQUIRE(warm != nullptr);
    p.opened(*warm, make_error_code(boost::asio::error::connection_refused), t0, idle_timeout);
    BOOST_TEST(p.remove(*warm, t0) == nullptr);
    // A request's own attempt opens a connection at once: its retries are its own to decide.
    waiter w;
    BOOST_TEST(p.acquire(w).open != nullptr);
    p.leave(w);
}

// --- the server's Keep-Alive hints ----------------------------------------------

BOOST_AUTO_TEST_CASE(keep_alive_max_bounds_the_requests_of_a_connection)
{
    pool p(2);
    waiter w;
    pool::node& c = open_for(p, w);
    cd::keep_alive_hint hint;
    hint.max = 3;
    for (int i = 1; i <= 2; ++i) {
        p.exchanged(c, hint);
        BOOST_TEST((p.release(c, true, t0, idle_timeout).kind == release_kind::kept_idle));
        BOOST_REQUIRE((p.acquire(w).kind == acquire_kind::use));
    }
    p.exchanged(c, hint);
    BOOST_TEST(c.exchanges == 3u);
    BOOST_TEST((p.release(c, true, t0, idle_timeout).kind == release_kind::close)); // the server takes no fourth
}

BOOST_AUTO_TEST_CASE(a_decreasing_max_as_apache_sends_it_gives_the_same_bound)
{
    pool p(1);
    waiter w;
    pool::node& c = open_for(p, w);
    for (std::size_t remaining : {5u, 4u, 3u}) {
        cd::keep_alive_hint hint;
        hint.max = remaining;
        p.exchanged(c, hint);
        BOOST_TEST(c.request_limit == 5u);
    }
}

BOOST_AUTO_TEST_CASE(keep_alive_timeout_retires_a_connection_before_the_server_would)
{
    BOOST_TEST((pool::retire_before(5s) == 4s));   // a second of margin
    BOOST_TEST((pool::retire_before(60s) == 54s)); // a tenth
    BOOST_TEST((pool::retire_before(1s) == 0s));   // no idle time at all
    BOOST_TEST((pool::retire_before(0s) == 0s));
    pool p(2, 1); // retired even when it is the minimum: the server would close it anyway
    waiter w;
    pool::node& c = open_for(p, w);
    cd::keep_alive_hint hint;
    hint.timeout = 5s;
    p.exchanged(c, hint);
    BOOST_TEST((p.release(c, true, t0, idle_timeout).kind == release_kind::kept_idle));
    BOOST_TEST((c.retire_at == t0 + 4s));
    BOOST_TEST((p.next_maintenance() == t0 + 4s));
    BOOST_TEST(p.expire_idle(t0 + 4s - 1ms).empty());
    const auto expired = p.expire_idle(t0 + 4s);
    BOOST_TEST_REQUIRE(expired.size() == 1u);
    BOOST_TEST(p.remove(c, t0 + 4s) != nullptr); // and replaced, for the minimum
}

BOOST_AUTO_TEST_CASE(a_connection_the_server_keeps_a_second_is_never_left_idle)
{
    pool p(2);
    waiter a, b;
    pool::node& c = open_for(p, a);
    cd::keep_alive_hint hint;
    hint.timeout = 1s;
    p.exchanged(c, hint);
    BOOST_TEST((p.release(c, true, t0, idle_timeout).kind == release_kind::close));
    // But a request waiting for it gets it at once, well within the second.
    pool::node& d = open_for(p, a);
    p.exchanged(d, hint);
    BOOST_TEST((p.acquire(b).kind == acquire_kind::wait));
    BOOST_TEST(p.release(d, true, t0, idle_timeout).to == &b);
}

BOOST_AUTO_TEST_CASE(deadlines_expire_in_order_and_leave_when_unwatched)
{
    using list = cd::basic_deadline_list<cd::pool_clock>;
    list deadlines;
    list::item first, second, third;
    BOOST_TEST(deadlines.watch(first, t0 + 1s)); // the timer must be set for it
    BOOST_TEST(!deadlines.watch(second, t0 + 2s));
    BOOST_TEST(!deadlines.watch(third, t0 + 3s));
    list::unwatch(first); // ended in time
    BOOST_TEST((deadlines.next() == t0 + 2s));
    BOOST_TEST(deadlines.pop_expired(t0 + 1s) == nullptr);
    BOOST_TEST(deadlines.pop_expired(t0 + 2500ms) == &second);
    BOOST_TEST(deadlines.pop_expired(t0 + 2500ms) == nullptr);
    BOOST_TEST(!second.watched());
    BOOST_TEST(third.watched());
    // Out of order is a bug: all attempts share one timeout.
    list::item early;
    BOOST_CHECK_THROW(deadlines.watch(early, t0), std::logic_error);
}

BOOST_AUTO_TEST_SUITE_END()
