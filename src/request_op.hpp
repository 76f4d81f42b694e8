// The one driver of every token-minting operation: it runs the request algorithm
// (request_fsm.hpp) by executing each action it returns and feeding back the
// result, over a connection_source that supplies the connections. The free
// async_generate_token is this driver over a source that opens a fresh connection
// per attempt and never keeps it (generate_token.cpp); cartesia::client is this
// driver over its pool (client.cpp). Private to src/.
//
// Why a hand-written completion-handler loop, and not a coroutine or
// asio::async_compose: measured, it costs a third to a half of their CPU.
// - co_spawn allocates two frames per operation (more once operations overlap and
//   Asio's two-block thread-local cache misses), and with use_awaitable each
//   awaited step one more (deferred, awaited directly, spares those).
// - async_compose moves its state (264 bytes here) and a strand binding through
//   every step, while a deadline, a cancellation and close() must reach the
//   operation at a stable address while a step is pending.
// Here the state has a stable address, each step's handler holds one shared_ptr,
// and all steps run on the strand.
// The same fsm under each driver, over a fake source whose steps are one posted
// hop each (bench/driver_styles.cpp; bench/README.md, "Driver styles": medians
// of 5 rounds on 2 loaded cores, instructions by callgrind). Per successful
// request, at concurrency 1 / 64:
//                            CPU ns       instructions     heap allocations
//   this loop                 636 /  608   5,338 /  3,926   2 / 1
//   async_compose            1967 / 2005  14,753 / 13,341   1 / 0
//   co_spawn, deferred       1679 / 1325   9,968 /  8,557   3 / 2
//   co_spawn, use_awaitable  1874 / 1958  10,774 /  9,783   5 / 5
#ifndef CARTESIA_SRC_REQUEST_OP_HPP
#define CARTESIA_SRC_REQUEST_OP_HPP

#include "connection.hpp"
#include "event_sink.hpp"
#include "request_fsm.hpp"

#include <cartesia/generate_token.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace cartesia::detail {

static_assert(std::is_same_v<asio::steady_timer::clock_type, request_clock>, "the fsm's times are the timers'");

// A strand, type-erased. Made by make_operation_strand().
using strand_type = asio::any_io_executor;

// A strand over `executor`. When that is an io_context's executor, the strand is
// built over the concrete type: it then fits in any_io_executor's small buffer,
// and the executor copies and prefer(outstanding_work.tracked) calls that every
// asynchronous step makes cost no heap allocation (a strand over any_io_executor
// allocates on each).
strand_type make_operation_strand(const asio::any_io_executor& executor);

class request_op;

// The two deadlines of an operation (request_fsm.hpp).
enum class deadline_kind {
    attempt, // `timeout` from the attempt's start
    total,   // `total_timeout` from the operation's start
};

// Where a request's connections come from. Called on the request's strand.
class connection_source {
public:
    // Called on the strand before the request starts; a reason to refuse it (a
    // closed client), or nullopt.
    virtual std::optional<std::string_view> admit(request_op& op) = 0;
    // Starts acquiring a connection for `op`. Returns true when op has one now
    // (set_connection() was called); otherwise the source calls op.acquire_done()
    // later, exactly once.
    virtual bool acquire(request_op& op) = 0;
    // Makes a pending acquisition end now; it still ends through acquire_done().
    virtual void abort_acquire(request_op& op) = 0;
    // Takes back the connection after an exchange that went as `exchange` says, or
    // unused (`exchange` null: the acquisition was aborted as it succeeded).
    // Returns true when done now; otherwise the source calls op.released() later.
    virtual bool release(request_op& op, const attempt_outcome* exchange) = 0;
    // Makes a pending release end now.
    virtual void abort_release(request_op& op) = 0;
    // Watch a deadline of `op`: should `at` pass before stop_deadline(), call
    // op.deadline_passed(attempt) with the attempt's number, or
    // op.total_deadline_passed(). The attempts' deadlines of one source come in the
    // order of their times, and so do the total ones.
    virtual void start_deadline(request_op& op, deadline_kind which, asio::steady_timer::time_point at) = 0;
    virtual void stop_deadline(request_op& op, deadline_kind which) = 0;
    // The operation begins to wait before its next attempt (for statistics).
    virtual void retry_scheduled(request_op&) {}
    // The operation is about to call its handler with `ec`.
    virtual void finished(request_op& op, error_code ec) = 0;

    virtual ~connection_source() = default;
    connection_source() = default;
    connection_source(const connection_source&) = delete;
    connection_source& operator=(const connection_source&) = delete;
};

