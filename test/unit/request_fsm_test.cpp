// The request algorithm stepped without I/O: every phase receiving every event.
// This executable compiles the fsm itself with BOOST_ENABLE_ASSERT_HANDLER (see
// assert_handler.cpp), so that an event a phase must never receive is seen to be
// refused (its BOOST_ASSERT fires), instead of being undefined behaviour in a
// release build.
#include "protocol.hpp"
#include "request_fsm.hpp"

#include <cartesia/error.hpp>
#include <support/printing.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cartesia::detail {
inline std::ostream& boost_test_print_type(std::ostream& out, request_phase phase)
{
    return out << to_string(phase);
}
} // namespace cartesia::detail

namespace {

namespace asio = boost::asio;
namespace cd = cartesia::detail;
namespace ev = cartesia::detail::events;
using namespace std::chrono_literals;
using action_kind = cd::request_action_kind;
using boost::system::error_code;
using cartesia::error;
using phase = cd::request_phase;

double fixed_jitter() noexcept
{
    return 0.0; // the longest delay: 500 ms before the first retry
}

cd::request_settings settings(unsigned max_attempts = 3)
{
    cd::request_settings s;
    s.timeout = 1000ms;
    s.max_attempts = max_attempts;
    s.jitter = &fixed_jitter;
    return s;
}

cd::attempt_outcome outcome_of(error_code ec, unsigned status = 0, bool response_started = false)
{
    cd::attempt_outcome outcome;
    outcome.ec = ec;
    outcome.status = status;
    outcome.response_started = response_started || status != 0;
    return outcome;
}

const error_code refused = asio::error::connection_refused;

// When the events happen, for the tests whose timing does not matter.
const cd::request_clock::time_point t_start{std::chrono::hours(1)};

// An fsm with its diagnostics, and the steps that take it to each phase.
struct fixture {
    cartesia::diagnostics diag;
    const cd::request_settings config;
    cd::request_fsm fsm;

    explicit fixture(unsigned max_attempts = 3) : config(settings(max_attempts)), fsm(config, diag) {}
    explicit fixture(const cd::request_settings& with) : config(with), fsm(config, diag) {}

    cd::request_action step(const cd::request_event& event) { return fsm.resume(event); }

    void to(phase target, bool reused = false)
    {
        if (target == phase::initial)
            return;
        BOOST_REQUIRE(step(ev::start(t_start)).kind == action_kind::acquire);
        if (target == phase::acquiring)
            return;
        if (target == phase::backing_off) {
            BOOST_REQUIRE(step(ev::acquire_failed(refused, t_start)).kind == action_kind::backoff);
            return;
        }
        BOOST_REQUIRE(step(ev::acquired(reused)).kind == action_kind::exchange);
        if (target == phase::exchanging)
            return;
        BOOST_REQUIRE(step(ev::exchanged(outcome_of({}, 200))).kind == action_kind::release);
        if (target == phase::releasing)
            return;
        BOOST_REQUIRE(step(ev::released(t_start)).kind == action_kind::complete);
        BOOST_REQUIRE(target == phase::done);
    }
};

constexpr std::array all_phases{phase::initial,   phase::acquiring,   phase::exchanging,
                                phase::releasing, phase::backing_off, phase::done};

// Every event kind, with the phase that may receive it (interruptions: any phase).
struct event_case {
    const char* name;
    cd::request_event event;
    std::optional<phase> valid_in; // nullopt: an interruption, valid everywhere
};

std::vector<event_case> all_events()
{
    return {
        {"start", ev::start(t_start), phase::initial},
        {"acquired", ev::acquired(false), phase::acquiring},
        {"acquired(reused)", ev::acquired(true), phase::acquiring},
        {"acquire_failed", ev::acquire_failed(refused, t_start), phase::acquiring},
        {"exchanged(token)", ev::exchanged(outcome_of({}, 200)), phase::exchanging},
        {"exchanged(503)", ev::exchanged(outcome_of(error::server_error, 503)), phase::exchanging},
        {"exchanged(eof)", ev::exchanged(outcome_of(asio::error::eof)), phase::exchanging},
        {"released", ev::released(t_start), phase::releasing},
        {"backoff_ended", ev::backoff_ended(), phase::backing_off},
        {"deadline_passed", ev::deadline_passed(1), std::nullopt},
        {"total_deadline_passed", ev::total_deadline_passed(), std::nullopt},
        {"cancelled", ev::cancelled("the operation was cancelled"), std::nullopt},
    };
}

} // namespace

