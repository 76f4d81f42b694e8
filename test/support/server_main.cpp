// cartesia-test-server: the test server as a process, for the demo, the benchmark and
// manual checks with curl. It prints what a client needs, then serves until SIGINT/SIGTERM.
#include <support/test_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string_view>

namespace {

void print_usage(std::ostream& out)
{
    out << "usage: cartesia-test-server [--port N] [--api-key KEY]\n"
           "\n"
           "Serves POST /access-token like the Cartesia API on https://localhost:N (an\n"
           "ephemeral port by default), with a fresh CA, until SIGINT or SIGTERM. The API key\n"
           "defaults to $CARTESIA_TEST_SERVER_KEY, else "
        << cartesia::test::server_options{}.api_key
        << ".\n"
           "Once listening it prints base_url=..., ca_file=... and ready, one per line.\n"
           "\n"
           "POST /fault/<name>/access-token selects a behaviour. \"The normal answer\" is the\n"
           "API's own, after the usual checks of key, version and body; \"drops\" means a TCP\n"
           "close without TLS close_notify.\n";
    const auto& faults = cartesia::test::fault_names();
    const std::size_t name_width =
        std::ranges::max(faults, {}, [](const auto& fault) { return fault.name.size(); }).name.size();
    for (const auto& fault : faults)
        out << "  " << fault.name << std::string(name_width - fault.name.size() + 2, ' ') << fault.effect << '\n';
}

unsigned short parse_port(std::string_view text)
{
    unsigned short port = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (error != std::errc{} || end != text.data() + text.size()) {
        throw std::invalid_argument("invalid port '" + std::string(text) + "'");
    }
    return port;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        cartesia::test::server_options options;
        if (const char* key = std::getenv("CARTESIA_TEST_SERVER_KEY"); key != nullptr && *key != '\0') {
            options.api_key = key;
        }
        for (int i = 1; i < argc; ++i) {
            const std::string_view argument = argv[i];
            if (argument == "--help" || argument == "-h") {
                print_usage(std::cout);
                return 0;
            }
            if (argument != "--port" && argument != "--api-key") {
                throw std::invalid_argument("unknown argument '" + std::string(argument) + "' (see --help)");
            }
            if (i + 1 == argc)
                throw std::invalid_argument(std::string(argument) + " needs a value");
            const std::string_view value = argv[++i];
            if (argument == "--port") {
                options.port = parse_port(value);
            } else {
                options.api_key = value;
            }
        }

        // Catch the signals before announcing readiness, so that a supervisor that stops
        // us right after "ready" gets a clean exit rather than the default disposition.
        boost::asio::io_context signal_context;
        boost::asio::signal_set stop_signals(signal_context, SIGINT, SIGTERM);
        stop_signals.async_wait([](const boost::system::error_code&, int) {});

        const cartesia::test::test_server server(std::move(options));
        std::cout << "base_url=" << server.base_url() << '\n'
                  << "ca_file=" << server.ca_file() << '\n'
                  << "ready" << std::endl;
        signal_context.run();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "cartesia-test-server: " << e.what() << '\n';
        return 1;
    }
}
