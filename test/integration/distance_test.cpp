// At a distance: the warm minimum, the server's Keep-Alive hints, total_timeout and
// the retry budget, against the test server, through the delay relay where round
// trips are what is measured.
//
// "One round trip" is asserted by what cannot be load: the request opened no
// connection (the server's and the relay's counts), and by a bound far below the
// three round trips a new connection costs (TCP, TLS 1.3, the request).
#include "fixture.hpp"

#include <support/delay_relay.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>
#include <optional>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::error;
using cartesia::token_response;
using cartesia::test::canned_response;
using cartesia::test::clock_type;
using cartesia::test::delay_relay;
using cartesia::test::milliseconds_since;
using cartesia::test::recorded_request;
using cartesia::test::relay_options;
using cartesia::test::server_fixture;
using cartesia::test::server_options;
using namespace std::chrono_literals;

namespace {

constexpr std::chrono::milliseconds one_way{100};
constexpr long long round_trip_ms = 2 * one_way.count();

// The test server behind the relay; the configuration points at the relay.
struct distant_fixture : server_fixture {
    explicit distant_fixture(server_options options = {}) : server_fixture(std::move(options)), relay(relay_to(server))
    {
        config.base_url = "https://localhost:" + std::to_string(relay.port());
    }

    static relay_options relay_to(const cartesia::test::test_server& target)
    {
        relay_options options;
        options.target_port = target.port();
        options.one_way_delay = one_way;
        return options;
    }

    delay_relay relay;
};

struct timed_outcome {
    error_code ec;
    token_response response;
    cartesia::diagnostics diag;
    long long elapsed_ms = 0;
};

// One token from `client`, whose executor runs elsewhere: waits for it.
timed_outcome mint_from(cartesia::client& client)
{
    timed_outcome out;
    std::promise<void> done;
    const auto start = clock_type::now();
    client.async_generate_token({}, out.diag, [&](error_code ec, token_response response) {
        out.ec = ec;
        out.response = std::move(response);
        out.elapsed_ms = milliseconds_since(start);
        done.set_value();
    });
    done.get_future().wait();
    return out;
}

// A server whose every answer is a token with `Keep-Alive: <keep_alive>`.
server_options answering_with_keep_alive(std::string keep_alive)
{
    server_options options;
    options.responder = [keep_alive =
                             std::move(keep_alive)](const recorded_request&) -> std::optional<canned_response> {
        canned_response answer;
        answer.body = R"({"token":"opaque-token-for-tests"})";
        answer.headers = {{"Keep-Alive", keep_alive}};
        return answer;
    };
    return options;
}

} // namespace

BOOST_AUTO_TEST_SUITE(warm_minimum)

BOOST_FIXTURE_TEST_CASE(a_warm_client_opens_its_minimum_without_a_request_and_its_first_token_takes_one_round_trip,
                        distant_fixture)
{
    config.min_connections = 2;
    std::optional<cartesia::test::running_io> background(io);
    cartesia::client client(io.get_executor(), tls, config);
    // Once the server has completed both handshakes, the client has too.
    BOOST_TEST_REQUIRE(server.wait_for_handshakes(2, 10s));
    BOOST_TEST(server.requests_received() == 0u);
    const auto first = mint_from(client);
    BOOST_TEST_REQUIRE(!first.ec, first.diag.client_message());
    // No connection for it: the TCP and TLS round trips were paid before it came.
    BOOST_TEST(server.connections_accepted() == 2u);
    BOOST_TEST(relay.connections_accepted() == 2u);
    BOOST_TEST(first.elapsed_ms >= round_trip_ms);
    // A new connection costs three round trips.
    BOOST_TEST(first.elapsed_ms < 2 * round_trip_ms, first.elapsed_ms << " ms");
    client.close();
    background.reset(); // io.run() returns: close() left nothing pending, no watch, no timer
    BOOST_TEST(server.connections_accepted() == 2u); // and opened no replacement
}

