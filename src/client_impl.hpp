// cartesia::client's state: the one driver (request_op.hpp) over a pool of
// keep-alive connections. The pool's bookkeeping is sans-io (pool_state.hpp,
// deadline_list.hpp); client_impl carries out its answers on one strand.
//
// Two files share the work:
// - client.cpp: what a request does (admission, acquiring, releasing, its
//   deadlines), close(), and the public class;
// - pool_connections.cpp: what the pool does on its own: a task per connection
//   that opens it, the warm minimum, closing and replacing connections, a watch on
//   each idle connection of a warm pool, and TLS session resumption.
//
// Two timers, each set for the earliest of many times and moved only earlier:
// one for the requests' deadlines (attempts and totals), one for the pool's own
// upkeep (idle connections to close, the warm minimum's backoff).
// Private to src/.
#ifndef CARTESIA_SRC_CLIENT_IMPL_HPP
#define CARTESIA_SRC_CLIENT_IMPL_HPP

#include "deadline_list.hpp"
#include "pool_state.hpp"
#include "request_op.hpp"
#include "stats_recorder.hpp"

#include <boost/intrusive/list.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string_view>

namespace cartesia::detail {

struct ssl_session_deleter {
    void operator()(SSL_SESSION* session) const noexcept { SSL_SESSION_free(session); }
};
using ssl_session_ptr = std::unique_ptr<SSL_SESSION, ssl_session_deleter>;

using pool_type = pool_state<connection>;
using attempt_deadline_list = basic_deadline_list<request_clock, struct attempt_deadline_tag>;
using total_deadline_list = basic_deadline_list<request_clock, struct total_deadline_tag>;

// The requests close() must reach. Intrusive: tracking costs no allocation, and a
// request destroyed without finishing (its io_context destroyed first) leaves by itself.
using tracked_hook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;
class tracked_request : public tracked_hook {};

class client_impl final : public std::enable_shared_from_this<client_impl>, public connection_source {
public:
    client_impl(asio::any_io_executor executor, asio::ssl::context& tls, client_config config);

    // After construction, once shared: opens the warm minimum in the background
    // (posted: no I/O inside the client's constructor).
    void start();

    const request_context& context() const noexcept { return context_; }
    const asio::any_io_executor& executor() const noexcept { return context_.io_executor; }
    const strand_type& strand() const noexcept { return context_.strand; }
    const diagnostics* config_problem() const noexcept { return config_error_ ? &config_diag_ : nullptr; }
    client_stats stats() const { return stats_.snapshot(); }

    // --- on the strand ---------------------------------------------------------

    void close();

    // connection_source, for the pooled requests (client.cpp)
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
    void start_deadline(request_op& op, deadline_kind which, asio::steady_timer::time_point at) override;
    void stop_deadline(request_op& op, deadline_kind which) override;
    void retry_scheduled(request_op& op) override;
    void finished(request_op& op, error_code ec) override;

private:
    // A timer set for the earliest of many times: schedule() only ever moves it
    // earlier, and a wait that ends finds what is due and schedules the next.
    struct pool_timer {
        explicit pool_timer(const strand_type& strand) : timer(strand) {}
        asio::steady_timer timer;
        asio::steady_timer::time_point armed_for = asio::steady_timer::time_point::max();
    };
    void schedule(pool_timer& which, asio::steady_timer::time_point at, void (client_impl::*on_expiry)());
    void expire_deadlines();               // client.cpp
    void disarm_deadline_timer_if_quiet(); // client.cpp
    // The pool as it is now, for stats().
    pool_gauges gauges() const noexcept;
    void wake_waiter(pool_waiter<connection>& to, error_code ec, const diagnostics& diag); // client.cpp

    // --- pool_connections.cpp ----------------------------------------------------

    // The connection's task: resolve (once for the pool), connect, handshake,
    // then report to the pool.
    struct opening;
    // Opens `node`; a failure to start is the opening's failure.
    void start_opening(pool_type::node* node) noexcept;
    void open_connection(pool_type::node* node);
    asio::awaitable<error_code> open(connection& link, diagnostics& diag);
    void opened(pool_type::node& node, error_code ec, const diagnostics& diag);
    // Opens what the warm minimum lacks, as far as its backoff allows.
    void top_up();
    // Why a connection is closed, for its event: `reason` a static string; the
    // operation that closed it, if any, and the failure that did.
    struct close_cause {
        std::string_view reason;
        std::uint64_t operation = 0;
        error_code error{};
    };
    // Closes a connection the pool has marked closing; once nothing of its own is
    // pending on it, removes it and opens its replacement if one is due.
    void close_connection(pool_type::node& node, const close_cause& why);
    void report_closed(const pool_type::node& node, const close_cause& why) noexcept;
    close_cause closing_cause(const request_op& op, const attempt_outcome* exchange, const connection& link,
                              bool at_request_limit) const noexcept;
    void remove_connection(pool_type::node& node);
    // An idle connection joined the idle stack: its expiry, and its watch.
    void became_idle(pool_type::node& node) noexcept;
    // A warm pool watches its idle connections, to replace at once one the server
    // closes. Only a warm pool: otherwise a request finds such a connection stale
    // and moves past it for nothing, and watching would cost every token a wait.
    void watch_idle(pool_type::node& node);
    void idle_watch_ended(pool_type::node& node, error_code ec);
    void maintain();
    void remember_session(connection& link);

    asio::ssl::context& tls_;
    const client_config config_;
    retry_budget budget_; // the requests' retries, as a share of the requests
    stats_recorder stats_;
    request_context context_;
    endpoint where_;
    error_code config_error_;
    diagnostics config_diag_;

    pool_type pool_;
    attempt_deadline_list attempt_deadlines_;
    total_deadline_list total_deadlines_;
    pool_timer deadline_timer_{strand()};
    pool_timer upkeep_timer_{strand()};
    boost::intrusive::list<tracked_request, boost::intrusive::base_hook<tracked_hook>,
                           boost::intrusive::constant_time_size<false>>
        active_;
    std::unique_ptr<tcp::resolver> resolver_; // made when the name needs resolving
    tcp::resolver::results_type endpoints_;   // the last good resolution, shared by all connections
    ssl_session_ptr session_;                 // the newest resumable TLS session
};

} // namespace cartesia::detail

#endif
