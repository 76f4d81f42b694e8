// cartesia::token_reserve: the driver of reserve_state.hpp on a strand of the
// client's executor. It mints through the client, hands tokens to takers, wipes
// what it discards, and keeps one timer for the next token's end or backoff's end.
#include "client_impl.hpp"
#include "erase_token.hpp"
#include "request_op.hpp"
#include "reserve_state.hpp"
#include "token_completion.hpp"

#include <cartesia/detail/client_access.hpp>
#include <cartesia/error.hpp>
#include <cartesia/token_reserve.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <iterator>
#include <list>
#include <new>
#include <utility>

namespace cartesia::detail {
namespace {

// No token lives longer (expires_in is at most 3600 s): a longer max_age is a mistake.
constexpr std::chrono::seconds longest_max_age{3600};
// More would be a mistake too: as many API calls at once on construction, and as
// many again whenever the reserve refills after being idle.
constexpr std::size_t largest_size = 1024;

using state_type = reserve_state<token_response>;

std::shared_ptr<client_impl> shared_state_of(const client& c) noexcept
{
    auto impl = client_access::impl(c);
    BOOST_ASSERT(impl); // not a moved-from client
    return impl;
}

// What the state works with when the options are bad (every take fails then, and
// nothing is minted): still a valid state.
state_type::settings settings_of(const token_reserve_options& options) noexcept
{
    return {std::clamp<std::size_t>(options.size, 1, largest_size),
            std::clamp<reserve_clock::duration>(options.max_age, std::chrono::seconds(1), longest_max_age)};
}

// Steps that must all run even if one throws (bad_alloc while queuing a completion,
// which loses that handler, as in Asio): the bookkeeping goes on, and the first
// exception is rethrown once the steps are done.
class first_exception {
public:
    template <class Step> void attempt(Step&& step) noexcept
    {
        try {
            std::forward<Step>(step)();
        } catch (...) {
            if (!first_)
                first_ = std::current_exception();
        }
    }
    void rethrow() const
    {
        if (first_)
            std::rethrow_exception(first_);
    }

private:
    std::exception_ptr first_;
};

} // namespace

// One take, from async_take to its completion. Shared with the cancellation bridge,
// which the initiation installs on the caller's thread, so that a cancellation
// emitted before the take reaches the strand is not lost.
struct pending_take {
    pending_take(token_handler h, std::unique_ptr<asio::any_completion_executor> w)
        : handler(std::move(h)), work(std::move(w))
    {
    }
    token_handler handler;
    std::unique_ptr<asio::any_completion_executor> work; // the handler's own executor, tracked
    asio::cancellation_slot slot;
    // Set by the bridge on the caller's thread: a take that reaches the strand
    // cancelled already is not served, even when a token is ready.
    std::atomic<bool> cancel_requested{false};
    // On the strand: where it waits in the queue, if it does; whether it is done.
    std::optional<std::list<std::shared_ptr<pending_take>>::iterator> queued;
    bool completed = false;
};

// A take alone in a list node, made on the caller's thread.
using take_node = std::list<std::shared_ptr<pending_take>>;

class reserve_impl : public std::enable_shared_from_this<reserve_impl> {
public:
    reserve_impl(const client& c, token_request request, token_reserve_options options)
        : client_(shared_state_of(c)), request_(request), executor_(client_executor(*client_)),
          strand_(make_operation_strand(executor_)), settings_(settings_of(options)), state_(settings_, &random_jitter),
          timer_(strand_)
    {
        diagnostics ignored;
        if (options.size == 0 || options.size > largest_size || options.max_age.count() <= 0 ||
            options.max_age > longest_max_age)
            invalid_ = error::invalid_argument;
        else
            invalid_ = validate_request(request_, ignored);
    }

    ~reserve_impl() { state_.close(erase); }

    reserve_impl(const reserve_impl&) = delete;
    reserve_impl& operator=(const reserve_impl&) = delete;

    void start()
    {
        if (!invalid_)
            asio::post(strand_, [self = shared_from_this()] { self->refill(); });
    }

    const asio::any_io_executor& executor() const noexcept { return executor_; }
    const strand_type& strand() const noexcept { return strand_; }
    std::size_t ready() const noexcept { return ready_count_.load(std::memory_order_relaxed); }

    // --- on the strand ---------------------------------------------------------

