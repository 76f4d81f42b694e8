// One exchange of a request and its response, over any stream: write the request,
// read and interpret the answer. connection::exchange runs it on TLS;
// test/fuzz/fuzz_response.cpp runs it on Beast's in-memory test::stream, so that
// the fuzzer feeds hostile bytes to the very code that reads a server's answer.
// Private to src/ and the fuzzers (Beast heavy).
#ifndef CARTESIA_SRC_EXCHANGE_HPP
#define CARTESIA_SRC_EXCHANGE_HPP

#include "protocol.hpp"
#include "retry_policy.hpp"
#include <cartesia/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <optional>
#include <string>
#include <string_view>

namespace cartesia::detail {

namespace asio = boost::asio;
using boost::system::error_code;

// Awaited operations report errors as values: faults are ordinary outcomes here.
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// Maps an error of reading the response (`part` is "headers" or "body") to the
// error the caller sees, with a client message. Defined in connection.cpp: it is
// the same for every stream.
error_code read_failure(error_code ec, const client_config& config, const attempt_outcome& facts, const char* part,
                        diagnostics& diag);

// Beast's parser, keeping only what the client reads: the status, six header
// fields and the body, in the connection's arena. Beast's response_parser would
// also store every other field in a container, and none of them is ever looked at.
// The values are copied: they point into the read buffer, which may move while the
// body is read. The first occurrence of a field wins, as a lookup would find it.
class token_response_parser final : public boost::beast::http::basic_parser<false> {
public:
    explicit token_response_parser(std::pmr::memory_resource* arena) : arena_(arena), body_(arena) {}

    unsigned status() const noexcept { return status_; }
    // The first value of each field kept; empty when the field did not come.
    std::string_view content_type() const noexcept { return view(content_type_); }
    std::string_view request_id() const noexcept { return view(request_id_); }
    std::string_view should_retry() const noexcept { return view(should_retry_); }
    std::string_view retry_after() const noexcept { return view(retry_after_); }
    std::string_view retry_after_ms() const noexcept { return view(retry_after_ms_); }
    std::string_view keep_alive_header() const noexcept { return view(keep_alive_); }
    std::string_view body() const noexcept { return body_; }

private:
    using field = boost::beast::http::field;
    using string_view = boost::beast::string_view;
    using kept_field = std::optional<std::pmr::string>; // nullopt until the field comes

    static std::string_view view(const kept_field& kept) noexcept
    {
        return kept ? std::string_view(*kept) : std::string_view();
    }

    void keep_first(kept_field& kept, string_view value)
    {
        if (!kept)
            kept.emplace(value.data(), value.size(), arena_);
    }

    void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {}
    void on_response_impl(int code, string_view, int, error_code&) override { status_ = static_cast<unsigned>(code); }

    void on_field_impl(field name, string_view name_string, string_view value, error_code&) override
    {
        using boost::beast::iequals;
        if (name == field::content_type)
            keep_first(content_type_, value);
        else if (name == field::retry_after)
            keep_first(retry_after_, value);
        else if (name == field::keep_alive)
            keep_first(keep_alive_, value);
        else if (name != field::unknown)
            return; // the three below are not among Beast's known fields
        else if (iequals(name_string, "x-request-id"))
            keep_first(request_id_, value);
        else if (iequals(name_string, "x-should-retry"))
            keep_first(should_retry_, value);
        else if (iequals(name_string, "retry-after-ms"))
            keep_first(retry_after_ms_, value);
    }

    void on_header_impl(error_code&) override {}

    // The parser has already held a Content-Length against the body limit.
    void on_body_init_impl(const boost::optional<std::uint64_t>& content_length, error_code&) override
    {
        if (content_length)
            body_.reserve(static_cast<std::size_t>(*content_length));
    }

    std::size_t on_body_impl(string_view data, error_code&) override
    {
        body_.append(data.data(), data.size());
        return data.size();
    }

    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}

    std::size_t on_chunk_body_impl(std::uint64_t, string_view data, error_code& ec) override
    {
        return on_body_impl(data, ec);
    }

    void on_finish_impl(error_code&) override {}

    std::pmr::memory_resource* arena_;
    unsigned status_ = 0;
    kept_field content_type_, request_id_, should_retry_, retry_after_, retry_after_ms_, keep_alive_;
    std::pmr::string body_;
};

