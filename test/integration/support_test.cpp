// The test support: the test server's fault catalogue (every fault that fault_names(), and so
// --help, lists is one the server applies, and a name it does not list is answered with 404
// unknown_fault), and the delay relay, as a class and as cartesia-test-relay.
#include "fixture.hpp"

#include <support/delay_relay.hpp>
#include <support/test_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using cartesia::test::fault_names;
using cartesia::test::test_server;

// Enough to tell a 404 from any other answer; huge-body and endless-chunked send far more.
constexpr std::size_t enough_bytes = std::size_t{64} * 1024;

// The name of a request for `fault`, a family's placeholder replaced by a sample: a final
// status for <code>, a small number for the others (<ms>, <s>, <n>).
std::string sample_name(const std::string& fault)
{
    const auto placeholder = fault.find('<');
    if (placeholder == std::string::npos)
        return fault;
    return fault.substr(0, placeholder) + (fault.substr(placeholder) == "<code>" ? "503" : "1");
}

// What the server sends for a valid POST to /fault/<name>/access-token, up to enough_bytes.
// The request is followed by a TCP half-close, so that the faults which wait for the client
// (hang, slow-<ms>, the drips and streams) see it leave and end at once: each exchange ends
// without a timeout, while a 404 is written in full before the server reads again.
std::string exchange(const test_server& server, const std::string& name)
{
    asio::io_context io;
    ssl::context tls(ssl::context::tls_client);
    tls.add_certificate_authority(asio::buffer(server.ca_cert_pem()));
    tls.set_verify_mode(ssl::verify_peer);
    ssl::stream<tcp::socket> stream(io, tls);
    stream.next_layer().connect({asio::ip::address_v4::loopback(), server.port()});
    stream.handshake(ssl::stream_base::client);

    const std::string body = R"({"grants":{"tts":true}})";
    const std::string request = "POST /fault/" + name +
                                "/access-token HTTP/1.1\r\n"
                                "Host: localhost\r\n"
                                "Authorization: Bearer " +
                                server.api_key() +
                                "\r\n"
                                "Cartesia-Version: 2026-03-01\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(stream, asio::buffer(request));
    boost::system::error_code ignored; // the server may have ended the connection already, rudely
    stream.next_layer().shutdown(tcp::socket::shutdown_send, ignored);

    std::string received;
    std::array<char, 4096> chunk{};
    boost::system::error_code ended; // any end will do: close_notify, a drop, a reset
    while (!ended && received.size() < enough_bytes)
        received.append(chunk.data(), stream.read_some(asio::buffer(chunk), ended));
    return received;
}