BOOST_AUTO_TEST_SUITE(request_fsm)

BOOST_AUTO_TEST_CASE(every_phase_receives_every_event)
{
    for (const phase p : all_phases) {
        for (const auto& c : all_events()) {
            BOOST_TEST_CONTEXT("phase " << cd::to_string(p) << ", event " << c.name)
            {
                fixture f;
                f.to(p);
                if (c.valid_in && *c.valid_in != p) {
                    // Not an event this phase can be given: the driver would be broken.
                    BOOST_CHECK_THROW(f.step(c.event), std::logic_error);
                    continue;
                }
                const auto action = f.step(c.event);
                if (!c.valid_in) {
                    // An interruption aborts what is pending, or there is nothing to abort.
                    const bool pending =
                        p == phase::acquiring || p == phase::exchanging || p == phase::releasing ||
                        (p == phase::backing_off && c.event.kind != cd::request_event_kind::deadline_passed);
                    BOOST_TEST((action.kind == (pending ? action_kind::abort_pending : action_kind::none)));
                    BOOST_TEST(f.fsm.phase() == p); // the pending step's result moves it on
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_token_takes_one_attempt)
{
    fixture f;
    auto a = f.step(ev::start(t_start));
    BOOST_TEST((a.kind == action_kind::acquire && a.deadline == cd::deadline_change::start));
    BOOST_TEST(f.diag.attempts() == 1u);
    BOOST_TEST((f.step(ev::acquired(false)).kind == action_kind::exchange));
    a = f.step(ev::exchanged(outcome_of({}, 200)));
    BOOST_TEST((a.kind == action_kind::release && a.connection_used));
    a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::complete && a.deadline == cd::deadline_change::stop));
    BOOST_TEST(!a.error);
    BOOST_TEST((f.fsm.phase() == phase::done));
}

BOOST_AUTO_TEST_CASE(retryable_failures_back_off_then_start_a_new_attempt)
{
    fixture f(3);
    f.to(phase::exchanging);
    BOOST_TEST((f.step(ev::exchanged(outcome_of(error::server_error, 503))).kind == action_kind::release));
    auto a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::backoff && a.deadline == cd::deadline_change::stop));
    BOOST_TEST(a.delay == 500ms); // retry 0, jitter 0
    a = f.step(ev::backoff_ended());
    BOOST_TEST((a.kind == action_kind::acquire && a.deadline == cd::deadline_change::start));
    BOOST_TEST(f.fsm.attempt() == 2u);
    BOOST_TEST(f.diag.attempts() == 2u);
    BOOST_TEST((f.step(ev::acquire_failed(refused, t_start)).kind == action_kind::backoff));
    BOOST_TEST((f.step(ev::backoff_ended()).kind == action_kind::acquire));
    // The last attempt's failure is the result.
    a = f.step(ev::acquire_failed(refused, t_start));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == refused);
    BOOST_TEST(f.fsm.attempt() == 3u);
}

BOOST_AUTO_TEST_CASE(a_server_delay_sets_the_backoff)
{
    fixture f;
    f.to(phase::exchanging);
    auto outcome = outcome_of(error::rate_limited, 429);
    outcome.retry_after = 1234ms;
    f.step(ev::exchanged(outcome));
    const auto a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::backoff));
    BOOST_TEST(a.delay == 1234ms);
}

