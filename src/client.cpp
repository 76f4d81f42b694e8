// cartesia::client: the one driver (request_op.hpp) over a pool of keep-alive
// connections. The pool's bookkeeping is sans-io (pool_state.hpp, deadline_list.hpp);
// client_impl carries out its answers on one strand: it opens connections (a task
// per connection), closes them, wakes waiting requests, and keeps two timers, one
// for every attempt's deadline and one for the idle connections.
#include "deadline_list.hpp"
#include "pool_state.hpp"
#include "request_op.hpp"

#include <cartesia/client.hpp>
#include <cartesia/detail/client_access.hpp>
#include <cartesia/error.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/intrusive/list.hpp>

#include <openssl/ssl.h>

namespace cartesia::detail {
namespace {

struct ssl_session_deleter {
    void operator()(SSL_SESSION* session) const noexcept { SSL_SESSION_free(session); }
};
using ssl_session_ptr = std::unique_ptr<SSL_SESSION, ssl_session_deleter>;

using pool_type = pool_state<connection>;
using deadline_list = basic_deadline_list<asio::steady_timer::clock_type>;

// The requests close() must reach. Intrusive: tracking costs no allocation, and a
// request destroyed without finishing (its io_context destroyed first) leaves by itself.
using tracked_hook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
class tracked_request : public tracked_hook {};

constexpr std::string_view closed_reason = "the client was closed";

} // namespace

class pooled_operation;

class client_impl final : public std::enable_shared_from_this<client_impl>, public connection_source {
public:
    client_impl(asio::any_io_executor executor, asio::ssl::context& tls, client_config config)
        : tls_(tls), config_(std::move(config)), context_(std::move(executor), config_, *this),
          pool_(config_.max_connections)
    {
        // Checked once; a bad configuration fails each operation, before any I/O.
        config_error_ = validate(config_, {}, where_, config_diag_);
        if (!config_error_)
            context_.request_head = serialize_request_head(config_, where_, /*keep_alive=*/true);
    }

    const request_context& context() const noexcept { return context_; }
    const asio::any_io_executor& executor() const noexcept { return context_.io_executor; }
    const strand_type& strand() const noexcept { return context_.strand; }
    const diagnostics* config_problem() const noexcept { return config_error_ ? &config_diag_ : nullptr; }
    std::size_t connections_opened() const noexcept { return pool_.connections_opened(); }

    // --- on the strand ---------------------------------------------------------

    void close();

    // connection_source, for the pooled requests
    bool acquire(request_op& op) override;
    void abort_acquire(request_op& op) override;
    std::optional<std::string_view> admit(request_op& op) override;
    void leave_if_queued(pool_waiter<connection>& w) noexcept
    {
        if (w.queued())
            pool_.leave(w);
    }
    bool release(request_op& op, const attempt_outcome* exchange) override;
    void abort_release(request_op&) override { BOOST_ASSERT(false); } // releasing never waits
    void start_deadline(request_op& op, asio::steady_timer::time_point at) override;
    void stop_deadline(request_op& op) override;
    void finished(request_op& op) override;

private:
    // One of the pool's two timers, each set for the earliest of many times (the
    // first deadline, the oldest idle connection) and never set again while a wait
    // is pending: no wait is ever cancelled, except by close().
    struct pool_timer {
        explicit pool_timer(const strand_type& strand) : timer(strand) {}
        asio::steady_timer timer;
        bool armed = false;
    };
    void arm(pool_timer& which, asio::steady_timer::time_point at, void (client_impl::*on_expiry)());
    void expire_deadlines();
    void close_idle_connections();
    void arm_idle_timer();

    // The connection's task: resolve (once for the pool), connect, handshake,
    // then report to the pool.
    struct opening;
    // Opens `node` for the queue; a failure to start is the opening's failure.
    void start_opening(pool_type::node* node) noexcept;
    void open_connection(pool_type::node* node);
    asio::awaitable<error_code> open(connection& link, diagnostics& diag);
    void opened(pool_type::node& node, error_code ec, const diagnostics& diag);
    // Closes a connection the pool has marked closing, and opens its replacement
    // when requests wait.
    void close_connection(pool_type::node& node);
    void remember_session(connection& link);

