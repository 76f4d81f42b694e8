#include "request_op.hpp"

#include "erase_token.hpp"
#include "token_completion.hpp"
#include "token_expiry.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <new>

namespace cartesia::detail {
namespace {

request_settings settings_of(const client_config& config, retry_budget* budget) noexcept
{
    request_settings settings;
    settings.budget = budget;
    settings.timeout = config.timeout;
    settings.total_timeout = config.total_timeout;
    settings.max_attempts = 1 + static_cast<unsigned>(config.max_retries);
    settings.jitter = &random_jitter;
    return settings;
}

} // namespace

strand_type make_operation_strand(const asio::any_io_executor& executor)
{
    if (const auto* io_executor = executor.target<asio::io_context::executor_type>())
        return asio::make_strand(*io_executor);
    return asio::make_strand(executor);
}

request_context::request_context(asio::any_io_executor executor, const client_config& shared_config,
                                 connection_source& owner, retry_budget* budget)
    : io_executor(std::move(executor)), strand(make_operation_strand(io_executor)), config(shared_config),
      settings(settings_of(shared_config, budget)), source(owner)
{
}

// Installed in the handler's cancellation slot; hops onto the strand, so that the
// slot may be emitted from wherever the handler's executor allows. It holds a weak
// reference only: it stays in the caller's signal until the slot is cleared or
// reused, possibly after the operation and its strand are gone.
struct request_op::cancellation_bridge {
    // A constructor, not an aggregate: slot::emplace constructs with parentheses,
    // which clang 14 does not accept for aggregates.
    explicit cancellation_bridge(std::weak_ptr<request_op> operation) : op(std::move(operation)) {}

    std::weak_ptr<request_op> op;

