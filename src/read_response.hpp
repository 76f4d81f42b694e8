// The response path of one exchange, over any stream. connection::exchange runs it
// on TLS; test/fuzz/fuzz_response.cpp runs it on Beast's in-memory test::stream, so
// that the fuzzer feeds hostile bytes to the very code that reads a server's answer.
// Private to src/ and the fuzzers (Beast heavy).
#ifndef CARTESIA_SRC_READ_RESPONSE_HPP
#define CARTESIA_SRC_READ_RESPONSE_HPP

#include <cartesia/detail/protocol.hpp>
#include <cartesia/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace cartesia::detail {

namespace asio = boost::asio;
using boost::system::error_code;

// Awaited operations report errors as values: faults are ordinary outcomes here.
constexpr auto nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

// What the response path keeps on its connection from one exchange to the next.
// The arena is left uninitialised: the parser writes before it reads, and zeroing
// 4 KiB per connection buys nothing.
struct response_state {                // NOLINT(cppcoreguidelines-pro-type-member-init)
    boost::beast::flat_buffer buffer;  // kept: bytes past one response belong to the next
    std::array<std::byte, 4096> arena; // holds the parsed response of the current exchange
    bool keep_alive = false;           // another exchange may follow on this connection
    bool complete = false;             // the last exchange read a whole response
};

// Maps an error of reading the response (`part` is "headers" or "body") to the
// error the caller sees, with a client message. Defined in connection.cpp: it is
// the same for every stream.
error_code read_failure(error_code ec, const client_config& config, const attempt_outcome& facts, const char* part,
                        diagnostics& diag);

// Reads the response to a request just sent, under the configured limits,
// skipping 1xx interim responses, then interprets it into `response`, or an error
// with `diag` filled. `facts` says whether a response began, its status and its
// retry headers. A whole response sets `state.complete` and `state.keep_alive`;
// the caller clears both before it sends the request.
//
// Every reference must outlive the coroutine: the caller awaits it at once, and
// the stream and `state` belong to the connection (or the fuzz target). Awaiting it
// costs a second coroutine frame per exchange, which Asio recycles: the benchmark's
// allocations per token are the same as when this code was inline.
template <class AsyncReadStream>
asio::awaitable<error_code> read_response(AsyncReadStream& stream, response_state& state, const client_config& config,
                                          attempt_outcome& facts, token_response& response, diagnostics& diag)
{
    namespace http = boost::beast::http;
    using arena_body = http::basic_string_body<char, std::char_traits<char>, std::pmr::polymorphic_allocator<char>>;

    // The response's fields and body live in an arena on the connection, reset for
    // each exchange: a token response costs the parser no heap allocation.
    std::pmr::monotonic_buffer_resource arena(state.arena.data(), state.arena.size());
    const std::pmr::polymorphic_allocator<char> allocator(&arena);
    std::optional<http::response_parser<arena_body, std::pmr::polymorphic_allocator<char>>> parser;
    // A few 1xx interim responses may precede the real one; an endless stream of them
    // is a broken server, not a reason to keep reading until the deadline.
    constexpr int max_interim_responses = 8;
    int interim_responses = 0;
    do {
        if (parser) {
            if (++interim_responses > max_interim_responses) {
                diagnostics_access::set_client_message(diag, "more than 8 interim (1xx) responses");
                co_return error::bad_response;
            }
            parser.reset();
            arena.release(); // the interim response's fields are done with
        }
        parser.emplace(std::piecewise_construct, std::make_tuple(allocator), std::make_tuple(allocator));
        parser->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(config.max_header_bytes, UINT32_MAX)));
        parser->body_limit(config.max_body_bytes);
        auto [ec, n] = co_await http::async_read_header(stream, state.buffer, *parser, nothrow_awaitable);
        facts.response_started = facts.response_started || parser->got_some() || state.buffer.size() > 0;
        if (ec) {
            // A Content-Length beyond the body limit fails here, the headers read.
            if (parser->is_header_done())
                diagnostics_access::set_http_status(diag, parser->get().result_int());
            co_return read_failure(ec, config, facts, "headers", diag);
        }
    } while (parser->get().result_int() / 100 == 1 && parser->get().result_int() != 101);

    const auto& head = parser->get();
    facts.status = head.result_int();
    // Known from here on, even if the body then fails (too large, cut off, late).
    diagnostics_access::set_http_status(diag, facts.status);
    if (auto it = head.find("x-should-retry"); it != head.end()) {
        if (it->value() == "true")
            facts.should_retry_header = true;
        else if (it->value() == "false")
            facts.should_retry_header = false;
    }
    const auto retry_after_ms = head["retry-after-ms"];
    const auto retry_after = head[http::field::retry_after];
    if (!retry_after_ms.empty() || !retry_after.empty()) // rare: spare the clock read
        facts.retry_after = parse_retry_after(retry_after_ms, retry_after, std::chrono::system_clock::now());
    if (!parser->is_done()) {
        if (auto [ec, n] = co_await http::async_read(stream, state.buffer, *parser, nothrow_awaitable); ec)
            co_return read_failure(ec, config, facts, "body", diag);
    }

    const auto& message = parser->get();
    // Bytes after a whole response, to a client that never pipelines, are the
    // server's error: they would be read as the next request's response.
    state.keep_alive = message.keep_alive() && !parser->need_eof() && state.buffer.size() == 0;
    state.complete = true;
    const response_view view{message.result_int(), message[http::field::content_type], message["x-request-id"],
                             std::string_view(message.body())};
    co_return interpret_response(view, config.api_key, response, diag);
}

} // namespace cartesia::detail

#endif
