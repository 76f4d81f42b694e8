// The connect race (Happy Eyeballs v2, RFC 8305) stepped without I/O and with an
// injected clock: the order of the addresses, when each attempt starts, its
// connect timeout, the winner and the closing of the losers, failures, and the
// events that cannot happen. Compiled with BOOST_ENABLE_ASSERT_HANDLER (see
// request_fsm_test.cpp): an event the fsm must never receive is seen to be refused.
#include "happy_eyeballs_fsm.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cartesia::detail {
inline std::ostream& boost_test_print_type(std::ostream& out, attempt_status status)
{
    return out << to_string(status);
}
inline std::ostream& boost_test_print_type(std::ostream& out, eyeballs_phase phase)
{
    return out << to_string(phase);
}
} // namespace cartesia::detail

namespace {

namespace asio = boost::asio;
namespace cd = cartesia::detail;
namespace ev = cartesia::detail::eyeballs_events;
using namespace std::chrono_literals;
using boost::system::error_code;
using cd::attempt_status;
using cd::eyeballs_phase;
using tcp = asio::ip::tcp;
using strings = std::vector<std::string>;

const cd::eyeballs_clock::time_point t0{std::chrono::hours(1)};
const error_code refused = asio::error::connection_refused;
const error_code unreachable = asio::error::host_unreachable;

cd::eyeballs_clock::time_point at(std::chrono::milliseconds since_t0)
{
    return t0 + since_t0;
}

tcp::endpoint v6(int n)
{
    return {asio::ip::make_address("2001:db8::" + std::to_string(n)), 443};
}

tcp::endpoint v4(int n)
{
    return {asio::ip::make_address("192.0.2." + std::to_string(n)), 443};
}

std::vector<tcp::endpoint> addresses(std::size_t count)
{
    std::vector<tcp::endpoint> all;
    for (std::size_t i = 0; i < count; ++i)
        all.push_back(v4(static_cast<int>(i + 1)));
    return all;
}

// An fsm stepped as the driver steps it: start_attempt and close_attempt are
// carried out at once and followed by next(); a step ends with the wait or the
// done, and its log reads "start 1", "close 0", "wait 250" (ms after t0),
// "done 1" (the winner) or "done <error message>".
struct race {
    explicit race(std::vector<tcp::endpoint> resolved, cd::connect_timing timing = {10000ms, 250ms})
        : fsm(std::move(resolved), timing)
    {
    }

    strings step(const cd::eyeballs_event& event)
    {
        strings log;
        auto action = fsm.resume(event);
        for (;;) {
            switch (action.kind) {
            case cd::eyeballs_action_kind::start_attempt:
                log.push_back("start " + std::to_string(action.attempt));
                action = fsm.next();
                continue;
            case cd::eyeballs_action_kind::close_attempt:
                log.push_back("close " + std::to_string(action.attempt));
                action = fsm.next();
                continue;
            case cd::eyeballs_action_kind::wait_until:
                log.push_back(
                    "wait " +
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(action.at - t0).count()));
                break;
            case cd::eyeballs_action_kind::done:
                log.push_back("done " + (action.error ? action.error.message() : std::to_string(action.attempt)));
                result = action;
                break;
            case cd::eyeballs_action_kind::none:
                log.emplace_back("none");
                break;
            }
            return log;
        }
    }

    cd::happy_eyeballs_fsm fsm;
    cd::eyeballs_action result; // the done, once it came
};

std::string done_with(error_code ec)
{
    return "done " + ec.message();
}

} // namespace

BOOST_AUTO_TEST_SUITE(happy_eyeballs_fsm)

// --- the order of the addresses (RFC 8305 §4) -----------------------------------

