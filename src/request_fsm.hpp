// The request algorithm, sans-io: one token-minting operation from start to
// completion, whatever carries its connections. It holds the one retry loop, the
// attempt number, the rule for stale pooled connections and what a deadline or a
// cancellation turns a failure into. It does no I/O and reads no clock: the driver
// (request_op.hpp) executes its actions and feeds back their results as events.
//
// The phases, and what moves between them:
//
//   initial --start--> acquiring --acquired--> exchanging --exchanged--> releasing
//                        ^   |                                              |
//                        |   +--acquire_failed--+        released: stale ---+--> acquiring (same attempt)
//                        |                      v                  success -+--> done
//                        +---backoff_ended-- backing_off <--- retryable ----+
//                                                               failure ----+--> done
//
// Two deadlines bound an operation: each attempt's (`timeout`), and, when set,
// the whole operation's (`total_timeout`: the wait for a connection, every attempt
// and every backoff). The driver watches both, as the actions say, and tells which
// passed. A backoff that would end after the total deadline is not started.
//
// A deadline or a cancellation arrives while an action is pending: the answer is
// abort_pending (the driver makes the pending step fail at once) or none; the
// step's own result then comes as its usual event, which the fsm reads in the
// light of what interrupted it. Cancellation as an input, as in Boost.Redis's
// exec_fsm: no flag is read back later to relabel an error.
#ifndef CARTESIA_SRC_REQUEST_FSM_HPP
#define CARTESIA_SRC_REQUEST_FSM_HPP

#include "retry_budget.hpp"
#include "retry_policy.hpp"

#include <cartesia/diagnostics.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace cartesia::detail {

enum class request_phase {
    initial,     // not started
    acquiring,   // waiting for a connection from the source (queued, or being opened)
    exchanging,  // the request is written and its response read
    releasing,   // the connection goes back to its source (a TLS shutdown for a one-shot)
    backing_off, // waiting before the next attempt
    done,        // completed; no event but a late interruption may follow
};

std::string_view to_string(request_phase phase) noexcept;

using request_clock = std::chrono::steady_clock;

// `delay` after `at`, saturating: a timeout of centuries must not overflow the clock.
request_clock::time_point time_after(request_clock::time_point at, std::chrono::milliseconds delay) noexcept;

enum class request_event_kind {
    start,
    acquired,              // a connection; `reused` when it served an exchange before
    acquire_failed,        // no connection: `error` says why (diagnostics already filled)
    exchanged,             // the exchange ended: `outcome`
    released,              // the connection is back with its source
    backoff_ended,         // the wait before the next attempt is over (or was aborted)
    deadline_passed,       // the deadline of attempt number `attempt` passed
    total_deadline_passed, // the deadline of the whole operation passed
    cancelled,             // terminal or partial cancellation, or the client closed: `reason`
};

struct request_event {
    request_event_kind kind = request_event_kind::start;
    boost::system::error_code error{}; // acquire_failed
    bool reused = false;               // acquired
    attempt_outcome outcome{};         // exchanged
    unsigned attempt = 0;              // deadline_passed
    std::string_view reason{};         // cancelled: a static string, for the client message
    // start, acquire_failed, released: when it happened. The total deadline is
    // counted from start; after a failure, the fsm decides whether a backoff would
    // end in time.
    request_clock::time_point now{};
};

// The events, made by name.
namespace events {
inline request_event of(request_event_kind kind) noexcept
{
    request_event e;
    e.kind = kind;
    return e;
}
inline request_event start(request_clock::time_point now) noexcept
{
    auto e = of(request_event_kind::start);
    e.now = now;
    return e;
}
inline request_event acquired(bool reused) noexcept
{
    auto e = of(request_event_kind::acquired);
    e.reused = reused;
    return e;
}
inline request_event acquire_failed(boost::system::error_code error, request_clock::time_point now) noexcept
{
    auto e = of(request_event_kind::acquire_failed);
    e.error = error;
    e.now = now;
    return e;
}
inline request_event exchanged(const attempt_outcome& outcome) noexcept
{
    auto e = of(request_event_kind::exchanged);
    e.outcome = outcome;
    return e;
}
inline request_event released(request_clock::time_point now) noexcept
{
    auto e = of(request_event_kind::released);
    e.now = now;
    return e;
}
inline request_event backoff_ended() noexcept
{
    return of(request_event_kind::backoff_ended);
}
inline request_event deadline_passed(unsigned attempt) noexcept
{
    auto e = of(request_event_kind::deadline_passed);
    e.attempt = attempt;
    return e;
}
inline request_event total_deadline_passed() noexcept
{
    return of(request_event_kind::total_deadline_passed);
}
inline request_event cancelled(std::string_view reason) noexcept
{
    auto e = of(request_event_kind::cancelled);
    e.reason = reason;
    return e;
}
} // namespace events