BOOST_AUTO_TEST_CASE(failures_that_are_not_retryable_complete_at_once)
{
    for (const error_code ec : {error_code(error::unauthorized), error_code(error::bad_response),
                                error_code(asio::ssl::error::stream_truncated)}) {
        BOOST_TEST_CONTEXT(ec.message())
        {
            fixture f;
            f.to(phase::exchanging);
            const unsigned status = ec == error::unauthorized ? 401 : 0;
            f.step(ev::exchanged(outcome_of(ec, status, ec != error::unauthorized)));
            const auto a = f.step(ev::released(t_start));
            BOOST_TEST((a.kind == action_kind::complete));
            BOOST_TEST(a.error == ec);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_stale_reused_connection_moves_on_without_a_retry)
{
    fixture f(1); // no retries at all: the move must not need one
    f.to(phase::exchanging, /*reused=*/true);
    auto a = f.step(ev::exchanged(outcome_of(asio::error::eof)));
    BOOST_TEST((a.kind == action_kind::release && a.connection_used));
    a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::acquire && a.deadline == cd::deadline_change::keep));
    BOOST_TEST(f.fsm.attempt() == 1u);
    BOOST_TEST(f.fsm.stale_moves() == 1u);
    BOOST_TEST(f.diag.attempts() == 1u);
    // A fresh connection failing the same way is the attempt's failure.
    BOOST_TEST((f.step(ev::acquired(false)).kind == action_kind::exchange));
    f.step(ev::exchanged(outcome_of(asio::error::eof)));
    a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == asio::error::eof);
}

BOOST_AUTO_TEST_CASE(a_reused_connection_that_began_to_answer_is_not_stale)
{
    fixture f(1);
    f.to(phase::exchanging, /*reused=*/true);
    f.step(ev::exchanged(outcome_of(error::bad_response, 0, /*response_started=*/true)));
    const auto a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == error::bad_response);
    BOOST_TEST(f.fsm.stale_moves() == 0u);
}

BOOST_AUTO_TEST_CASE(a_deadline_turns_the_failure_it_causes_into_a_retryable_timeout)
{
    for (const phase p : {phase::acquiring, phase::exchanging}) {
        BOOST_TEST_CONTEXT(cd::to_string(p))
        {
            fixture f(2);
            f.to(p, /*reused=*/true);
            BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::abort_pending));
            BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::none)); // once is enough
            if (p == phase::acquiring) {
                BOOST_TEST(
                    (f.step(ev::acquire_failed(asio::error::operation_aborted, t_start)).kind == action_kind::backoff));
            } else {
                // Not a stale connection, even though no response byte came: the deadline closed it.
                f.step(ev::exchanged(outcome_of(asio::error::operation_aborted)));
                BOOST_TEST((f.step(ev::released(t_start)).kind == action_kind::backoff));
            }
            BOOST_TEST(f.diag.client_message() == "no complete response within 1000 ms");
            BOOST_TEST((f.step(ev::backoff_ended()).kind == action_kind::acquire));
            f.step(ev::deadline_passed(2));
            const auto a = f.step(ev::acquire_failed(asio::error::operation_aborted, t_start));
            BOOST_TEST((a.kind == action_kind::complete));
            BOOST_TEST(a.error == error::timeout);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_late_deadline_of_an_earlier_attempt_is_ignored)
{
    fixture f;
    f.to(phase::backing_off);
    BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::none));
    BOOST_TEST((f.step(ev::backoff_ended()).kind == action_kind::acquire));
    BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::none)); // attempt 1's
    BOOST_TEST((f.step(ev::acquired(false)).kind == action_kind::exchange));
    f.step(ev::exchanged(outcome_of({}, 200)));
    const auto a = f.step(ev::released(t_start));
    BOOST_TEST(!a.error);
}