    // `node` holds the take alone: waiting splices it into the queue, which
    // never allocates, so that the state's count of waiters and the queue agree.
    void take(take_node node)
    {
        const auto& p = node.front();
        if (invalid_) {
            complete(*p, invalid_, {});
            return;
        }
        if (p->cancel_requested.load(std::memory_order_relaxed)) {
            complete(*p, asio::error::operation_aborted, {});
            return;
        }
        const auto now = reserve_clock::now();
        expire(now);
        auto answer = state_.take(now);
        switch (answer.kind) {
        case state_type::take_kind::ready: {
            publish();
            first_exception failure; // rethrown after the next step is queued
            failure.attempt([&] { complete(*p, {}, std::move(*answer.token)); });
            // The replacement is started after the taker's completion, posted
            // first, has run: starting a mint writes a request (TLS and all), and
            // the taker should not wait for that.
            check_waiters();
            asio::post(strand_, [self = shared_from_this()] { self->refill(); });
            failure.rethrow();
            return;
        }
        case state_type::take_kind::fail:
            complete(*p, answer.error, {});
            break;
        case state_type::take_kind::wait:
            p->queued = node.begin();
            waiters_.splice(waiters_.end(), node);
            break;
        }
        check_waiters();
        refill();
    }

    // The bridge's: a waiting take leaves the queue. One already served, failed
    // or not yet queued (impossible: its take was posted before) is left alone.
    void cancel(const std::shared_ptr<pending_take>& p)
    {
        if (p->completed || !p->queued)
            return;
        waiters_.erase(*p->queued);
        p->queued.reset();
        state_.leave();
        check_waiters();
        complete(*p, asio::error::operation_aborted, {});
    }

    void close()
    {
        [[maybe_unused]] const std::size_t waiting = state_.close(erase);
        // Out of the queue at once, as the state counts them no more.
        BOOST_ASSERT(waiting == waiters_.size());
        std::list<std::shared_ptr<pending_take>> failing;
        failing.splice(failing.end(), waiters_);
        first_exception failure; // rethrown once the takes are answered
        failure.attempt([&] {
            // The mints in flight end promptly, in minted(), which discards them.
            // Emitted here, on this strand: it is their handlers' executor, where the
            // client's operations clear the slot (a signal must not be emitted on one
            // thread while it is cleared on another).
            for (const auto& m : mints_)
                m->signal.emit(asio::cancellation_type::terminal);
            timer_.cancel();
        });
        publish();
        failure.attempt([&] { fail(failing, asio::error::operation_aborted); });
        failure.rethrow();
    }

private:
    struct mint_in_flight {
        asio::cancellation_signal signal;
    };

    // What the state calls on each token it discards.
    static constexpr auto erase = [](token_response& t) noexcept { erase_token(t); };

    void check_waiters() const noexcept { BOOST_ASSERT(state_.waiting() == waiters_.size()); }

    // What a failed mint fails: the oldest takes, at the front of the queue, and
    // the youngest, at its back (the state counts none of them already). Out of the
    // queue first, then completed by fail().
    void fail_waiters(state_type::failed_waiters failed, error_code ec)
    {
        BOOST_ASSERT(failed.total() <= waiters_.size());
        std::list<std::shared_ptr<pending_take>> failing;
        failing.splice(failing.end(), waiters_, waiters_.begin(),
                       std::next(waiters_.begin(), static_cast<std::ptrdiff_t>(failed.oldest)));
        failing.splice(failing.end(), waiters_, std::prev(waiters_.end(), static_cast<std::ptrdiff_t>(failed.youngest)),
                       waiters_.end());
        fail(failing, ec);
    }

    // Completes every take of `failing`, out of the queue already, even if completing
    // one throws: the queue and the state cannot be left apart, nor the others
    // unanswered.
    void fail(std::list<std::shared_ptr<pending_take>>& failing, error_code ec)
    {
        for (const auto& p : failing)
            p->queued.reset();
        first_exception failure;
        for (const auto& p : failing)
            failure.attempt([&] { complete(*p, ec, {}); });
        failure.rethrow();
    }

