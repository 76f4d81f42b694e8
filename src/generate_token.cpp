// async_generate_token: the one driver (request_op.hpp) over a connection source
// that opens a fresh connection for each attempt (resolve, connect, TLS handshake)
// and never keeps it: after a token, a TLS shutdown under the attempt's deadline;
// after a failure, an abortive close. The TLS session of a token's connection is
// kept in the caller's ssl::context for the next one-shot to the same host
// (session_cache.hpp).
//
// Opening is a coroutine: it runs once per attempt, beside a TLS handshake that
// costs about 1 ms of CPU, so its frame is noise; its steps read as the sequence
// they are.
#include "request_op.hpp"
#include "session_cache.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <optional>

namespace cartesia::detail {
namespace {

// The configuration and the context live here, before the driver that refers to
// them is constructed.
struct oneshot_setup {
    oneshot_setup(const asio::any_io_executor& executor, client_config config, endpoint destination,
                  connection_source& source)
        : own_config(std::move(config)), where(std::move(destination)), context(executor, own_config, source)
    {
        context.request_head = serialize_request_head(own_config, where, /*keep_alive=*/false);
        context.events.configure(own_config, where);
    }

    const client_config own_config;
    const endpoint where;
    request_context context;
};

class oneshot_operation final : private connection_source, private oneshot_setup, public request_op {
public:
    oneshot_operation(token_handler handler, bool handler_has_own_executor, const asio::any_io_executor& executor,
                      asio::ssl::context& tls, client_config config, const token_request& request, endpoint destination,
                      diagnostics* diag)
        : oneshot_setup(executor, std::move(config), std::move(destination), *this),
          request_op(std::move(handler), handler_has_own_executor, context, request, diag), tls_(tls),
          deadline_(strand())
    {
    }

private:
    std::shared_ptr<oneshot_operation> shared_self()
    {
        return std::static_pointer_cast<oneshot_operation>(shared_from_this());
    }

    bool acquire(request_op&) override
    {
        connection_.emplace(strand(), tls_);
        offer_cached_session(tls_.native_handle(), where.host_header, connection_->native_handle());
        asio::co_spawn(strand(), open(), [self = shared_self()](const std::exception_ptr& failure, error_code ec) {
            if (failure) // only allocation failures can get here; report rather than terminate
                ec = make_error_code(boost::system::errc::not_enough_memory);
            if (!ec)
                self->set_connection(&*self->connection_, /*reused=*/false);
            else
                self->connection_.reset();
            self->acquire_done(ec);
        });
        return false;
    }

    asio::awaitable<error_code> open()
    {
        tcp::resolver::results_type endpoints;
        if (auto ec = co_await resolve_endpoints(where, resolver_, strand(), endpoints, diag()))
            co_return ec;
        co_return co_await connection_->open(where, endpoints, diag());
    }

    void abort_acquire(request_op&) override
    {
        if (resolver_)
            resolver_->cancel();
        if (connection_)
            connection_->abort();
    }

    std::optional<std::string_view> admit(request_op&) override { return std::nullopt; }

    bool release(request_op&, const attempt_outcome* exchange) override
    {
        if (context.events.enabled())
            report_closing(exchange);
        if (!exchange || exchange->ec) {
            // An abortive close: no token came over it. Told as ended properly when
            // it is at a record boundary (a whole error response), so that OpenSSL
            // does not mark the session, maybe the one the cache offered, unusable.
            connection_->close_quietly();
            connection_.reset();
            return true;
        }
        cache_session(tls_.native_handle(), where.host_header, connection_->native_handle());
        connection_->async_shutdown([self = shared_self()](error_code) {
            self->connection_.reset();
            self->released();
        });
        return false;
    }

    void abort_release(request_op&) override { connection_->abort(); }

    void start_deadline(request_op&, deadline_kind which, asio::steady_timer::time_point at) override
    {
        if (which == deadline_kind::total) {
            total_deadline_.emplace(strand(), at); // once per operation, and only with a total_timeout
            total_deadline_->async_wait([self = shared_self()](error_code ec) {
                if (!ec)
                    self->total_deadline_passed();
            });
            return;
        }
        deadline_.expires_at(at);
        deadline_.async_wait([self = shared_self(), attempt = attempt()](error_code ec) {
            if (!ec) // the fsm ignores the expiry of an attempt that has ended
                self->deadline_passed(attempt);
        });
    }

    void stop_deadline(request_op&, deadline_kind which) override
    {
        if (which == deadline_kind::attempt)
            deadline_.cancel();
        else if (total_deadline_)
            total_deadline_->cancel();
    }

    void finished(request_op&, error_code) override {}

    void report_closing(const attempt_outcome* exchange) noexcept
    {
        std::string_view why = "closed after its token";
        if (!exchange)
            why = "the operation ended before using it";
        else if (exchange->ec)
            why = "the exchange failed";
        event e = connection_->closed_event(why, exchange ? 1 : 0);
        e.operation = number();
        if (exchange)
            e.error = exchange->ec;
        context.events.emit(e);
    }

    asio::ssl::context& tls_;
    std::unique_ptr<tcp::resolver> resolver_; // none for an IP literal
    std::optional<connection> connection_;
    asio::steady_timer deadline_;                      // the attempt's
    std::optional<asio::steady_timer> total_deadline_; // the operation's
};

} // namespace

void start_generate_token(token_handler handler, bool handler_has_own_executor, const asio::any_io_executor& executor,
                          asio::ssl::context& tls, client_config config, token_request request, diagnostics* diag)
{
    diagnostics local_diag;
    diagnostics& checked = diag ? *diag : local_diag;
    checked.clear();
    endpoint where;
    if (error_code ec = validate(config, request, where, checked)) {
        // Never complete inside the initiating function.
        asio::post(executor, asio::append(std::move(handler), ec, token_response{}));
        return;
    }
    std::make_shared<oneshot_operation>(std::move(handler), handler_has_own_executor, executor, tls, std::move(config),
                                        request, std::move(where), diag)
        ->start();
}

} // namespace cartesia::detail