BOOST_AUTO_TEST_CASE(ipv6_comes_first_then_the_families_alternate)
{
    const auto ordered = cd::order_for_happy_eyeballs({v4(1), v4(2), v4(3), v6(1), v6(2)});
    const std::vector<tcp::endpoint> expected{v6(1), v4(1), v6(2), v4(2), v4(3)};
    BOOST_TEST(ordered == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_longer_family_ends_the_order_in_the_resolvers_order)
{
    const auto ordered = cd::order_for_happy_eyeballs({v6(3), v6(1), v4(7), v6(2)});
    const std::vector<tcp::endpoint> expected{v6(3), v4(7), v6(1), v6(2)};
    BOOST_TEST(ordered == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(one_family_only_keeps_the_resolvers_order)
{
    const std::vector<tcp::endpoint> only_v4{v4(3), v4(1), v4(2)};
    BOOST_TEST(cd::order_for_happy_eyeballs(only_v4) == only_v4, boost::test_tools::per_element());
    const std::vector<tcp::endpoint> only_v6{v6(2), v6(1)};
    BOOST_TEST(cd::order_for_happy_eyeballs(only_v6) == only_v6, boost::test_tools::per_element());
    BOOST_TEST(cd::order_for_happy_eyeballs({}).empty());
}

BOOST_AUTO_TEST_CASE(the_fsm_tries_the_addresses_in_that_order)
{
    race r({v4(1), v4(2), v6(1)});
    BOOST_TEST_REQUIRE(r.fsm.size() == 3u);
    BOOST_TEST(r.fsm.address(0) == v6(1));
    BOOST_TEST(r.fsm.address(1) == v4(1));
    BOOST_TEST(r.fsm.address(2) == v4(2));
}

// --- when attempts start --------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_first_attempt_starts_at_once_and_the_next_waits_for_the_delay)
{
    race r(addresses(3));
    BOOST_TEST((r.fsm.phase() == eyeballs_phase::initial));
    BOOST_TEST(r.step(ev::started(t0)) == (strings{"start 0", "wait 250"}), boost::test_tools::per_element());
    BOOST_TEST((r.fsm.phase() == eyeballs_phase::racing));
    BOOST_TEST((r.fsm.status(0) == attempt_status::connecting));
    BOOST_TEST((r.fsm.status(1) == attempt_status::pending));
    BOOST_TEST(r.fsm.addresses_tried() == 1u);
}

BOOST_AUTO_TEST_CASE(the_delay_starts_the_next_attempt_and_the_earlier_ones_go_on)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    BOOST_TEST(r.step(ev::timer_fired(at(250ms))) == (strings{"start 1", "wait 500"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(500ms))) == (strings{"start 2", "wait 10000"}), // attempt 0's connect_timeout
               boost::test_tools::per_element());
    for (std::size_t i = 0; i < 3; ++i)
        BOOST_TEST((r.fsm.status(i) == attempt_status::connecting));
    BOOST_TEST(r.fsm.connecting() == 3u);
}

BOOST_AUTO_TEST_CASE(a_timer_that_fires_early_or_twice_changes_nothing)
{
    race r(addresses(2));
    r.step(ev::started(t0));
    BOOST_TEST(r.step(ev::timer_fired(at(100ms))) == strings{"wait 250"}, boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(260ms))) == (strings{"start 1", "wait 10000"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(260ms))) == strings{"wait 10000"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_failure_starts_the_next_attempt_at_once)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    BOOST_TEST(r.step(ev::attempt_failed(0, refused, at(10ms))) == (strings{"start 1", "wait 260"}),
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(0) == attempt_status::failed));
    BOOST_TEST((r.fsm.status(1) == attempt_status::connecting));
}

BOOST_AUTO_TEST_CASE(the_failure_of_an_older_attempt_starts_the_next_one_at_once_too)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    // The last address started: the next wake-up is attempt 1's connect_timeout.
    BOOST_TEST(r.step(ev::attempt_failed(0, refused, at(300ms))) == (strings{"start 2", "wait 10250"}),
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(1) == attempt_status::connecting)); // still in the race
}

BOOST_AUTO_TEST_CASE(no_delay_starts_every_attempt_at_once)
{
    race r(addresses(3), {1000ms, 0ms});
    BOOST_TEST(r.step(ev::started(t0)) == (strings{"start 0", "start 1", "start 2", "wait 1000"}),
               boost::test_tools::per_element());
}

// --- connect_timeout ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_attempt_past_its_connect_timeout_is_closed_and_counts_as_failed)
{
    race r(addresses(2), {300ms, 250ms});
    BOOST_TEST(r.step(ev::started(t0)) == (strings{"start 0", "wait 250"}), boost::test_tools::per_element());
    // The next wait is attempt 0's timeout, before attempt 1's.
    BOOST_TEST(r.step(ev::timer_fired(at(250ms))) == (strings{"start 1", "wait 300"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(300ms))) == (strings{"close 0", "wait 550"}),
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(0) == attempt_status::timed_out));
    BOOST_TEST(r.step(ev::timer_fired(at(551ms))) == (strings{"close 1", done_with(asio::error::timed_out)}),
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(1) == attempt_status::timed_out));
    BOOST_TEST(r.fsm.addresses_tried() == 2u);
    BOOST_TEST((r.fsm.phase() == eyeballs_phase::done));
}