bool is_unknown_fault(const std::string& received)
{
    return received.starts_with("HTTP/1.1 404 ") &&
           received.find(R"("error_code":"unknown_fault")") != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(fault_catalogue)

BOOST_AUTO_TEST_CASE(every_listed_fault_is_applied)
{
    const test_server server;
    BOOST_TEST(!fault_names().empty());
    for (const auto& fault : fault_names()) {
        const std::string name = sample_name(fault.name);
        BOOST_TEST_CONTEXT(name)
        {
            BOOST_TEST(!fault.effect.empty());
            BOOST_TEST(!is_unknown_fault(exchange(server, name)));
        }
    }
}

BOOST_AUTO_TEST_CASE(names_not_listed_are_unknown_faults)
{
    const test_server server;
    // A family's number must make up the rest of the name, and <code> be a final status.
    for (const std::string name : {"no-such-fault", "OK", "status-", "status-99", "status-600", "status-503x",
                                   "once-abc", "drip-", "drip--5", "slow-1ms", "retry-after-ms-"}) {
        BOOST_TEST_CONTEXT(name)
        {
            BOOST_TEST(is_unknown_fault(exchange(server, name)));
        }
    }
}

BOOST_AUTO_TEST_CASE(fault_names_are_unique)
{
    std::set<std::string> names;
    for (const auto& fault : fault_names())
        BOOST_TEST(names.insert(fault.name).second, fault.name << " is listed twice");
}

BOOST_AUTO_TEST_CASE(help_lists_every_fault)
{
    std::string help;
    FILE* pipe = ::popen(CARTESIA_TEST_SERVER_EXE " --help", "r");
    BOOST_REQUIRE(pipe);
    std::array<char, 4096> chunk{};
    while (const std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe))
        help.append(chunk.data(), n);
    BOOST_TEST(::pclose(pipe) == 0);
    for (const auto& fault : fault_names()) {
        BOOST_TEST_CONTEXT(fault.name)
        {
            BOOST_TEST(help.find("\n  " + fault.name + "  ") != std::string::npos);
            BOOST_TEST(help.find(fault.effect) != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// The delay relay (support/delay_relay.hpp), in front of a plain TCP echo server and in front of
// the test server. Each timing is bounded from below by what the relay must add, which load can
// only lengthen, and from above by a second or more of slack, which no load here comes near.
namespace {

using cartesia::test::delay_relay;
using cartesia::test::relay_options;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

constexpr milliseconds one_way{25};
// What a busy machine may add to a short exchange.
constexpr milliseconds slack{1000};

long long elapsed_ms(steady::time_point start)
{
    return std::chrono::duration_cast<milliseconds>(steady::now() - start).count();
}

// Echoes what it reads; on a read EOF it writes end_marker, then shuts its sending side down:
// the marker shows that the EOF arrived while the other direction still carried bytes.
class echo_server {
public:
    static constexpr std::string_view end_marker = "<EOF>";

    echo_server() : acceptor_(io_, {asio::ip::address_v4::loopback(), 0})
    {
        asio::co_spawn(io_, accept(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~echo_server()
    {
        io_.stop();
        thread_.join();
    }
    echo_server(const echo_server&) = delete;
    echo_server& operator=(const echo_server&) = delete;

    unsigned short port() const { return acceptor_.local_endpoint().port(); }

private:
    asio::awaitable<void> accept()
    {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec)
                co_return;
            asio::co_spawn(io_, echo(std::move(socket)), asio::detached);
        }
    }

    static asio::awaitable<void> echo(tcp::socket socket)
    {
        std::array<char, 16384> chunk{};
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::eof) {
                co_await asio::async_write(socket, asio::buffer(end_marker), asio::as_tuple(asio::use_awaitable));
                boost::system::error_code ignored;
                socket.shutdown(tcp::socket::shutdown_send, ignored);
                co_return;
            }
            if (ec)
                co_return;
            auto [write_ec, written] =
                co_await asio::async_write(socket, asio::buffer(chunk.data(), n), asio::as_tuple(asio::use_awaitable));
            if (write_ec)
                co_return;
        }
    }

    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::thread thread_;
};

relay_options relay_to(unsigned short target_port, milliseconds delay)
{
    relay_options options;
    options.target_port = target_port;
    options.one_way_delay = delay;
    return options;
}

// A blocking connection to the relay, on a context that nothing runs: blocking calls need none.
struct relay_client {
    explicit relay_client(unsigned short port) : socket(io)
    {
        socket.connect({asio::ip::address_v4::loopback(), port});
        socket.set_option(tcp::no_delay(true));
    }

    // Sends `message` and reads as many bytes back.
    std::string round_trip(const std::string& message)
    {
        asio::write(socket, asio::buffer(message));
        std::string answer(message.size(), '\0');
        asio::read(socket, asio::buffer(answer));
        return answer;
    }

    // Everything until the connection ends, and how it ended.
    std::string read_to_end(boost::system::error_code& ended)
    {
        std::string received;
        std::array<char, 4096> chunk{};
        while (!ended)
            received.append(chunk.data(), socket.read_some(asio::buffer(chunk), ended));
        return received;
    }

    asio::io_context io;
    tcp::socket socket;
};

// Bytes that no chunking can realign: a transfer that arrived shuffled or cut would differ.
std::string pattern(std::size_t size)
{
    std::string bytes(size, '\0');
    std::mt19937 random(size);
    std::ranges::generate(bytes, [&] { return static_cast<char>(random()); });
    return bytes;
}

// The process side of cartesia-test-relay: started with a pipe on its stdout.
class relay_process {
public:
    explicit relay_process(std::vector<std::string> arguments)
    {
        std::array<int, 2> pipe_fds{};
        BOOST_REQUIRE(::pipe(pipe_fds.data()) == 0);
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
        ::posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
        arguments.insert(arguments.begin(), CARTESIA_TEST_RELAY_EXE);
        std::vector<char*> argv; // posix_spawn wants mutable strings
        argv.reserve(arguments.size() + 1);
        for (std::string& argument : arguments)
            argv.push_back(argument.data());
        argv.push_back(nullptr);
        const int spawned = ::posix_spawn(&pid_, CARTESIA_TEST_RELAY_EXE, &actions, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        ::close(pipe_fds[1]);
        stdout_ = ::fdopen(pipe_fds[0], "r");
        BOOST_REQUIRE(spawned == 0);
        BOOST_REQUIRE(stdout_ != nullptr);
    }
    ~relay_process()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (stdout_ != nullptr)
            std::fclose(stdout_);
    }
    relay_process(const relay_process&) = delete;
    relay_process& operator=(const relay_process&) = delete;

    // The next line of its stdout, without the newline; empty at EOF.
    std::string read_line()
    {
        std::array<char, 256> line{};
        if (std::fgets(line.data(), static_cast<int>(line.size()), stdout_) == nullptr)
            return {};
        std::string text = line.data();
        if (text.ends_with('\n'))
            text.pop_back();
        return text;
    }

    // Sends `signal` and returns the exit status, or -1 when it did not exit normally.
    int signal_and_wait(int signal)
    {
        ::kill(pid_, signal);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_ = -1;
    FILE* stdout_ = nullptr;
};

} // namespace

BOOST_AUTO_TEST_SUITE(delay_relay_suite)

BOOST_AUTO_TEST_CASE(a_round_trip_costs_two_one_way_delays)
{
    const echo_server echo;
    auto options = relay_to(echo.port(), one_way);
    options.emulate_tcp_handshake = false;
    const delay_relay relay(options);
    relay_client client(relay.port());
    for (int i = 0; i < 3; ++i) {
        const auto start = steady::now();
        BOOST_TEST(client.round_trip("ping " + std::to_string(i)) == "ping " + std::to_string(i));
        const auto ms = elapsed_ms(start);
        BOOST_TEST(ms >= 2 * one_way.count());
        BOOST_TEST(ms < 2 * one_way.count() + slack.count());
    }
    BOOST_TEST(relay.connections_accepted() == 1);
}

BOOST_AUTO_TEST_CASE(the_tcp_handshake_counts_a_round_trip)
{
    const echo_server echo;
    const delay_relay relay(relay_to(echo.port(), one_way));
    const auto start = steady::now();
    relay_client client(relay.port());
    BOOST_TEST(client.round_trip("hello") == "hello");
    const auto ms = elapsed_ms(start);
    BOOST_TEST(ms >= 4 * one_way.count());
    BOOST_TEST(ms < 4 * one_way.count() + slack.count());
}

BOOST_AUTO_TEST_CASE(a_large_transfer_arrives_whole_in_order_and_no_faster_than_the_bandwidth)
{
    const echo_server echo;
    constexpr std::size_t size = std::size_t{2} * 1024 * 1024;
    constexpr std::size_t bandwidth = std::size_t{8} * 1024 * 1024; // bytes per second: 2 MiB take 250 ms
    constexpr std::size_t queue_cap = std::size_t{256} * 1024;
    auto options = relay_to(echo.port(), one_way);
    options.bandwidth_bytes_per_second = bandwidth;
    options.max_queued_bytes = queue_cap; // a fraction of the transfer: the back-pressure works
    const delay_relay relay(options);

    const std::string sent = pattern(size);
    std::string received(size, '\0');
    relay_client client(relay.port());
    const auto start = steady::now();
    // Both at once, or the echo would block on a client that is not reading yet.
    boost::system::error_code write_ec;
    boost::system::error_code read_ec;
    asio::async_write(client.socket, asio::buffer(sent), [&](auto ec, std::size_t) { write_ec = ec; });
    asio::async_read(client.socket, asio::buffer(received), [&](auto ec, std::size_t) { read_ec = ec; });
    client.io.run();
    const auto ms = elapsed_ms(start);
    BOOST_TEST(!write_ec);
    BOOST_TEST(!read_ec);
    BOOST_TEST((received == sent));
    constexpr long long transfer_ms = size * 1000 / bandwidth;
    BOOST_TEST(ms >= transfer_ms);
    BOOST_TEST(ms < 2 * (transfer_ms + 2 * one_way.count()) + slack.count());
    BOOST_TEST(relay.peak_queued_bytes() <= queue_cap + std::size_t{64} * 1024);

    // Once the connection is over, the counters are final.
    client.socket.shutdown(tcp::socket::shutdown_send);
    boost::system::error_code ended;
    BOOST_TEST(client.read_to_end(ended) == echo_server::end_marker);
    BOOST_TEST(relay.wait_for_open_connections(0, std::chrono::seconds(10)));
    BOOST_TEST(relay.bytes_to_target() == size);
    BOOST_TEST(relay.bytes_to_client() == size + echo_server::end_marker.size());
}

BOOST_AUTO_TEST_CASE(jitter_keeps_the_order)
{
    const echo_server echo;
    auto options = relay_to(echo.port(), milliseconds(2));
    options.jitter = milliseconds(20);
    options.seed = 13;
    const delay_relay relay(options);
    relay_client client(relay.port());
    std::string sent;
    for (int i = 0; i < 100; ++i) { // separate writes, which the relay reads as separate chunks mostly
        const std::string piece = std::to_string(i) + ',';
        asio::write(client.socket, asio::buffer(piece));
        sent += piece;
    }
    std::string received(sent.size(), '\0');
    asio::read(client.socket, asio::buffer(received));
    BOOST_TEST(received == sent);
}

BOOST_AUTO_TEST_CASE(a_stall_holds_the_direction)
{
    const echo_server echo;
    constexpr milliseconds delay{10};
    constexpr milliseconds stall{100};
    auto options = relay_to(echo.port(), delay);
    options.emulate_tcp_handshake = false;
    options.stall_every = 1; // chunks
    options.stall_for = stall;
    const delay_relay relay(options);
    relay_client client(relay.port());
    const auto start = steady::now();
    BOOST_TEST(client.round_trip("first") == "first");
    // The second message leaves no earlier than a stall after the first, and comes back a delay later.
    BOOST_TEST(client.round_trip("second") == "second");
    const auto ms = elapsed_ms(start);
    BOOST_TEST(ms >= (delay + stall + delay).count());
    BOOST_TEST(ms < (2 * (delay + stall + delay) + slack).count());
}

BOOST_AUTO_TEST_CASE(a_half_close_is_forwarded_both_ways)
{
    const echo_server echo;
    const delay_relay relay(relay_to(echo.port(), one_way));
    relay_client client(relay.port());
    asio::write(client.socket, asio::buffer(std::string_view("hello")));
    client.socket.shutdown(tcp::socket::shutdown_send);
    // The echo saw our EOF after "hello" (it wrote the marker), still reached us after it, and its
    // own EOF came through: the end is an EOF, not an error.
    boost::system::error_code ended;
    BOOST_TEST(client.read_to_end(ended) == "hello" + std::string(echo_server::end_marker));
    BOOST_TEST(ended == asio::error::eof);
    BOOST_TEST(relay.wait_for_open_connections(0, std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_CASE(a_reset_on_one_side_resets_the_other)
{
    asio::io_context io;
    tcp::acceptor target(io, {asio::ip::address_v4::loopback(), 0});
    const delay_relay relay(relay_to(target.local_endpoint().port(), milliseconds(5)));
    relay_client client(relay.port());
    tcp::socket accepted = target.accept(); // the relay connects as soon as it has accepted the client
    accepted.set_option(asio::socket_base::linger(true, 0));
    accepted.close();
    boost::system::error_code ended;
    BOOST_TEST(client.read_to_end(ended).empty());
    BOOST_TEST(ended == asio::error::connection_reset);
    BOOST_TEST(relay.wait_for_open_connections(0, std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_CASE(a_target_that_refuses_resets_the_client)
{
    asio::io_context io;
    // Bound and not listening: connections are refused, and no one else can take the port.
    tcp::acceptor not_listening(io, tcp::v4());
    not_listening.bind({asio::ip::address_v4::loopback(), 0});
    const delay_relay relay(relay_to(not_listening.local_endpoint().port(), milliseconds(5)));
    relay_client client(relay.port());
    boost::system::error_code ended;
    BOOST_TEST(client.read_to_end(ended).empty());
    BOOST_TEST(ended == asio::error::connection_reset);
    BOOST_TEST(relay.connections_accepted() == 1);
}

BOOST_AUTO_TEST_CASE(stop_ends_every_connection)
{
    const echo_server echo;
    delay_relay relay(relay_to(echo.port(), milliseconds(5)));
    relay_client first(relay.port());
    relay_client second(relay.port());
    BOOST_TEST(first.round_trip("one") == "one");
    BOOST_TEST(second.round_trip("two") == "two");
    BOOST_TEST(relay.open_connections() == 2);

    relay.stop();
    BOOST_TEST(relay.open_connections() == 0); // its thread has finished
    for (relay_client* client : {&first, &second}) {
        boost::system::error_code ended;
        BOOST_TEST(client->read_to_end(ended).empty());
        BOOST_TEST(ended.failed());
    }
    relay.stop(); // again: nothing
    asio::io_context io;
    tcp::socket late(io);
    boost::system::error_code refused;
    late.connect({asio::ip::address_v4::loopback(), relay.port()}, refused);
    BOOST_TEST(refused == asio::error::connection_refused);
}

BOOST_AUTO_TEST_CASE(on_a_given_executor_stop_leaves_it_no_work)
{
    const echo_server echo;
    asio::io_context io;
    delay_relay relay(io.get_executor(), relay_to(echo.port(), milliseconds(5)));
    std::string answer;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            tcp::socket socket(io);
            co_await socket.async_connect({asio::ip::address_v4::loopback(), relay.port()}, asio::use_awaitable);
            co_await asio::async_write(socket, asio::buffer(std::string_view("ping")), asio::use_awaitable);
            answer.resize(4);
            co_await asio::async_read(socket, asio::buffer(answer), asio::use_awaitable);
            relay.stop();
        },
        asio::detached);
    io.run(); // returns: the relay's connection and listener are closed, nothing is left pending
    BOOST_TEST(answer == "ping");
    BOOST_TEST(relay.open_connections() == 0);
}

BOOST_AUTO_TEST_CASE(the_executable_relays_until_sigterm)
{
    const echo_server echo;
    relay_process relay({"--listen", "127.0.0.1:0", "--target", "127.0.0.1:" + std::to_string(echo.port()),
                         "--delay-ms", std::to_string(one_way.count()), "--no-handshake-rtt"});
    const std::string line = relay.read_line();
    const std::string prefix = "listening on 127.0.0.1:";
    BOOST_REQUIRE(line.starts_with(prefix));
    const auto port = static_cast<unsigned short>(std::stoul(line.substr(prefix.size())));
    {
        relay_client client(port);
        const auto start = steady::now();
        BOOST_TEST(client.round_trip("through the process") == "through the process");
        BOOST_TEST(elapsed_ms(start) >= 2 * one_way.count());
    }
    BOOST_TEST(relay.signal_and_wait(SIGTERM) == 0);
}

BOOST_AUTO_TEST_CASE(the_executable_refuses_bad_arguments_with_status_2)
{
    for (const std::string arguments :
         {"--target 127.0.0.1:1", "--delay-ms 5", "--target nowhere --delay-ms 5", "--target 127.0.0.1:1 --delay-ms x",
          "--target 127.0.0.1:1 --delay-ms 5 --listen 0.0.0.0:0", "--target 127.0.0.1:1 --delay-ms 5 --stall-every 3",
          "--target 127.0.0.1:1 --delay-ms 5 --frobnicate"}) {
        BOOST_TEST_CONTEXT(arguments)
        {
            const int status = std::system((CARTESIA_TEST_RELAY_EXE " " + arguments + " 2>/dev/null").c_str());
            BOOST_TEST(WIFEXITED(status));
            BOOST_TEST(WEXITSTATUS(status) == 2);
        }
    }
}

// Issue 13's starting point: a one-shot token over TLS 1.3 costs three round trips, the handshake
// of TCP, that of TLS, and the request, here through 25 ms each way to the test server.
BOOST_AUTO_TEST_CASE(a_one_shot_token_costs_three_round_trips)
{
    cartesia::test::server_fixture f;
    const delay_relay relay(relay_to(f.server.port(), one_way));
    auto config = f.config;
    config.base_url = "https://127.0.0.1:" + std::to_string(relay.port()); // the certificate names it too
    const auto out = cartesia::test::mint(f, config);
    BOOST_TEST(!out.ec, out.ec.message());
    BOOST_TEST(!out.response.token.empty());
    BOOST_TEST_MESSAGE("one-shot token through " << one_way.count() << " ms each way: " << out.elapsed_ms << " ms");
    constexpr milliseconds three_round_trips = 3 * (2 * one_way);
    BOOST_TEST(out.elapsed_ms >= three_round_trips.count());
    BOOST_TEST(out.elapsed_ms < (three_round_trips + slack).count());
    BOOST_TEST(relay.connections_accepted() == 1);
    BOOST_TEST(f.server.requests_received() == 1);
}

BOOST_AUTO_TEST_SUITE_END()
