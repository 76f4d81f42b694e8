// A network error injected at every I/O step of an exchange (Beast's test::stream
// with fail_count n, from 1 up to the first run that needs no failure), through
// the request algorithm and the real exchange operation: as the one-shot function
// runs them (a fresh connection per attempt, retries) and as the pool does (a
// reused connection first, which a failure before any response byte leaves
// without counting a retry). In memory, no sockets.
#include "exchange.hpp"
#include "request_fsm.hpp"

#include <cartesia/error.hpp>
#include <support/printing.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/error.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace cd = cartesia::detail;
namespace ev = cartesia::detail::events;
using action_kind = cd::request_action_kind;
using boost::system::error_code;
using namespace std::chrono_literals;

const std::string token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln";
const std::string body = R"({"token":")" + token + R"("})";
const std::string answer =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
    body;
constexpr std::string_view request = "POST /access-token HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";

double no_jitter() noexcept
{
    return 0.0;
}

struct run_result {
    int completions = 0;
    error_code ec;
    cartesia::token_response response;
    cartesia::diagnostics diag;
    unsigned attempts = 0;
    unsigned stale_moves = 0;
};

// Runs the request algorithm to completion, executing its actions at once: each
// acquisition is a new in-memory connection. The first fails from its I/O step
// `failures` on (fail_count fails every step from the n-th), and is presented as
// reused when `first_reused` (the pool's case); the later ones do not fail.
run_result run(beast::test::fail_count& failures, unsigned max_attempts, bool first_reused)
{
    asio::io_context io;
    cartesia::client_config config;
    cartesia::diagnostics diag;
    cd::request_settings settings;
    settings.timeout = 1000ms;
    settings.max_attempts = max_attempts;
    settings.jitter = &no_jitter;
    cd::request_fsm fsm(settings, diag);

    struct link {
        beast::test::stream client, server;
        cd::response_state state;
        link(asio::io_context& context, beast::test::fail_count& fc) : client(context, fc, answer), server(context)
        {
            client.read_size(16); // the response takes several reads: a failure point each
            client.connect(server);
        }
    };
    std::unique_ptr<link> current;
    bool next_reused = first_reused;
    bool first = true;
    beast::test::fail_count never(std::size_t(-1));

    run_result result;
    cd::attempt_outcome facts;
    cd::request_event event = ev::start(cd::request_clock::now());
    for (int steps = 0; steps < 100; ++steps) {
        const auto action = fsm.resume(event);
        switch (action.kind) {
        case action_kind::acquire:
            current = std::make_unique<link>(io, std::exchange(first, false) ? failures : never);
            event = ev::acquired(std::exchange(next_reused, false));
            continue;
        case action_kind::exchange: {
            facts = {};
            result.response = {};
            bool done = false;
            cd::async_exchange(current->client, asio::buffer(request), current->state, config, facts, result.response,
                               diag, [&](error_code ec) {
                                   facts.ec = ec;
                                   done = true;
                               });
            io.restart();
            io.run();
            BOOST_REQUIRE(done);
            event = ev::exchanged(facts);
            continue;
        }
        case action_kind::release:
            current.reset();
            event = ev::released(cd::request_clock::now());
            continue;
        case action_kind::backoff:
            event = ev::backoff_ended();
            continue;
        case action_kind::complete:
            ++result.completions;
            result.ec = action.error;
            result.diag = diag;
            result.attempts = fsm.attempt();
            result.stale_moves = fsm.stale_moves();
            return result;
        case action_kind::none:
        case action_kind::abort_pending:
            break;
        }
        BOOST_FAIL("the algorithm stopped without completing");
    }
    BOOST_FAIL("the algorithm did not complete");
    return result;
}

// The steps of one successful exchange: the write, then one read per 16 bytes.
constexpr std::size_t first_read = 2;

} // namespace

BOOST_AUTO_TEST_SUITE(exchange_fsm)

BOOST_AUTO_TEST_CASE(a_failure_at_every_step_of_a_fresh_connection)
{
    std::size_t steps_covered = 0;
    for (std::size_t n = 1;; ++n) {
        BOOST_TEST_CONTEXT("failing I/O step " << n)
        {
            beast::test::fail_count failures(n);
            const auto r = run(failures, 3, /*first_reused=*/false);
            BOOST_TEST(r.completions == 1);
            if (r.attempts == 1 && !r.ec) {
                steps_covered = n - 1; // this run needed no failure: every step was covered
                BOOST_TEST(r.response.token == token);
                break;
            }
            if (n <= first_read) {
                // Before any response byte: the network failing, retried.
                BOOST_TEST(!r.ec);
                BOOST_TEST(r.response.token == token);
                BOOST_TEST(r.attempts == 2u);
            } else {
                // Part of the response came: never retried (a token may have been minted).
                BOOST_TEST(r.ec == error_code(beast::test::error::test_failure));
                BOOST_TEST(r.response.token.empty());
                BOOST_TEST(r.attempts == 1u);
                BOOST_TEST(!r.diag.client_message().empty());
            }
            BOOST_TEST(r.stale_moves == 0u);
        }
    }
    BOOST_TEST(steps_covered >= 1 + answer.size() / 16);
}

BOOST_AUTO_TEST_CASE(a_failure_at_every_step_of_a_reused_connection)
{
    std::size_t steps_covered = 0;
    for (std::size_t n = 1;; ++n) {
        BOOST_TEST_CONTEXT("failing I/O step " << n)
        {
            beast::test::fail_count failures(n);
            const auto r = run(failures, /*max_attempts=*/1, /*first_reused=*/true);
            BOOST_TEST(r.completions == 1);
            BOOST_TEST(r.attempts == 1u); // no retry, ever: max_attempts is 1
            if (!r.ec && r.stale_moves == 0) {
                steps_covered = n - 1;
                break;
            }
            if (n <= first_read) {
                // The server closed it while idle, as far as the client can tell:
                // another connection, in the same attempt.
                BOOST_TEST(!r.ec);
                BOOST_TEST(r.response.token == token);
                BOOST_TEST(r.stale_moves == 1u);
            } else {
                BOOST_TEST(r.ec == error_code(beast::test::error::test_failure));
                BOOST_TEST(r.stale_moves == 0u);
            }
        }
    }
    BOOST_TEST(steps_covered >= 1 + answer.size() / 16);
}

// An idle connection keeps its read buffer and inline arena, not the parser nor
// what the parser took from the heap beyond the arena (headers past 4 KiB).
BOOST_AUTO_TEST_CASE(a_completed_exchange_gives_its_parser_back)
{
    asio::io_context io;
    const std::string filler(6000, 'x');
    const std::string large = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Filler: " + filler +
                              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    beast::test::stream client(io, large), server(io);
    client.connect(server);
    cd::response_state state;
    cartesia::client_config config;
    cd::attempt_outcome facts;
    cartesia::token_response response;
    cartesia::diagnostics diag;
    error_code result = asio::error::would_block;
    cd::async_exchange(client, asio::buffer(request), state, config, facts, response, diag,
                       [&](error_code ec) { result = ec; });
    io.run();
    BOOST_TEST(!result, result.message());
    BOOST_TEST(response.token == token);
    BOOST_TEST(state.complete);
    BOOST_TEST(!state.parser.has_value());
    BOOST_TEST(!state.arena_resource.has_value());
}

BOOST_AUTO_TEST_SUITE_END()