// What every request of one source shares, owned by the source (the pool, or the
// one-shot operation itself): each request refers to it rather than carrying
// copies, since a queued request's size matters (thousands may wait).
struct request_context {
    // `shared_config` (and `budget`, when given) must outlive the context;
    // request_head is set by the owner once the configuration is validated.
    request_context(asio::any_io_executor executor, const client_config& shared_config, connection_source& owner,
                    retry_budget* budget = nullptr);

    asio::any_io_executor io_executor; // the caller's
    strand_type strand;                // over it; every step of an operation runs here
    const client_config& config;
    const request_settings settings; // what the request algorithm needs of config
    connection_source& source;
    std::string request_head; // the same for every request of the source
    event_sink events;        // configured by the owner with request_head
};

class request_op : public std::enable_shared_from_this<request_op> {
public:
    // `handler_has_own_executor`: see has_own_executor() in generate_token.hpp.
    // `context` must outlive the operation (it belongs to the derived class or to
    // the pool).
    request_op(token_handler handler, bool handler_has_own_executor, const request_context& context,
               const token_request& request, diagnostics* diag);
    virtual ~request_op() = default;
    request_op(const request_op&) = delete;
    request_op& operator=(const request_op&) = delete;

    // Installs the cancellation bridge and starts on the strand. Any thread.
    void start();

    // --- events, on the strand -------------------------------------------------

    // The source's answer to acquire(): a connection (set_connection() first), or `ec`.
    void acquire_done(error_code ec);
    void released();
    void deadline_passed(unsigned attempt);
    void total_deadline_passed();
    // Terminal or partial cancellation, or close(): ends the operation with
    // operation_aborted as soon as possible, `why` as its client message.
    void cancel(std::string_view why);

    // --- for the source --------------------------------------------------------

    void set_connection(connection* link, bool reused) noexcept
    {
        connection_ = link;
        reused_ = reused;
    }
    unsigned attempt() const noexcept { return fsm_.attempt(); }
    bool moving_past_stale_connection() const noexcept { return fsm_.moving_past_stale_connection(); }
    const strand_type& strand() const noexcept { return context_.strand; }
    diagnostics& diag() noexcept { return diag_; }
    // When the operation started (on the strand).
    request_clock::time_point started_at() const noexcept { return started_at_; }
    // Its number for events; 0 when they are not wanted.
    std::uint64_t number() const noexcept { return number_; }
    unsigned stale_moves() const noexcept { return fsm_.stale_moves(); }

private:
    struct cancellation_bridge;
    // The one loop: the fsm's action for `event`, executed; synchronous results
    // are fed back at once, asynchronous ones come back through the events above.
    void run(request_event event);
    // Executes `action`; returns its result when it is ready at once. Throws
    // bad_alloc only before the step has started.
    std::optional<request_event> execute(const request_action& action);
    // The result of a step that could not start for want of memory.
    std::optional<request_event> not_started(const request_action& action);
    void start_exchange();
    void start_backoff(std::chrono::milliseconds delay);
    void abort_pending();
    void finish(error_code ec);
    // When events are wanted: what `happened` and the `next` step tell, as events.
    // An event that cannot be made for want of memory is lost; the operation goes on.
    void report(const request_event& happened, const request_action& next) noexcept;
    void report_events(const request_event& happened, const request_action& next);
    event event_of(event_kind kind) const noexcept;
    // describe(ec, diag) without its count of attempts (the event has it), cleaned.
    std::string failure_text(error_code ec) const;
    void call_handler(error_code ec);

    const request_context& context_;
    const token_request request_; // serialized by each exchange: smaller than its bytes
    diagnostics own_diag_;        // used when the caller passed none
    diagnostics& diag_;
    request_fsm fsm_;
    token_handler handler_;
    // The handler's own executor, tracking work, when it has one: keeps that
    // execution context busy until the handler is queued there. Null otherwise (the
    // usual case, which then pays neither its size nor an allocation): the
    // operation's I/O keeps the I/O executor's context busy already.
    std::unique_ptr<asio::any_completion_executor> handler_work_;
    asio::cancellation_slot user_slot_;
    connection* connection_ = nullptr; // while acquired
    token_response response_;
    // When the current exchange started: the base of token_response::expires_at
    // for an opaque token.
    std::chrono::system_clock::time_point sent_at_{};
    request_clock::time_point started_at_{};
    std::uint64_t number_ = 0;
    std::unique_ptr<asio::steady_timer> backoff_; // most operations never retry: made when one does
    bool reused_ = false;                         // the acquired connection served an exchange before
    bool initiating_ = false;                     // inside start(): completing now must not call the handler inline
    bool running_ = false;                        // inside run(), for an assertion
};

} // namespace cartesia::detail

#endif