    // Posted, never run here: a take completes outside async_take, and a handler
    // that throws does not interrupt the bookkeeping of the step that served it.
    void complete(pending_take& p, error_code ec, token_response response)
    {
        BOOST_ASSERT(!p.completed);
        p.completed = true;
        // Through the client's executor to the handler's own: post keeps the work of
        // that one counted meanwhile, and `work` may go. The slot is cleared there,
        // where the caller may emit, not here on the reserve's strand (the bridge,
        // holding weak references only, is harmless until then).
        const auto handler_executor = asio::get_associated_executor(p.handler, executor_);
        asio::post(executor_,
                   asio::bind_executor(handler_executor, token_completion{std::move(p.handler), p.slot, ec,
                                                                          token_in_transit(std::move(response))}));
        p.work.reset();
    }

    void expire(reserve_clock::time_point now) noexcept
    {
        if (state_.expire(now, erase) > 0)
            publish();
    }

    // The takes at the front of the queue whose cancellation was requested, on its
    // way here from the caller's thread, are not served: they leave the queue now,
    // so that the token minted goes to a take that still wants it, not to one whose
    // result is dropped. Only the front is looked at (a mint serves the front); the
    // others leave when their cancellation arrives.
    void drop_cancelled_waiters()
    {
        while (!waiters_.empty() && waiters_.front()->cancel_requested.load(std::memory_order_relaxed))
            cancel(std::shared_ptr(waiters_.front())); // a copy: cancel() erases the queue's
    }

    // Discards what reached its end, starts the mints due, and sets the timer.
    void refill()
    {
        const auto now = reserve_clock::now();
        expire(now);
        // One epoch for the batch: if starting them fails, that is one failure.
        const auto epoch = state_.mint_epoch();
        // Every mint counted due is started (or failed), even if failing the
        // takers of one throws: one counted but never started would be waited for.
        first_exception failure;
        for (std::size_t due = state_.mints_due(now); due > 0; --due)
            failure.attempt([&] { mint(epoch); });
        // Nobody waits for nothing: a waiting take has a mint under way to serve it.
        BOOST_ASSERT(state_.waiting() == 0 || state_.in_flight() > 0 || state_.closed());
        schedule(state_.next_wakeup(reserve_clock::now()));
        failure.rethrow();
    }

    void mint(std::uint64_t epoch)
    {
        std::optional<std::list<std::shared_ptr<mint_in_flight>>::iterator> registered;
        try {
            registered = mints_.insert(mints_.end(), std::make_shared<mint_in_flight>());
            const auto in_flight = *registered;
            auto done = asio::bind_cancellation_slot(
                (*in_flight)->signal.slot(), asio::bind_executor(strand_, [self = shared_from_this(), in_flight,
                                                                           epoch](error_code ec, token_response token) {
                    self->mints_.erase(in_flight);
                    self->minted(ec, std::move(token), epoch);
                }));
            const bool own_executor = has_own_executor(done, client_executor(*client_));
            start_client_generate_token(client_, token_handler(std::move(done)), own_executor, request_, nullptr);
        } catch (const std::bad_alloc&) {
            // Counted in flight already: it must end, as a failure the backoff slows.
            if (registered)
                mints_.erase(*registered);
            const auto no_memory = make_error_code(boost::system::errc::not_enough_memory);
            fail_waiters(state_.mint_failed(no_memory, reserve_clock::now(), epoch), no_memory);
        }
    }

    // A mint's result: handed over, then the reserve's next step (a completion that
    // could not be queued, bad_alloc, is rethrown as Asio would, after that step).
    void minted(error_code ec, token_response token, std::uint64_t epoch)
    {
        first_exception failure;
        failure.attempt([&] { drop_cancelled_waiters(); });
        failure.attempt([&] { hand_over(ec, std::move(token), epoch); });
        check_waiters();
        // Not cancelled by close() (the state would be closed): the client was closed
        // or destroyed, and nothing will ever be minted again. The reserve never
        // cancels a mint otherwise, and the client reports operation_aborted only
        // for a cancellation or its own end (reference.md, "Error codes"); a
        // deadline is error::timeout.
        if (ec == asio::error::operation_aborted && !state_.closed())
            close();
        else
            refill();
        failure.rethrow();
    }