// What the response path keeps on its connection from one exchange to the next.
// The arena is left uninitialised: the parser writes before it reads, and zeroing
// 4 KiB per connection buys nothing.
struct response_state {                // NOLINT(cppcoreguidelines-pro-type-member-init)
    boost::beast::flat_buffer buffer;  // kept: bytes past one response belong to the next
    std::array<std::byte, 4096> arena; // holds the parsed response of the current exchange
    std::optional<std::pmr::monotonic_buffer_resource> arena_resource;
    std::optional<token_response_parser> parser; // the response being read, in the arena
    bool keep_alive = false;                     // another exchange may follow on this connection
    bool complete = false; // at a record boundary: the handshake done, and the last exchange read a whole response
    keep_alive_hint server_hint; // the last whole response's Keep-Alive header
};

// Parses what `buffer` holds into `parser`. Returns need_more while the message
// is not whole: eager parsing takes every byte it can, so more must be read.
inline error_code parse_buffered(boost::beast::flat_buffer& buffer, token_response_parser& parser)
{
    error_code ec;
    if (buffer.size() > 0)
        buffer.consume(parser.put(buffer.data(), ec));
    if (!ec && !parser.is_done())
        ec = boost::beast::http::error::need_more;
    return ec;
}

// A read failed with `ec`. The server's close may end a body without a length;
// otherwise it is Beast's end_of_stream (nothing read) or partial_message.
inline error_code end_of_input(error_code ec, token_response_parser& parser)
{
    if (ec != asio::error::eof)
        return ec;
    if (!parser.got_some())
        return boost::beast::http::error::end_of_stream;
    error_code eof;
    parser.put_eof(eof);
    return eof;
}

// What the head of the final response says: its status, and whether and when to
// retry.
// `keep_request_id`: for events (client_config::on_event), which name the server's
// request id of every response; an error body's request id replaces it later.
inline void note_final_head(const token_response_parser& parser, attempt_outcome& facts, diagnostics& diag,
                            bool keep_request_id)
{
    facts.status = parser.status();
    diagnostics_access::set_http_status(diag, facts.status);
    if (keep_request_id && !parser.request_id().empty())
        diagnostics_access::set_request_id(diag, std::string(parser.request_id()));
    if (parser.should_retry() == "true")
        facts.should_retry_header = true;
    else if (parser.should_retry() == "false")
        facts.should_retry_header = false;
    if (!parser.retry_after_ms().empty() || !parser.retry_after().empty()) // rare: spare the clock read
        facts.retry_after =
            parse_retry_after(parser.retry_after_ms(), parser.retry_after(), std::chrono::system_clock::now());
}