BOOST_AUTO_TEST_CASE(a_deadline_while_releasing_a_token_keeps_the_token)
{
    fixture f;
    f.to(phase::releasing);
    BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::abort_pending)); // a slow TLS shutdown
    const auto a = f.step(ev::released(t_start));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(!a.error);
}

BOOST_AUTO_TEST_CASE(a_connection_handed_over_as_the_wait_is_aborted_goes_back_unused)
{
    for (const bool cancelled : {false, true}) {
        BOOST_TEST_CONTEXT((cancelled ? "cancelled" : "deadline"))
        {
            fixture f;
            f.to(phase::acquiring);
            f.step(cancelled ? ev::cancelled("the client was closed") : ev::deadline_passed(1));
            auto a = f.step(ev::acquired(true));
            BOOST_TEST((a.kind == action_kind::release && !a.connection_used));
            a = f.step(ev::released(t_start));
            if (cancelled) {
                BOOST_TEST((a.kind == action_kind::complete));
                BOOST_TEST(a.error == asio::error::operation_aborted);
                BOOST_TEST(f.diag.client_message() == "the client was closed");
            } else {
                BOOST_TEST((a.kind == action_kind::backoff)); // a timeout, retried
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_cancellation_ends_every_phase_with_operation_aborted)
{
    for (const phase p : {phase::acquiring, phase::exchanging, phase::releasing, phase::backing_off}) {
        for (const bool step_succeeds : {false, true}) {
            BOOST_TEST_CONTEXT(cd::to_string(p) << (step_succeeds ? ", the step succeeds anyway" : ""))
            {
                fixture f;
                f.to(p);
                BOOST_TEST((f.step(ev::cancelled("the operation was cancelled")).kind == action_kind::abort_pending));
                BOOST_TEST((f.step(ev::cancelled("again")).kind == action_kind::none));
                BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::none));
                cd::request_action a;
                switch (p) {
                case phase::acquiring:
                    a = f.step(step_succeeds ? ev::acquired(false)
                                             : ev::acquire_failed(asio::error::operation_aborted, t_start));
                    if (step_succeeds) {
                        BOOST_TEST((a.kind == action_kind::release));
                        a = f.step(ev::released(t_start));
                    }
                    break;
                case phase::exchanging:
                    // Even a token that arrived: the caller asked to stop.
                    a = f.step(ev::exchanged(step_succeeds ? outcome_of({}, 200)
                                                           : outcome_of(asio::error::operation_aborted)));
                    BOOST_TEST((a.kind == action_kind::release));
                    a = f.step(ev::released(t_start));
                    break;
                case phase::releasing:
                case phase::backing_off:
                    a = f.step(p == phase::releasing ? ev::released(t_start) : ev::backoff_ended());
                    break;
                default:
                    break;
                }
                BOOST_TEST((a.kind == action_kind::complete));
                BOOST_TEST(a.error == asio::error::operation_aborted);
                BOOST_TEST(f.diag.client_message() == "the operation was cancelled");
                BOOST_TEST((f.fsm.phase() == phase::done));
                BOOST_TEST((f.step(ev::cancelled("late")).kind == action_kind::none));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(cancelled_before_it_starts)
{
    fixture f;
    BOOST_TEST((f.step(ev::cancelled("the client was closed")).kind == action_kind::none));
    const auto a = f.step(ev::start(t_start));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == asio::error::operation_aborted);
    BOOST_TEST(f.diag.client_message() == "the client was closed");
    BOOST_TEST(f.fsm.attempt() == 0u);
}

BOOST_AUTO_TEST_CASE(the_diagnostics_tell_the_last_attempt)
{
    fixture f(2);
    f.to(phase::exchanging);
    cartesia::detail::diagnostics_access::set_client_message(f.diag, "from attempt 1");
    f.step(ev::exchanged(outcome_of(error::server_error, 503)));
    f.step(ev::released(t_start));
    f.step(ev::backoff_ended());
    BOOST_TEST(f.diag.client_message().empty()); // cleared for attempt 2
    BOOST_TEST(f.diag.attempts() == 2u);
}

// --- total_timeout ---------------------------------------------------------------

namespace {

const cd::request_clock::time_point t0{std::chrono::hours(1)};

cd::request_settings with_total(std::chrono::milliseconds total, unsigned max_attempts = 5)
{
    auto s = settings(max_attempts);
    s.total_timeout = total;
    return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_total_deadline_starts_with_the_operation_and_stops_with_it)
{
    const auto config = with_total(2000ms);
    fixture f(config);
    auto a = f.step(ev::start(t0));
    BOOST_TEST((a.kind == action_kind::acquire && a.deadline == cd::deadline_change::start));
    BOOST_TEST((a.total_deadline == cd::deadline_change::start));
    BOOST_TEST((f.fsm.total_deadline() == t0 + 2000ms));
    f.step(ev::acquired(false));
    f.step(ev::exchanged(outcome_of({}, 200)));
    a = f.step(ev::released(t0 + 50ms));
    BOOST_TEST((a.kind == action_kind::complete && a.total_deadline == cd::deadline_change::stop));
    // Without a total_timeout there is no total deadline to start or stop.
    fixture plain;
    a = plain.step(ev::start(t0));
    BOOST_TEST((a.total_deadline == cd::deadline_change::keep));
    BOOST_TEST((plain.fsm.total_deadline() == cd::request_clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(the_total_deadline_ends_the_operation_in_every_pending_phase)
{
    for (const phase p : {phase::acquiring, phase::exchanging, phase::backing_off}) {
        BOOST_TEST_CONTEXT(cd::to_string(p))
        {
            const auto config = with_total(5000ms);
            fixture f(config);
            BOOST_REQUIRE(f.step(ev::start(t0)).kind == action_kind::acquire);
            if (p == phase::backing_off)
                BOOST_REQUIRE(f.step(ev::acquire_failed(refused, t0)).kind == action_kind::backoff);
            else if (p == phase::exchanging)
                BOOST_REQUIRE(f.step(ev::acquired(false)).kind == action_kind::exchange);
            BOOST_TEST((f.step(ev::total_deadline_passed()).kind == action_kind::abort_pending));
            BOOST_TEST((f.step(ev::total_deadline_passed()).kind == action_kind::none)); // once is enough
            BOOST_TEST((f.step(ev::deadline_passed(f.fsm.attempt())).kind == action_kind::none));
            cd::request_action a;
            if (p == phase::acquiring)
                a = f.step(ev::acquire_failed(asio::error::operation_aborted, t0 + 5s));
            else if (p == phase::backing_off)
                a = f.step(ev::backoff_ended());
            else {
                BOOST_REQUIRE(f.step(ev::exchanged(outcome_of(asio::error::operation_aborted))).kind ==
                              action_kind::release);
                a = f.step(ev::released(t0 + 5s));
            }
            // error::timeout, never retried (attempts were left), and it says it was the total.
            BOOST_TEST((a.kind == action_kind::complete));
            BOOST_TEST(a.error == error::timeout);
            BOOST_TEST(f.diag.client_message() == "no token within the total_timeout of 5000 ms");
        }
    }
}

BOOST_AUTO_TEST_CASE(a_backoff_that_would_end_after_the_total_deadline_is_not_started)
{
    const auto config = with_total(1000ms);
    fixture f(config);
    f.step(ev::start(t0));
    // At t0 + 400 ms, the first backoff (500 ms) ends at 900 ms: in time.
    auto a = f.step(ev::acquire_failed(refused, t0 + 400ms));
    BOOST_TEST_REQUIRE((a.kind == action_kind::backoff));
    BOOST_TEST(a.delay == 500ms);
    f.step(ev::backoff_ended());
    f.step(ev::acquired(false));
    f.step(ev::exchanged(outcome_of(error::server_error, 503)));
    // At 950 ms the next backoff (1 s) would end after the deadline: the operation ends now.
    a = f.step(ev::released(t0 + 950ms));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == error::timeout);
    BOOST_TEST(f.diag.client_message().starts_with(
        "no token within the total_timeout of 1000 ms: the next attempt would start 1000 ms from now, after it; "
        "the last attempt: "));
    BOOST_TEST(f.fsm.attempt() == 2u);
}

BOOST_AUTO_TEST_CASE(a_token_that_arrives_as_the_total_deadline_passes_is_delivered)
{
    const auto config = with_total(1000ms);
    fixture f(config);
    f.to(phase::exchanging);
    BOOST_TEST((f.step(ev::total_deadline_passed()).kind == action_kind::abort_pending));
    f.step(ev::exchanged(outcome_of({}, 200))); // the whole response was there already
    const auto a = f.step(ev::released(t0 + 1s));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(!a.error);
}

BOOST_AUTO_TEST_CASE(an_attempt_deadline_then_the_total_one_end_the_operation_once)
{
    const auto config = with_total(1000ms);
    fixture f(config);
    f.to(phase::exchanging);
    BOOST_TEST((f.step(ev::deadline_passed(1)).kind == action_kind::abort_pending));
    // The step is ending already: nothing more to abort, but no retry may follow.
    BOOST_TEST((f.step(ev::total_deadline_passed()).kind == action_kind::none));
    f.step(ev::exchanged(outcome_of(asio::error::operation_aborted)));
    const auto a = f.step(ev::released(t0 + 1s));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == error::timeout);
    BOOST_TEST(f.diag.client_message() == "no token within the total_timeout of 1000 ms");
}

BOOST_AUTO_TEST_CASE(cancellation_wins_over_the_total_deadline)
{
    const auto config = with_total(1000ms);
    fixture f(config);
    f.to(phase::acquiring);
    BOOST_TEST((f.step(ev::total_deadline_passed()).kind == action_kind::abort_pending));
    BOOST_TEST((f.step(ev::cancelled("the operation was cancelled")).kind == action_kind::abort_pending));
    const auto a = f.step(ev::acquire_failed(asio::error::operation_aborted, t0));
    BOOST_TEST(a.error == asio::error::operation_aborted);
}

// --- the retry budget -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_spent_budget_delivers_the_failure_as_it_is)
{
    cd::retry_budget budget(0.0, 1); // one retry a second
    auto config = settings(3);
    config.budget = &budget;
    fixture first(config), second(config);
    first.step(ev::start(t0));
    second.step(ev::start(t0));
    BOOST_TEST((first.step(ev::acquire_failed(refused, t0)).kind == action_kind::backoff)); // the one allowed
    const auto a = second.step(ev::acquire_failed(refused, t0));
    BOOST_TEST((a.kind == action_kind::complete));
    BOOST_TEST(a.error == refused); // its own error, not a timeout
    BOOST_TEST(second.diag.client_message().find("retry budget is spent") != std::string::npos);
    BOOST_TEST(second.fsm.attempt() == 1u);
    BOOST_TEST(budget.requests_in_window() == 2u);
    BOOST_TEST(budget.retries_in_window() == 1u);
}

BOOST_AUTO_TEST_CASE(stale_moves_and_unretryable_failures_spend_nothing)
{
    cd::retry_budget budget(0.0, 1);
    auto config = settings(3);
    config.budget = &budget;
    fixture f(config);
    f.to(phase::exchanging, /*reused=*/true);
    f.step(ev::exchanged(outcome_of(asio::error::eof)));
    BOOST_TEST((f.step(ev::released(t0)).kind == action_kind::acquire)); // moved past, no retry
    f.step(ev::acquired(false));
    f.step(ev::exchanged(outcome_of(error::unauthorized, 401)));
    BOOST_TEST((f.step(ev::released(t0)).kind == action_kind::complete));
    BOOST_TEST(budget.retries_in_window() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