    void hand_over(error_code ec, token_response token, std::uint64_t epoch)
    {
        const auto now = reserve_clock::now();
        if (ec) {
            fail_waiters(state_.mint_failed(ec, now, epoch), ec);
            return;
        }
        std::optional<reserve_clock::duration> life;
        if (token.expires_at)
            life = std::chrono::duration_cast<reserve_clock::duration>(*token.expires_at -
                                                                       std::chrono::system_clock::now());
        switch (state_.minted(token, now, usable_until(now, settings_.max_age, life))) {
        case state_type::minted_kind::to_waiter: {
            BOOST_ASSERT(!waiters_.empty());
            auto p = std::move(waiters_.front());
            waiters_.pop_front();
            p->queued.reset();
            complete(*p, {}, std::move(token));
            break;
        }
        case state_type::minted_kind::kept:
            publish();
            break;
        case state_type::minted_kind::discard:
            erase_token(token);
            break;
        }
    }

    // One timer, moved earlier when an earlier wakeup is due; a later one is left
    // to the wait pending, whose refill() computes the next.
    void schedule(reserve_clock::time_point at)
    {
        if (at >= armed_for_ || state_.closed())
            return;
        timer_.expires_at(at);                         // cancels the wait pending, if any: its handler sees the error
        armed_for_ = reserve_clock::time_point::max(); // until the wait is pending: it may fail to start
        timer_.async_wait([weak = weak_from_this()](error_code ec) {
            auto self = weak.lock();
            if (!self || ec)
                return; // moved earlier, or closed
            self->armed_for_ = reserve_clock::time_point::max();
            self->refill();
        });
        armed_for_ = at;
    }

    void publish() noexcept { ready_count_.store(state_.ready(), std::memory_order_relaxed); }

    const std::shared_ptr<client_impl> client_;
    const token_request request_;
    error_code invalid_;
    asio::any_io_executor executor_;
    strand_type strand_;
    const state_type::settings settings_;
    state_type state_;
    std::list<std::shared_ptr<pending_take>> waiters_; // first come, first served
    std::list<std::shared_ptr<mint_in_flight>> mints_; // their cancellation, for close()
    asio::steady_timer timer_;
    reserve_clock::time_point armed_for_ = reserve_clock::time_point::max();
    std::atomic<std::size_t> ready_count_{0};
};

namespace {

// Installed in a take's cancellation slot by the initiation; hops onto the strand.
// A waiting take has no side effect to undo, so every type of cancellation is
// honoured.
struct take_cancellation {
    std::weak_ptr<reserve_impl> reserve;
    std::weak_ptr<pending_take> take;
    void operator()(asio::cancellation_type_t type) const
    {
        if (type == asio::cancellation_type::none)
            return;
        auto self = reserve.lock();
        auto p = take.lock();
        if (!self || !p)
            return;
        p->cancel_requested.store(true, std::memory_order_relaxed);
        asio::post(self->strand(), [self, p] { self->cancel(p); });
    }
};

} // namespace

const asio::any_io_executor& reserve_executor(const reserve_impl& impl) noexcept
{
    return impl.executor();
}

void start_take(const std::shared_ptr<reserve_impl>& impl, token_handler handler, bool handler_has_own_executor)
{
    std::unique_ptr<asio::any_completion_executor> work;
    if (handler_has_own_executor)
        work = std::make_unique<asio::any_completion_executor>(asio::prefer(
            asio::get_associated_executor(handler, impl->executor()), asio::execution::outstanding_work.tracked));
    auto p = std::make_shared<pending_take>(std::move(handler), std::move(work));
    // Before the post: from here on a cancellation reaches the take, wherever it is.
    if (auto slot = asio::get_associated_cancellation_slot(p->handler); slot.is_connected()) {
        p->slot = slot;
        p->slot.emplace<take_cancellation>(take_cancellation{impl, p});
    }
    take_node node{p};
    asio::post(impl->strand(), [impl, node = std::move(node)]() mutable { impl->take(std::move(node)); });
}

} // namespace cartesia::detail

namespace cartesia {

token_reserve::token_reserve(client& c, token_request request, token_reserve_options options)
    : impl_(std::make_shared<detail::reserve_impl>(c, request, options))
{
    impl_->start();
}

token_reserve::~token_reserve() // NOLINT(bugprone-exception-escape): as ~client
{
    if (impl_)
        close();
}

std::size_t token_reserve::ready() const noexcept
{
    return impl_ ? impl_->ready() : 0;
}

void token_reserve::close()
{
    if (!impl_)
        return;
    boost::asio::post(impl_->strand(), [impl = impl_] { impl->close(); });
}

token_reserve::executor_type token_reserve::get_executor() const noexcept
{
    BOOST_ASSERT(impl_); // not a moved-from reserve
    return impl_->executor();
}

} // namespace cartesia