    void operator()(asio::cancellation_type_t type) const
    {
        using ct = asio::cancellation_type;
        if ((type & (ct::terminal | ct::partial)) == ct::none)
            return; // total cancellation is not supported: a token may have been minted
        // Posted, not dispatched: a slot emitted on the strand itself (from the
        // operation's own on_event) must not re-enter the driver in mid-step. After
        // the completion, the fsm (done) ignores it.
        if (auto self = op.lock())
            asio::post(self->context_.strand, [self] { self->cancel("the operation was cancelled"); });
    }
};

request_op::request_op(token_handler handler, bool handler_has_own_executor, const request_context& context,
                       const token_request& request, diagnostics* diag)
    : context_(context), request_(request), diag_(diag ? *diag : own_diag_), fsm_(context.settings, diag_),
      handler_(std::move(handler)),
      // Asio's rule: an outstanding operation counts as work on its handler's
      // executor, so that an io_context that only runs the handler (a handler bound
      // to another context) does not run out of work and return before it.
      handler_work_(handler_has_own_executor ? std::make_unique<asio::any_completion_executor>(asio::prefer(
                                                   asio::get_associated_executor(handler_, context.io_executor),
                                                   asio::execution::outstanding_work.tracked))
                                             : nullptr)
{
}

void request_op::start()
{
    if (auto slot = asio::get_associated_cancellation_slot(handler_); slot.is_connected()) {
        user_slot_ = slot;
        user_slot_.emplace<cancellation_bridge>(weak_from_this());
    }
    asio::dispatch(context_.strand, [self = shared_from_this()] {
        self->initiating_ = true;
        self->started_at_ = request_clock::now();
        if (self->context_.events.enabled())
            self->number_ = event_sink::next_operation_number();
        if (auto refused = self->context_.source.admit(*self))
            self->run(events::cancelled(*refused));
        self->run(events::start(self->started_at_));
        self->initiating_ = false;
    });
}

void request_op::run(request_event event)
{
    // Nothing calls back into the loop while it runs: sources complete their steps
    // later, and what user code can trigger (cancellation, close()) is posted.
    BOOST_ASSERT(!running_);
    running_ = true;
    struct not_running {
        bool& flag;
        ~not_running() { flag = false; }
    } on_exit{running_};
    for (;;) {
        const request_action action = fsm_.resume(event);
        if (context_.events.enabled())
            report(event, action);
        std::optional<request_event> result;
        try {
            result = execute(action);
        } catch (const std::bad_alloc&) {
            // The step could not start, so nothing of it is pending: its failure is
            // its result, and the algorithm decides what follows.
            result = not_started(action);
        }
        if (!result)
            return; // the step's result comes later, through an event
        event = *result;
    }
}

std::optional<request_event> request_op::execute(const request_action& action)
{
    if (action.total_deadline == deadline_change::start)
        context_.source.start_deadline(*this, deadline_kind::total, fsm_.total_deadline());
    else if (action.total_deadline == deadline_change::stop)
        context_.source.stop_deadline(*this, deadline_kind::total);
    if (action.deadline == deadline_change::start)
        context_.source.start_deadline(*this, deadline_kind::attempt,
                                       time_after(request_clock::now(), context_.config.timeout));
    else if (action.deadline == deadline_change::stop)
        context_.source.stop_deadline(*this, deadline_kind::attempt);
    switch (action.kind) {
    case request_action_kind::none:
        return std::nullopt;
    case request_action_kind::abort_pending:
        abort_pending();
        return std::nullopt;
    case request_action_kind::acquire:
        if (!context_.source.acquire(*this))
            return std::nullopt; // acquire_done() follows
        return events::acquired(reused_);
    case request_action_kind::exchange:
        start_exchange();
        return std::nullopt;
    case request_action_kind::release:
        if (!context_.source.release(*this, action.connection_used ? &connection_->outcome() : nullptr))
            return std::nullopt; // released() follows
        connection_ = nullptr;
        return events::released(request_clock::now());
    case request_action_kind::backoff:
        start_backoff(action.delay);
        context_.source.retry_scheduled(*this);
        return std::nullopt;
    case request_action_kind::complete:
        finish(action.error);
        return std::nullopt;
    }
    BOOST_ASSERT(false);
    return std::nullopt;
}

std::optional<request_event> request_op::not_started(const request_action& action)
{
    const error_code no_memory = make_error_code(boost::system::errc::not_enough_memory);
    switch (action.kind) {
    case request_action_kind::acquire:
        diagnostics_access::set_client_message(diag_, "out of memory");
        return events::acquire_failed(no_memory, request_clock::now());
    case request_action_kind::exchange: {
        attempt_outcome outcome;
        outcome.ec = no_memory;
        return events::exchanged(outcome);
    }
    case request_action_kind::release:
        connection_ = nullptr; // the sources take their connection back before anything can fail
        return events::released(request_clock::now());
    case request_action_kind::backoff:
        return events::backoff_ended(); // no wait, then
    case request_action_kind::none:
    case request_action_kind::abort_pending:
    case request_action_kind::complete:
        break;
    }
    throw; // the handler's own failure, or one that leaves nothing to decide: as Asio would
}

void request_op::acquire_done(error_code ec)
{
    if (ec)
        run(events::acquire_failed(ec, request_clock::now()));
    else
        run(events::acquired(reused_));
}

void request_op::released()
{
    connection_ = nullptr;
    run(events::released(request_clock::now()));
}

void request_op::deadline_passed(unsigned attempt)
{
    run(events::deadline_passed(attempt));
}

void request_op::total_deadline_passed()
{
    run(events::total_deadline_passed());
}

void request_op::cancel(std::string_view why)
{
    run(events::cancelled(why));
}

void request_op::start_exchange()
{
    BOOST_ASSERT(connection_ != nullptr);
    erase_token(response_); // an earlier attempt's, if any
    sent_at_ = std::chrono::system_clock::now();
    connection_->async_exchange(
        context_.request_head, request_, context_.config, response_, diag_,
        [self = shared_from_this()] { self->run(events::exchanged(self->connection_->outcome())); });
}

void request_op::start_backoff(std::chrono::milliseconds delay)
{
    if (!backoff_)
        backoff_ = std::make_unique<asio::steady_timer>(context_.strand);
    backoff_->expires_after(delay);
    backoff_->async_wait([self = shared_from_this()](error_code) { self->run(events::backoff_ended()); });
}

void request_op::abort_pending()
{
    switch (fsm_.phase()) {
    case request_phase::acquiring:
        context_.source.abort_acquire(*this);
        return;
    case request_phase::exchanging:
        connection_->abort();
        return;
    case request_phase::releasing:
        context_.source.abort_release(*this);
        return;
    case request_phase::backing_off:
        backoff_->cancel();
        return;
    case request_phase::initial:
    case request_phase::done:
        break;
    }
    BOOST_ASSERT(false); // the fsm aborts only a pending step
}

void request_op::finish(error_code ec)
{
    if (ec) {
        erase_token(response_); // a token minted before a late cancellation, say
        context_.events.clean_of_proxy_secrets(diag_);
    } else // once per token: a base64 decode and a small parse on the stack, no allocation
        response_.expires_at = expires_at_of(response_.token, sent_at_, request_.expires_in);
    context_.source.finished(*this, ec);
    if (initiating_) {
        // Never complete inside the initiating function.
        asio::post(context_.strand, [self = shared_from_this(), ec] { self->call_handler(ec); });
        return;
    }
    call_handler(ec);
}

event request_op::event_of(event_kind kind) const noexcept
{
    event e;
    e.kind = kind;
    e.operation = number_;
    e.attempt = fsm_.attempt();
    e.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(request_clock::now() - started_at_);
    return e;
}

std::string request_op::failure_text(error_code ec) const
{
    diagnostics without_count = diag_;
    diagnostics_access::set_attempts(without_count, 0);
    return context_.events.clean(describe(ec, without_count));
}

void request_op::report(const request_event& happened, const request_action& next) noexcept
{
    try {
        report_events(happened, next);
    } catch (const std::bad_alloc&) {
        // An event lost for want of memory; the operation goes on. `completed` is
        // promised, last: it goes out without its reason.
        if (next.kind == request_action_kind::complete) {
            event e = event_of(event_kind::completed);
            e.error = next.error;
            context_.events.emit(e);
        }
    }
}

void request_op::report_events(const request_event& happened, const request_action& next)
{
    const event_sink& sink = context_.events;
    std::string text; // what a string_view of the event refers to
    switch (happened.kind) {
    case request_event_kind::acquired: {
        BOOST_ASSERT(connection_ != nullptr);
        event e = event_of(event_kind::connected);
        e.reused = happened.reused;
        connection_->describe_to(e);
        if (e.reused)
            e.connect_time = {};
        e.via_proxy = sink.via_proxy();
        sink.emit(e);
        break;
    }
    case request_event_kind::exchanged:
        if (happened.outcome.status != 0) {
            event e = event_of(event_kind::response_received);
            e.connection = connection_->number();
            e.http_status = happened.outcome.status;
            text = sink.clean(std::string(diag_.request_id()));
            e.request_id = text;
            sink.emit(e);
        }
        break;
    default:
        break;
    }
    switch (next.kind) {
    case request_action_kind::acquire:
        if (!fsm_.moving_past_stale_connection())
            sink.emit(event_of(event_kind::attempt_started));
        break;
    case request_action_kind::backoff: {
        event e = event_of(event_kind::retry_scheduled);
        e.retry_delay = next.delay;
        e.error = next.error;
        text = failure_text(next.error);
        e.reason = text;
        sink.emit(e);
        break;
    }
    case request_action_kind::complete: {
        event e = event_of(event_kind::completed);
        e.error = next.error;
        if (next.error) {
            text = failure_text(next.error);
            e.reason = text;
        }
        sink.emit(e);
        break;
    }
    default:
        break;
    }
}

void request_op::call_handler(error_code ec)
{
    if (handler_work_) {
        asio::dispatch(*handler_work_,
                       token_completion{std::move(handler_), user_slot_, ec, token_in_transit(std::move(response_))});
        handler_work_.reset(); // the handler is queued (or has run): it is the work now
        return;
    }
    if (context_.io_executor.target<asio::io_context::executor_type>() != nullptr) {
        // We run inside that io_context, which is the handler's executor too, so
        // dispatch() on it would call the handler here and now; calling it directly
        // spares the type-erased executor it builds. The slot is cleared here, then,
        // as Asio's own operations do where their completion runs.
        if (user_slot_.is_connected())
            user_slot_.clear();
        std::move(handler_)(ec, std::move(response_));
        erase_token(response_); // what a short string moved from keeps
        return;
    }
    // Any other executor decides for itself (blocking.never posts, a custom one may
    // track or trace what it runs).
    asio::dispatch(context_.io_executor,
                   token_completion{std::move(handler_), user_slot_, ec, token_in_transit(std::move(response_))});
}

} // namespace cartesia::detail
