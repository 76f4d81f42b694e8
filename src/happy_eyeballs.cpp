#include "happy_eyeballs.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/assert.hpp>

#include <new>
#include <optional>
#include <utility>
#include <vector>

namespace cartesia::detail {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

class connect_race final : public std::enable_shared_from_this<connect_race> {
public:
    connect_race(const asio::any_io_executor& executor, std::vector<tcp::endpoint> resolved,
                 const connect_timing& timing, tcp::socket& destination, connect_report& report,
                 asio::any_completion_handler<void(error_code)> handler)
        : fsm_(std::move(resolved), timing), executor_(executor), sockets_(fsm_.size()), timer_(executor),
          destination_(destination), report_(report), handler_(std::move(handler))
    {
    }

    void start()
    {
        slot_ = asio::get_associated_cancellation_slot(handler_);
        if (slot_.is_connected()) {
            slot_.assign([race = weak_from_this()](asio::cancellation_type type) {
                if (type != asio::cancellation_type::none)
                    abort_connect_race(race);
            });
        }
        carry_out(fsm_.resume(eyeballs_events::started(eyeballs_clock::now())));
        if (outcome_) // decided at once (no address at all): nothing pending would report it
            asio::post(executor_, [self = shared_from_this()] { self->deliver_outcome(); });
    }

    // Closes every socket at once, as connection::abort() closes its own: each
    // pending connect completes with operation_aborted, and the first of their
    // handlers to run tells the fsm, which decides the outcome there. So nothing
    // here allocates or throws, and the owner is never called back from its abort().
    void abort() noexcept
    {
        if (delivered_)
            return;
        abort_requested_ = true;
        for (std::size_t i = 0; i < sockets_.size(); ++i)
            close(i);
    }

private:
    // Executes the fsm's actions until it waits or is done.
    void carry_out(eyeballs_action action)
    {
        for (;;) {
            switch (action.kind) {
            case eyeballs_action_kind::none:
                return;
            case eyeballs_action_kind::start_attempt:
                action = start_attempt(action.attempt);
                break;
            case eyeballs_action_kind::close_attempt:
                close(action.attempt);
                action = fsm_.next();
                break;
            case eyeballs_action_kind::wait_until:
                action = arm_timer(action.at);
                break;
            case eyeballs_action_kind::done:
                outcome_ = action;
                timer_.cancel();
                return;
            }
        }
    }

    eyeballs_action start_attempt(std::size_t index)
    {
        try {
            // An unopened socket: async_connect opens it for the address's family
            // (and reports a failure to, say, make an IPv6 socket as the attempt's).
            tcp::socket& socket = sockets_[index].emplace(executor_);
            socket.async_connect(fsm_.address(index),
                                 [self = shared_from_this(), index](error_code ec) { self->on_connect(index, ec); });
        } catch (const std::bad_alloc&) { // nothing of it is pending: the attempt failed
            sockets_[index].reset();
            return fsm_.resume(eyeballs_events::attempt_failed(
                index, make_error_code(boost::system::errc::not_enough_memory), eyeballs_clock::now()));
        }
        return fsm_.next();
    }

    void close(std::size_t index) noexcept
    {
        if (sockets_[index]) {
            error_code ignored;
            sockets_[index]->close(ignored); // its connect completes with operation_aborted
        }
    }

    // The one timer, re-armed only when the time it should fire changes.
    eyeballs_action arm_timer(eyeballs_clock::time_point at)
    {
        if (timer_waiting_ && timer_at_ == at)
            return {};
        timer_waiting_ = false;
        try {
            timer_.expires_at(at); // cancels the wait pending: its handler sees an old generation
            timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](error_code ec) {
                self->on_timer(generation, ec);
            });
        } catch (const std::bad_alloc&) { // no timer, no race: give up on every attempt
            return fsm_.resume(eyeballs_events::aborted(make_error_code(boost::system::errc::not_enough_memory)));
        }
        timer_waiting_ = true;
        timer_at_ = at;
        return {};
    }

    void on_connect(std::size_t index, error_code ec)
    {
        if (settle())
            return;
        eyeballs_action action;
        if (ec) {
            action = fsm_.resume(eyeballs_events::attempt_failed(index, ec, eyeballs_clock::now()));
            close(index); // its descriptor goes now, not with the race
        } else {
            action = fsm_.resume(eyeballs_events::attempt_succeeded(index));
        }
        carry_out(action);
        deliver_outcome();
    }

    void on_timer(unsigned generation, error_code ec)
    {
        const bool current = generation == timer_generation_;
        if (current)
            timer_waiting_ = false;
        if (settle())
            return;
        // A cancelled wait, or one that expired just as it was re-armed.
        if (ec || !current)
            return;
        carry_out(fsm_.resume(eyeballs_events::timer_fired(eyeballs_clock::now())));
        deliver_outcome();
    }

    // First in every handler: true when the race is over, after delivering its
    // outcome if that is still to do (an abort is decided here).
    bool settle()
    {
        if (delivered_)
            return true;
        if (abort_requested_ && !outcome_)
            carry_out(fsm_.resume(eyeballs_events::aborted()));
        return deliver_outcome();
    }

    // Completes the operation once the fsm is done; called from the race's own
    // handlers (or a post), so that the completion may run inline.
    bool deliver_outcome()
    {
        if (!outcome_)
            return false;
        const eyeballs_action done = *outcome_;
        outcome_.reset();
        delivered_ = true;
        report_.addresses_tried = fsm_.addresses_tried();
        if (!done.error) {
            BOOST_ASSERT(fsm_.status(done.attempt) == attempt_status::won);
            BOOST_ASSERT(!destination_.is_open());
            destination_ = std::move(*sockets_[done.attempt]);
        }
        for (std::size_t i = 0; i < sockets_.size(); ++i)
            close(i); // closed already, all of them: the fsm said so, and failures are closed as they come
        if (slot_.is_connected())
            slot_.clear();
        asio::dispatch(asio::append(std::move(handler_), done.error));
        return true;
    }

    happy_eyeballs_fsm fsm_;
    asio::any_io_executor executor_;
    std::vector<std::optional<tcp::socket>> sockets_; // one per address, made when its attempt starts
    asio::steady_timer timer_;
    bool timer_waiting_ = false;
    eyeballs_clock::time_point timer_at_{};
    unsigned timer_generation_ = 0; // which wait is the current one
    tcp::socket& destination_;
    connect_report& report_;
    asio::any_completion_handler<void(error_code)> handler_;
    asio::cancellation_slot slot_;
    std::optional<eyeballs_action> outcome_; // done, not yet delivered
    bool abort_requested_ = false;           // its sockets are closed; the next handler tells the fsm
    bool delivered_ = false;
};

void start_connect_race(const asio::any_io_executor& executor, const tcp::resolver::results_type& endpoints,
                        const connect_timing& timing, tcp::socket& destination, connect_report& report,
                        std::weak_ptr<connect_race>& race, asio::any_completion_handler<void(error_code)> handler)
{
    std::vector<tcp::endpoint> resolved;
    resolved.reserve(endpoints.size());
    for (const auto& entry : endpoints)
        resolved.push_back(entry.endpoint());
    auto started =
        std::make_shared<connect_race>(executor, std::move(resolved), timing, destination, report, std::move(handler));
    race = started;
    started->start();
}

void abort_connect_race(const std::weak_ptr<connect_race>& race) noexcept
{
    if (auto running = race.lock())
        running->abort();
}

} // namespace cartesia::detail
