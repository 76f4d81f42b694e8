// cartesia-test-relay: the delay relay as a process, to put distance between a client and a
// server by hand or from a script (bench/README.md, "Distance: the delay relay"). It prints the
// address it listens on, then relays until SIGINT/SIGTERM.
#include <support/delay_relay.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <csignal>
#include <iostream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

// What the user got wrong: exit status 2, as opposed to 1 for a relay that cannot start.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

void print_usage(std::ostream& out)
{
    out << "usage: cartesia-test-relay [--listen 127.0.0.1:PORT] --target HOST:PORT --delay-ms D\n"
           "           [--jitter-ms J] [--bandwidth-kbps K] [--stall-every N | --stall-every-bytes N\n"
           "           --stall-ms S] [--seed X] [--no-handshake-rtt]\n"
           "\n"
           "Accepts TCP connections on 127.0.0.1:PORT (0, the default, picks an ephemeral port),\n"
           "connects each to HOST:PORT (a loopback address or name), and forwards the bytes both\n"
           "ways, each direction D ms late (a round trip costs 2*D), in order, until SIGINT or\n"
           "SIGTERM. Once listening it prints \"listening on 127.0.0.1:PORT\".\n"
           "\n"
           "  --jitter-ms J          each chunk waits a further uniform 0..J ms, order kept\n"
           "  --bandwidth-kbps K     each direction carries at most K kilobits (1000 bits) per second\n"
           "  --stall-every N        with --stall-ms: hold a direction S ms after every N chunks\n"
           "  --stall-every-bytes N  the same after every N bytes\n"
           "  --seed X               seeds the jitter (default 0): the same seed, the same delays\n"
           "  --no-handshake-rtt     do not count the TCP handshake's round trip (by default the\n"
           "                         client's first bytes leave 2*D after the accept)\n";
}

std::uint64_t parse_number(std::string_view option, std::string_view text,
                           std::uint64_t maximum = std::numeric_limits<std::uint64_t>::max())
{
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || value > maximum) {
        throw usage_error(std::string(option) + ": '" + std::string(text) + "' is not a number from 0 to " +
                          std::to_string(maximum));
    }
    return value;
}

struct host_port {
    std::string host;
    unsigned short port = 0;
};

host_port parse_host_port(std::string_view option, std::string_view text)
{
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        throw usage_error(std::string(option) + ": '" + std::string(text) + "' is not HOST:PORT");
    return {std::string(text.substr(0, colon)),
            static_cast<unsigned short>(
                parse_number(option, text.substr(colon + 1), std::numeric_limits<unsigned short>::max()))};
}

std::chrono::milliseconds parse_milliseconds(std::string_view option, std::string_view text)
{
    // A day is more distance than any test wants, and keeps the arithmetic far from overflow.
    constexpr std::uint64_t a_day_ms = 24ULL * 3600 * 1000;
    return std::chrono::milliseconds(parse_number(option, text, a_day_ms));
}

constexpr std::array<std::string_view, 9> options_with_values{
    "--listen",   "--target", "--delay-ms", "--jitter-ms", "--bandwidth-kbps", "--stall-every", "--stall-every-bytes",
    "--stall-ms", "--seed"};

cartesia::test::relay_options parse_arguments(int argc, char** argv, bool& help)
{
    cartesia::test::relay_options options;
    bool have_target = false;
    bool have_delay = false;
    bool have_stall_ms = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view argument = argv[i];
        if (argument == "--help" || argument == "-h") {
            help = true;
            return options;
        }
        if (argument == "--no-handshake-rtt") {
            options.emulate_tcp_handshake = false;
            continue;
        }
        if (std::ranges::find(options_with_values, argument) == options_with_values.end())
            throw usage_error("unknown argument '" + std::string(argument) + "' (see --help)");
        if (i + 1 == argc)
            throw usage_error(std::string(argument) + " needs a value (see --help)");
        const std::string_view value = argv[++i];
        if (argument == "--listen") {
            const host_port listen = parse_host_port(argument, value);
            if (listen.host != "127.0.0.1")
                throw usage_error("--listen: the relay listens on 127.0.0.1 only, not '" + listen.host + "'");
            options.listen_port = listen.port;
        } else if (argument == "--target") {
            const host_port target = parse_host_port(argument, value);
            options.target_host = target.host;
            options.target_port = target.port;
            have_target = true;
        } else if (argument == "--delay-ms") {
            options.one_way_delay = parse_milliseconds(argument, value);
            have_delay = true;
        } else if (argument == "--jitter-ms") {
            options.jitter = parse_milliseconds(argument, value);
        } else if (argument == "--bandwidth-kbps") {
            constexpr std::uint64_t bits_per_byte = 8;
            constexpr std::uint64_t a_terabit = 1'000'000'000;
            options.bandwidth_bytes_per_second = parse_number(argument, value, a_terabit) * 1000 / bits_per_byte;
            if (value != "0" && options.bandwidth_bytes_per_second == 0)
                throw usage_error("--bandwidth-kbps: less than a byte per second");
        } else if (argument == "--stall-every" || argument == "--stall-every-bytes") {
            options.stall_every = parse_number(argument, value);
            options.stall_unit = argument == "--stall-every" ? cartesia::test::relay_options::unit::chunks
                                                             : cartesia::test::relay_options::unit::bytes;
        } else if (argument == "--stall-ms") {
            options.stall_for = parse_milliseconds(argument, value);
            have_stall_ms = true;
        } else if (argument == "--seed") {
            options.seed = parse_number(argument, value);
        }
    }
    if (!have_target || !have_delay)
        throw usage_error("--target and --delay-ms are required (see --help)");
    if ((options.stall_every != 0) != have_stall_ms)
        throw usage_error("--stall-every (or --stall-every-bytes) and --stall-ms go together");
    return options;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        bool help = false;
        const cartesia::test::relay_options options = parse_arguments(argc, argv, help);
        if (help) {
            print_usage(std::cout);
            return 0;
        }

        // The relay and the signals share one thread: a signal stops the relay, and run()
        // returns once its last connection has closed.
        boost::asio::io_context io(1);
        boost::asio::signal_set stop_signals(io, SIGINT, SIGTERM);
        cartesia::test::delay_relay relay(io.get_executor(), options);
        stop_signals.async_wait([&relay](const boost::system::error_code&, int) { relay.stop(); });
        std::cout << "listening on " << relay.address() << std::endl;
        io.run();
        return 0;
    } catch (const usage_error& e) {
        std::cerr << "cartesia-test-relay: " << e.what() << '\n';
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "cartesia-test-relay: " << e.what() << '\n';
        return 1;
    }
}
