// The connect race (Happy Eyeballs, src/happy_eyeballs.*) over real sockets on
// loopback, through connection::open and through the driver itself.
//
// A black hole without netem or iptables: a listener whose accept queue is full
// (backlog 0, one connection never accepted) drops every further SYN, as a
// black-holed address does. It goes on [::1] where IPv6 loopback works (then it is
// tried first, for its family), else on 127.0.0.1 before the live server's port.
// Whether a socket the race gave up on was closed is read from /proc/net/tcp*: a
// socket still connecting is there in state SYN_SENT, and leaves it when closed.
#include "fixture.hpp"

#include "connection.hpp"
#include "happy_eyeballs.hpp"
#include "protocol.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace cd = cartesia::detail;
using boost::system::error_code;
using cartesia::test::clock_type;
using cartesia::test::milliseconds_since;
using cartesia::test::server_fixture;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Far above what a loopback connect and a TLS handshake take, on a loaded machine
// included; far below the 10 s default connect_timeout that a sequential connect
// would wait out.
constexpr long long slack_ms = 1500;

bool ipv6_loopback_works()
{
    asio::io_context io;
    tcp::acceptor probe(io);
    error_code ec;
    probe.open(tcp::v6(), ec);
    if (!ec)
        probe.bind(tcp::endpoint(asio::ip::address_v6::loopback(), 0), ec);
    return !ec;
}

asio::ip::address hole_address()
{
    static const bool v6 = ipv6_loopback_works();
    if (!v6)
        BOOST_TEST_MESSAGE("no IPv6 loopback here: the black holes are on 127.0.0.1");
    return v6 ? asio::ip::address(asio::ip::address_v6::loopback())
              : asio::ip::address(asio::ip::address_v4::loopback());
}

// A listening socket that drops SYNs: its accept queue holds the one connection
// that a backlog of 0 admits, and nothing accepts it.
struct black_hole {
    black_hole(asio::io_context& io, const asio::ip::address& address, unsigned short port = 0)
        : listener(io), filler(io)
    {
        const tcp::endpoint where(address, port);
        listener.open(where.protocol());
        listener.bind(where);
        listener.listen(0);
        filler.connect(listener.local_endpoint());
    }
    tcp::endpoint endpoint() const { return listener.local_endpoint(); }
    unsigned short port() const { return listener.local_endpoint().port(); }

    tcp::acceptor listener;
    tcp::socket filler;
};

// Sockets of this process's network namespace still connecting (SYN_SENT) to a
// local port, from the kernel's tables.
std::size_t still_connecting_to(unsigned short port)
{
    std::size_t count = 0;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line); // the header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            const auto colon = remote.rfind(':');
            if (colon != std::string::npos && state == "02" &&
                std::stoul(remote.substr(colon + 1), nullptr, 16) == port)
                ++count;
        }
    }
    return count;
}

tcp::resolver::results_type results_of(const std::vector<tcp::endpoint>& addresses, const cd::endpoint& where)
{
    return tcp::resolver::results_type::create(addresses.begin(), addresses.end(), where.host, where.port);
}

cd::endpoint endpoint_of(const cartesia::client_config& config)
{
    cd::endpoint where;
    cartesia::diagnostics diag;
    BOOST_REQUIRE(!cd::validate(config, {}, where, diag));
    return where;
}

struct open_outcome {
    error_code ec;
    cartesia::diagnostics diag;
    long long elapsed_ms = 0;
    int calls = 0;
};

// Runs connection::open (the race, then the TLS handshake) over `addresses` to
// completion; `meanwhile` runs `after` into it, on the same thread.
open_outcome open_over(server_fixture& f, const cartesia::client_config& config,
                       const std::vector<tcp::endpoint>& addresses, cd::connect_timing timing,
                       std::chrono::milliseconds after = 0ms, std::function<void(cd::connection&)> meanwhile = {})
{
    // open() is a coroutine that keeps references: what they refer to lives here.
    auto timed = config;
    timed.connect_timeout = timing.connect_timeout;
    timed.connection_attempt_delay = timing.connection_attempt_delay;
    const cd::endpoint where = endpoint_of(timed);
    const auto endpoints = results_of(addresses, where);
    open_outcome out;
    cd::connection link(f.io.get_executor(), f.tls);
    asio::steady_timer later(f.io);
    const auto start = clock_type::now();
    asio::co_spawn(f.io, link.open(where, endpoints, out.diag), [&](const std::exception_ptr& failure, error_code ec) {
        BOOST_TEST(!failure);
        out.ec = ec;
        out.elapsed_ms = milliseconds_since(start);
        ++out.calls;
        later.cancel();
    });
    if (meanwhile) {
        later.expires_after(after);
        later.async_wait([&](error_code ec) {
            if (!ec)
                meanwhile(link);
        });
    }
    f.io.run();
    f.io.restart();
    BOOST_TEST(out.calls == 1);
    return out;
}

