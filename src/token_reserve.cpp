// cartesia::token_reserve: the driver of reserve_state.hpp on a strand of the
// client's executor. It mints through the client, hands tokens to takers, wipes
// what it discards, and keeps one timer for the next token's end or backoff's end.
#include "request_op.hpp"
#include "reserve_state.hpp"

#include <cartesia/error.hpp>
#include <cartesia/token_reserve.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <openssl/crypto.h>

#include <atomic>
#include <list>
#include <random>

namespace cartesia::detail {
namespace {

double reserve_jitter() noexcept
{
    thread_local std::minstd_rand generator{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

// Overwrites what a token held: a discarded token must not linger in freed memory.
void wipe(token_response& r) noexcept
{
    OPENSSL_cleanse(r.token.data(), r.token.size());
    OPENSSL_cleanse(r.raw_json.data(), r.raw_json.size());
    r = {};
}

// A token whose own expiry is this close (or a quarter of its life, for a short
// one) is not handed out: its taker needs the time to use it.
constexpr std::chrono::seconds expiry_margin{10};

} // namespace

class reserve_impl : public std::enable_shared_from_this<reserve_impl> {
public:
    reserve_impl(client& c, token_request request, token_reserve_options options)
        : client_(c), request_(std::move(request)), options_(options), executor_(c.get_executor()),
          strand_(make_operation_strand(executor_)),
          state_({std::max<std::size_t>(options.size, 1),
                  std::chrono::seconds(std::max<long long>(options.max_age.count(), 1))},
                 &reserve_jitter),
          timer_(strand_)
    {
        diagnostics ignored;
        if (options.size == 0 || options.max_age.count() <= 0)
            invalid_ = error::invalid_argument;
        else
            invalid_ = validate_request(request_, ignored);
    }

    ~reserve_impl()
    {
        std::vector<token_response> discarded;
        state_.close(discarded);
        for (auto& t : discarded)
            wipe(t);
    }

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

    void take(token_handler handler, bool own_executor)
    {
        waiter w{std::move(handler), nullptr, {}, next_waiter_++};
        if (own_executor)
            w.work = std::make_unique<asio::any_completion_executor>(asio::prefer(
                asio::get_associated_executor(w.handler, executor_), asio::execution::outstanding_work.tracked));
        if (invalid_) {
            complete(w, invalid_, {});
            return;
        }
        const auto now = reserve_clock::now();
        expire(now);
        auto answer = state_.take(now);
        switch (answer.kind) {
        case reserve_state<token_response>::take_kind::ready:
            publish();
            complete(w, {}, std::move(*answer.token));
            break;
        case reserve_state<token_response>::take_kind::fail:
            complete(w, answer.error, {});
            break;
        case reserve_state<token_response>::take_kind::wait:
            wait(std::move(w));
            break;
        }
        refill();
    }

    void close()
    {
        std::vector<token_response> discarded;
        const std::size_t waiting = state_.close(discarded);
        for (auto& t : discarded)
            wipe(t);
        BOOST_ASSERT(waiting == waiters_.size());
        (void)waiting;
        fail_waiters(waiters_.size(), asio::error::operation_aborted);
        timer_.cancel();
        publish();
    }

private:
    struct waiter {
        token_handler handler;
        std::unique_ptr<asio::any_completion_executor> work; // the handler's own executor, tracked
        asio::cancellation_slot slot;
        std::uint64_t id = 0;
    };

    // Installed in a waiting take's cancellation slot; hops onto the strand.
    struct cancellation_bridge {
        cancellation_bridge(std::weak_ptr<reserve_impl> r, std::uint64_t waiter) : reserve(std::move(r)), id(waiter) {}
        std::weak_ptr<reserve_impl> reserve;
        std::uint64_t id;
        void operator()(asio::cancellation_type_t type) const
        {
            using ct = asio::cancellation_type;
            if ((type & (ct::terminal | ct::partial)) == ct::none)
                return;
            if (auto self = reserve.lock())
                asio::post(self->strand_, [self, waiter = id] { self->cancel_waiter(waiter); });
        }
    };

    void wait(waiter w)
    {
        waiters_.push_back(std::move(w));
        auto& queued = waiters_.back();
        if (auto slot = asio::get_associated_cancellation_slot(queued.handler); slot.is_connected()) {
            queued.slot = slot;
            queued.slot.emplace<cancellation_bridge>(weak_from_this(), queued.id);
        }
    }

    void cancel_waiter(std::uint64_t id)
    {
        for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
            if (it->id != id)
                continue;
            waiter w = std::move(*it);
            waiters_.erase(it);
            state_.leave();
            complete(w, asio::error::operation_aborted, {});
            return;
        }
        // Served or failed already: the cancellation came too late.
    }

    void fail_waiters(std::size_t n, error_code ec)
    {
        for (std::size_t i = 0; i < n && !waiters_.empty(); ++i) {
            waiter w = std::move(waiters_.front());
            waiters_.pop_front();
            complete(w, ec, {});
        }
    }

    void complete(waiter& w, error_code ec, token_response response)
    {
        if (w.slot.is_connected())
            w.slot.clear();
        if (w.work) {
            asio::dispatch(*w.work, asio::append(std::move(w.handler), ec, std::move(response)));
            return;
        }
        // Never inside async_take: every take runs in a handler posted to the strand.
        asio::dispatch(executor_, asio::append(std::move(w.handler), ec, std::move(response)));
    }

    void expire(reserve_clock::time_point now)
    {
        std::vector<token_response> discarded;
        state_.expire(now, discarded);
        for (auto& t : discarded)
            wipe(t);
        if (!discarded.empty())
            publish();
    }

    // Discards what reached its end, starts the mints due, and sets the timer.
    void refill()
    {
        const auto now = reserve_clock::now();
        expire(now);
        for (std::size_t due = state_.mints_due(now); due > 0; --due)
            mint();
        schedule(state_.next_wakeup(now));
    }

    void mint()
    {
        client_.async_generate_token(
            request_, asio::bind_executor(strand_, [self = shared_from_this()](error_code ec, token_response token) {
                self->minted(ec, std::move(token));
            }));
    }

    void minted(error_code ec, token_response token)
    {
        const auto now = reserve_clock::now();
        if (ec) {
            fail_waiters(state_.mint_failed(ec, now), ec);
            refill();
            return;
        }
        auto usable_until = now + options_.max_age;
        if (token.expires_at) {
            // Handed out only while a quarter of its life (at most 10 s) is left.
            const auto life = *token.expires_at - std::chrono::system_clock::now();
            const auto left = life - std::min<std::chrono::system_clock::duration>(expiry_margin, life / 4);
            usable_until = std::min(usable_until, now + std::chrono::duration_cast<reserve_clock::duration>(left));
        }
        using kind = reserve_state<token_response>::minted_kind;
        switch (state_.minted(token, now, usable_until)) {
        case kind::to_waiter: {
            BOOST_ASSERT(!waiters_.empty());
            waiter w = std::move(waiters_.front());
            waiters_.pop_front();
            complete(w, {}, std::move(token));
            break;
        }
        case kind::kept:
            publish();
            break;
        case kind::discard:
            wipe(token);
            break;
        }
        refill();
    }

    void schedule(reserve_clock::time_point at)
    {
        if (at >= armed_for_ || state_.closed())
            return;
        timer_.expires_at(at);
        armed_for_ = reserve_clock::time_point::max(); // until the wait is pending
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

    client& client_;
    const token_request request_;
    const token_reserve_options options_;
    error_code invalid_;
    asio::any_io_executor executor_;
    strand_type strand_;
    reserve_state<token_response> state_;
    std::list<waiter> waiters_; // first come, first served
    std::uint64_t next_waiter_ = 1;
    asio::steady_timer timer_;
    reserve_clock::time_point armed_for_ = reserve_clock::time_point::max();
    std::atomic<std::size_t> ready_count_{0};
};

const asio::any_io_executor& reserve_executor(const reserve_impl& impl) noexcept
{
    return impl.executor();
}

void start_take(const std::shared_ptr<reserve_impl>& impl, token_handler handler, bool handler_has_own_executor)
{
    asio::post(impl->strand(), [impl, handler = std::move(handler), handler_has_own_executor]() mutable {
        impl->take(std::move(handler), handler_has_own_executor);
    });
}

} // namespace cartesia::detail

namespace cartesia {

token_reserve::token_reserve(client& c, token_request request, token_reserve_options options)
    : impl_(std::make_shared<detail::reserve_impl>(c, std::move(request), options))
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
    return impl_->executor();
}

} // namespace cartesia
