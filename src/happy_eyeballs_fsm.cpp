#include "happy_eyeballs_fsm.hpp"

#include <boost/assert.hpp>

#include <algorithm>
#include <utility>

namespace cartesia::detail {

using boost::system::error_code;
using tcp = boost::asio::ip::tcp;

namespace {

using kind = eyeballs_action_kind;

eyeballs_action act(eyeballs_action_kind what, std::size_t attempt = 0) noexcept
{
    eyeballs_action a;
    a.kind = what;
    a.attempt = attempt;
    return a;
}

} // namespace

std::vector<tcp::endpoint> order_for_happy_eyeballs(std::vector<tcp::endpoint> resolved)
{
    // RFC 8305 §4: "First Address Family Count" of 1, and the preferred family is
    // IPv6. Within a family the resolver's order stands.
    std::vector<tcp::endpoint> v6;
    std::vector<tcp::endpoint> v4;
    for (auto& address : resolved)
        (address.protocol() == tcp::v6() ? v6 : v4).push_back(std::move(address));
    std::vector<tcp::endpoint> ordered;
    ordered.reserve(v6.size() + v4.size());
    for (std::size_t i = 0; i < std::max(v6.size(), v4.size()); ++i) {
        if (i < v6.size())
            ordered.push_back(std::move(v6[i]));
        if (i < v4.size())
            ordered.push_back(std::move(v4[i]));
    }
    return ordered;
}

std::string_view to_string(attempt_status status) noexcept
{
    switch (status) {
    case attempt_status::pending:
        return "pending";
    case attempt_status::connecting:
        return "connecting";
    case attempt_status::failed:
        return "failed";
    case attempt_status::timed_out:
        return "timed_out";
    case attempt_status::won:
        return "won";
    case attempt_status::closed:
        return "closed";
    }
    return "?";
}

std::string_view to_string(eyeballs_phase phase) noexcept
{
    switch (phase) {
    case eyeballs_phase::initial:
        return "initial";
    case eyeballs_phase::racing:
        return "racing";
    case eyeballs_phase::done:
        return "done";
    }
    return "?";
}

happy_eyeballs_fsm::happy_eyeballs_fsm(std::vector<tcp::endpoint> resolved, const connect_timing& timing)
    : timing_(timing)
{
    BOOST_ASSERT(timing.connect_timeout.count() > 0);
    BOOST_ASSERT(timing.connection_attempt_delay.count() >= 0);
    auto ordered = order_for_happy_eyeballs(std::move(resolved));
    attempts_.reserve(ordered.size());
    for (auto& address : ordered)
        attempts_.push_back(attempt_state{std::move(address)});
}

eyeballs_action happy_eyeballs_fsm::resume(const eyeballs_event& event)
{
    using event_kind = eyeballs_event_kind;
    if (event.kind == event_kind::started) {
        BOOST_ASSERT(phase_ == eyeballs_phase::initial);
        now_ = event.now;
        next_start_ = event.now; // the first attempt starts at once
        enter(eyeballs_phase::racing);
        return next();
    }
    // Connects and timers complete after the race was decided: nothing to do.
    if (phase_ == eyeballs_phase::done)
        return {};
    if (event.kind == event_kind::aborted) {
        BOOST_ASSERT(event.error);
        // The driver carries out the closes that decide the race before it reports
        // anything else: no abort comes between a winner and done.
        BOOST_ASSERT(!winner_);
        abort_error_ = event.error;
        if (phase_ == eyeballs_phase::initial)
            return done();
        return next();
    }
    BOOST_ASSERT(phase_ == eyeballs_phase::racing);
    now_ = std::max(now_, event.now);
    switch (event.kind) {
    case event_kind::attempt_succeeded:
        if (result_is_current(event.attempt)) {
            finish(event.attempt, attempt_status::won);
            winner_ = event.attempt;
        }
        return next();
    case event_kind::attempt_failed:
        BOOST_ASSERT(event.error);
        if (result_is_current(event.attempt)) {
            finish(event.attempt, attempt_status::failed);
            last_error_ = event.error;
            next_start_ = now_; // a failure hands over at once
        }
        return next();
    case event_kind::timer_fired:
        return next(); // whatever is due at now_
    case event_kind::started:
    case event_kind::aborted:
        break;
    }
    BOOST_ASSERT(false);
    return {};
}

eyeballs_action happy_eyeballs_fsm::next()
{
    if (phase_ == eyeballs_phase::done)
        return {};
    BOOST_ASSERT(phase_ == eyeballs_phase::racing);
    if (outcome_known()) {
        // Decided: the others are closed at once, so that the server sees no
        // leftover connection (nor a late one that wins a race already over).
        for (std::size_t i = 0; i < attempts_.size(); ++i) {
            if (attempts_[i].status == attempt_status::connecting) {
                finish(i, attempt_status::closed);
                return act(kind::close_attempt, i);
            }
        }
        return done();
    }
    for (std::size_t i = 0; i < next_to_start_; ++i) {
        if (attempts_[i].status == attempt_status::connecting && attempts_[i].deadline <= now_) {
            finish(i, attempt_status::timed_out);
            last_error_ = boost::asio::error::timed_out;
            next_start_ = now_; // as for a failure
            return act(kind::close_attempt, i);
        }
    }
    if (next_to_start_ < attempts_.size() && (connecting_ == 0 || next_start_ <= now_))
        return start(next_to_start_);
    // Something is connecting (else the outcome would be known, or one would start):
    // wait for it, for its connect_timeout, or for the next attempt's turn.
    BOOST_ASSERT(connecting_ > 0);
    auto wake = eyeballs_clock::time_point::max();
    if (next_to_start_ < attempts_.size())
        wake = next_start_;
    for (std::size_t i = 0; i < next_to_start_; ++i)
        if (attempts_[i].status == attempt_status::connecting)
            wake = std::min(wake, attempts_[i].deadline);
    eyeballs_action wait = act(kind::wait_until);
    wait.at = wake;
    return wait;
}

bool happy_eyeballs_fsm::result_is_current(std::size_t index) const
{
    BOOST_ASSERT(index < next_to_start_); // no result for an attempt never started
    const attempt_status status = attempts_.at(index).status;
    // One connect per attempt: a second result for one that already ended is a
    // driver's mistake. An attempt given up on (timed out, or closed) may still
    // report what its socket did meanwhile.
    BOOST_ASSERT(status != attempt_status::failed && status != attempt_status::won);
    return status == attempt_status::connecting;
}

bool happy_eyeballs_fsm::outcome_known() const noexcept
{
    return winner_ || abort_error_ || (connecting_ == 0 && next_to_start_ == attempts_.size());
}

eyeballs_action happy_eyeballs_fsm::start(std::size_t index)
{
    BOOST_ASSERT(index == next_to_start_);
    attempt_state& a = attempts_[index];
    BOOST_ASSERT(a.status == attempt_status::pending);
    a.status = attempt_status::connecting;
    a.deadline = now_ + timing_.connect_timeout;
    ++next_to_start_;
    ++connecting_;
    next_start_ = now_ + timing_.connection_attempt_delay;
    return act(kind::start_attempt, index);
}

void happy_eyeballs_fsm::finish(std::size_t index, attempt_status next)
{
    attempt_state& a = attempts_[index];
    // The transitions of the diagram in happy_eyeballs_fsm.hpp, and no others.
    BOOST_ASSERT(a.status == attempt_status::connecting);
    BOOST_ASSERT(next == attempt_status::failed || next == attempt_status::timed_out || next == attempt_status::won ||
                 next == attempt_status::closed);
    BOOST_ASSERT(connecting_ > 0);
    a.status = next;
    --connecting_;
}

void happy_eyeballs_fsm::enter(eyeballs_phase next)
{
    [[maybe_unused]] const auto from = phase_;
    BOOST_ASSERT((next == eyeballs_phase::racing && from == eyeballs_phase::initial) ||
                 (next == eyeballs_phase::done && from != eyeballs_phase::done));
    phase_ = next;
}

eyeballs_action happy_eyeballs_fsm::done()
{
    BOOST_ASSERT(connecting_ == 0);
    enter(eyeballs_phase::done);
    eyeballs_action result = act(kind::done);
    if (abort_error_) {
        result.error = abort_error_;
    } else if (winner_) {
        result.attempt = *winner_;
    } else {
        // Every address failed; with none at all, what async_connect says of an
        // empty range.
        result.error = attempts_.empty() ? error_code(boost::asio::error::not_found) : last_error_;
        BOOST_ASSERT(result.error);
    }
    return result;
}

} // namespace cartesia::detail