std::string timed_out_message()
{
    return error_code(asio::error::timed_out).message();
}

} // namespace

BOOST_AUTO_TEST_SUITE(happy_eyeballs)

BOOST_FIXTURE_TEST_CASE(a_black_holed_first_address_costs_the_attempt_delay_only, server_fixture)
{
    black_hole hole(io, hole_address());
    const tcp::endpoint live(asio::ip::address_v4::loopback(), server.port());
    const auto r = open_over(*this, config, {hole.endpoint(), live}, {10000ms, 250ms});
    BOOST_TEST(!r.ec, r.ec.message() << ": " << r.diag.client_message());
    BOOST_TEST_MESSAGE("connected past a black hole in " << r.elapsed_ms << " ms");
    BOOST_TEST(r.elapsed_ms >= 250); // the black hole was tried first, and given its head start
    BOOST_TEST(r.elapsed_ms < 250 + slack_ms);
    BOOST_TEST(server.connections_accepted() == 1u);
    BOOST_TEST(still_connecting_to(hole.port()) == 0u); // the loser was closed as the winner connected
}

BOOST_FIXTURE_TEST_CASE(a_refused_first_address_hands_over_at_once, server_fixture)
{
    tcp::acceptor closed(io, tcp::endpoint(hole_address(), 0));
    const tcp::endpoint refusing = closed.local_endpoint();
    closed.close(); // nothing listens there now: a connect is refused at once
    const tcp::endpoint live(asio::ip::address_v4::loopback(), server.port());
    const auto r = open_over(*this, config, {refusing, live}, {10000ms, 5000ms});
    BOOST_TEST(!r.ec, r.ec.message() << ": " << r.diag.client_message());
    BOOST_TEST(r.elapsed_ms < slack_ms); // not the 5 s delay: a failure starts the next attempt
}

