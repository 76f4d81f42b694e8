#include "request_fsm.hpp"

#include "protocol.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/assert.hpp>

#include <string>

namespace cartesia::detail {

using boost::system::error_code;

namespace {

namespace asio = boost::asio;
using kind = request_action_kind;

request_action act(request_action_kind what, deadline_change deadline = deadline_change::keep) noexcept
{
    request_action a;
    a.kind = what;
    a.deadline = deadline;
    return a;
}

} // namespace

request_clock::time_point time_after(request_clock::time_point at, std::chrono::milliseconds delay) noexcept
{
    if (delay >= std::chrono::duration_cast<std::chrono::milliseconds>(request_clock::time_point::max() - at))
        return request_clock::time_point::max();
    return at + delay;
}

std::string_view to_string(request_phase phase) noexcept
{
    switch (phase) {
    case request_phase::initial:
        return "initial";
    case request_phase::acquiring:
        return "acquiring";
    case request_phase::exchanging:
        return "exchanging";
    case request_phase::releasing:
        return "releasing";
    case request_phase::backing_off:
        return "backing_off";
    case request_phase::done:
        return "done";
    }
    return "?";
}

request_action request_fsm::resume(const request_event& event)
{
    using event_kind = request_event_kind;
    switch (event.kind) {
    case event_kind::start:
        BOOST_ASSERT(phase_ == request_phase::initial);
        if (interruption_ == interruption::cancelled) // cancelled (the client closed) before it started
            return complete(asio::error::operation_aborted);
        if (settings_.budget)
            settings_.budget->on_request(event.now);
        if (settings_.total_timeout) {
            total_deadline_ = time_after(event.now, *settings_.total_timeout);
            request_action first = begin_attempt();
            first.total_deadline = deadline_change::start;
            return first;
        }
        return begin_attempt();
    case event_kind::acquired:
        return on_acquired(event);
    case event_kind::acquire_failed:
        return on_acquire_failed(event.error, event.now);
    case event_kind::exchanged:
        return on_exchanged(event.outcome);
    case event_kind::released:
        return on_released(event.now);
    case event_kind::backoff_ended:
        return on_backoff_ended();
    case event_kind::deadline_passed:
    case event_kind::total_deadline_passed:
    case event_kind::cancelled:
        return interrupt(event);
    }
    BOOST_ASSERT(false);
    return {};
}

void request_fsm::enter(request_phase next) noexcept
{
    // The transitions of the diagram in request_fsm.hpp, and no others.
    [[maybe_unused]] const auto from = phase_;
    BOOST_ASSERT(
        (next == request_phase::acquiring &&
         (from == request_phase::initial || from == request_phase::releasing || from == request_phase::backing_off)) ||
        (next == request_phase::exchanging && from == request_phase::acquiring) ||
        (next == request_phase::releasing && (from == request_phase::acquiring || from == request_phase::exchanging)) ||
        (next == request_phase::backing_off &&
         (from == request_phase::acquiring || from == request_phase::releasing)) ||
        (next == request_phase::done && from != request_phase::done));
    phase_ = next;
}

request_action request_fsm::begin_attempt()
{
    moving_past_stale_ = false;
    ++attempt_;
    BOOST_ASSERT(attempt_ <= settings_.max_attempts);
    if (interruption_ == interruption::deadline)
        interruption_ = interruption::none; // that deadline was the previous attempt's
    diag_.clear();
    diagnostics_access::set_attempts(diag_, attempt_);
    enter(request_phase::acquiring);
    return act(kind::acquire, deadline_change::start);
}

request_action request_fsm::on_acquired(const request_event& event)
{
    BOOST_ASSERT(phase_ == request_phase::acquiring);
    if (interruption_ != interruption::none) {
        // Handed a connection just as the wait was aborted: give it back unused.
        after_release_ = interruption_ == interruption::cancelled ? after_release::complete : after_release::fail;
        released_failure_ = failed(explain(asio::error::operation_aborted));
        enter(request_phase::releasing);
        return act(kind::release);
    }
    connection_reused_ = event.reused;
    moving_past_stale_ = false;
    enter(request_phase::exchanging);
    return act(kind::exchange);
}

request_action request_fsm::on_acquire_failed(error_code error, request_clock::time_point now)
{
    BOOST_ASSERT(phase_ == request_phase::acquiring);
    BOOST_ASSERT(error);
    return after_failure(failed(explain(error)), now);
}

request_action request_fsm::on_exchanged(attempt_outcome outcome)
{
    BOOST_ASSERT(phase_ == request_phase::exchanging);
    enter(request_phase::releasing);
    request_action release = act(kind::release);
    release.connection_used = true;
    if (!outcome.ec) {
        // A token: delivered, unless the caller cancelled meanwhile (complete() sees to that).
        after_release_ = after_release::complete;
        released_failure_ = failure{};
        return release;
    }
    // A reused connection that fails before any response byte was most probably
    // closed by the server while idle (or at its keep-alive limit): not the
    // request's fault. Another connection, in the same attempt: no retry counted.
    if (connection_reused_ && !outcome.response_started && interruption_ == interruption::none) {
        ++stale_moves_;
        after_release_ = after_release::move_to_another_connection;
        return release;
    }
    outcome.ec = explain(outcome.ec);
    after_release_ = after_release::fail;
    released_failure_ = failure_of(outcome);
    return release;
}

request_action request_fsm::on_released(request_clock::time_point now)
{
    BOOST_ASSERT(phase_ == request_phase::releasing);
    switch (after_release_) {
    case after_release::move_to_another_connection: {
        // The stale connection's failure is no part of the attempt's story.
        const unsigned attempts = diag_.attempts();
        diag_.clear();
        diagnostics_access::set_attempts(diag_, attempts);
        if (interruption_ != interruption::none) // interrupted while releasing
            return after_failure(failed(explain(asio::error::operation_aborted)), now);
        moving_past_stale_ = true;
        enter(request_phase::acquiring);
        return act(kind::acquire);
    }
    case after_release::complete:
        return complete(released_failure_.error);
    case after_release::fail:
        return after_failure(released_failure_, now);
    }
    BOOST_ASSERT(false);
    return {};
}

request_action request_fsm::on_backoff_ended()
{
    BOOST_ASSERT(phase_ == request_phase::backing_off);
    if (interruption_ == interruption::cancelled)
        return complete(asio::error::operation_aborted);
    if (interruption_ == interruption::total) // while backing off: no attempt may follow
        return complete(explain(asio::error::operation_aborted));
    return begin_attempt();
}

request_action request_fsm::interrupt(const request_event& event)
{
    if (phase_ == request_phase::done || interruption_ == interruption::cancelled)
        return {};
    if (event.kind == request_event_kind::total_deadline_passed) {
        if (phase_ == request_phase::initial || interruption_ == interruption::total)
            return {}; // not started (its deadline starts with it), or told already
        // A step that an attempt's deadline aborted already is still ending: its
        // result is read as the total deadline's now, with nothing more to abort.
        const bool aborted_already = interruption_ == interruption::deadline && phase_ != request_phase::backing_off;
        interruption_ = interruption::total;
        if (aborted_already)
            return {};
        return act(kind::abort_pending);
    }
    if (event.kind == request_event_kind::deadline_passed) {
        // A deadline armed for an earlier attempt may still arrive (a timer's
        // expiry already queued when it was stopped); nor is a deadline running
        // between attempts.
        if (event.attempt != attempt_ || phase_ == request_phase::initial || phase_ == request_phase::backing_off ||
            interruption_ != interruption::none)
            return {};
        interruption_ = interruption::deadline;
        return act(kind::abort_pending);
    }
    interruption_ = interruption::cancelled;
    cancel_reason_ = event.reason;
    if (phase_ == request_phase::initial)
        return {}; // start completes it
    return act(kind::abort_pending);
}

request_fsm::failure request_fsm::failure_of(const attempt_outcome& outcome) noexcept
{
    return failure{outcome.ec, outcome.retry_after, is_retryable(outcome)};
}

request_fsm::failure request_fsm::failed(error_code error) noexcept
{
    attempt_outcome before_any_response; // a failure of the step itself
    before_any_response.ec = error;
    return failure_of(before_any_response);
}

request_action request_fsm::after_failure(const failure& f, request_clock::time_point now)
{
    BOOST_ASSERT(f.error);
    // No connection is held: the acquisition failed, or the connection is back.
    BOOST_ASSERT(phase_ == request_phase::acquiring || phase_ == request_phase::releasing);
    if (interruption_ == interruption::cancelled)
        return complete(asio::error::operation_aborted);
    if (interruption_ == interruption::total || attempt_ >= settings_.max_attempts || !f.retryable)
        return complete(f.error); // a total deadline's failure is explained already
    const double jitter = settings_.jitter ? settings_.jitter() : 0.5;
    const std::chrono::milliseconds delay = retry_delay(attempt_ - 1, jitter, f.retry_after);
    if (time_after(now, delay) >= total_deadline_) {
        // Waiting would only lead to the deadline: say so now, and why it failed.
        std::string message = "no token within the total_timeout of " + total_timeout_text() +
                              ": the next attempt would start " + std::to_string(delay.count()) +
                              " ms from now, after it; the last attempt: ";
        message += diag_.client_message().empty() ? f.error.message() : diag_.client_message();
        diagnostics_access::set_client_message(diag_, std::move(message));
        return complete(error::timeout);
    }
    if (settings_.budget && !settings_.budget->try_spend_retry(now)) {
        // Retrying now would add load to an API failing for many requests at once:
        // the failure is delivered as it is, with why it was not retried.
        std::string message(diag_.client_message().empty() ? f.error.message() : diag_.client_message());
        message += "; not retried: the client's retry budget is spent (client_config::retry_budget_ratio)";
        diagnostics_access::set_client_message(diag_, std::move(message));
        return complete(f.error);
    }
    enter(request_phase::backing_off);
    request_action backoff = act(kind::backoff, deadline_change::stop);
    backoff.delay = delay;
    backoff.error = f.error; // for the event that says why
    return backoff;
}

std::string request_fsm::total_timeout_text() const
{
    BOOST_ASSERT(settings_.total_timeout);
    return std::to_string(settings_.total_timeout->count()) + " ms";
}

error_code request_fsm::explain(error_code error)
{
    // A deadline or a cancellation makes the pending step fail with whatever the
    // closed socket or the aborted wait reports; say what really happened.
    if (!error)
        return error;
    if (interruption_ == interruption::cancelled)
        return asio::error::operation_aborted;
    if (interruption_ == interruption::deadline) {
        diagnostics_access::set_client_message(diag_, "no complete response within " +
                                                          std::to_string(settings_.timeout.count()) + " ms");
        return error::timeout;
    }
    if (interruption_ == interruption::total) {
        diagnostics_access::set_client_message(diag_, "no token within the total_timeout of " + total_timeout_text());
        return error::timeout;
    }
    return error;
}

request_action request_fsm::complete(error_code error)
{
    if (interruption_ == interruption::cancelled) {
        error = asio::error::operation_aborted;
        diagnostics_access::set_client_message(diag_, std::string(cancel_reason_));
    }
    enter(request_phase::done);
    request_action done = act(kind::complete, deadline_change::stop);
    if (settings_.total_timeout)
        done.total_deadline = deadline_change::stop;
    done.error = error;
    return done;
}

} // namespace cartesia::detail