    asio::ssl::context& tls_;
    const client_config config_;
    request_context context_;
    endpoint where_;
    error_code config_error_;
    diagnostics config_diag_;

    pool_type pool_;
    deadline_list deadlines_;
    pool_timer deadline_timer_{strand()};
    pool_timer idle_timer_{strand()};
    boost::intrusive::list<tracked_request, boost::intrusive::base_hook<tracked_hook>,
                           boost::intrusive::constant_time_size<false>>
        active_;
    std::unique_ptr<tcp::resolver> resolver_; // made when the name needs resolving
    tcp::resolver::results_type endpoints_;   // the last good resolution, shared by all connections
    ssl_session_ptr session_;                 // the newest resumable TLS session
};

// A request of the pool: the driver, plus what the pool knows of it. A request
// that finds every connection busy waits as this object and one pending timer
// wait, which owns it: no frames, and destroying the io_context destroys both.
class pooled_operation final : public request_op,
                               public pool_waiter<connection>,
                               public deadline_list::item,
                               public tracked_request {
public:
    pooled_operation(std::shared_ptr<client_impl> pool, token_handler handler, bool handler_has_own_executor,
                     const token_request& request, diagnostics* diag)
        : request_op(std::move(handler), handler_has_own_executor, pool->context(), request, diag),
          pool_(std::move(pool))
    {
    }

    // Only a request destroyed unfinished (its io_context destroyed while it
    // waited) is still queued.
    ~pooled_operation() override { pool_->leave_if_queued(*this); }

    // Sleeps until the pool hands a connection (or a failure) over, or the wait is aborted.
    void wait_for_connection()
    {
        if (!wakeup_)
            wakeup_.emplace(strand()); // only requests that ever wait need one
        wakeup_->expires_at(asio::steady_timer::time_point::max());
        wakeup_->async_wait([self = shared_self()](error_code) { self->connection_arrived(); });
    }

    void wake() { wakeup_->cancel(); }

    pool_type::node* node_ = nullptr; // the connection lent, while acquired

private:
    std::shared_ptr<pooled_operation> shared_self()
    {
        return std::static_pointer_cast<pooled_operation>(shared_from_this());
    }

    void connection_arrived()
    {
        if (auto* node = std::exchange(handed, nullptr)) {
            set_connection(&*node->link, node->exchanges > 0);
            node_ = node;
            acquire_done({});
            return;
        }
        // A failure handed over by the pool, or an aborted wait.
        acquire_done(failure ? failure : error_code(asio::error::operation_aborted));
    }

    std::shared_ptr<client_impl> pool_;
    std::optional<asio::steady_timer> wakeup_; // the pool cancels it to wake the request
};

namespace {
// The pool's lists hold only pooled requests, and the pool is the source of no
// other request: each of its bases leads back to the pooled request it is part
// of. The only downcasts of the pool, here.
// NOLINTBEGIN(cppcoreguidelines-pro-type-static-cast-downcast)
pooled_operation& pooled(request_op& op)
{
    return static_cast<pooled_operation&>(op);
}
pooled_operation& pooled(pool_waiter<connection>& waiter)
{
    return static_cast<pooled_operation&>(waiter);
}
pooled_operation& pooled(deadline_list::item& item)
{
    return static_cast<pooled_operation&>(item);
}
pooled_operation& pooled(tracked_request& tracked)
{
    return static_cast<pooled_operation&>(tracked);
}
// NOLINTEND(cppcoreguidelines-pro-type-static-cast-downcast)
} // namespace

std::optional<std::string_view> client_impl::admit(request_op& op)
{
    active_.push_back(pooled(op)); // from now on close() can reach this request
    if (pool_.closed())
        return closed_reason;
    return std::nullopt;
}

bool client_impl::acquire(request_op& op)
{
    auto& request = pooled(op);
    // A request moving past a stale connection keeps its place: it had one already.
    const auto answer = pool_.acquire(request, op.moving_past_stale_connection());
    if (answer.kind == pool_type::acquire_kind::use) {
        request.node_ = answer.connection;
        request.set_connection(&*answer.connection->link, answer.connection->exchanges > 0);
        return true;
    }
    try {
        request.wait_for_connection();
    } catch (const std::bad_alloc&) {
        pool_.leave(request); // nothing is pending for it: the driver reports the failure
        if (answer.open)
            start_opening(answer.open); // for the others
        throw;
    }
    if (answer.open)
        start_opening(answer.open);
    return false;
}

void client_impl::abort_acquire(request_op& op)
{
    auto& request = pooled(op);
    if (request.queued()) {
        pool_.leave(request); // so that no connection is handed to it any more
        request.wake();       // its wait ends with nothing handed: aborted
    }
    // Else a connection or a failure is handed over already, and on its way.
}

bool client_impl::release(request_op& op, const attempt_outcome* exchange)
{
    auto& request = pooled(op);
    pool_type::node& node = *std::exchange(request.node_, nullptr);
    connection& link = *node.link;
    if (exchange) {
        ++node.exchanges;
        if (!exchange->ec || exchange->response_started)
            remember_session(link);
    }
    const auto answer =
        pool_.release(node, link.reusable(), asio::steady_timer::clock_type::now(), config_.idle_timeout);
    switch (answer.kind) {
    case pool_type::release_kind::handed_over:
        pooled(*answer.to).wake();
        break;
    case pool_type::release_kind::kept_idle:
        arm_idle_timer();
        break;
    case pool_type::release_kind::close:
        close_connection(node);
        break;
    }
    return true;
}

void client_impl::start_deadline(request_op& op, asio::steady_timer::time_point at)
{
    if (deadlines_.watch(pooled(op), at) && !deadline_timer_.armed)
        arm(deadline_timer_, at, &client_impl::expire_deadlines);
}

void client_impl::stop_deadline(request_op& op)
{
    deadline_list::unwatch(pooled(op));
}

void client_impl::finished(request_op& op)
{
    pooled(op).tracked_request::unlink();
}

// An opening has a deadline of its own, `timeout` from its start: no request's
// deadline or cancellation reaches it (a request only leaves the queue), and an
// opening that hangs (a handshake never answered) would otherwise keep its place
// in the pool, and the queue waiting on it, for good.
struct client_impl::opening {
    explicit opening(const strand_type& strand) : deadline(strand) {}
    diagnostics diag;
    asio::steady_timer deadline;
    enum class phase { in_progress, timed_out, ended } now = phase::in_progress;
};

void client_impl::start_opening(pool_type::node* node) noexcept
{
    try {
        open_connection(node);
        return;
    } catch (...) { // out of memory (or OpenSSL out of it): the opening failed
    }
    try {
        opened(*node, make_error_code(boost::system::errc::not_enough_memory), diagnostics{});
    } catch (...) { // nor could its failure be handed on: the queue's deadlines end the wait
    }
}

void client_impl::open_connection(pool_type::node* node)
{
    node->link.emplace(strand(), tls_);
    auto task = std::make_shared<opening>(strand());
    task->deadline.expires_at(time_after(asio::steady_timer::clock_type::now(), config_.timeout));
    task->deadline.async_wait([self = shared_from_this(), node, task](error_code ec) {
        if (ec || task->now != opening::phase::in_progress)
            return; // ended in time (its cancel may come after an expiry already queued)
        task->now = opening::phase::timed_out;
        if (self->resolver_)
            self->resolver_->cancel();
        node->link->abort(); // the task ends in opened()
    });
    asio::co_spawn(strand(), open(*node->link, task->diag),
                   [self = shared_from_this(), node, task](const std::exception_ptr& failure, error_code ec) {
                       if (failure) // only allocation failures can get here
                           ec = make_error_code(boost::system::errc::not_enough_memory);
                       else if (task->now == opening::phase::timed_out) {
                           // Not the abort it caused (nobody cancelled), nor the failed
                           // step's message, which the abort wrote; and a handshake that
                           // completed as the deadline passed left a connection that
                           // abort() closed: a failure too.
                           ec = asio::error::timed_out;
                           diagnostics_access::set_client_message(
                               task->diag, "no connection to " + self->where_.host_header + " within " +
                                               std::to_string(self->config_.timeout.count()) + " ms");
                       }
                       task->now = opening::phase::ended;
                       task->deadline.cancel();
                       self->opened(*node, ec, task->diag);
                   });
}

asio::awaitable<error_code> client_impl::open(connection& link, diagnostics& diag)
{
    tcp::resolver::results_type endpoints = endpoints_;
    if (endpoints.empty()) {
        if (auto ec = co_await resolve_endpoints(where_, resolver_, strand(), endpoints, diag))
            co_return ec;
        endpoints_ = endpoints;
    }
    if (session_)
        SSL_set_session(link.native_handle(), session_.get());
    error_code ec = co_await link.open(where_, endpoints, diag);
    if (ec && ec.category() != asio::error::get_ssl_category())
        endpoints_ = {}; // resolve afresh next time
    co_return ec;
}

void client_impl::opened(pool_type::node& node, error_code ec, const diagnostics& diag)
{
    const auto answer = pool_.opened(node, ec, asio::steady_timer::clock_type::now(), config_.idle_timeout);
    if (answer.to != nullptr) {
        auto* request = &pooled(*answer.to);
        if (ec) { // the request tells its story: the connection's failure is its attempt's
            diagnostics_access::set_client_message(request->diag(), std::string(diag.client_message()));
            diagnostics_access::set_http_status(request->diag(), diag.http_status()); // a proxy's refusal
        }
        request->wake();
    }
    if (ec || answer.close_it)
        close_connection(node);
    else if (answer.to == nullptr)
        arm_idle_timer();
}

void client_impl::close_connection(pool_type::node& node)
{
    if (node.link)
        node.link->close_quietly(); // a no-op for the TLS state of an aborted one
    if (auto* replacement = pool_.remove(node))
        start_opening(replacement);
}

// After an exchange: keep the newest resumable session (with TLS 1.3 the ticket
// arrives after the handshake, so only now is there one to keep).
void client_impl::remember_session(connection& link)
{
    SSL* handle = link.native_handle();
    if (SSL_session_reused(handle) && session_)
        return;
    ssl_session_ptr session(SSL_get1_session(handle));
    if (session && SSL_SESSION_is_resumable(session.get()))
        session_ = std::move(session);
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

void client_impl::arm_idle_timer()
{
    if (!idle_timer_.armed && pool_.idle_count() > 0)
        arm(idle_timer_, pool_.next_idle_expiry(), &client_impl::close_idle_connections);
}

void client_impl::close_idle_connections()
{
    for (auto* node : pool_.expire_idle(asio::steady_timer::clock_type::now()))
        close_connection(*node);
    arm_idle_timer();
}

// Attempts that ended in time have left the list: the timer may find the first
// deadline still ahead, and then only waits again.
void client_impl::expire_deadlines()
{
    while (auto* expired = deadlines_.pop_expired(asio::steady_timer::clock_type::now())) {
        auto& request = pooled(*expired);
        request.deadline_passed(request.attempt());
    }
    if (!deadlines_.empty())
        arm(deadline_timer_, deadlines_.next(), &client_impl::expire_deadlines);
}

void client_impl::close()
{
    if (pool_.closed())
        return;
    // Cancelling only closes sockets and cancels waits: requests leave the list
    // when they complete, later, so iterating it here is safe.
    for (auto& tracked : active_)
        pooled(tracked).cancel(closed_reason);
    auto answer = pool_.close();
    BOOST_ASSERT(answer.woken.empty()); // the cancelled requests left the queue
    for (auto* node : answer.close_now) {
        node->link->abort();
        close_connection(*node);
    }
    for (auto* node : answer.abort_opening)
        node->link->abort(); // its task ends in opened(), which closes it
    idle_timer_.timer.cancel();
    deadline_timer_.timer.cancel(); // each request leaves its deadline as it finishes
    // Busy connections are aborted by their requests' cancellation and closed
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