BOOST_FIXTURE_TEST_CASE(every_address_dead_fails_after_about_connect_timeout_naming_the_count, server_fixture)
{
    black_hole first(io, hole_address());
    black_hole second(io, asio::ip::address_v4::loopback());
    auto dead = config;
    dead.base_url = "https://localhost:" + std::to_string(second.port());
    const auto r = open_over(*this, dead, {first.endpoint(), second.endpoint()}, {300ms, 250ms});
    BOOST_TEST(r.ec == asio::error::timed_out, r.ec.message());
    BOOST_TEST_MESSAGE("two black holes gave up after " << r.elapsed_ms << " ms");
    // The second attempt starts after the delay and has its own 300 ms.
    BOOST_TEST(r.elapsed_ms >= 250 + 300);
    BOOST_TEST(r.elapsed_ms < 250 + 300 + slack_ms);
    BOOST_TEST(r.diag.client_message() == "could not connect to localhost:" + std::to_string(second.port()) +
                                              " (tried 2 addresses); last error: " + timed_out_message());
    BOOST_TEST(still_connecting_to(first.port()) == 0u);
    BOOST_TEST(still_connecting_to(second.port()) == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_single_dead_address_fails_after_its_connect_timeout, server_fixture)
{
    black_hole hole(io, asio::ip::address_v4::loopback());
    auto dead = config;
    dead.base_url = "https://127.0.0.1:" + std::to_string(hole.port());
    const auto r = open_over(*this, dead, {hole.endpoint()}, {300ms, 250ms});
    BOOST_TEST(r.ec == asio::error::timed_out, r.ec.message());
    BOOST_TEST(r.elapsed_ms >= 300);
    BOOST_TEST(r.elapsed_ms < 300 + slack_ms);
    BOOST_TEST(r.diag.client_message() == "could not connect to 127.0.0.1:" + std::to_string(hole.port()) +
                                              " (tried 1 address); last error: " + timed_out_message());
}

BOOST_FIXTURE_TEST_CASE(refused_everywhere_gives_the_last_error, server_fixture)
{
    std::vector<tcp::endpoint> refusing;
    for (const auto& address : {hole_address(), asio::ip::address(asio::ip::address_v4::loopback())}) {
        tcp::acceptor closed(io, tcp::endpoint(address, 0));
        refusing.push_back(closed.local_endpoint());
    } // closed: nothing listens there
    auto dead = config;
    dead.base_url = "https://localhost:" + std::to_string(refusing.back().port());
    const auto r = open_over(*this, dead, refusing, {10000ms, 5000ms});
    BOOST_TEST(r.ec == asio::error::connection_refused, r.ec.message());
    BOOST_TEST(r.elapsed_ms < slack_ms);
    BOOST_TEST(r.diag.client_message() ==
               "could not connect to localhost:" + std::to_string(refusing.back().port()) +
                   " (tried 2 addresses); last error: " + error_code(asio::error::connection_refused).message());
}

BOOST_FIXTURE_TEST_CASE(an_abort_ends_the_race_at_once_and_closes_every_attempt, server_fixture)
{
    black_hole first(io, hole_address());
    black_hole second(io, asio::ip::address_v4::loopback());
    std::size_t connecting_when_aborted = 0;
    const auto r = open_over(
        *this, config, {first.endpoint(), second.endpoint()}, {10000ms, 250ms}, 400ms, [&](cd::connection& link) {
            connecting_when_aborted = still_connecting_to(first.port()) + still_connecting_to(second.port());
            link.abort(); // what a deadline or a cancellation does
        });
    BOOST_TEST(connecting_when_aborted == 2u); // both attempts were in flight (and seen to be)
    BOOST_TEST(r.ec == asio::error::operation_aborted, r.ec.message());
    BOOST_TEST(r.elapsed_ms < 400 + slack_ms);
    BOOST_TEST(still_connecting_to(first.port()) == 0u);
    BOOST_TEST(still_connecting_to(second.port()) == 0u);
}

BOOST_FIXTURE_TEST_CASE(an_abort_before_open_fails_it_without_connecting, server_fixture)
{
    const cd::endpoint where = endpoint_of(config);
    cd::connection link(io.get_executor(), tls);
    link.abort();
    const tcp::endpoint live(asio::ip::address_v4::loopback(), server.port());
    const auto endpoints = results_of({live}, where);
    std::optional<error_code> result;
    cartesia::diagnostics diag;
    asio::co_spawn(io, link.open(where, endpoints, diag),
                   [&](const std::exception_ptr&, error_code ec) { result = ec; });
    io.run();
    BOOST_REQUIRE(result.has_value());
    BOOST_TEST(*result == asio::error::operation_aborted);
    BOOST_TEST(server.connections_accepted() == 0u);
}

// The driver alone: the handler's cancellation slot ends it as abort() does.
BOOST_FIXTURE_TEST_CASE(a_cancellation_through_the_handlers_slot_ends_the_race, server_fixture)
{
    black_hole hole(io, asio::ip::address_v4::loopback());
    const cd::endpoint where = endpoint_of(config);
    tcp::socket destination(io);
    cd::connect_report report;
    std::weak_ptr<cd::connect_race> race;
    asio::cancellation_signal cancel;
    int calls = 0;
    error_code result;
    const auto start = clock_type::now();
    long long elapsed_ms = 0;
    cd::async_connect_race(io.get_executor(), results_of({hole.endpoint()}, where), {10000ms, 250ms}, destination,
                           report, race, asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) {
                               result = ec;
                               ++calls;
                               elapsed_ms = milliseconds_since(start);
                           }));
    BOOST_TEST(calls == 0); // never from inside the initiating call
    asio::steady_timer later(io, 100ms);
    later.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
    io.run();
    BOOST_TEST(calls == 1);
    BOOST_TEST(result == asio::error::operation_aborted);
    BOOST_TEST(elapsed_ms < 100 + slack_ms);
    BOOST_TEST(report.addresses_tried == 1u);
    BOOST_TEST(!destination.is_open());
    BOOST_TEST(race.expired()); // nothing of it is left pending
    BOOST_TEST(still_connecting_to(hole.port()) == 0u);
}

