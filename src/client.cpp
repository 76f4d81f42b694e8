// cartesia::client: requests (pooled_operation) borrow connections from the pool
// (client_impl). All shared state lives on one strand.
//
// A request's attempt: acquire a connection (an idle one, else a new one if the
// pool may grow, else wait in a FIFO queue), run one exchange, give the connection
// back. A new request that has to wait does so as a plain object, and gets its
// coroutine when its wait ends (a connection, or room to open one, handed to it;
// its deadline; a cancellation). A reused connection that fails before any
// response byte was probably closed by the server while idle: the request moves to
// another connection within the same attempt, so that this never costs a retry or
// surfaces as an error.
#include "token_operation.hpp"

#include <cartesia/client.hpp>
#include <cartesia/detail/client_access.hpp>
#include <cartesia/error.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/intrusive/list.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <list>
#include <optional>

namespace cartesia::detail {
namespace {

struct ssl_session_deleter {
    void operator()(SSL_SESSION* session) const noexcept { SSL_SESSION_free(session); }
};
using ssl_session_ptr = std::unique_ptr<SSL_SESSION, ssl_session_deleter>;

class pooled_operation;

// What the pool knows of a request it may have to cancel (on close()). Intrusive:
// tracking a request costs no allocation. auto_unlink: a request destroyed without
// finishing (its io_context destroyed first) leaves the list by itself.
using tracked_hook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class tracked_operation : public tracked_hook {
public:
    virtual void cancel_for_close() = 0;

protected:
    ~tracked_operation() = default;
};

// What the pool knows of a request's attempt in flight: when its deadline passes.
// Every attempt of a client has the same timeout, so attempts expire in the order
// they started: the pool keeps them in a list in that order, one timer serves
// them all, and an attempt that ends in time just leaves the list (no timer to
// cancel, no cancelled wait to complete).
using deadline_hook = boost::intrusive::list_base_hook<boost::intrusive::tag<struct deadline_tag>,
                                                       boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class timed_attempt : public deadline_hook {
public:
    asio::steady_timer::time_point deadline;
    virtual void expire() = 0;

protected:
    ~timed_attempt() = default;
};

struct pooled_connection {
    pooled_connection(const strand_type& strand, asio::ssl::context& tls) : link(strand, tls) {}

    connection link;
    asio::steady_timer::time_point idle_until; // while idle: when the pool closes it
    std::size_t exchanges = 0;
};

using connection_iterator = std::list<pooled_connection>::iterator;

// A request waiting in the pool's FIFO queue. Intrusive, so that a request leaving
// the queue early (deadline, cancellation) costs O(1) even with thousands queued.
using waiter_hook = boost::intrusive::list_base_hook<boost::intrusive::tag<struct waiter_tag>,
                                                     boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class waiting_request : public waiter_hook {
public:
    // A connection for this request, or nullopt to try again (the pool has room
    // to open one now). On the strand.
    virtual void wake(std::optional<connection_iterator> handed_over) = 0;

protected:
    ~waiting_request() = default;
};

} // namespace

class client_impl : public std::enable_shared_from_this<client_impl> {
public:
    client_impl(asio::any_io_executor executor, asio::ssl::context& tls, client_config config)
        : executor_(std::move(executor)), strand_(make_operation_strand(executor_)), tls_(tls),
          config_(std::move(config))
    {
        // Checked once; a bad configuration fails each operation, before any I/O.
        config_error_ = validate(config_, {}, where_, config_diag_);
        if (!config_error_)
            request_head_ = serialize_request_head(config_, where_, /*keep_alive=*/true);
    }

    const asio::any_io_executor& executor() const noexcept { return executor_; }
    const strand_type& strand() const noexcept { return strand_; }
    const client_config& config() const noexcept { return config_; }
    const endpoint& where() const noexcept { return where_; }
    const std::string& request_head() const noexcept { return request_head_; }
    bool closed() const noexcept { return closed_; }
    const diagnostics* config_problem() const noexcept { return config_error_ ? &config_diag_ : nullptr; }

    // --- on the strand ---------------------------------------------------------

    void track(tracked_operation& op) { active_.push_back(op); }
    void untrack(tracked_operation& op) { active_.erase(active_.iterator_to(op)); }

