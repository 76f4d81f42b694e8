// async_generate_token: each attempt resolves, opens a fresh connection, runs one
// exchange and shuts TLS down; token_operation supplies retries, deadlines,
// cancellation and completion.
//
// Why co_spawn and not experimental::co_composed: co_composed is experimental in
// Boost 1.81 and its cancellation handling changed across releases, while co_spawn
// is stable. The usual cost of co_spawn (an awaitable frame per call) is absorbed
// by asio's thread-local recycling allocator, and is dwarfed here by the TLS
// handshake (about 1 ms of CPU per call). co_spawn's own cancellation plumbing is
// not used: see token_operation.hpp.
#include "token_operation.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>

#include <optional>

namespace cartesia::detail {
namespace {

class oneshot_operation final : public token_operation {
public:
    oneshot_operation(token_handler handler, bool handler_has_own_executor, const asio::any_io_executor& executor,
                      asio::ssl::context& tls, client_config config, const token_request& request, endpoint where,
                      diagnostics* diag)
        : token_operation(std::move(handler), handler_has_own_executor, executor, make_operation_strand(executor),
                          own_config_, diag),
          own_config_(std::move(config)), where_(std::move(where)),
          request_head_(serialize_request_head(own_config_, where_, /*keep_alive=*/false)),
          request_tail_(serialize_request_tail(request)), tls_(tls)
    {
    }

private:
    asio::awaitable<void> attempt(attempt_outcome& facts, token_response& response) override
    {
        connection_.emplace(strand_, tls_);
        facts.ec = co_await resolve_and_exchange(facts, response);
        if (!facts.ec)
            co_await connection_->shutdown(); // still under the deadline
        connection_.reset();
    }

    asio::awaitable<error_code> resolve_and_exchange(attempt_outcome& facts, token_response& response)
    {
        tcp::resolver::results_type endpoints;
        if (auto ec = co_await resolve_endpoints(where_, resolver_, strand_, endpoints, diag_))
            co_return ec;
        if (auto ec = co_await connection_->open(where_, endpoints, diag_))
            co_return ec;
        co_return co_await connection_->exchange(request_head_, request_tail_.view(), config_, facts, response, diag_);
    }

    void start_deadline(asio::steady_timer::time_point at) override
    {
        deadline_.expires_at(at);
        deadline_.async_wait([weak = weak_from_this(), this](error_code ec) {
            // The expiry of an earlier attempt may arrive after the next one re-armed
            // the timer (cancel() cannot recall a completion already queued): ignore it.
            if (auto self = weak.lock();
                self && !ec && !completed() && deadline_.expiry() <= asio::steady_timer::clock_type::now())
                deadline_passed();
        });
    }

    void stop_deadline() override { deadline_.cancel(); }

    void abort_attempt() override
    {
        if (resolver_)
            resolver_->cancel();
        if (connection_)
            connection_->abort();
    }

    const client_config own_config_;
    const endpoint where_;
    const std::string request_head_; // identical for every attempt
    const request_tail request_tail_;
    asio::ssl::context& tls_;
    std::unique_ptr<tcp::resolver> resolver_; // none for an IP literal
    std::optional<connection> connection_;
    asio::steady_timer deadline_{strand_};
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