BOOST_AUTO_TEST_CASE(after_the_server_closes_idle_connections_a_request_still_takes_one_round_trip)
{
    server_options options;
    options.idle_close_after = 1500ms; // nginx's keepalive_timeout, without a Keep-Alive header
    distant_fixture f(std::move(options));
    f.config.min_connections = 1;
    const cartesia::test::running_io background(f.io);
    cartesia::client client(f.io.get_executor(), f.tls, f.config);
    const auto first = mint_from(client);
    BOOST_TEST_REQUIRE(!first.ec, first.diag.client_message());
    // The server hangs up on the idle connection; the pool sees it and opens another.
    BOOST_TEST_REQUIRE(f.server.wait_for_handshakes(2, 20s));
    const auto after_idle = mint_from(client);
    BOOST_TEST_REQUIRE(!after_idle.ec, after_idle.diag.client_message());
    BOOST_TEST(f.server.connections_accepted() == 2u); // the request opened none
    BOOST_TEST(after_idle.elapsed_ms < 2 * round_trip_ms, after_idle.elapsed_ms << " ms");
    const auto requests = f.server.recorded_requests();
    BOOST_TEST_REQUIRE(requests.size() == 2u);
    BOOST_TEST(requests[1].connection == 2u); // never sent on the connection the server closed
    client.close();
}