BOOST_AUTO_TEST_CASE(a_timeout_shorter_than_the_delay_starts_the_next_attempt_at_once)
{
    race r(addresses(3), {100ms, 250ms});
    BOOST_TEST(r.step(ev::started(t0)) == (strings{"start 0", "wait 100"}), boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(100ms))) == (strings{"close 0", "start 1", "wait 200"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_connect_timeout_of_an_attempt_started_on_a_failure_runs_from_then)
{
    race r(addresses(2), {300ms, 250ms});
    r.step(ev::started(t0));
    BOOST_TEST(r.step(ev::attempt_failed(0, refused, at(40ms))) == (strings{"start 1", "wait 340"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(340ms))) == (strings{"close 1", done_with(asio::error::timed_out)}),
               boost::test_tools::per_element());
}

// --- the winner -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(the_first_success_wins_and_every_other_attempt_in_flight_is_closed)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    r.step(ev::timer_fired(at(500ms)));
    BOOST_TEST(r.step(ev::attempt_succeeded(1)) == (strings{"close 0", "close 2", "done 1"}),
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(0) == attempt_status::closed));
    BOOST_TEST((r.fsm.status(1) == attempt_status::won));
    BOOST_TEST((r.fsm.status(2) == attempt_status::closed));
    BOOST_TEST(r.fsm.connecting() == 0u);
    BOOST_TEST(!r.result.error);
}

BOOST_AUTO_TEST_CASE(a_later_attempt_wins_while_an_earlier_one_still_connects)
{
    // The black-holed first address: the second one answers within the delay's reach.
    race r(addresses(3));
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    BOOST_TEST(r.step(ev::attempt_succeeded(1)) == (strings{"close 0", "done 1"}), boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(0) == attempt_status::closed));
    BOOST_TEST((r.fsm.status(2) == attempt_status::pending)); // never started
    BOOST_TEST(r.fsm.addresses_tried() == 2u);
}

BOOST_AUTO_TEST_CASE(the_first_attempt_may_win_before_the_next_starts)
{
    race r(addresses(2));
    r.step(ev::started(t0));
    BOOST_TEST(r.step(ev::attempt_succeeded(0)) == strings{"done 0"}, boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(1) == attempt_status::pending));
    BOOST_TEST(r.fsm.addresses_tried() == 1u);
}

BOOST_AUTO_TEST_CASE(a_success_after_some_failures_wins)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    r.step(ev::attempt_failed(0, refused, at(1ms)));
    r.step(ev::attempt_failed(1, unreachable, at(2ms)));
    BOOST_TEST(r.step(ev::attempt_succeeded(2)) == strings{"done 2"}, boost::test_tools::per_element());
}

// --- every address failing ------------------------------------------------------

BOOST_AUTO_TEST_CASE(all_failing_gives_the_last_error_and_the_count_of_addresses_tried)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    r.step(ev::attempt_failed(0, refused, at(1ms)));
    r.step(ev::attempt_failed(1, refused, at(2ms)));
    BOOST_TEST(r.step(ev::attempt_failed(2, unreachable, at(3ms))) == strings{done_with(unreachable)},
               boost::test_tools::per_element());
    BOOST_TEST(r.result.error == unreachable);
    BOOST_TEST(r.fsm.addresses_tried() == 3u);
    BOOST_TEST((r.fsm.phase() == eyeballs_phase::done));
}

BOOST_AUTO_TEST_CASE(the_last_error_is_the_last_to_happen_not_the_last_address)
{
    race r(addresses(2), {300ms, 250ms});
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    r.step(ev::attempt_failed(1, refused, at(260ms))); // attempt 0 still connects
    BOOST_TEST(r.step(ev::timer_fired(at(300ms))) == (strings{"close 0", done_with(asio::error::timed_out)}),
               boost::test_tools::per_element());
    BOOST_TEST(r.fsm.addresses_tried() == 2u);
}

// --- one address, none ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_single_address_waits_for_its_connect_timeout_only)
{
    race r(addresses(1));
    BOOST_TEST(r.step(ev::started(t0)) == (strings{"start 0", "wait 10000"}), boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::attempt_succeeded(0)) == strings{"done 0"}, boost::test_tools::per_element());

    race failing(addresses(1));
    failing.step(ev::started(t0));
    BOOST_TEST(failing.step(ev::attempt_failed(0, refused, at(5ms))) == strings{done_with(refused)},
               boost::test_tools::per_element());
    BOOST_TEST(failing.fsm.addresses_tried() == 1u);
}

