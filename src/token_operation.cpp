#include "token_operation.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>

#include <random>

namespace cartesia::detail {
namespace {

double random_jitter()
{
    thread_local std::minstd_rand generator{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

} // namespace

asio::steady_timer::time_point time_after(std::chrono::milliseconds delay)
{
    using clock = asio::steady_timer::clock_type;
    const auto now = clock::now();
    if (delay >= std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - now))
        return clock::time_point::max();
    return now + delay;
}

strand_type make_operation_strand(const asio::any_io_executor& executor)
{
    if (const auto* io_executor = executor.target<asio::io_context::executor_type>())
        return asio::make_strand(*io_executor);
    return asio::make_strand(executor);
}

// Installed in the handler's cancellation slot; hops onto the strand, so that the
// slot may be emitted from wherever the handler's executor allows.
struct token_operation::cancellation_bridge {
    // A constructor, not an aggregate: slot::emplace constructs with parentheses,
    // which clang 14 does not accept for aggregates.
    cancellation_bridge(std::weak_ptr<token_operation> operation, strand_type on)
        : op(std::move(operation)), strand(std::move(on))
    {
    }

    std::weak_ptr<token_operation> op;
    strand_type strand;

    void operator()(asio::cancellation_type_t type) const
    {
        using ct = asio::cancellation_type;
        if ((type & (ct::terminal | ct::partial)) == ct::none)
            return; // total cancellation is not supported: a token may have been minted
        if (auto self = op.lock())
            asio::dispatch(strand, [self] { self->cancel("the operation was cancelled"); });
    }
};

token_operation::token_operation(token_handler handler, bool handler_has_own_executor,
                                 asio::any_io_executor io_executor, strand_type strand, const client_config& config,
                                 diagnostics* diag)
    : strand_(std::move(strand)), config_(config), diag_(diag ? *diag : own_diag_),
      io_executor_(std::move(io_executor)), handler_(std::move(handler)),
      // Asio's rule: an outstanding operation counts as work on its handler's
      // executor, so that an io_context that only runs the handler (a handler bound
      // to another context) does not run out of work and return before it.
      handler_work_(handler_has_own_executor ? asio::prefer(asio::get_associated_executor(handler_, io_executor_),
                                                            asio::execution::outstanding_work.tracked)
                                             : asio::any_completion_executor())
{
}

void token_operation::start()
{
    if (auto slot = asio::get_associated_cancellation_slot(handler_); slot.is_connected()) {
        user_slot_ = slot;
        user_slot_.emplace<cancellation_bridge>(weak_from_this(), strand_);
    }
    launch();
}

void token_operation::launch()
{
    spawn();
}

void token_operation::spawn()
{
    asio::co_spawn(strand_, run(shared_from_this()),
                   [self = shared_from_this()](const std::exception_ptr& failure, result outcome) {
                       self->finish(failure, std::move(outcome));
                   });
}

void token_operation::begin_attempt(unsigned attempt)
{
    begun_attempt_ = attempt;
    diag_.clear();
    diagnostics_access::set_attempts(diag_, attempt);
    timed_out_ = false;
    start_deadline(time_after(config_.timeout));
}

error_code token_operation::explain_failure(error_code ec)
{
    // A deadline or a cancellation makes the pending step fail with whatever the
    // closed socket reports; say what really happened.
    if (ec && cancelled_)
        return asio::error::operation_aborted;
    if (ec && timed_out_) {
        diagnostics_access::set_client_message(diag_, "no complete response within " +
                                                          std::to_string(config_.timeout.count()) + " ms");
        return error::timeout;
    }
    return ec;
}

void token_operation::cancel(std::string_view why)
{
    if (completed_ || cancelled_)
        return;
    cancelled_ = true;
    cancel_reason_ = why;
    abort_attempt();
    if (backoff_)
        backoff_->cancel();
}

// The attempts inline in the retry loop: each coroutine awaited by another costs
// a frame, and Asio recycles only two per thread; a deeper chain allocates.
asio::awaitable<token_operation::result> token_operation::run(std::shared_ptr<token_operation> self)
{
    const unsigned max_attempts = 1 + static_cast<unsigned>(self->config_.max_retries);
    result outcome;
    for (unsigned attempt = 1;; ++attempt) {
        if (self->begun_attempt_ != attempt)
            self->begin_attempt(attempt);
        outcome.response = {};
        if (self->cancelled_) {
            self->stop_deadline();
            outcome.ec = asio::error::operation_aborted;
            break;
        }
        attempt_outcome facts;
        co_await self->attempt(facts, outcome.response);
        self->stop_deadline();
        facts.ec = self->explain_failure(facts.ec);
        outcome.ec = facts.ec;
        if (!facts.ec || attempt == max_attempts || self->cancelled_ || !is_retryable(facts))
            break;
        if (!self->backoff_) // most operations never retry: no timer until one does
            self->backoff_ = std::make_unique<asio::steady_timer>(self->strand_);
        self->backoff_->expires_after(retry_delay(attempt - 1, random_jitter(), facts.retry_after));
        co_await self->backoff_->async_wait(nothrow_awaitable);
        if (self->cancelled_)
            break;
    }
    co_return outcome;
}

void token_operation::deadline_passed()
{
    timed_out_ = true;
    abort_attempt();
}

void token_operation::finish(const std::exception_ptr& failure, result outcome)
{
    completed_ = true;
    if (user_slot_.is_connected())
        user_slot_.clear();
    if (failure) {
        // Only allocation failures can get here; report rather than terminate.
        outcome.ec = make_error_code(boost::system::errc::not_enough_memory);
    } else if (cancelled_) {
        outcome.ec = asio::error::operation_aborted;
        diagnostics_access::set_client_message(diag_, std::move(cancel_reason_));
    }
    if (outcome.ec)
        outcome.response = {};
    on_finish();
    if (handler_work_) {
        asio::dispatch(handler_work_, asio::append(std::move(handler_), outcome.ec, std::move(outcome.response)));
        handler_work_ = {}; // the handler is queued (or has run): it is the work now
        return;
    }
    if (io_executor_.target<asio::io_context::executor_type>() != nullptr) {
        // We run inside that io_context, so dispatch() on it would call the handler
        // here and now; calling it directly spares the type-erased executor it builds.
        std::move(handler_)(outcome.ec, std::move(outcome.response));
        return;
    }
    // Any other executor decides for itself (blocking.never posts, a custom one may
    // track or trace what it runs).
    asio::dispatch(io_executor_, asio::append(std::move(handler_), outcome.ec, std::move(outcome.response)));
}

} // namespace cartesia::detail
