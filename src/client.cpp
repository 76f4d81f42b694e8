// cartesia::client: what a pooled request does (admission, acquiring, releasing,
// its deadlines), close(), and the public class. See client_impl.hpp; what the
// pool does on its own is in pool_connections.cpp.
#include "client_impl.hpp"

#include <cartesia/client.hpp>
#include <cartesia/detail/client_access.hpp>
#include <cartesia/error.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace cartesia::detail {
namespace {
constexpr std::string_view closed_reason = "the client was closed";

// The budget of `config`; a ratio out of range fails validate(), and then no
// request runs: any budget will do.
retry_budget budget_of(const client_config& config) noexcept
{
    const double ratio = config.retry_budget_ratio;
    return {ratio >= 0.0 && ratio <= 1.0 ? ratio : 0.0, config.retry_budget_min_per_second};
}
} // namespace

client_impl::client_impl(asio::any_io_executor executor, asio::ssl::context& tls, client_config config)
    : tls_(tls), config_(std::move(config)), budget_(budget_of(config_)),
      context_(std::move(executor), config_, *this, &budget_),
      pool_(config_.max_connections, std::min(config_.min_connections, config_.max_connections),
            context_.settings.jitter)
{
    // Checked once; a bad configuration fails each operation, before any I/O.
    config_error_ = validate(config_, {}, where_, config_diag_);
    if (!config_error_) {
        context_.request_head = serialize_request_head(config_, where_, /*keep_alive=*/true);
        context_.events.configure(config_, where_);
    }
}

pool_gauges client_impl::gauges() const noexcept
{
    pool_gauges now;
    now.opening = pool_.opening_count();
    now.open = pool_.live_count() - now.opening;
    now.idle = pool_.idle_count();
    now.queued = pool_.waiting_count();
    return now;
}

// A request of the pool: the driver, plus what the pool knows of it. A request
// that finds every connection busy waits as this object and one pending timer
// wait, which owns it: no frames, and destroying the io_context destroys both.
class pooled_operation final : public request_op,
                               public pool_waiter<connection>,
                               public attempt_deadline_list::item,
                               public total_deadline_list::item,
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
pooled_operation& pooled(attempt_deadline_list::item& item)
{
    return static_cast<pooled_operation&>(item);
}
pooled_operation& pooled(total_deadline_list::item& item)
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
    stats_.set(gauges());
    if (answer.kind == pool_type::acquire_kind::use) {
        request.node_ = answer.connection;
        request.set_connection(&*answer.connection->link, answer.connection->exchanges > 0);
        return true;
    }
    try {
        request.wait_for_connection();
    } catch (const std::bad_alloc&) {
        pool_.leave(request); // nothing is pending for it: the driver reports the failure
        stats_.set(gauges());
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
        stats_.set(gauges());
    }
    // Else a connection or a failure is handed over already, and on its way.
}

bool client_impl::release(request_op& op, const attempt_outcome* exchange)
{
    auto& request = pooled(op);
    pool_type::node& node = *std::exchange(request.node_, nullptr);
    connection& link = *node.link;
    if (exchange) {
        pool_.exchanged(node, link.server_hint());
        if (!exchange->ec || exchange->response_started)
            remember_session(link);
    }
    // What the pool's release() checks, among other things: for the event.
    const bool at_request_limit = node.exchanges >= node.request_limit;
    const auto answer = pool_.release(node, link.reusable(), request_clock::now(), config_.idle_timeout);
    switch (answer.kind) {
    case pool_type::release_kind::handed_over:
        pooled(*answer.to).wake();
        break;
    case pool_type::release_kind::kept_idle:
        became_idle(node);
        break;
    case pool_type::release_kind::close:
        close_connection(node, closing_cause(op, exchange, link, at_request_limit));
        break;
    }
    stats_.set(gauges());
    return true;
}

// Why release() closes a connection. Cheap: these are static strings.
client_impl::close_cause client_impl::closing_cause(const request_op& op, const attempt_outcome* exchange,
                                                    const connection& link, bool at_request_limit) const noexcept
{
    close_cause why{"no longer needed", op.number(), {}};
    if (exchange && exchange->ec) {
        why.error = exchange->ec;
        why.reason = exchange->response_started ? "the exchange failed"
                                                : "the exchange failed before any response (a stale connection?)";
    } else if (pool_.closed()) {
        why.reason = closed_reason;
    } else if (!link.reusable()) {
        why.reason = "the server closed it after its response (Connection: close)";
    } else if (at_request_limit) {
        why.reason = "the server's Keep-Alive max reached";
    } else if (exchange) {
        why.reason = "the server's Keep-Alive timeout is too short to keep it idle";
    }
    return why;
}