enum class request_action_kind {
    none,          // nothing to do: the pending step goes on
    abort_pending, // make the pending step fail now; its result comes as an event
    acquire,       // get a connection from the source
    exchange,      // run one exchange on the acquired connection
    release,       // give the connection back (the source decides to keep or close it)
    backoff,       // wait `delay`, then backoff_ended
    complete,      // call the handler with `error` (and the response when no error)
};

// What the driver does about a deadline (the attempt's, the operation's), before
// the action itself.
enum class deadline_change { keep, start, stop };

struct request_action {
    request_action_kind kind = request_action_kind::none;
    deadline_change deadline = deadline_change::keep;       // the attempt's: `timeout` from now
    deadline_change total_deadline = deadline_change::keep; // the operation's: at total_deadline()
    std::chrono::milliseconds delay{};                      // backoff
    boost::system::error_code error{};                      // complete; backoff: the failure retried
    bool connection_used = false; // release: an exchange ran on it (else it goes back as it came)
};

// What a request's algorithm needs to know of its configuration.
struct request_settings {
    std::chrono::milliseconds timeout{};                      // of one attempt
    std::optional<std::chrono::milliseconds> total_timeout{}; // of the whole operation
    // Shared by the requests of a client, which counts its requests and spends a
    // retry only when it allows; null: retries are bounded by max_attempts alone.
    retry_budget* budget = nullptr;
    unsigned max_attempts = 1;             // 1 + max_retries
    double (*jitter)() noexcept = nullptr; // in [0, 1), for the backoff; injected so that tests are exact
};

class request_fsm {
public:
    // `diag` is the operation's diagnostics; the fsm clears it for each attempt and
    // writes the messages of timeouts and cancellations into it. `settings` are
    // shared by the requests of one source and must outlive the fsm.
    request_fsm(const request_settings& settings, diagnostics& diag) noexcept : settings_(settings), diag_(diag) {}

    request_action resume(const request_event& event);

    request_phase phase() const noexcept { return phase_; }
    // The number of the current attempt, from 1; 0 before the first.
    unsigned attempt() const noexcept { return attempt_; }
    // Reused connections that failed before any response byte, moved past without
    // counting as a retry.
    unsigned stale_moves() const noexcept { return stale_moves_; }
    // When the whole operation must end: total_timeout after start; max() without one.
    request_clock::time_point total_deadline() const noexcept { return total_deadline_; }
    // Acquiring again after a stale connection, within the same attempt.
    bool moving_past_stale_connection() const noexcept
    {
        return phase_ == request_phase::acquiring && moving_past_stale_;
    }

private:
    // What cut the current step short, if anything, weakest first: a stronger one
    // replaces a weaker one. The attempt's deadline ends with the attempt; the
    // total deadline and a cancellation end the operation.
    enum class interruption { none, deadline, total, cancelled };

    request_action begin_attempt();
    request_action on_acquired(const request_event& event);
    request_action on_acquire_failed(boost::system::error_code error, request_clock::time_point now);
    request_action on_exchanged(attempt_outcome outcome);
    request_action on_released(request_clock::time_point now);
    request_action on_backoff_ended();
    request_action interrupt(const request_event& event);
    // What a failed attempt leaves for deciding what follows: no more than that is
    // kept while the connection goes back (a queued request's size matters).
    struct failure {
        boost::system::error_code error; // explained
        std::optional<std::chrono::milliseconds> retry_after;
        bool retryable = false;
    };
    static failure failure_of(const attempt_outcome& outcome) noexcept;
    // A step that failed with `error` before any response.
    static failure failed(boost::system::error_code error) noexcept;
    // The attempt failed as `f` says, at `now`: try again or complete.
    request_action after_failure(const failure& f, request_clock::time_point now);
    // `error` as the caller should see it, given what interrupted the step.
    boost::system::error_code explain(boost::system::error_code error);
    request_action complete(boost::system::error_code error);
    std::string total_timeout_text() const;
    void enter(request_phase next) noexcept;

    const request_settings& settings_;
    diagnostics& diag_;
    request_phase phase_ = request_phase::initial;
    interruption interruption_ = interruption::none;
    std::string_view cancel_reason_;
    request_clock::time_point total_deadline_ = request_clock::time_point::max();
    unsigned attempt_ = 0;
    unsigned stale_moves_ = 0;
    bool connection_reused_ = false; // the acquired connection served an exchange before
    bool moving_past_stale_ = false; // acquiring after a stale connection
    // What was decided when the exchange ended (or the acquisition was aborted),
    // carried out once the connection is released.
    enum class after_release { complete, move_to_another_connection, fail };
    after_release after_release_ = after_release::complete;
    failure released_failure_{}; // after_release::fail; for complete, its error (none for a token)
};

} // namespace cartesia::detail

#endif