BOOST_AUTO_TEST_CASE(no_address_at_all_is_done_at_once)
{
    race r({});
    BOOST_TEST(r.step(ev::started(t0)) == strings{done_with(asio::error::not_found)}, boost::test_tools::per_element());
    BOOST_TEST(r.fsm.addresses_tried() == 0u);
    BOOST_TEST((r.fsm.phase() == eyeballs_phase::done));
}

// --- abort ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_abort_closes_every_attempt_in_flight)
{
    race r(addresses(3));
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    BOOST_TEST(r.step(ev::aborted()) == (strings{"close 0", "close 1", done_with(asio::error::operation_aborted)}),
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(0) == attempt_status::closed));
    BOOST_TEST((r.fsm.status(2) == attempt_status::pending));
    BOOST_TEST(r.fsm.addresses_tried() == 2u);
}

BOOST_AUTO_TEST_CASE(an_abort_carries_its_reason_and_may_come_before_the_start)
{
    race r(addresses(2));
    const error_code no_memory = make_error_code(boost::system::errc::not_enough_memory);
    BOOST_TEST(r.step(ev::aborted(no_memory)) == strings{done_with(no_memory)}, boost::test_tools::per_element());
    BOOST_TEST(r.fsm.addresses_tried() == 0u);
}

// --- late and impossible events -------------------------------------------------

BOOST_AUTO_TEST_CASE(events_after_done_are_ignored)
{
    // A real driver may still see them: connects that completed as their sockets
    // were closed, a timer that expired as it was cancelled.
    race r(addresses(2));
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    r.step(ev::attempt_succeeded(0));
    BOOST_TEST_REQUIRE((r.fsm.phase() == eyeballs_phase::done));
    BOOST_TEST(r.step(ev::attempt_succeeded(1)) == strings{"none"}, boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::attempt_failed(1, asio::error::operation_aborted, at(260ms))) == strings{"none"},
               boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::timer_fired(at(10000ms))) == strings{"none"}, boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::aborted()) == strings{"none"}, boost::test_tools::per_element());
    BOOST_TEST((r.fsm.phase() == eyeballs_phase::done));
    BOOST_TEST((r.fsm.status(0) == attempt_status::won));
    BOOST_TEST((r.fsm.status(1) == attempt_status::closed));
}

BOOST_AUTO_TEST_CASE(the_late_result_of_an_attempt_given_up_on_is_ignored)
{
    race r(addresses(2), {300ms, 250ms});
    r.step(ev::started(t0));
    r.step(ev::timer_fired(at(250ms)));
    r.step(ev::timer_fired(at(300ms))); // attempt 0 timed out and was closed
    // Its connect had completed just before the close: too late, it stays out.
    BOOST_TEST(r.step(ev::attempt_succeeded(0)) == strings{"wait 550"}, boost::test_tools::per_element());
    BOOST_TEST(r.step(ev::attempt_failed(0, asio::error::operation_aborted, at(301ms))) == strings{"wait 550"},
               boost::test_tools::per_element());
    BOOST_TEST((r.fsm.status(0) == attempt_status::timed_out));
    BOOST_TEST(r.step(ev::attempt_succeeded(1)) == strings{"done 1"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(events_that_cannot_happen_are_refused)
{
    race r(addresses(3));
    BOOST_CHECK_THROW(r.step(ev::timer_fired(t0)), std::logic_error); // before started
    r.step(ev::started(t0));
    BOOST_CHECK_THROW(r.step(ev::started(t0)), std::logic_error);
    BOOST_CHECK_THROW(r.step(ev::attempt_succeeded(1)), std::logic_error); // never started
    BOOST_CHECK_THROW(r.step(ev::attempt_failed(7, refused, t0)), std::logic_error);
    BOOST_CHECK_THROW(r.step(ev::attempt_failed(0, error_code{}, t0)), std::logic_error); // a failure without error
    r.step(ev::attempt_failed(0, refused, at(1ms)));
    BOOST_CHECK_THROW(r.step(ev::attempt_failed(0, refused, at(2ms))), std::logic_error); // one result per attempt
    BOOST_CHECK_THROW(r.step(ev::attempt_succeeded(0)), std::logic_error);
    BOOST_TEST((r.fsm.status(0) == attempt_status::failed));
    BOOST_CHECK_THROW((void)cd::happy_eyeballs_fsm(addresses(1), {0ms, 250ms}), std::logic_error);
}

BOOST_AUTO_TEST_SUITE_END()