BOOST_FIXTURE_TEST_CASE(a_down_api_sees_a_trickle_of_warm_openings_not_a_storm, server_fixture)
{
    // A TCP listener that accepts and hangs up at once: every opening fails.
    asio::io_context listener_io;
    asio::ip::tcp::acceptor acceptor(listener_io, {asio::ip::address_v4::loopback(), 0});
    std::atomic<int> accepted{0};
    std::function<void()> accept_next = [&] {
        acceptor.async_accept([&](error_code ec, asio::ip::tcp::socket socket) {
            if (ec)
                return;
            ++accepted;
            socket.close();
            accept_next();
        });
    };
    accept_next();
    std::thread listener([&] { listener_io.run(); });
    config.base_url = "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
    config.min_connections = 4;
    {
        cartesia::client client(io.get_executor(), tls, config);
        // The observation window: in 2.5 s, the backoff (0.5 s, 1 s, 2 s, one probe at a
        // time after the first failures) allows the first 4 and about 3 probes.
        io.run_for(2500ms);
        client.close();
        io.run();
    }
    asio::post(listener_io, [&] { acceptor.close(); });
    listener.join();
    BOOST_TEST(accepted >= 4);
    BOOST_TEST(accepted <= 10, accepted << " connection attempts in 2.5 s");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(keep_alive_hints)

BOOST_AUTO_TEST_CASE(max_is_obeyed_the_server_sees_no_request_beyond_it)
{
    server_fixture f(answering_with_keep_alive("timeout=60, max=3"));
    cartesia::client client(f.io.get_executor(), f.tls, f.config);
    BOOST_TEST(cartesia::test::mint_in_sequence(client, f.io, 7) == 7);
    const auto requests = f.server.recorded_requests();
    BOOST_TEST_REQUIRE(requests.size() == 7u);
    for (const auto& r : requests)
        BOOST_TEST(r.on_connection <= 3u, "request " << r.on_connection << " on connection " << r.connection);
    BOOST_TEST(f.server.connections_accepted() == 3u); // 3 + 3 + 1
}

BOOST_AUTO_TEST_CASE(timeout_is_obeyed_with_a_margin)
{
    server_fixture f(answering_with_keep_alive("timeout=3"));
    const cartesia::test::running_io background(f.io);
    cartesia::client client(f.io.get_executor(), f.tls, f.config);
    BOOST_TEST_REQUIRE(!mint_from(client).ec);
    // The pool closes it after 3 s less a second of margin, before the server would.
    const auto released = clock_type::now();
    BOOST_TEST_REQUIRE(f.server.wait_for_open_connections(0, 10s));
    const auto closed_after = milliseconds_since(released);
    BOOST_TEST(closed_after >= 1900);
    BOOST_TEST(closed_after < 3000);
    BOOST_TEST_REQUIRE(!mint_from(client).ec);
    const auto requests = f.server.recorded_requests();
    BOOST_TEST_REQUIRE(requests.size() == 2u);
    BOOST_TEST(requests[1].connection == 2u);
    BOOST_TEST(requests[1].on_connection == 1u);
    client.close();
}

BOOST_AUTO_TEST_CASE(a_connection_the_server_keeps_a_second_is_not_left_idle)
{
    server_fixture f(answering_with_keep_alive("timeout=1"));
    cartesia::client client(f.io.get_executor(), f.tls, f.config);
    BOOST_TEST(cartesia::test::mint_in_sequence(client, f.io, 3) == 3);
    // Each closed once answered: one connection per request, none left idle.
    BOOST_TEST(f.server.connections_accepted() == 3u);
    const auto requests = f.server.recorded_requests();
    for (const auto& r : requests)
        BOOST_TEST(r.on_connection == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(total_timeout)

BOOST_FIXTURE_TEST_CASE(an_always_failing_api_ends_at_the_total_deadline, server_fixture)
{
    auto failing = config_with_fault("always-503");
    failing.max_retries = 10;
    failing.total_timeout = 1500ms;
    const auto oneshot = cartesia::test::mint(*this, failing);
    BOOST_TEST(oneshot.ec == error::timeout);
    BOOST_TEST(oneshot.diag.client_message().find("total_timeout of 1500 ms") != std::string::npos,
               oneshot.diag.client_message());
    BOOST_TEST(oneshot.diag.http_status() == 503u); // the last attempt's answer
    BOOST_TEST(oneshot.elapsed_ms < 1500 + 1000);
    BOOST_TEST(oneshot.diag.attempts() >= 2u);
    BOOST_TEST(oneshot.diag.attempts() < 11u);

    cartesia::client client(io.get_executor(), tls, failing);
    cartesia::diagnostics diag;
    error_code pooled_ec;
    const auto start = clock_type::now();
    client.async_generate_token({}, diag, [&](error_code ec, const token_response&) {
        pooled_ec = ec;
        client.close();
    });
    io.run();
    BOOST_TEST(pooled_ec == error::timeout);
    BOOST_TEST(milliseconds_since(start) < 1500 + 1000);
    BOOST_TEST(diag.client_message().find("total_timeout of 1500 ms") != std::string::npos, diag.client_message());
}

BOOST_FIXTURE_TEST_CASE(the_total_deadline_bounds_the_wait_for_a_connection, server_fixture)
{
    auto single = config_with_fault("hang");
    single.max_connections = 1;
    single.total_timeout = 300ms; // the attempts' own timeout is 20 s
    cartesia::client client(io.get_executor(), tls, single);
    // The first request hangs on the only connection; the second waits in the queue.
    error_code first_ec, second_ec;
    cartesia::diagnostics second_diag;
    long long second_ms = 0;
    int completed = 0;
    const auto start = clock_type::now();
    client.async_generate_token({}, [&](error_code ec, const token_response&) {
        first_ec = ec;
        if (++completed == 2)
            client.close();
    });
    client.async_generate_token({}, second_diag, [&](error_code ec, const token_response&) {
        second_ec = ec;
        second_ms = milliseconds_since(start);
        if (++completed == 2)
            client.close();
    });
    io.run();
    BOOST_TEST(first_ec == error::timeout);
    BOOST_TEST(second_ec == error::timeout);
    BOOST_TEST(second_diag.client_message() == "no token within the total_timeout of 300 ms");
    BOOST_TEST(second_ms >= 300);
    BOOST_TEST(second_ms < 300 + 1000);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(retry_budget)

BOOST_FIXTURE_TEST_CASE(a_down_api_costs_about_240_requests_for_200_not_600, server_fixture)
{
    auto down = config_with_fault("always-503");
    down.max_retries = 2;
    down.max_connections = 16;
    cartesia::client client(io.get_executor(), tls, down);
    constexpr int count = 200;
    int completed = 0, spent = 0;
    std::vector<cartesia::diagnostics> diags(count);
    for (int i = 0; i < count; ++i) {
        client.async_generate_token(
            {}, diags[static_cast<std::size_t>(i)], [&, i](error_code ec, const token_response&) {
                BOOST_TEST(ec == error::server_error); // the failure as it is
                if (diags[static_cast<std::size_t>(i)].client_message().find("retry budget is spent") !=
                    std::string::npos)
                    ++spent;
                if (++completed == count)
                    client.close();
            });
    }
    io.run();
    const std::size_t seen = server.requests_received();
    // 200 first attempts, and retries up to 0.2 * 200 plus 10 for each second that
    // saw requests start (one or two: the burst may straddle a second).
    BOOST_TEST(seen >= 240u);
    BOOST_TEST(seen <= 265u, seen << " requests reached the API");
    BOOST_TEST(spent >= 135); // most failures are delivered without their retries
}

BOOST_FIXTURE_TEST_CASE(the_free_function_has_no_budget, server_fixture)
{
    auto down = config_with_fault("always-503");
    down.max_retries = 2;
    down.retry_budget_ratio = 0.0;
    down.retry_budget_min_per_second = 0;
    const auto out = cartesia::test::mint(*this, down);
    BOOST_TEST(out.ec == error::server_error);
    BOOST_TEST(out.diag.attempts() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
