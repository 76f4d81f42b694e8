// Happy Eyeballs v2 (RFC 8305) for the connect step, sans-io: which address to try
// next, when, and which attempts to give up. One name often resolves to addresses
// of both families, and one of them may be black-holed (a dead IPv6 route drops
// SYNs without an answer); tried strictly in turn, such an address costs the whole
// attempt deadline. Raced, it costs connection_attempt_delay.
//
// The rules (RFC 8305 §4 and §5):
// - The addresses are interleaved by family, IPv6 first, each family in the
//   resolver's order (getaddrinfo already sorted them by RFC 6724).
// - The first attempt starts at once; the next one starts when the newest has
//   neither succeeded nor failed after connection_attempt_delay, or at once when any
//   attempt fails. Attempts started go on: a slow address may still win.
// - Each attempt has connect_timeout of its own; past it, it is closed and counts as
//   failed (asio::error::timed_out), which starts the next one at once.
// - The first attempt to complete its TCP connect wins; every other attempt still
//   connecting is closed at once.
// - When every address failed: the last error to happen, and addresses_tried().
//
// It does no I/O and reads no clock: the driver (happy_eyeballs.cpp) passes `now`
// in, starts and closes sockets as told, and feeds back their results.
//
//   initial --started--> racing --(a winner | all failed | aborted)--> done
//
// Per attempt:
//
//   pending --start--> connecting --succeeded--> won
//                          |-------failed------> failed
//                          |--connect_timeout--> timed_out   (closed)
//                          '--another won, or aborted--> closed
//
// The driver's side of the contract: resume(event) and next() return one action
// at a time; start_attempt and close_attempt are carried out at once and followed
// by next(), until wait_until (arm the one timer, then wait for it or for a
// connect to complete) or done. Events that may still arrive from a real socket
// after the fsm gave up on it (a connect completing as it is closed, a timer that
// expired as it was re-armed) are ignored; so is every event after done, which
// answers `none`. An event that cannot happen (a result for an attempt never
// started, or a second one for an attempt that failed or won; `started` twice) is
// refused with BOOST_ASSERT.
#ifndef CARTESIA_SRC_HAPPY_EYEBALLS_FSM_HPP
#define CARTESIA_SRC_HAPPY_EYEBALLS_FSM_HPP

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace cartesia::detail {

using eyeballs_clock = std::chrono::steady_clock;

// The two durations of RFC 8305 that a configuration sets; the defaults are the
// RFC's recommended connection attempt delay (250 ms) and a connect timeout that
// leaves a 60 s attempt deadline room for several addresses.
struct connect_timing {
    std::chrono::milliseconds connect_timeout{10000};        // one address's TCP connect
    std::chrono::milliseconds connection_attempt_delay{250}; // the head start of one attempt over the next
};

// `resolved` in the order to try it: alternating families, IPv6 first.
std::vector<boost::asio::ip::tcp::endpoint>
order_for_happy_eyeballs(std::vector<boost::asio::ip::tcp::endpoint> resolved);

enum class attempt_status {
    pending,    // not started
    connecting, // its TCP connect is in flight
    failed,     // its connect failed (refused, unreachable...)
    timed_out,  // no answer within connect_timeout: closed
    won,        // connected first: the connection
    closed,     // closed unfinished: another attempt won, or the race was aborted
};

enum class eyeballs_phase { initial, racing, done };

std::string_view to_string(attempt_status status) noexcept;
std::string_view to_string(eyeballs_phase phase) noexcept;

enum class eyeballs_event_kind {
    started,           // the race begins at `now`
    attempt_succeeded, // the connect of `attempt` completed
    attempt_failed,    // the connect of `attempt` failed with `error` at `now`
    timer_fired,       // the timer armed by wait_until expired (or fired late, or early: `now` decides)
    aborted,           // the owner gave up (its deadline, a cancellation), or the driver could not go on: `error`
};

struct eyeballs_event {
    eyeballs_event_kind kind = eyeballs_event_kind::started;
    std::size_t attempt = 0;           // attempt_succeeded, attempt_failed: an index into the order tried
    boost::system::error_code error{}; // attempt_failed, aborted
    eyeballs_clock::time_point now{};  // started, attempt_failed, timer_fired
};

// The events, made by name.
namespace eyeballs_events {
inline eyeballs_event started(eyeballs_clock::time_point now) noexcept
{
    eyeballs_event e;
    e.kind = eyeballs_event_kind::started;
    e.now = now;
    return e;
}
inline eyeballs_event attempt_succeeded(std::size_t attempt) noexcept
{
    eyeballs_event e;
    e.kind = eyeballs_event_kind::attempt_succeeded;
    e.attempt = attempt;
    return e;
}
// `now` too: the next attempt, started at once, has its connect_timeout from then.
inline eyeballs_event attempt_failed(std::size_t attempt, boost::system::error_code error,
                                     eyeballs_clock::time_point now) noexcept
{
    eyeballs_event e;
    e.kind = eyeballs_event_kind::attempt_failed;
    e.attempt = attempt;
    e.error = error;
    e.now = now;
    return e;
}
inline eyeballs_event timer_fired(eyeballs_clock::time_point now) noexcept
{
    eyeballs_event e;
    e.kind = eyeballs_event_kind::timer_fired;
    e.now = now;
    return e;
}
inline eyeballs_event aborted(boost::system::error_code error = boost::asio::error::operation_aborted) noexcept
{
    eyeballs_event e;
    e.kind = eyeballs_event_kind::aborted;
    e.error = error;
    return e;
}
} // namespace eyeballs_events

enum class eyeballs_action_kind {
    none,          // nothing: an event after done
    start_attempt, // connect a new socket to address(attempt); then next()
    close_attempt, // close the socket of `attempt` now, abandoning its connect; then next()
    wait_until,    // arm the timer for `at`, and wait for it or for a connect to complete
    done,          // complete: `error`, or the connection of `attempt`
};

struct eyeballs_action {
    eyeballs_action_kind kind = eyeballs_action_kind::none;
    std::size_t attempt = 0;           // start_attempt, close_attempt; done without error: the winner
    eyeballs_clock::time_point at{};   // wait_until
    boost::system::error_code error{}; // done
};

class happy_eyeballs_fsm {
public:
    // `resolved` in the resolver's order; the fsm tries it in order_for_happy_eyeballs's.
    // Not noexcept: the state-machine tests make BOOST_ASSERT throw.
    happy_eyeballs_fsm(std::vector<boost::asio::ip::tcp::endpoint> resolved, const connect_timing& timing);

    eyeballs_action resume(const eyeballs_event& event);
    // The action after a start_attempt or a close_attempt, carried out.
    eyeballs_action next();

    eyeballs_phase phase() const noexcept { return phase_; }
    std::size_t size() const noexcept { return attempts_.size(); }
    // The addresses in the order tried; attempt i connects to address(i).
    const boost::asio::ip::tcp::endpoint& address(std::size_t attempt) const { return attempts_.at(attempt).address; }
    attempt_status status(std::size_t attempt) const { return attempts_.at(attempt).status; }
    // Attempts started so far: all the addresses when every one failed.
    std::size_t addresses_tried() const noexcept { return next_to_start_; }
    // Attempts started and neither finished nor given up.
    std::size_t connecting() const noexcept { return connecting_; }

private:
    struct attempt_state {
        boost::asio::ip::tcp::endpoint address;
        attempt_status status = attempt_status::pending;
        eyeballs_clock::time_point deadline{}; // connecting: its connect_timeout ends then
    };

    // A result for `index`: true when it is news (the attempt is connecting),
    // false when the fsm already gave up on it.
    bool result_is_current(std::size_t index) const;
    bool outcome_known() const noexcept;
    eyeballs_action start(std::size_t index);
    // A connecting attempt is done with: failed (its error), timed out, won or closed.
    void finish(std::size_t index, attempt_status next);
    // Not noexcept, as the constructor.
    void enter(eyeballs_phase next);
    eyeballs_action done();

    const connect_timing timing_;
    std::vector<attempt_state> attempts_;
    eyeballs_phase phase_ = eyeballs_phase::initial;
    eyeballs_clock::time_point now_{};        // the latest `now` an event brought
    eyeballs_clock::time_point next_start_{}; // the next pending attempt may start then, though others connect
    std::size_t next_to_start_ = 0;           // attempts start in order: those before it have started
    std::size_t connecting_ = 0;
    std::optional<std::size_t> winner_;
    boost::system::error_code last_error_;  // of the latest attempt to fail or time out
    boost::system::error_code abort_error_; // set: the race was aborted with it
};

} // namespace cartesia::detail

#endif