// Writes `request`, then reads its response under the configured limits, skipping
// 1xx interim responses, and interprets it into `response`, or an error with
// `diag` filled. `facts` says whether a response began, its status and its retry
// headers. A whole response sets `state.complete`, and `state.keep_alive` when
// another exchange may follow. Completes with `void(error_code)`.
//
// An async_compose operation with no state of its own beyond the references and
// a step: the parser lives in `state`, on the connection. One suspension per
// read, and no post when the buffer already holds the answer, unlike Beast's
// http::async_read with its layers of composed operations. Every reference must
// outlive the operation: the stream and `state` belong to the connection (or the
// fuzz target), the rest to the request.
template <class AsyncStream> class exchange_op {
public:
    exchange_op(AsyncStream& stream, asio::const_buffer request, response_state& state, const client_config& config,
                attempt_outcome& facts, token_response& response, diagnostics& diag)
        : stream_(stream), request_(request), state_(state), config_(config), facts_(facts), response_(response),
          diag_(diag)
    {
    }

    template <class Self> void operator()(Self& self, error_code ec = {}, std::size_t transferred = 0)
    {
        if (step_ == step::start) {
            state_.keep_alive = false; // until a complete response says otherwise
            state_.complete = false;
            state_.server_hint = {};
            step_ = step::writing;
            asio::async_write(stream_, request_, std::move(self));
            return;
        }
        // What the bytes so far decide, computed before `self` moves on: an
        // allocation failure in our own code (the body, the read buffer, a
        // message) still completes the operation, with not_enough_memory.
        std::optional<error_code> result;
        asio::mutable_buffer next_read;
        try {
            if (step_ == step::writing) {
                if (ec) {
                    diagnostics_access::set_client_message(diag_, "cannot send the request");
                    result = ec;
                } else {
                    step_ = step::reading;
                    start_response();
                    result = advance(parse_buffered(state_.buffer, *state_.parser));
                }
            } else {
                state_.buffer.commit(transferred);
                result = advance(ec ? end_of_input(ec, *state_.parser) : parse_buffered(state_.buffer, *state_.parser));
            }
            if (!result)
                next_read = state_.buffer.prepare(boost::beast::read_size(state_.buffer, max_read));
        } catch (const std::bad_alloc&) {
            state_.keep_alive = false;
            result = make_error_code(boost::system::errc::not_enough_memory);
        }
        if (result) {
            // What the parser took beyond the inline arena (large headers) goes
            // now, not when the connection next serves or closes: an idle
            // connection keeps only its read buffer and the arena.
            state_.parser.reset();
            state_.arena_resource.reset();
            self.complete(*result);
        } else
            stream_.async_read_some(next_read, std::move(self));
    }

private:
    enum class step { start, writing, reading };

    // A few 1xx interim responses may precede the real one; an endless stream of them
    // is a broken server, not a reason to keep reading until the deadline.
    static constexpr int max_interim_responses = 8;
    static constexpr std::size_t max_read = std::size_t{64} * 1024;

    // The parsed response lives in an arena on the connection, reset for each
    // response: a token response costs the parser no heap allocation.
    void start_response()
    {
        state_.parser.reset();
        state_.arena_resource.emplace(state_.arena.data(), state_.arena.size());
        auto& parser = state_.parser.emplace(&*state_.arena_resource);
        parser.eager(true); // the header and the body in one pass over the buffer
        parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(config_.max_header_bytes, UINT32_MAX)));
        parser.body_limit(config_.max_body_bytes);
    }

    // Given the parser's verdict on the bytes so far: nullopt while it needs more,
    // else the exchange's result (after starting the next response past an
    // interim one).
    std::optional<error_code> advance(error_code ec)
    {
        namespace http = boost::beast::http;
        for (;;) {
            if (ec == http::error::need_more)
                return std::nullopt;
            auto& parser = *state_.parser;
            facts_.response_started = facts_.response_started || parser.got_some() || state_.buffer.size() > 0;
            if (ec) {
                if (!parser.is_header_done())
                    return read_failure(ec, config_, facts_, "headers", diag_);
                // The head of the final response (a 1xx one has no body to fail in)
                // says what happened even if the body then fails (too large, cut off,
                // late): a 200 must not be retried, a 503 may be.
                note_final_head(parser, facts_, diag_, static_cast<bool>(config_.on_event));
                return read_failure(ec, config_, facts_, "body", diag_);
            }
            if (parser.status() / 100 != 1 || parser.status() == 101)
                break;
            if (++interim_responses_ > max_interim_responses) {
                diagnostics_access::set_client_message(diag_, "more than 8 interim (1xx) responses");
                return error::bad_response;
            }
            start_response(); // the interim response is done with
            ec = parse_buffered(state_.buffer, *state_.parser);
        }
        auto& parser = *state_.parser;
        note_final_head(parser, facts_, diag_, static_cast<bool>(config_.on_event));
        // Bytes after a whole response, to a client that never pipelines, are the
        // server's error: they would be read as the next request's response.
        state_.keep_alive = parser.keep_alive() && !parser.need_eof() && state_.buffer.size() == 0;
        state_.complete = true;
        if (!parser.keep_alive_header().empty())
            state_.server_hint = parse_keep_alive(parser.keep_alive_header());
        const response_view view{parser.status(), parser.content_type(), parser.request_id(), parser.body()};
        return interpret_response(view, config_.api_key, response_, diag_);
    }

    AsyncStream& stream_;
    asio::const_buffer request_;
    response_state& state_;
    const client_config& config_;
    attempt_outcome& facts_;
    token_response& response_;
    diagnostics& diag_;
    step step_ = step::start;
    int interim_responses_ = 0;
};

template <class AsyncStream, class CompletionToken>
auto async_exchange(AsyncStream& stream, asio::const_buffer request, response_state& state, const client_config& config,
                    attempt_outcome& facts, token_response& response, diagnostics& diag, CompletionToken&& token)
{
    return asio::async_compose<CompletionToken, void(error_code)>(
        exchange_op<AsyncStream>(stream, request, state, config, facts, response, diag), token, stream);
}

} // namespace cartesia::detail

#endif