void client_impl::start_deadline(request_op& op, deadline_kind which, asio::steady_timer::time_point at)
{
    auto& request = pooled(op);
    if (which == deadline_kind::attempt)
        attempt_deadlines_.watch(request, at);
    else
        total_deadlines_.watch(request, at);
    // Not only when it is the first: a timer whose last wait failed to start (for
    // want of memory) is set again by the next deadline.
    schedule(deadline_timer_, std::min(attempt_deadlines_.next(), total_deadlines_.next()),
             &client_impl::expire_deadlines);
}

void client_impl::stop_deadline(request_op& op, deadline_kind which)
{
    if (which == deadline_kind::attempt)
        attempt_deadline_list::unwatch(pooled(op));
    else
        total_deadline_list::unwatch(pooled(op));
    disarm_deadline_timer_if_quiet();
}

// The deadline timer is only ever moved earlier: still armed for a request that
// ended, it would keep the executor busy for up to `timeout` after the last one
// (60 s by default, longer than idle_timeout). Disarmed once no deadline is left
// and no connection either, whose idle period keeps the executor busy anyway:
// under load, or with a connection kept alive, this costs nothing per request.
void client_impl::disarm_deadline_timer_if_quiet()
{
    if (pool_.size() != 0 || !attempt_deadlines_.empty() || !total_deadlines_.empty() ||
        deadline_timer_.armed_for == asio::steady_timer::time_point::max())
        return;
    deadline_timer_.timer.cancel(); // its handler sees operation_aborted
    deadline_timer_.armed_for = asio::steady_timer::time_point::max();
}

void client_impl::retry_scheduled(request_op&)
{
    stats_.retry_scheduled();
}

void client_impl::finished(request_op& op, error_code ec)
{
    pooled(op).tracked_request::unlink();
    stats_.completed(ec, request_clock::now() - op.started_at(), op.stale_moves(), budget_.refused(), gauges());
}

// The pool handed an opening's result to a waiting request: a connection, or the
// opening's failure, which is then the request's attempt's, with its story.
void client_impl::wake_waiter(pool_waiter<connection>& to, error_code ec, const diagnostics& diag)
{
    auto& request = pooled(to);
    if (ec) {
        diagnostics_access::set_client_message(request.diag(), std::string(diag.client_message()));
        diagnostics_access::set_http_status(request.diag(), diag.http_status()); // a proxy's refusal
    }
    request.wake();
}

// Deadlines of requests that ended in time have left their lists: the timer may
// find the first deadline still ahead, and then only waits again.
void client_impl::expire_deadlines()
{
    const auto now = request_clock::now();
    while (auto* expired = attempt_deadlines_.pop_expired(now)) {
        auto& request = pooled(*expired);
        request.deadline_passed(request.attempt());
    }
    while (auto* expired = total_deadlines_.pop_expired(now))
        pooled(*expired).total_deadline_passed();
    schedule(deadline_timer_, std::min(attempt_deadlines_.next(), total_deadlines_.next()),
             &client_impl::expire_deadlines);
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
        close_connection(*node, {closed_reason});
    }
    for (auto* node : answer.abort_opening)
        node->link->abort(); // its task ends in opened(), which closes it
    upkeep_timer_.timer.cancel();
    deadline_timer_.timer.cancel(); // each request leaves its deadlines as it finishes
    stats_.set(gauges());
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
    const auto s = c.impl_->stats();
    return s.connections_opened + s.connection_failures + s.connections_opening;
}

client::client(executor_type executor, boost::asio::ssl::context& tls, client_config config)
    : impl_(std::make_shared<detail::client_impl>(std::move(executor), tls, std::move(config)))
{
    impl_->start();
}

// close() allocates the function it posts to the strand; should that
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

client_stats client::stats() const
{
    if (!impl_)
        return {}; // moved from
    return impl_->stats();
}

client::executor_type client::get_executor() const noexcept
{
    return impl_->executor();
}

void client::close()
{
    if (!impl_)
        return; // moved from
    // Posted, not dispatched: close() called on the strand (from on_event) must
    // not cut into the pool's step that reported the event.
    boost::asio::post(impl_->strand(), [impl = impl_] { impl->close(); });
}

} // namespace cartesia
