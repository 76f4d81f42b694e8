// The whole exchange: the request written, then the bytes a server sends, through
// the real exchange operation (src/exchange.hpp, the code connection::async_exchange runs over
// TLS) on Beast's in-memory test::stream, to a token or an error.
//
// Input: one control byte, then the server's bytes, after which the server closes.
//   bits 0-2  the most bytes one read returns (1, 2, 3, 7, 16, 61, 512 or all), so
//             that every split of the response between reads is tried
//   bits 3-4  the limits: the defaults, or small header, body or both
//   bits 5-7  0, or the operation that fails (test::stream's fail_count: the
//             request's write is the first of each exchange)
// Up to three exchanges run on the stream while the connection stays reusable, as in
// the pool: bytes past one response belong to the next.
#include "exchange.hpp"
#include "fuzz_support.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/error.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace cd = cartesia::detail;
using boost::system::error_code;
using cartesia::error;
using cartesia::fuzz::require;

constexpr std::string_view api_key = "sk_car_0123456789abcdef";
constexpr std::string_view request =
    "POST /access-token HTTP/1.1\r\nHost: api.cartesia.ai\r\nContent-Length: 2\r\n\r\n{}";

constexpr std::array<std::size_t, 8> read_sizes{1, 2, 3, 7, 16, 61, 512, std::size_t(-1)};

struct limits {
    std::size_t header_bytes, body_bytes;
};
constexpr std::array<limits, 4> limit_choices{{{16 * 1024, 64 * 1024}, {128, 64 * 1024}, {16 * 1024, 16}, {64, 1}}};

bool is_status_error(error_code ec)
{
    return ec.category() == cartesia::error_category() && ec.value() >= static_cast<int>(error::bad_request) &&
           ec.value() <= static_cast<int>(error::unexpected_status);
}

// Every way the response path may fail on these bytes.
bool is_expected_error(error_code ec, bool failure_injected)
{
    if (is_status_error(ec) || ec == error::bad_response || ec == error::response_too_large)
        return true;
    if (ec == asio::error::eof) // the server closed before sending a byte
        return true;
    return failure_injected && ec == beast::test::error::test_failure;
}

void check_exchange(error_code ec, const cd::attempt_outcome& facts, const cd::response_state& state,
                    const cartesia::token_response& response, const cartesia::diagnostics& diag, bool failure_injected)
{
    const std::string what = ec.message();
    require(!ec == !response.token.empty(), "exactly one of a token and an error", what);
    require(ec || (facts.status >= 200 && facts.status < 300 && diag.http_status() == facts.status && state.complete),
            "a token comes from a complete 2xx response");
    require(!ec || is_expected_error(ec, failure_injected), "the error is one the response path may give", what);
    require(!is_status_error(ec) ||
                (cd::status_to_error(facts.status) == ec && diag.http_status() == facts.status && state.complete),
            "a status error matches the status of a complete response", what);
    require(!ec || is_status_error(ec) || !diag.client_message().empty(),
            "an error that is not a status explains itself", what);
    require(ec != asio::error::eof || !facts.response_started, "eof means no response byte arrived");
    require(facts.status == 0 || facts.response_started, "a status implies that the response started");
    require(diag.http_status() == 0 || facts.response_started, "a reported status implies that the response started");
    require(!state.keep_alive || state.complete, "only a complete response keeps the connection");
    cartesia::fuzz::require_key_absent(diag, api_key);

    // Whatever the headers said, the wait before a retry stays within bounds.
    const auto delay = cd::retry_delay(0, 0.5, facts.retry_after);
    require(delay >= std::chrono::milliseconds(0) && delay <= std::chrono::seconds(60), "retry delay in [0, 60 s]");
    cd::attempt_outcome outcome = facts;
    outcome.ec = ec;
    (void)cd::is_retryable(outcome);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    const std::uint8_t control = data[0];
    const std::size_t read_size = read_sizes[control & 7u];
    const limits chosen = limit_choices[(control >> 3) & 3u];
    const unsigned fail_at = control >> 5u;

    cartesia::client_config config;
    config.api_key = api_key;
    config.max_header_bytes = chosen.header_bytes;
    config.max_body_bytes = chosen.body_bytes;

    static asio::io_context io;
    beast::test::fail_count failures(fail_at == 0 ? std::size_t(-1) : fail_at);
    beast::test::stream stream(io, failures, cartesia::fuzz::as_text(data + 1, size - 1));
    stream.read_size(read_size);
    beast::test::stream server(io); // takes the requests, unread
    stream.connect(server);
    stream.close_remote(); // after its bytes, the server closes

    cd::response_state state;
    for (int exchange = 0; exchange < 3; ++exchange) {
        cd::attempt_outcome facts;
        cartesia::token_response response;
        cartesia::diagnostics diag;
        error_code ec;
        bool finished = false;
        int completions = 0;
        cd::async_exchange(stream, asio::buffer(request), state, config, facts, response, diag, [&](error_code result) {
            ec = result;
            finished = true;
            ++completions;
        });
        io.restart();
        io.run();
        require(finished && completions == 1, "the exchange completes once, when the server has closed");
        check_exchange(ec, facts, state, response, diag, fail_at != 0);
        if (!state.keep_alive)
            break;
    }
    return 0;
}
