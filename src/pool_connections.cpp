// What cartesia::client's pool does on its own (see client_impl.hpp): a task per
// connection that opens it, the warm minimum, closing and replacing connections,
// the watch on a warm pool's idle connections, and TLS session resumption.
#include "client_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

namespace cartesia::detail {

void client_impl::start()
{
    if (config_error_ || pool_.min_connections() == 0)
        return;
    asio::post(strand(), [self = shared_from_this()] { self->top_up(); });
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
    task->deadline.expires_at(time_after(request_clock::now(), config_.timeout));
    auto work = open(*node->link, task->diag);
    task->deadline.async_wait([self = shared_from_this(), node, task](error_code ec) {
        if (ec || task->now != opening::phase::in_progress)
            return; // ended in time (its cancel may come after an expiry already queued)
        task->now = opening::phase::timed_out;
        if (self->resolver_)
            self->resolver_->cancel();
        node->link->abort(); // the task ends in opened()
    });
    try {
        asio::co_spawn(strand(), std::move(work),
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
    } catch (...) {
        // Nothing started: the deadline's handler must not abort a node its caller
        // is about to remove.
        task->now = opening::phase::ended;
        task->deadline.cancel();
        throw;
    }
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
    const auto answer = pool_.opened(node, ec, request_clock::now(), config_.idle_timeout);
    // An opening that close() aborted did not fail: nobody wants it any more.
    const bool abandoned = pool_.closed();
    if (!ec)
        stats_.opened(node.link->session_resumed(), gauges());
    else if (!abandoned)
        stats_.opening_failed(gauges());
    if (answer.to != nullptr)
        wake_waiter(*answer.to, ec, diag);
    if (abandoned && (ec || answer.close_it)) {
        close_connection(node, {"the client was closed while it opened", 0, ec});
        return;
    }
    if (ec) {
        close_connection(node, {"its opening failed", 0, ec});
        return;
    }
    if (answer.close_it) {
        close_connection(node, {"the client was closed while it opened"});
        return;
    }
    if (answer.to == nullptr)
        became_idle(node);
    if (pool_.min_connections() > 0)
        top_up(); // after failures the minimum comes back one probe at a time: this one made it
}

void client_impl::top_up()
{
    const auto now = request_clock::now();
    while (auto* fresh = pool_.open_for_minimum(now))
        start_opening(fresh);
    schedule(upkeep_timer_, pool_.next_maintenance(), &client_impl::maintain);
    stats_.set(gauges());
}

void client_impl::close_connection(pool_type::node& node, const close_cause& why)
{
    if (context_.events.enabled())
        report_closed(node, why);
    if (node.link)
        node.link->close_quietly(); // a no-op for the TLS state of an aborted one
    if (!node.watched)
        remove_connection(node);
    // else its watch ends now, aborted, and removes it: the node must outlive it
}

void client_impl::report_closed(const pool_type::node& node, const close_cause& why) noexcept
{
    if (!node.link)
        return; // its opening could not even begin
    event e = node.link->closed_event(why.reason, node.exchanges);
    e.operation = why.operation;
    e.error = why.error;
    context_.events.emit(e);
}

void client_impl::remove_connection(pool_type::node& node)
{
    BOOST_ASSERT(!node.watched);
    if (auto* replacement = pool_.remove(node, request_clock::now()))
        start_opening(replacement);
    else
        schedule(upkeep_timer_, pool_.next_maintenance(), &client_impl::maintain); // a backoff, maybe
    disarm_deadline_timer_if_quiet();
    stats_.set(gauges());
}

void client_impl::became_idle(pool_type::node& node) noexcept
{
    // Releasing never fails: should either wait fail to start for want of memory,
    // the connection idles on, unwatched or expiring at the next upkeep.
    try {
        schedule(upkeep_timer_, pool_.next_maintenance_after_idle(node), &client_impl::maintain);
        if (pool_.min_connections() > 0)
            watch_idle(node);
    } catch (...) { // bad_alloc, or Asio's system_error for a reactor that cannot register
    }
}

void client_impl::watch_idle(pool_type::node& node)
{
    if (node.watched)
        return; // the watch of its last idle period has not ended yet; it goes on
    node.link->async_wait_readable(
        [self = shared_from_this(), &node](error_code ec) { self->idle_watch_ended(node, ec); });
    node.watched = true; // only once it is pending: its removal waits for it
}

void client_impl::idle_watch_ended(pool_type::node& node, error_code ec)
{
    node.watched = false;
    switch (node.status) {
    case connection_status::closing: // closed meanwhile: its removal waited for this
        remove_connection(node);
        return;
    case connection_status::in_use: // a request took it: that was its response arriving
        return;
    case connection_status::idle:
        if (!ec && node.link->still_good_while_idle()) {
            // Session tickets, most likely (or nothing after all): one may be the
            // pool's next resumable session.
            remember_session(*node.link);
            watch_idle(node);
            return;
        }
        // The server closed it (most often: its keep-alive timeout), or said
        // something unasked. Replaced now, not when a request would have found it
        // stale.
        pool_.retire(node, request_clock::now());
        close_connection(node, {ec ? "its idle watch failed" : "the server closed it while idle", 0, ec});
        return;
    case connection_status::opening:
        break;
    }
    BOOST_ASSERT(false); // no watch runs on an opening connection
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

// A wait that completes with an error was moved earlier (or close() cancelled
// it): another wait is pending, or nothing is due any more. One that completes
// with success may have been moved as its expiry was already queued: the work it
// then does early is idempotent, and it schedules the next.
void client_impl::schedule(pool_timer& which, asio::steady_timer::time_point at, void (client_impl::*on_expiry)())
{
    if (at >= which.armed_for || pool_.closed())
        return; // the timer will be there in time
    which.timer.expires_at(at);
    which.armed_for = asio::steady_timer::time_point::max(); // until the wait is pending: it may fail to start
    which.timer.async_wait([weak = weak_from_this(), &which, on_expiry](error_code ec) {
        auto self = weak.lock();
        if (!self || ec)
            return; // gone (and with it the timer), moved earlier, or closed
        which.armed_for = asio::steady_timer::time_point::max();
        (self.get()->*on_expiry)();
    });
    which.armed_for = at;
}

void client_impl::maintain()
{
    for (auto* node : pool_.expire_idle(request_clock::now()))
        close_connection(*node, {"idle: idle_timeout, or ahead of the server's Keep-Alive timeout"});
    top_up(); // after a backoff; it schedules the next upkeep
}

} // namespace cartesia::detail
