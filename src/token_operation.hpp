// What every token-minting operation shares, whatever carries its attempts: the
// handler and its cancellation slot, the retry loop with backoff, the deadline of
// each attempt, and completing exactly once. Private to src/.
#ifndef CARTESIA_SRC_TOKEN_OPERATION_HPP
#define CARTESIA_SRC_TOKEN_OPERATION_HPP

#include "connection.hpp"

#include <cartesia/generate_token.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <memory>
#include <optional>

namespace cartesia::detail {

// A strand, type-erased. Made by make_operation_strand().
using strand_type = asio::any_io_executor;

// A strand over `executor`. When that is an io_context's executor, the strand is
// built over the concrete type: it then fits in any_io_executor's small buffer,
// and the executor copies and prefer(outstanding_work.tracked) calls that every
// asynchronous step makes cost no heap allocation (a strand over any_io_executor
// allocates on each).
strand_type make_operation_strand(const asio::any_io_executor& executor);

// `delay` from now, saturating: a timeout of centuries must not overflow the clock.
asio::steady_timer::time_point time_after(std::chrono::milliseconds delay);

// Runs on `strand`, which the derived class's I/O objects share. The deadline and
// the caller's cancellation do not travel through co_spawn's cancellation
// plumbing: both call abort_attempt(), which closes sockets and cancels timers so
// that any pending step fails at once, and the failure is then reported as
// `timeout` or `operation_aborted`.
class token_operation : public std::enable_shared_from_this<token_operation> {
public:
    // `handler_has_own_executor`: see has_own_executor() in generate_token.hpp.
    token_operation(token_handler handler, bool handler_has_own_executor, asio::any_io_executor io_executor,
                    strand_type strand, const client_config& config, diagnostics* diag);
    virtual ~token_operation() = default;
    token_operation(const token_operation&) = delete;
    token_operation& operator=(const token_operation&) = delete;

    // Installs the cancellation bridge, then launch(). Any thread.
    void start();

    // Ends the operation with operation_aborted as soon as possible. On the strand.
    void cancel(std::string_view why);

protected:
    // Starts the attempts; by default spawn() at once. The pool may instead queue
    // a request that finds no connection free as a plain object, without a
    // coroutine: it calls begin_attempt(1) first (the wait counts against the
    // first attempt's deadline), then spawn() once the wait ends, whatever ended it.
    virtual void launch();
    // Runs the retry loop and its attempts in a coroutine on the strand.
    void spawn();
    // Clears the diagnostics and starts the deadline of attempt number `attempt`.
    // run() does it for each attempt not begun yet (the first may be, before spawn()).
    void begin_attempt(unsigned attempt);

    // One attempt: fill `facts` (its ec first) and `response`. The base arms the
    // deadline around it and maps failures caused by abort_attempt().
    virtual asio::awaitable<void> attempt(attempt_outcome& facts, token_response& response) = 0;
    // Makes whatever the attempt awaits fail now (deadline, cancellation).
    virtual void abort_attempt() = 0;
    // Called on the strand once the result is decided, before the handler runs.
    virtual void on_finish() {}

    // Keep the deadline of an attempt: should `at` pass before stop_deadline(),
    // call deadline_passed() on the strand. The one-shot operation has a timer of
    // its own; the pool keeps the deadlines of all its requests on one timer.
    virtual void start_deadline(asio::steady_timer::time_point at) = 0;
    virtual void stop_deadline() = 0;
    // The attempt ran out of time: mark it and abort it. On the strand.
    void deadline_passed();

    bool cancelled() const noexcept { return cancelled_; }
    bool completed() const noexcept { return completed_; }
    bool timed_out() const noexcept { return timed_out_; }

    const strand_type strand_;
    const client_config& config_; // owned by the derived class or its pool
    diagnostics& diag_;

private:
    struct result {
        error_code ec;
        token_response response;
    };
    struct cancellation_bridge;

    static asio::awaitable<result> run(std::shared_ptr<token_operation> self);
    // `ec`, or what really happened when a deadline or a cancellation caused it.
    error_code explain_failure(error_code ec);
    void finish(const std::exception_ptr& failure, result outcome);

    asio::any_io_executor io_executor_;
    token_handler handler_;
    // The handler's own executor, tracking work, when it has one: keeps that
    // execution context busy until the handler is queued there. Empty otherwise:
    // the operation's I/O keeps io_executor_'s context busy already.
    asio::any_completion_executor handler_work_;
    asio::cancellation_slot user_slot_;
    diagnostics own_diag_; // used when the caller passed none
    std::unique_ptr<asio::steady_timer> backoff_;
    std::string cancel_reason_;
    unsigned begun_attempt_ = 0; // the number of the attempt begin_attempt() began last
    bool cancelled_ = false;
    bool timed_out_ = false;
    bool completed_ = false;
};

} // namespace cartesia::detail

#endif
