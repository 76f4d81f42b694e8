// cartesia::client: keep-alive reuse, the pool's limits and FIFO queue, stale
// connections, idle timeout, close and destruction with operations in flight.
#include "fixture.hpp"

#include <cartesia/detail/client_access.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::error;
using cartesia::token_response;
using cartesia::test::notify_when_requests_reach;
using cartesia::test::server_fixture;
using namespace std::chrono_literals;

namespace {

// Records completions; once `expected` arrived, runs `when_done` (typically
// closing the client, so that its idle connections stop keeping io.run() busy).
struct result_log {
    std::size_t expected = 0;
    std::function<void()> when_done;
    std::vector<error_code> codes{};
    std::vector<int> order{}; // which operation completed, in completion order
    int tokens = 0;

    auto recorder(int index)
    {
        return [this, index](error_code ec, const token_response& response) {
            codes.push_back(ec);
            order.push_back(index);
            tokens += !ec && !response.token.empty();
            if (codes.size() == expected && when_done)
                when_done();
        };
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(pooled_client)

// As for the free function: a pending request is work on its handler's executor.
BOOST_FIXTURE_TEST_CASE(a_handler_bound_to_another_io_context_keeps_it_running, server_fixture)
{
    cartesia::client client(io.get_executor(), tls, config);
    asio::io_context handler_context;
    bool called = false;
    client.async_generate_token({}, asio::bind_executor(handler_context, [&](error_code ec, const token_response&) {
                                    BOOST_TEST(!ec, ec.message());
                                    called = true;
                                    client.close(); // lets io.run() return: no idle connection left
                                }));
    std::thread io_thread([&] { io.run(); });
    const std::size_t handlers_run = handler_context.run();
    io_thread.join();
    BOOST_TEST(called);
    BOOST_TEST(handlers_run >= 1u);
}

BOOST_FIXTURE_TEST_CASE(sequential_tokens_reuse_one_connection, server_fixture)
{
    cartesia::client client(io.get_executor(), tls, config);
    BOOST_TEST((client.get_executor() == io.get_executor()));
    result_log log;
    int launched = 0;
    std::function<void()> next = [&] {
        if (launched == 20) {
            client.close();
            return;
        }
        const int index = launched++;
        client.async_generate_token({}, [&, index](error_code ec, const token_response& response) {
            log.recorder(index)(ec, response);
            next();
        });
    };
    next();
    io.run();
    BOOST_TEST(log.tokens == 20);
    BOOST_TEST(server.requests_received() == 20u);
    BOOST_TEST(server.connections_accepted() == 1u);
}

BOOST_FIXTURE_TEST_CASE(concurrency_is_bounded_by_max_connections_and_the_queue_is_fifo, server_fixture)
{
    auto limited = config_with_fault("slow-20");
    limited.max_connections = 3;
    cartesia::client client(io.get_executor(), tls, limited);
    constexpr int count = 30;
    result_log log{count, [&] { client.close(); }};
    for (int i = 0; i < count; ++i)
        client.async_generate_token({}, log.recorder(i));
    io.run();
    BOOST_TEST(log.tokens == count);
    BOOST_TEST(server.connections_accepted() == 3u);
    // Requests wait first come, first served: with equal service times they
    // complete in rounds of three, each round after every earlier one.
    for (std::size_t i = 0; i < log.order.size(); ++i)
        BOOST_TEST(log.order[i] / 3 == static_cast<int>(i) / 3,
                   "completion " << i << " was operation " << log.order[i]);
}

BOOST_FIXTURE_TEST_CASE(a_connection_the_server_dropped_while_idle_is_not_an_error, server_fixture)
{
    // The server answers, then drops the connection without a word: the client
    // learns it only when it reuses the connection.
    auto dropping = config_with_fault("drop-after-response");
    dropping.max_retries = 0;
    cartesia::client client(io.get_executor(), tls, dropping);
    for (int i = 0; i < 5; ++i) {
        cartesia::diagnostics diag;
        auto result = client.async_generate_token({}, diag, asio::use_future);
        io.restart();
        while (result.wait_for(0s) != std::future_status::ready)
            io.run_one();
        BOOST_TEST(!result.get().token.empty());
        BOOST_TEST(diag.attempts() == 1u);
    }
    BOOST_TEST(server.requests_received() == 5u);
    BOOST_TEST(server.connections_accepted() == 5u);
}

BOOST_FIXTURE_TEST_CASE(connection_close_from_the_server_moves_on_to_a_new_connection, server_fixture)
{
    cartesia::client client(io.get_executor(), tls, config_with_fault("eof-delimited"));
    result_log log;
    for (int i = 0; i < 4; ++i)
        client.async_generate_token({}, log.recorder(i));
    const auto start = cartesia::test::clock_type::now();
    io.run(); // nothing stays idle: the server closes every connection
    BOOST_TEST(log.tokens == 4);
    BOOST_TEST(server.connections_accepted() == 4u);
    // Nor does the deadline timer of requests that ended keep io.run() busy until
    // their deadline (the fixture's timeout is 20 s).
    BOOST_TEST(cartesia::test::milliseconds_since(start) < 10000);
}

BOOST_FIXTURE_TEST_CASE(idle_connections_are_closed_after_the_idle_timeout, server_fixture)
{
    auto short_idle = config;
    short_idle.idle_timeout = 100ms;
    cartesia::client client(io.get_executor(), tls, short_idle);
    result_log log;
    client.async_generate_token({}, log.recorder(0));
    const auto start = cartesia::test::clock_type::now();
    io.run(); // returns once the idle connection is closed: nothing else is pending
    BOOST_TEST(log.tokens == 1);
    BOOST_TEST(cartesia::test::milliseconds_since(start) >= 90);
    BOOST_TEST(cartesia::test::milliseconds_since(start) < 10000); // not the request's 20 s timeout
    BOOST_TEST(server.wait_for_open_connections(0, 5s));
}

// The pool closes idle connections with one timer, set for the oldest: a
// connection used again must get a new idle period, the other must still close.
BOOST_FIXTURE_TEST_CASE(each_idle_connection_gets_its_own_idle_timeout, server_fixture)
{
    auto short_idle = config;
    short_idle.idle_timeout = 300ms;
    short_idle.max_connections = 2;
    cartesia::client client(io.get_executor(), tls, short_idle);
    // Two requests at once open two connections. 150 ms after they are idle, a
    // third reuses one of them.
    asio::steady_timer later(io);
    // When the first connection became idle: the first completion. Read by the
    // watcher thread below.
    std::atomic<cartesia::test::clock_type::time_point> first_idle{};
    std::optional<cartesia::test::clock_type::time_point> reused_idle;
    result_log log{2, [&] {
                       later.expires_after(150ms);
                       later.async_wait([&](error_code) {
                           client.async_generate_token({}, [&](error_code ec, const token_response&) {
                               BOOST_TEST(!ec, ec.message());
                               reused_idle = cartesia::test::clock_type::now();
                           });
                       });
                   }};
    auto noting_first_idle = [&](int index) {
        return [&, index](error_code ec, const token_response& response) {
            if (first_idle.load() == cartesia::test::clock_type::time_point{})
                first_idle = cartesia::test::clock_type::now();
            log.recorder(index)(ec, response);
        };
    };
    client.async_generate_token({}, noting_first_idle(0));
    client.async_generate_token({}, noting_first_idle(1));
    // The connection idle first closes 300 ms later, not when the reused one does.
    std::optional<long long> one_left_ms;
    std::thread watcher([&] {
        if (server.wait_for_open_connections(2, 5s) && server.wait_for_open_connections(1, 5s))
            one_left_ms = cartesia::test::milliseconds_since(first_idle.load());
    });
    io.run(); // returns once both idle connections are closed: nothing else is pending
    watcher.join();
    BOOST_TEST_REQUIRE(log.tokens == 2);
    BOOST_TEST_REQUIRE(reused_idle.has_value());
    BOOST_TEST(server.connections_accepted() == 2u); // the third request found one open
    BOOST_TEST_REQUIRE(one_left_ms.has_value());
    // The exact times are the pool's (pool_fsm: idle connections expire oldest
    // first, with an injected clock); here, that the real timer keeps them apart:
    // the first closed a full idle period after it went idle, the reused one a
    // full period after its reuse, which was 150 ms later.
    BOOST_TEST(*one_left_ms >= 290);
    BOOST_TEST(cartesia::test::milliseconds_since(*reused_idle) >= 290);
    BOOST_TEST(server.wait_for_open_connections(0, 5s));
}

BOOST_AUTO_TEST_CASE(close_completes_every_pending_operation_exactly_once)
{
    asio::io_context io;
    std::optional<cartesia::client> client;
    // Two requests hang on the two connections, three wait in the queue; close
    // once the server holds both.
    server_fixture f(notify_when_requests_reach(2, io, [&] { client->close(); }));
    auto hanging = f.config_with_fault("hang");
    hanging.max_connections = 2;
    client.emplace(io.get_executor(), f.tls, hanging);
    result_log log;
    for (int i = 0; i < 5; ++i)
        client->async_generate_token({}, log.recorder(i));
    io.run(); // returns when nothing is left pending
    BOOST_TEST_REQUIRE(log.codes.size() == 5u);
    for (const auto& ec : log.codes)
        BOOST_TEST(ec == asio::error::operation_aborted);

    // Operations started after close() fail the same way.
    io.restart();
    error_code late;
    client->async_generate_token({}, [&](error_code ec, const token_response&) { late = ec; });
    io.run();
    BOOST_TEST(late == asio::error::operation_aborted);
    BOOST_TEST(f.server.wait_for_open_connections(0, 5s));
}

BOOST_AUTO_TEST_CASE(destroying_the_client_with_operations_in_flight_completes_them)
{
    asio::io_context io;
    std::optional<cartesia::client> client;
    server_fixture f(notify_when_requests_reach(1, io, [&] { client.reset(); }));
    auto hanging = f.config_with_fault("hang");
    hanging.max_connections = 1;
    client.emplace(io.get_executor(), f.tls, hanging);
    result_log log;
    for (int i = 0; i < 3; ++i)
        client->async_generate_token({}, log.recorder(i));
    io.run(); // returns when nothing is left pending
    BOOST_TEST_REQUIRE(log.codes.size() == 3u);
    for (const auto& ec : log.codes)
        BOOST_TEST(ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(cancelling_a_queued_request_leaves_the_others_alone)
{
    asio::io_context io;
    asio::cancellation_signal signal;
    server_fixture f(notify_when_requests_reach(1, io, [&] { signal.emit(asio::cancellation_type::terminal); }));
    auto slow = f.config_with_fault("slow-100");
    slow.max_connections = 1;
    cartesia::client client(io.get_executor(), f.tls, slow);
    result_log log{3, [&] { client.close(); }};
    client.async_generate_token({}, log.recorder(0));
    client.async_generate_token({}, asio::bind_cancellation_slot(signal.slot(), log.recorder(1)));
    client.async_generate_token({}, log.recorder(2));
    io.run();
    BOOST_TEST_REQUIRE(log.codes.size() == 3u);
    BOOST_TEST(log.order[0] == 1); // cancelled while queued: completes first, at once
    BOOST_TEST(log.codes[0] == asio::error::operation_aborted);
    BOOST_TEST(log.tokens == 2);
    BOOST_TEST(f.server.requests_received() == 2u);
}

// A queued request is handed the connection the first one leaves, and cancelled
// before it could use it (the first one's handler cancels it): the connection must
// go back to the pool, not stay lent to a request that ended.
BOOST_FIXTURE_TEST_CASE(a_connection_handed_to_a_request_cancelled_meanwhile_goes_back, server_fixture)
{
    auto one = config;
    one.max_connections = 1;
    one.timeout = 5s;
    cartesia::client client(io.get_executor(), tls, one);
    asio::cancellation_signal signal;
    result_log log{3, [&] { client.close(); }};
    client.async_generate_token({}, [&](error_code ec, const token_response& response) {
        log.recorder(0)(ec, response);
        signal.emit(asio::cancellation_type::terminal);
        client.async_generate_token({}, log.recorder(2));
    });
    client.async_generate_token({}, asio::bind_cancellation_slot(signal.slot(), log.recorder(1)));
    io.run();
    BOOST_TEST_REQUIRE(log.codes.size() == 3u);
    BOOST_TEST(!log.codes[0]);
    BOOST_TEST(log.codes[1] == asio::error::operation_aborted);
    BOOST_TEST(!log.codes[2], log.codes[2].message()); // a timeout if the connection stayed lent
    BOOST_TEST(log.tokens == 2);
    BOOST_TEST(server.connections_accepted() == 1u);
}

// A queued request is woken to open a connection (the server closed the only one),
// then cancelled before it does: the chance must pass to the next request queued,
// or it, and every request after it, waits until its deadline.
BOOST_FIXTURE_TEST_CASE(a_request_woken_to_open_a_connection_and_cancelled_passes_the_chance_on, server_fixture)
{
    auto closing = config_with_fault("eof-delimited"); // every connection ends with its response
    closing.max_connections = 1;
    closing.timeout = 3s;
    closing.max_retries = 0;
    cartesia::client client(io.get_executor(), tls, closing);
    asio::cancellation_signal signal;
    result_log log{3, [&] { client.close(); }};
    client.async_generate_token({}, [&](error_code ec, const token_response& response) {
        log.recorder(0)(ec, response);
        signal.emit(asio::cancellation_type::terminal);
    });
    client.async_generate_token({}, asio::bind_cancellation_slot(signal.slot(), log.recorder(1)));
    client.async_generate_token({}, log.recorder(2));
    const auto start = cartesia::test::clock_type::now();
    io.run();
    BOOST_TEST_REQUIRE(log.codes.size() == 3u);
    BOOST_TEST(log.codes[0] == error_code{});
    BOOST_TEST(log.codes[1] == asio::error::operation_aborted);
    BOOST_TEST(log.codes[2] == error_code{}, log.codes[2].message());
    BOOST_TEST(cartesia::test::milliseconds_since(start) < 2500);
}

// A request whose deadline passes while it waits in the queue is retried, as any
// timed-out attempt.
BOOST_FIXTURE_TEST_CASE(a_request_timing_out_in_the_queue_is_retried, server_fixture)
{
    auto hanging = config_with_fault("hang");
    hanging.max_connections = 1;
    hanging.timeout = 300ms;
    hanging.max_retries = 1;
    cartesia::client client(io.get_executor(), tls, hanging);
    cartesia::diagnostics queued_diag;
    result_log log{2, [&] { client.close(); }};
    client.async_generate_token({}, log.recorder(0));
    client.async_generate_token({}, queued_diag, log.recorder(1));
    io.run();
    BOOST_TEST_REQUIRE(log.codes.size() == 2u);
    for (const auto& ec : log.codes)
        BOOST_TEST(ec == error::timeout, ec.message());
    BOOST_TEST(queued_diag.attempts() == 2u);
}

// An opening that hangs (a TCP peer that never answers the TLS handshake) ends at
// its own deadline, though the request that started it has gone: a request that
// comes 100 ms later and waits on it fails with the opening's timed_out, about
// 200 ms on (its own deadline would say error::timeout, 300 ms on), and the
// silent peer sees its connection end.
BOOST_FIXTURE_TEST_CASE(an_opening_that_hangs_ends_at_its_own_deadline, server_fixture)
{
    using tcp = asio::ip::tcp;
    tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
    tcp::socket peer(io);
    silent.async_accept(peer, [](error_code) {});
    auto unanswered = config;
    unanswered.base_url = "https://127.0.0.1:" + std::to_string(silent.local_endpoint().port());
    unanswered.max_connections = 1;
    unanswered.timeout = 300ms;
    cartesia::client client(io.get_executor(), tls, unanswered);

    asio::cancellation_signal signal;
    asio::steady_timer later(io);
    error_code first, second, peer_saw;
    cartesia::diagnostics diag;
    std::optional<long long> second_ms;
    std::string received;
    const auto second_request = [&] {
        const auto start = cartesia::test::clock_type::now();
        client.async_generate_token({}, diag, [&, start](error_code ec, const token_response&) {
            second = ec;
            second_ms = cartesia::test::milliseconds_since(start);
            client.close();
            // What the peer saw: a ClientHello, then the end of the connection.
            asio::async_read(peer, asio::dynamic_buffer(received), [&](error_code read_ec, std::size_t) {
                peer_saw = read_ec;
                silent.close();
            });
        });
    };
    client.async_generate_token({},
                                asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, const token_response&) {
                                    first = ec;
                                    later.expires_after(100ms);
                                    later.async_wait([&](error_code) { second_request(); });
                                }));
    signal.emit(asio::cancellation_type::terminal); // handled on the strand after the request has started
    io.run();

    BOOST_TEST(first == asio::error::operation_aborted, first.message());
    BOOST_TEST(second == asio::error::timed_out, second.message() << ": " << diag.client_message());
    BOOST_TEST(diag.client_message().find("within 300 ms") != std::string_view::npos, diag.client_message());
    BOOST_TEST_REQUIRE(second_ms.has_value());
    BOOST_TEST(*second_ms < 3000); // the error says whose deadline it was: the opening's
    BOOST_TEST(!received.empty()); // the handshake began
    BOOST_TEST((peer_saw == asio::error::eof || peer_saw == asio::error::connection_reset), peer_saw.message());
    BOOST_TEST(cartesia::detail::client_access::connections_opened(client) == 1u);
}

// Requests queued behind busy connections, and the io_context destroyed without
// running again: every request is freed with it (the sanitizer builds check for
// leaks), and no handler runs.
BOOST_AUTO_TEST_CASE(destroying_the_io_context_frees_queued_requests)
{
    std::optional<asio::io_context> io(std::in_place);
    bool stop = false;
    server_fixture f(notify_when_requests_reach(2, *io, [&] {
        stop = true;
        io->stop();
    }));
    auto hanging = f.config_with_fault("hang");
    hanging.max_connections = 2;
    int handlers_run = 0;
    {
        cartesia::client client(io->get_executor(), f.tls, hanging);
        for (int i = 0; i < 6; ++i)
            client.async_generate_token({}, [&](error_code, const token_response&) { ++handlers_run; });
        io->run(); // until the server holds two requests; four wait in the queue
    }
    BOOST_TEST(stop);
    io.reset();
    BOOST_TEST(handlers_run == 0);
}

BOOST_FIXTURE_TEST_CASE(retries_deadlines_and_bad_input_as_the_free_function, server_fixture)
{
    auto retrying = config_with_fault("once-503");
    retrying.max_retries = 1;
    cartesia::client retry_client(io.get_executor(), tls, retrying);
    cartesia::diagnostics diag;
    error_code ec;
    retry_client.async_generate_token({}, diag, [&](error_code e, const token_response&) {
        ec = e;
        retry_client.close();
    });
    io.run();
    BOOST_TEST(!ec);
    BOOST_TEST(diag.attempts() == 2u);

    io.restart();
    auto hanging = config_with_fault("hang");
    hanging.timeout = 200ms;
    cartesia::client hang_client(io.get_executor(), tls, hanging);
    hang_client.async_generate_token({}, diag, [&](error_code e, const token_response&) { ec = e; });
    io.run();
    BOOST_TEST(ec == error::timeout);

    io.restart();
    const auto accepted = server.connections_accepted();
    auto bad = config;
    bad.api_key = "sk_car_bad\nkey";
    cartesia::client bad_client(io.get_executor(), tls, bad);
    bool called = false;
    bad_client.async_generate_token({}, diag, [&](error_code e, const token_response&) {
        ec = e;
        called = true;
    });
    BOOST_TEST(!called);
    io.run();
    BOOST_TEST(ec == error::invalid_argument);
    BOOST_TEST(diag.client_message().find("api_key") != std::string_view::npos);
    cartesia::token_request too_long;
    too_long.expires_in = 3601s;
    io.restart();
    retry_client.async_generate_token(too_long, diag, [&](error_code e, const token_response&) { ec = e; });
    io.run();
    BOOST_TEST(ec == error::invalid_argument);
    BOOST_TEST(server.connections_accepted() == accepted);
}

BOOST_FIXTURE_TEST_CASE(coroutines_and_many_threads, server_fixture)
{
    auto pooled = config;
    pooled.max_connections = 4;
    cartesia::client client(io.get_executor(), tls, pooled);
    std::atomic<int> tokens{0}, completed{0};
    constexpr int per_coroutine = 25, coroutines = 8, from_outside = 20;
    auto count = [&](bool ok) {
        tokens += ok;
        if (++completed == per_coroutine * coroutines + from_outside)
            client.close();
    };
    for (int c = 0; c < coroutines; ++c)
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                for (int i = 0; i < per_coroutine; ++i) {
                    auto response = co_await client.async_generate_token({}, asio::use_awaitable);
                    count(!response.token.empty());
                }
            },
            [](const std::exception_ptr& e) { BOOST_TEST(!e); });
    // Requests also arrive from a thread that does not run the io_context.
    std::thread outsider([&] {
        for (int i = 0; i < from_outside; ++i)
            client.async_generate_token({}, [&](error_code ec, const token_response&) { count(!ec); });
    });
    std::thread runner([&] { io.run(); });
    outsider.join();
    io.run();
    runner.join();
    BOOST_TEST(tokens == per_coroutine * coroutines + from_outside);
    BOOST_TEST(server.connections_accepted() <= 4u);
}

// Asio's rule for a cancellation slot: it is emitted, and cleared, on the handler's
// executor. The client clears it there too, not on its own strand, so that a
// caller on a strand of its own may emit at any point of an operation's life, its
// completion included, while two threads run the io_context (TSan checks). Most
// operations are pestered with `total` emissions, which the client ignores (a
// token may have been minted), from their start to their completion; every fourth
// is cancelled (`terminal`) at once.
BOOST_FIXTURE_TEST_CASE(a_caller_on_its_own_strand_may_emit_the_cancellation_at_any_time, server_fixture)
{
    auto pooled = config;
    pooled.max_connections = 2;
    cartesia::client client(io.get_executor(), tls, pooled);
    auto caller = asio::make_strand(io);
    constexpr std::size_t operations = 40;
    std::vector<asio::cancellation_signal> signals(operations);
    std::vector<int> calls(operations, 0); // on the caller's strand only
    std::size_t completed = 0, tokens = 0, aborted = 0, other = 0, emissions = 0;
    // On the caller's strand, until the i-th operation completed (and once after).
    std::function<void(std::size_t)> pester = [&](std::size_t i) {
        signals[i].emit(asio::cancellation_type::total);
        ++emissions;
        if (calls[i] == 0)
            asio::post(caller, [&pester, i] { pester(i); });
    };
    asio::post(caller, [&] {
        for (std::size_t i = 0; i < operations; ++i) {
            client.async_generate_token(
                {}, asio::bind_cancellation_slot(
                        signals[i].slot(), asio::bind_executor(caller, [&, i](error_code ec, const token_response& t) {
                            ++calls[i];
                            if (!ec && !t.token.empty())
                                ++tokens;
                            else if (ec == asio::error::operation_aborted)
                                ++aborted;
                            else
                                ++other;
                            if (++completed == operations)
                                client.close();
                        })));
            if (i % 4 == 0)
                signals[i].emit(asio::cancellation_type::terminal);
            else
                pester(i);
        }
    });
    std::thread second([&] { io.run(); });
    io.run();
    second.join();
    BOOST_TEST(completed == operations);
    BOOST_TEST(static_cast<std::size_t>(std::count(calls.begin(), calls.end(), 1)) == operations); // each exactly once
    BOOST_TEST(other == 0);
    BOOST_TEST(tokens >= operations * 3 / 4); // `total` is not honoured
    BOOST_TEST(aborted >= 1u);                // `terminal` is, unless the token won the race
    BOOST_TEST(tokens + aborted == operations);
    BOOST_TEST(emissions > operations); // emitted during the operations, not only before
}

BOOST_FIXTURE_TEST_CASE(deadlines_cover_the_wait_for_a_connection_and_expire_together, server_fixture)
{
    // Two requests hang on the two connections, two wait for one: all four share
    // the pool's deadline timer and end with timeout, waiters included.
    auto hanging = config_with_fault("hang");
    hanging.max_connections = 2;
    hanging.timeout = 300ms;
    cartesia::client client(io.get_executor(), tls, hanging);
    result_log log{4, [&] { client.close(); }};
    const auto start = cartesia::test::clock_type::now();
    for (int i = 0; i < 4; ++i)
        client.async_generate_token({}, log.recorder(i));
    io.run();
    BOOST_TEST_REQUIRE(log.codes.size() == 4u);
    for (const auto& ec : log.codes)
        BOOST_TEST(ec == error::timeout);
    BOOST_TEST(cartesia::test::milliseconds_since(start) >= 280);
    BOOST_TEST(cartesia::test::milliseconds_since(start) < 3000);
    // Two hang; a waiter may legitimately be handed a replacement connection when
    // the machine stalls between the initiations (its deadline then lies further
    // out). That deadlines expire together is unit_pool_fsm's deadline-list test.
    BOOST_TEST(server.requests_received() >= 2u);
    BOOST_TEST(server.requests_received() <= 4u);
}

BOOST_FIXTURE_TEST_CASE(each_request_gets_its_own_deadline, server_fixture)
{
    // The pool keeps its requests' deadlines on one timer, set for the earliest: a
    // request started later must time out its full timeout after its own start.
    auto hanging = config_with_fault("hang");
    hanging.timeout = 300ms;
    cartesia::client client(io.get_executor(), tls, hanging);
    const auto start = cartesia::test::clock_type::now();
    std::optional<long long> first_ms, second_ms;
    client.async_generate_token({}, [&](error_code ec, const token_response&) {
        BOOST_TEST(ec == error::timeout, ec.message());
        first_ms = cartesia::test::milliseconds_since(start);
    });
    asio::steady_timer later(io, 200ms);
    later.async_wait([&](error_code) {
        client.async_generate_token({}, [&](error_code ec, const token_response&) {
            BOOST_TEST(ec == error::timeout, ec.message());
            second_ms = cartesia::test::milliseconds_since(start);
            client.close();
        });
    });
    io.run();
    BOOST_TEST_REQUIRE(first_ms.has_value());
    BOOST_TEST_REQUIRE(second_ms.has_value());
    // The exact order is the deadline list's (pool_fsm); here, that the real timer
    // ends each at its own time: one that waited for the latest deadline would end
    // both together, not 200 ms apart.
    BOOST_TEST(*first_ms >= 290);
    BOOST_TEST(*second_ms >= 490);
    BOOST_TEST(*second_ms - *first_ms >= 100);
    BOOST_TEST(*second_ms < 3000);
}

// Timeouts of centuries are valid and must not overflow the clock.
BOOST_FIXTURE_TEST_CASE(huge_timeouts_are_fine, server_fixture)
{
    auto patient = config;
    patient.timeout = std::chrono::milliseconds::max();
    patient.idle_timeout = std::chrono::milliseconds::max();
    cartesia::client client(io.get_executor(), tls, patient);
    result_log log{2, [&] { client.close(); }};
    client.async_generate_token({}, log.recorder(0));
    client.async_generate_token({}, log.recorder(1));
    io.run();
    BOOST_TEST(log.tokens == 2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pooled_client_tls)

BOOST_FIXTURE_TEST_CASE(new_connections_resume_the_tls_session_of_earlier_ones, server_fixture)
{
    // The server closes every connection after its response: each token needs a
    // new connection, and all but the first should resume the first's session.
    cartesia::client client(io.get_executor(), tls, config_with_fault("eof-delimited"));
    int tokens = 0;
    std::function<void()> next = [&] {
        if (tokens == 5)
            return;
        client.async_generate_token({}, [&](error_code ec, const token_response&) {
            tokens += !ec;
            if (!ec)
                next();
        });
    };
    next();
    io.run();
    BOOST_TEST(tokens == 5);
    BOOST_TEST(server.connections_accepted() == 5u);
    BOOST_TEST(server.resumed_handshakes() == 4u);
}

// A one-shot leaves its session in the caller's context for the next one to the
// same host, as curl's connections share sessions; another context has its own.
BOOST_FIXTURE_TEST_CASE(the_free_function_resumes_the_session_of_the_last_one_through_its_context, server_fixture)
{
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(!cartesia::test::mint(*this, config).ec);
    BOOST_TEST(server.connections_accepted() == 3u);
    BOOST_TEST(server.resumed_handshakes() == 2u);
    // A failed one-shot keeps nothing, and changes nothing for the next.
    BOOST_TEST(cartesia::test::mint(*this, config_with_fault("status-401")).ec == error::unauthorized);
    BOOST_TEST(!cartesia::test::mint(*this, config).ec);
    BOOST_TEST(server.resumed_handshakes() == 4u);
    boost::asio::ssl::context other = cartesia::make_tls_context();
    other.add_certificate_authority(asio::buffer(server.ca_cert_pem()));
    std::swap(tls, other);
    BOOST_TEST(!cartesia::test::mint(*this, config).ec);
    BOOST_TEST(server.resumed_handshakes() == 4u); // a full handshake: a context of its own
    std::swap(tls, other);
}

BOOST_AUTO_TEST_SUITE_END()