    // An idle connection, most recently used first (its TLS state is warmest).
    std::optional<connection_iterator> take_idle()
    {
        if (idle_.empty())
            return std::nullopt;
        auto it = idle_.back();
        idle_.pop_back();
        return it;
    }

    // A new connection slot, when the pool may grow.
    std::optional<connection_iterator> add_connection()
    {
        if (connections_.size() >= config_.max_connections)
            return std::nullopt;
        connections_.emplace_back(strand_, tls_);
        ++connections_opened_;
        return std::prev(connections_.end());
    }

    void remove_connection(connection_iterator it)
    {
        connections_.erase(it);
        wake_next_waiter(std::nullopt); // the pool has room for a new connection
    }

    // Returns a connection after an exchange: to the next waiter, to the idle set,
    // or closed when the server does not keep it alive.
    void release(connection_iterator it);

    // Deadlines are watched in the order they are given, which is their order:
    // see timed_attempt.
    void watch_deadline(timed_attempt& attempt)
    {
        deadlines_.push_back(attempt);
        if (!deadline_timer_.armed)
            arm(deadline_timer_, attempt.deadline, &client_impl::expire_deadlines);
    }

    // A new request may start at once: nobody is queued before it, and a
    // connection is idle or may be opened.
    bool has_room_for_newcomer() const noexcept
    {
        return waiters_.empty() && (!idle_.empty() || connections_.size() < config_.max_connections);
    }

    void enqueue(waiting_request& request) { waiters_.push_back(request); }
    static void dequeue(waiting_request& request) { request.waiter_hook::unlink(); }

    // A request that ends may have been woken to open a connection (room in the
    // pool) and not have done so: pass the chance on, or the next waiter, and every
    // request queued behind it, would wait for a wake-up that never comes. A spare
    // wake-up only sends a request back to the queue.
    void offer_room()
    {
        if (connections_.size() < config_.max_connections)
            wake_next_waiter(std::nullopt);
    }

    void resume_session_on(connection& link)
    {
        if (session_)
            SSL_set_session(link.native_handle(), session_.get());
    }

    // After an exchange: keep the newest resumable session (with TLS 1.3 the ticket
    // arrives after the handshake, so only now is there one to keep).
    void remember_session(connection& link)
    {
        SSL* handle = link.native_handle();
        if (SSL_session_reused(handle) && session_)
            return;
        ssl_session_ptr session(SSL_get1_session(handle));
        if (session && SSL_SESSION_is_resumable(session.get()))
            session_ = std::move(session);
    }

    void close();

    std::size_t connections_opened() const noexcept { return connections_opened_; }

    const tcp::resolver::results_type* cached_endpoints() const noexcept
    {
        return endpoints_.empty() ? nullptr : &endpoints_;
    }
    void cache_endpoints(tcp::resolver::results_type endpoints) { endpoints_ = std::move(endpoints); }
    void forget_endpoints() { endpoints_ = {}; }

private:
    void wake_next_waiter(std::optional<connection_iterator> handed_over);
    // One of the pool's two timers, each set for the earliest of many times (the
    // first deadline, the oldest idle connection) and never set again while a wait
    // is pending: no wait is ever cancelled, except by close().
    struct pool_timer {
        explicit pool_timer(const strand_type& strand) : timer(strand) {}
        asio::steady_timer timer;
        bool armed = false;
    };
    void arm(pool_timer& which, asio::steady_timer::time_point at, void (client_impl::*on_expiry)());
    void make_idle(connection_iterator it);
    void close_idle_connections();
    void expire_deadlines();

    asio::any_io_executor executor_;
    strand_type strand_;
    asio::ssl::context& tls_;
    const client_config config_;
    endpoint where_;
    std::string request_head_; // the same for every request
    error_code config_error_;
    diagnostics config_diag_;