BOOST_FIXTURE_TEST_CASE(the_driver_moves_the_winning_socket_into_the_callers, server_fixture)
{
    black_hole hole(io, hole_address());
    const tcp::endpoint live(asio::ip::address_v4::loopback(), server.port());
    const cd::endpoint where = endpoint_of(config);
    tcp::socket destination(io);
    cd::connect_report report;
    std::weak_ptr<cd::connect_race> race;
    int calls = 0;
    error_code result;
    cd::async_connect_race(io.get_executor(), results_of({hole.endpoint(), live}, where), {10000ms, 50ms}, destination,
                           report, race, [&](error_code ec) {
                               result = ec;
                               ++calls;
                           });
    BOOST_TEST(calls == 0);
    io.run();
    BOOST_TEST(calls == 1);
    BOOST_TEST(!result, result.message());
    BOOST_TEST_REQUIRE(destination.is_open());
    BOOST_TEST(destination.remote_endpoint() == live);
    BOOST_TEST(report.addresses_tried == 2u);
    BOOST_TEST(race.expired());
    BOOST_TEST(still_connecting_to(hole.port()) == 0u);
}

BOOST_FIXTURE_TEST_CASE(no_address_at_all_completes_without_connecting, server_fixture)
{
    const cd::endpoint where = endpoint_of(config);
    tcp::socket destination(io);
    cd::connect_report report;
    std::weak_ptr<cd::connect_race> race;
    int calls = 0;
    error_code result;
    cd::async_connect_race(io.get_executor(), tcp::resolver::results_type{}, {}, destination, report, race,
                           [&](error_code ec) {
                               result = ec;
                               ++calls;
                           });
    BOOST_TEST(calls == 0); // posted, not called from inside the initiating call
    io.run();
    BOOST_TEST(calls == 1);
    BOOST_TEST(result == asio::error::not_found);
    BOOST_TEST(report.addresses_tried == 0u);
}

// End to end, as a user meets it: a name (which no resolver knows) pinned by
// client_config::resolve to an IPv6 address that drops SYNs, then to the server.
// The free function and every connection of the pool get through after the
// attempt delay, not after connect_timeout, and leave no attempt behind.
BOOST_AUTO_TEST_CASE(a_pinned_name_whose_first_address_is_dead_costs_the_attempt_delay)
{
    cartesia::test::server_options options;
    options.certificate.subject_alt_names.emplace_back("DNS:api.cartesia.test");
    server_fixture f(std::move(options));
    const std::string base = f.server.base_url();
    const auto port = static_cast<unsigned short>(std::stoul(base.substr(base.rfind(':') + 1)));
    // The hole listens on the server's port: a pin gives one port to all its addresses.
    const bool v6 = hole_address().is_v6();
    black_hole hole(f.io, v6 ? hole_address() : asio::ip::make_address("127.0.0.2"), port);
    auto config = f.config;
    config.base_url = "https://api.cartesia.test:" + std::to_string(port);
    config.resolve = {"api.cartesia.test:" + std::to_string(port) + (v6 ? ":[::1]" : ":127.0.0.2") + ",127.0.0.1"};
    config.connection_attempt_delay = 250ms;

    error_code oneshot_ec;
    long long oneshot_ms = 0;
    const auto start = clock_type::now();
    cartesia::async_generate_token(f.io, f.tls, config, {}, [&](error_code ec, const cartesia::token_response&) {
        oneshot_ec = ec;
        oneshot_ms = milliseconds_since(start);
    });
    f.io.run();
    BOOST_TEST(!oneshot_ec, oneshot_ec.message());
    BOOST_TEST(oneshot_ms >= 240); // it did try the hole first, for the delay
    BOOST_TEST(oneshot_ms < 250 + slack_ms);

    f.io.restart();
    cartesia::client client(f.io.get_executor(), f.tls, config);
    std::vector<error_code> pooled;
    long long first_pooled_ms = 0;
    const auto pooled_start = clock_type::now();
    std::function<void()> next = [&] {
        client.async_generate_token({}, [&](error_code ec, const cartesia::token_response&) {
            if (pooled.empty())
                first_pooled_ms = milliseconds_since(pooled_start);
            pooled.push_back(ec);
            if (pooled.size() < 3)
                next();
            else
                client.close();
        });
    };
    next();
    f.io.run();
    BOOST_TEST_REQUIRE(pooled.size() == 3u);
    for (const auto& ec : pooled)
        BOOST_TEST(!ec, ec.message());
    BOOST_TEST(first_pooled_ms < 250 + slack_ms);
    BOOST_TEST(f.server.connections_accepted() == 2u); // one for the free function, one for the pool
    BOOST_TEST(still_connecting_to(port) == 0u);       // the losing attempts were closed
}

BOOST_AUTO_TEST_SUITE_END()
