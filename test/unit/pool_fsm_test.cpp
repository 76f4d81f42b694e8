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