    std::list<pooled_connection> connections_;
    // Idle connections, in the order they became idle: requests take the most
    // recent (its TLS state is warmest), the idle timeout closes the oldest. One
    // timer, set for the oldest, serves them all: a connection that is taken
    // again cancels nothing.
    std::vector<connection_iterator> idle_;
    pool_timer idle_timer_{strand_};
    boost::intrusive::list<waiting_request, boost::intrusive::base_hook<waiter_hook>,
                           boost::intrusive::constant_time_size<false>>
        waiters_;
    boost::intrusive::list<timed_attempt, boost::intrusive::base_hook<deadline_hook>,
                           boost::intrusive::constant_time_size<false>>
        deadlines_;
    pool_timer deadline_timer_{strand_};
    boost::intrusive::list<tracked_operation, boost::intrusive::constant_time_size<false>> active_;
    tcp::resolver::results_type endpoints_;
    ssl_session_ptr session_;
    std::size_t connections_opened_ = 0;
    bool closed_ = false;
};

namespace {

class pooled_operation final : public token_operation,
                               public tracked_operation,
                               public timed_attempt,
                               public waiting_request {
public:
    pooled_operation(std::shared_ptr<client_impl> pool, token_handler handler, bool handler_has_own_executor,
                     const token_request& request, diagnostics* diag)
        : token_operation(std::move(handler), handler_has_own_executor, pool->executor(), pool->strand(),
                          pool->config(), diag),
          pool_(std::move(pool)), request_tail_(serialize_request_tail(request))
    {
    }

    void wake(std::optional<connection_iterator> handed_over) override
    {
        handed_over_ = handed_over;
        queued_ = false;
        wakeup_->cancel();
    }

    void cancel_for_close() override { cancel("the client was closed"); }

    void expire() override { deadline_passed(); }

private:
    std::shared_ptr<pooled_operation> shared_self()
    {
        return std::static_pointer_cast<pooled_operation>(shared_from_this());
    }

    void launch() override
    {
        asio::dispatch(strand_, [self = shared_self()] { self->launch_on_strand(); });
    }

    // A request that finds every connection busy waits in the queue as this object
    // and one pending timer wait, which owns it: no coroutine frames until a
    // connection is handed over (10,000 requests queued on a pool of 64 then cost
    // a fraction of the memory).
    void launch_on_strand()
    {
        pool_->track(*this); // from now on close() can reach this request
        if (pool_->closed() || pool_->has_room_for_newcomer()) {
            spawn();
            return;
        }
        begin_attempt(1); // the wait counts against the deadline
        // The wait owns the request, so that destroying the io_context destroys both.
        // Whatever ends it (a connection or room handed over, the deadline, a
        // cancellation, close()), the retry loop takes it from there: it retries
        // after a deadline, as it would for a request that waited in acquire().
        join_queue().async_wait([self = shared_self()](error_code) {
            self->queued_ = false;
            self->spawn();
        });
    }

    // Joins the pool's queue; returns the timer to sleep on, which the pool cancels
    // to wake this request (wake()), and so does abort_attempt().
    asio::steady_timer& join_queue()
    {
        queued_ = true;
        handed_over_.reset();
        pool_->enqueue(*this);
        if (!wakeup_)
            wakeup_.emplace(strand_); // only requests that ever wait need one
        wakeup_->expires_at(asio::steady_timer::time_point::max());
        return *wakeup_;
    }

    asio::awaitable<void> attempt(attempt_outcome& facts, token_response& response) override
    {
        for (;;) {
            // Handed over while this request waited unstarted, else mostly an idle
            // one at hand: either spares the coroutine frame of acquire().
            auto it = std::exchange(handed_over_, std::nullopt);
            if (!it && !must_stop())
                it = pool_->take_idle();
            if (!it)
                it = co_await acquire(facts); // operation_aborted when it must stop
            if (!it)
                co_return; // facts.ec says why
            if (must_stop()) {
                pool_->release(*it); // unused: still good for others
                facts.ec = asio::error::operation_aborted;
                co_return;
            }
            current_ = *it;
            const std::size_t previous_exchanges = (*it)->exchanges;
            facts.ec = co_await (*it)->link.exchange(pool_->request_head(), request_tail_.view(), config_, facts,
                                                     response, diag_);
            ++(*it)->exchanges;
            current_.reset();
            const bool stale = facts.ec && !facts.response_started && previous_exchanges > 0 && !cancelled() &&
                               !timed_out() && !pool_->closed();
            if (!facts.ec || facts.response_started)
                pool_->remember_session((*it)->link);
            pool_->release(*it);
            if (!stale)
                co_return;
            // The server closed this idle connection; not the request's fault.
            facts = {};
            const unsigned attempts = diag_.attempts();
            diag_.clear();
            diagnostics_access::set_attempts(diag_, attempts);
        }
    }

    // A connection for one exchange, or nullopt with facts.ec set.
    asio::awaitable<std::optional<connection_iterator>> acquire(attempt_outcome& facts)
    {
        for (;;) {
            // Also after a wake-up: a deadline or a cancellation may have come
            // between the pool waking this request and the request resuming.
            if (must_stop()) {
                facts.ec = asio::error::operation_aborted;
                co_return std::nullopt;
            }
            if (auto idle = pool_->take_idle())
                co_return idle;
            if (auto added = pool_->add_connection()) {
                current_ = *added;
                facts.ec = co_await open(**added);
                current_.reset();
                if (facts.ec) {
                    pool_->remove_connection(*added);
                    co_return std::nullopt;
                }
                co_return added;
            }
            // Every connection is busy: wait, first come first served.
            co_await join_queue().async_wait(nothrow_awaitable);
            if (std::exchange(queued_, false)) { // woken by a deadline, a cancellation or close()
                facts.ec = asio::error::operation_aborted;
                co_return std::nullopt;
            }
            if (handed_over_)
                co_return std::exchange(handed_over_, std::nullopt);
        }
    }

    asio::awaitable<error_code> open(pooled_connection& pooled)
    {
        const endpoint& where = pool_->where();
        tcp::resolver::results_type endpoints;
        if (const auto* cached = pool_->cached_endpoints()) {
            endpoints = *cached;
        } else if (auto ec = co_await resolve_endpoints(where, resolver_, strand_, endpoints, diag_)) {
            co_return ec;
        }
        pool_->cache_endpoints(endpoints);
        pool_->resume_session_on(pooled.link);
        error_code ec = co_await pooled.link.open(where, endpoints, diag_);
        if (ec && ec.category() != asio::error::get_ssl_category())
            pool_->forget_endpoints(); // resolve afresh next time
        co_return ec;
    }

    // True when the attempt must end now. A closed pool also cancels the request,
    // so that the retry loop stops instead of backing off and trying again.
    bool must_stop()
    {
        if (pool_->closed())
            cancel("the client was closed");
        return cancelled() || timed_out();
    }

    void start_deadline(asio::steady_timer::time_point at) override
    {
        deadline = at;
        pool_->watch_deadline(*this);
    }

    void stop_deadline() override { deadline_hook::unlink(); }

    void abort_attempt() override
    {
        if (queued_) {
            client_impl::dequeue(*this); // so that no connection is handed to it any more
            wakeup_->cancel();           // ends its wait, with queued_ still set
        }
        if (resolver_)
            resolver_->cancel();
        if (current_)
            (*current_)->link.abort();
    }

    void on_finish() override
    {
        pool_->untrack(*this);
        if (handed_over_) // handed over, then cancelled before it could be used
            pool_->release(*std::exchange(handed_over_, std::nullopt));
        pool_->offer_room();
    }

    std::shared_ptr<client_impl> pool_;
    const request_tail request_tail_;
    std::optional<asio::steady_timer> wakeup_; // a waiter sleeps on it; the pool cancels it to wake
    std::unique_ptr<tcp::resolver> resolver_;  // made when a name needs resolving
    std::optional<connection_iterator> current_;
    std::optional<connection_iterator> handed_over_;
    // In the pool's queue (its coroutine asleep in acquire(), or none yet), and not
    // woken by the pool: still set when its wait ends, the wait was aborted.
    bool queued_ = false;
};

} // namespace

void client_impl::release(connection_iterator it)
{
    if (closed_ || !it->link.reusable()) {
        it->link.close_quietly(); // a no-op for the TLS state of an aborted one
        remove_connection(it);
        return;
    }
    if (!waiters_.empty()) {
        wake_next_waiter(it);
        return;
    }
    make_idle(it);
}

void client_impl::wake_next_waiter(std::optional<connection_iterator> handed_over)
{
    if (waiters_.empty()) {
        if (handed_over) // nobody wants it after all
            make_idle(*handed_over);
        return;
    }
    waiting_request& next = waiters_.front();
    waiters_.pop_front();
    next.wake(handed_over);
}

void client_impl::make_idle(connection_iterator it)
{
    it->idle_until = time_after(config_.idle_timeout);
    idle_.push_back(it);
    if (!idle_timer_.armed)
        arm(idle_timer_, it->idle_until, &client_impl::close_idle_connections);
}

void client_impl::arm(pool_timer& which, asio::steady_timer::time_point at, void (client_impl::*on_expiry)())
{
    which.armed = true;
    which.timer.expires_at(at);
    which.timer.async_wait([weak = weak_from_this(), &which, on_expiry](error_code ec) {
        auto self = weak.lock();
        if (!self)
            return; // and with it the timer
        which.armed = false;
        if (!ec) // not cancelled by close()
            (self.get()->*on_expiry)();
    });
}

// Closes the connections idle for idle_timeout: the oldest ones, at the front.
void client_impl::close_idle_connections()
{
    const auto now = asio::steady_timer::clock_type::now();
    const auto first_kept =
        std::find_if(idle_.begin(), idle_.end(), [now](connection_iterator c) { return c->idle_until > now; });
    for (auto expired = idle_.begin(); expired != first_kept; ++expired) {
        (*expired)->link.close_quietly();
        connections_.erase(*expired);
    }
    idle_.erase(idle_.begin(), first_kept);
    if (!idle_.empty())
        arm(idle_timer_, idle_.front()->idle_until, &client_impl::close_idle_connections);
}

// Attempts that ended in time have left the list: the timer may find the first
// deadline still ahead, and then only waits again.
void client_impl::expire_deadlines()
{
    const auto now = asio::steady_timer::clock_type::now();
    while (!deadlines_.empty() && deadlines_.front().deadline <= now) {
        timed_attempt& expired = deadlines_.front();
        deadlines_.pop_front();
        expired.expire();
    }
    if (!deadlines_.empty())
        arm(deadline_timer_, deadlines_.front().deadline, &client_impl::expire_deadlines);
}

void client_impl::close()
{
    if (closed_)
        return;
    closed_ = true;
    // Cancelling only closes sockets and cancels waits: requests leave the list
    // later, when they complete (a queued one once its cancelled wait has spawned
    // its coroutine), so iterating it here is safe.
    for (auto& op : active_)
        op.cancel_for_close();
    for (auto it : idle_) {
        it->link.abort();
        connections_.erase(it);
    }
    idle_.clear();
    idle_timer_.timer.cancel();
    deadline_timer_.timer.cancel(); // each request leaves its deadline as it finishes
    // Busy connections are aborted by their requests' cancellation and removed
    // when given back.
}

const asio::any_io_executor& client_executor(const client_impl& impl) noexcept
{
    return impl.executor();
}

void start_client_generate_token(const std::shared_ptr<client_impl>& impl, token_handler handler,
                                 bool handler_has_own_executor, token_request request, diagnostics* diag)
{
    diagnostics local_diag;
    diagnostics& checked = diag ? *diag : local_diag;
    checked.clear();
    error_code ec;
    if (const diagnostics* problem = impl->config_problem()) {
        checked = *problem;
        ec = error::invalid_argument;
    } else {
        ec = validate_request(request, checked);
    }
    if (ec) {
        asio::post(impl->executor(), asio::append(std::move(handler), ec, token_response{}));
        return;
    }
    std::make_shared<pooled_operation>(impl, std::move(handler), handler_has_own_executor, request, diag)->start();
}

} // namespace cartesia::detail

namespace cartesia {

std::size_t detail::client_access::connections_opened(const client& c)
{
    return c.impl_->connections_opened();
}

client::client(executor_type executor, boost::asio::ssl::context& tls, client_config config)
    : impl_(std::make_shared<detail::client_impl>(std::move(executor), tls, std::move(config)))
{
}

// close() allocates the function it dispatches to the strand; should that
// allocation fail in a destructor, terminating is the only honest outcome.
client::~client() // NOLINT(bugprone-exception-escape): see above
{
    if (impl_)
        close();
}

client& client::operator=(client&& other) noexcept // NOLINT(bugprone-exception-escape): as ~client
{
    if (this != &other) {
        if (impl_)
            close();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

client::executor_type client::get_executor() const noexcept
{
    return impl_->executor();
}

void client::close()
{
    if (!impl_)
        return; // moved from
    boost::asio::dispatch(impl_->strand(), [impl = impl_] { impl->close(); });
}

} // namespace cartesia
