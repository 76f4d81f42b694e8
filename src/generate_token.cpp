// The I/O half of async_generate_token: one coroutine drives the sans-io protocol
// (detail/protocol.hpp) over TCP + TLS, with retries, a deadline per attempt and
// cancellation.
//
// Why co_spawn and not experimental::co_composed: co_composed is experimental in
// Boost 1.81 and its cancellation handling changed across releases, while co_spawn
// is stable. The usual cost of co_spawn (an awaitable frame per call) is absorbed
// by asio's thread-local recycling allocator and is dwarfed here by the TLS
// handshake (about 1 ms of CPU per call). The deadline and the caller's
// cancellation do not go through co_spawn's cancellation plumbing at all: both
// close the socket and cancel the timers from the operation's strand, which makes
// every pending step fail at once whatever it is (resolve, connect, handshake,
// read, backoff), and lets the coroutine map the failure to `timeout` or
// `operation_aborted`. The handler's slot is bridged onto that strand, so it is
// safe to emit from any thread that the handler's executor allows.
#include <cartesia/detail/protocol.hpp>
#include <cartesia/error.hpp>
#include <cartesia/generate_token.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <random>

namespace cartesia::detail {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

double random_jitter()
{
    thread_local std::minstd_rand generator{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

// Everything one call owns. Shared by the coroutine, the deadline's handler and
// the cancellation bridge; touched only on `strand`.
class operation : public std::enable_shared_from_this<operation> {
public:
    operation(token_handler handler, const asio::any_io_executor &executor, ssl::context &tls, client_config config,
              token_request request, endpoint where, diagnostics *diag)
        : io_executor_(executor), strand_(asio::make_strand(executor)), handler_(std::move(handler)), tls_(tls),
          config_(std::move(config)), where_(std::move(where)),
          request_bytes_(serialize_request(config_, where_, request, /*keep_alive=*/false)),
          diag_(diag ? *diag : own_diag_), resolver_(strand_), deadline_(strand_), backoff_(strand_)
    {
    }

    void start()
    {
        if (auto slot = asio::get_associated_cancellation_slot(handler_); slot.is_connected()) {
            user_slot_ = slot;
            user_slot_.emplace<cancellation_bridge>(weak_from_this(), strand_);
        }
        asio::co_spawn(strand_, run(shared_from_this()),
                       [self = shared_from_this()](std::exception_ptr failure, result outcome) {
                           self->finish(failure, std::move(outcome));
                       });
    }

private:
    struct result {
        error_code ec;
        token_response response;
    };

    // Installed in the handler's cancellation slot; hops onto the strand.
    struct cancellation_bridge {
        std::weak_ptr<operation> op;
        asio::strand<asio::any_io_executor> strand;

        void operator()(asio::cancellation_type_t type) const
        {
            using ct = asio::cancellation_type;
            if ((type & (ct::terminal | ct::partial)) == ct::none)
                return;
            if (auto self = op.lock())
                asio::dispatch(strand, [self] { self->cancel(); });
        }
    };

    static asio::awaitable<result> run(std::shared_ptr<operation> self)
    {
        const unsigned max_attempts = 1 + static_cast<unsigned>(self->config_.max_retries);
        result outcome;
        for (unsigned attempt = 1;; ++attempt) {
            self->diag_.clear();
            diagnostics_access::set_attempts(self->diag_, attempt);
            attempt_outcome facts = co_await self->run_attempt(outcome.response);
            outcome.ec = facts.ec;
            if (!facts.ec || attempt == max_attempts || self->cancelled_ || !is_retryable(facts))
                break;
            self->backoff_.expires_after(retry_delay(attempt - 1, random_jitter(), facts.retry_after));
            co_await self->backoff_.async_wait(nothrow_awaitable);
            if (self->cancelled_)
                break;
            outcome.response = {};
        }
        co_return outcome;
    }

    // One connection, one request, one response.
    asio::awaitable<attempt_outcome> run_attempt(token_response &response)
    {
        attempt_outcome facts;
        timed_out_ = false;
        if (cancelled_) {
            facts.ec = asio::error::operation_aborted;
            co_return facts;
        }
        arm_deadline();
        facts.ec = co_await exchange(facts, response);
        if (facts.ec)
            facts.ec = classify_failure(facts.ec);
        deadline_.cancel();
        stream_.reset();
        co_return facts;
    }

    asio::awaitable<error_code> exchange(attempt_outcome &facts, token_response &response)
    {
        tcp::resolver::results_type endpoints;
        if (where_.host_is_ip) {
            // No resolver for an IP literal: no getaddrinfo thread, no wait.
            const auto address = asio::ip::make_address(where_.host);
            const auto port = static_cast<unsigned short>(std::stoul(where_.port));
            endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, port), where_.host, where_.port);
        } else {
            auto [ec, resolved] = co_await resolver_.async_resolve(where_.host, where_.port, nothrow_awaitable);
            if (ec)
                co_return fail(ec, "cannot resolve " + where_.host);
            endpoints = std::move(resolved);
        }

        stream_.emplace(strand_, tls_);
        {
            // The condition stops the walk over the endpoints once the deadline or a
            // cancellation has closed the socket, instead of opening it again.
            auto keep_trying = [this](const error_code &, const tcp::endpoint &) { return !timed_out_ && !cancelled_; };
            auto [ec, connected] =
                co_await asio::async_connect(stream_->next_layer(), endpoints, keep_trying, nothrow_awaitable);
            if (ec)
                co_return fail(ec, "cannot connect to " + where_.host_header);
        }
        error_code ignored;
        stream_->next_layer().set_option(tcp::no_delay(true), ignored);

        if (auto ec = configure_verification())
            co_return ec;
        if (auto [ec] = co_await stream_->async_handshake(ssl::stream_base::client, nothrow_awaitable); ec) {
            const long verify_result = SSL_get_verify_result(stream_->native_handle());
            if (verify_result != X509_V_OK)
                co_return fail(ec, std::string("TLS certificate verification failed: ") +
                                       X509_verify_cert_error_string(verify_result));
            co_return fail(ec, "TLS handshake with " + where_.host_header + " failed");
        }

        if (auto [ec, n] = co_await asio::async_write(*stream_, asio::buffer(request_bytes_), nothrow_awaitable); ec)
            co_return fail(ec, "cannot send the request");

        boost::beast::flat_buffer buffer;
        std::optional<http::response_parser<http::string_body>> parser;
        do {
            // A 1xx interim response is followed by the real one: parse afresh.
            parser.emplace();
            parser->header_limit(
                static_cast<std::uint32_t>(std::min<std::size_t>(config_.max_header_bytes, UINT32_MAX)));
            parser->body_limit(config_.max_body_bytes);
            auto [ec, n] = co_await http::async_read_header(*stream_, buffer, *parser, nothrow_awaitable);
            facts.response_started = facts.response_started || parser->got_some() || buffer.size() > 0;
            if (ec)
                co_return read_failure(ec, facts, "headers");
        } while (parser->get().result_int() / 100 == 1 && parser->get().result_int() != 101);

        const auto &head = parser->get();
        facts.status = head.result_int();
        if (auto it = head.find("x-should-retry"); it != head.end()) {
            if (it->value() == "true")
                facts.should_retry_header = true;
            else if (it->value() == "false")
                facts.should_retry_header = false;
        }
        facts.retry_after =
            parse_retry_after(head["retry-after-ms"], head[http::field::retry_after], std::chrono::system_clock::now());
        if (!parser->is_done()) {
            if (auto [ec, n] = co_await http::async_read(*stream_, buffer, *parser, nothrow_awaitable); ec)
                co_return read_failure(ec, facts, "body");
        }

        const auto &message = parser->get();
        const response_view view{message.result_int(), message[http::field::content_type], message["x-request-id"],
                                 message.body()};
        const error_code outcome = interpret_response(view, config_.api_key, response, diag_);

        // The answer is in; a peer that skips close_notify (stream_truncated) or
        // is slow to send it must not turn it into a failure. The deadline still
        // bounds this wait.
        co_await stream_->async_shutdown(nothrow_awaitable);
        co_return outcome;
    }

    error_code configure_verification()
    {
        // Verification is on whatever the context says: peer and host name.
        stream_->set_verify_mode(ssl::verify_peer);
        SSL *handle = stream_->native_handle();
        bool configured = false;
        if (where_.host_is_ip) {
            configured = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), where_.host.c_str()) == 1;
        } else {
            SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            configured = SSL_set_tlsext_host_name(handle, where_.host.c_str()) == 1 &&
                         SSL_set1_host(handle, where_.host.c_str()) == 1;
        }
        if (!configured)
            return fail(ssl::error::make_error_code(ssl::error::unspecified_system_error),
                        "cannot set up host name verification for " + where_.host);
        return {};
    }

    error_code read_failure(error_code ec, const attempt_outcome &facts, const char *part)
    {
        if (ec == http::error::body_limit)
            return fail(error::response_too_large,
                        "the response body exceeds max_body_bytes (" + std::to_string(config_.max_body_bytes) + ")");
        if (ec == http::error::header_limit)
            return fail(error::response_too_large, "the response headers exceed max_header_bytes (" +
                                                       std::to_string(config_.max_header_bytes) + ")");
        if (ec == http::error::partial_message)
            return fail(error::bad_response,
                        std::string("the connection closed in the middle of the response ") + part);
        if (ec.category() == http::make_error_code(http::error::bad_version).category() &&
            ec != http::error::end_of_stream)
            return fail(error::bad_response, "the answer is not valid HTTP: " + ec.message());
        return fail(ec, facts.response_started ? std::string("the connection failed while reading the response ") + part
                                               : std::string("the connection closed before any response"));
    }

    error_code fail(error_code ec, std::string message)
    {
        diagnostics_access::set_client_message(diag_, std::move(message));
        return ec;
    }

    // A deadline or a cancellation makes the pending step fail with whatever the
    // closed socket reports; say what really happened.
    error_code classify_failure(error_code ec)
    {
        if (cancelled_)
            return fail(asio::error::operation_aborted, "the operation was cancelled");
        if (timed_out_)
            return fail(error::timeout,
                        "no complete response within " + std::to_string(config_.timeout.count()) + " ms");
        return ec;
    }

    void arm_deadline()
    {
        deadline_.expires_after(config_.timeout);
        deadline_.async_wait([weak = weak_from_this()](error_code ec) {
            if (auto self = weak.lock(); self && !ec) {
                self->timed_out_ = true;
                self->close_transport();
            }
        });
    }

    void close_transport()
    {
        resolver_.cancel();
        if (stream_) {
            error_code ignored;
            stream_->next_layer().close(ignored);
        }
    }

    void cancel()
    {
        if (completed_)
            return;
        cancelled_ = true;
        close_transport();
        backoff_.cancel();
    }

    void finish(std::exception_ptr failure, result outcome)
    {
        completed_ = true;
        if (user_slot_.is_connected())
            user_slot_.clear();
        if (failure) {
            // Only allocation failures can get here; report rather than terminate.
            outcome = {make_error_code(boost::system::errc::not_enough_memory), {}};
        } else if (cancelled_) {
            outcome = {asio::error::operation_aborted, {}};
        }
        if (outcome.ec)
            outcome.response = {};
        auto handler_executor = asio::get_associated_executor(handler_, io_executor_);
        asio::dispatch(handler_executor, asio::append(std::move(handler_), outcome.ec, std::move(outcome.response)));
    }

    asio::any_io_executor io_executor_;
    asio::strand<asio::any_io_executor> strand_;
    token_handler handler_;
    asio::cancellation_slot user_slot_;
    ssl::context &tls_;
    const client_config config_;
    const endpoint where_;
    const std::string request_bytes_; // identical for every attempt
    diagnostics own_diag_;            // used when the caller passed none
    diagnostics &diag_;
    tcp::resolver resolver_;
    asio::steady_timer deadline_;
    asio::steady_timer backoff_;
    std::optional<ssl::stream<tcp::socket>> stream_;
    bool cancelled_ = false;
    bool timed_out_ = false;
    bool completed_ = false;
};

} // namespace

void start_generate_token(token_handler handler, const asio::any_io_executor &executor, ssl::context &tls,
                          client_config config, token_request request, diagnostics *diag)
{
    diagnostics local_diag;
    diagnostics &checked = diag ? *diag : local_diag;
    checked.clear();
    endpoint where;
    if (error_code ec = validate(config, request, where, checked)) {
        // Never complete inside the initiating function.
        asio::post(executor, asio::append(std::move(handler), ec, token_response{}));
        return;
    }
    std::make_shared<operation>(std::move(handler), executor, tls, std::move(config), std::move(request),
                                std::move(where), diag)
        ->start();
}

} // namespace cartesia::detail
