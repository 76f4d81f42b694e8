// token_server: hands short-lived Cartesia access tokens to a web front end, so that
// the browser never sees the API key. One thread, one pooled cartesia::client, and a
// Beast HTTP/1.1 server in front of it. Walkthrough: docs/token-server.md.
#include "token_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace asio = boost::asio;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// How long a shutdown waits for requests in progress.
constexpr auto shutdown_grace = std::chrono::seconds(5);

constexpr std::string_view usage = R"(usage: token_server [options]

Serves POST /api/token (short-lived Cartesia access tokens), the page that asks for
them, GET /healthz and GET /metrics (Prometheus), over plain HTTP. Logs one JSON
line per request on stderr. Stops on SIGINT or SIGTERM.

environment:
  CARTESIA_API_KEY               the API key (required; never taken from the command line)
  CARTESIA_BASE_URL              the API (default https://api.cartesia.ai)
  CARTESIA_CA_FILE               also trust the CA certificates in this PEM file
  TOKEN_SERVER_SESSION_SECRET    the secret callers must present (or --session-secret)

options:
  --listen ADDRESS               address to listen on (default 127.0.0.1)
  --port N                       port (default 8080; 0 picks a free one)
  --web-root DIR                 where the page's files are (default: the source's web/)
  --session-secret SECRET        callers send "Authorization: Bearer SECRET"
  --grant NAME                   a grant callers may get: tts, stt or agent; repeatable (default tts)
  --expires-in SECONDS           the longest token lifetime, 1 to 3600 (default 600)
  --rate N                       token requests per second per caller address (default 5)
  --burst N                      requests a caller may make at once (default 10)
  --allow-origin ORIGIN          let pages from ORIGIN call /api/token (CORS); repeatable
  --upstream-timeout-ms N        deadline of one upstream attempt (default 10000)
  --upstream-max-retries N       upstream retries after the first attempt, 0 to 10 (default 2)
  --reserve N                    keep N tokens of the default order minted ahead (0 to 64;
                                 default 0: none), so that most callers wait no round trip
  --no-access-log                no JSON line per request on stderr
  --help                         print this help

exit status: 0 after a clean shutdown, 1 a failure while running, 2 bad usage
)";

struct usage_error {
    std::string message;
};

struct options {
    token_server::server_config server;
    cartesia::client_config upstream;
    std::string ca_file;
};

std::string environment(const char* name)
{
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
}

template <class Number> Number parse_number(std::string_view option, std::string_view text, Number low, Number high)
{
    Number value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    const bool in_range = value >= low && value <= high; // false for NaN, which from_chars accepts
    if (ec != std::errc() || end != text.data() + text.size() || !in_range) {
        std::ostringstream message;
        message << option << " expects a number from " << low << " to " << high << ", got '" << text << "'";
        throw usage_error{message.str()};
    }
    return value;
}

// Reads one option and its value into `result`. `grants_given` tells whether an
// earlier --grant already replaced the default grants.
void apply_option(std::string_view option, std::string_view value, options& result, bool& grants_given)
{
    auto& server = result.server;
    if (option == "--listen") {
        boost::system::error_code ec;
        server.endpoint.address(asio::ip::make_address(value, ec));
        if (ec)
            throw usage_error{"--listen expects an IP address, got '" + std::string(value) + "'"};
    } else if (option == "--port") {
        server.endpoint.port(parse_number<unsigned short>(option, value, 0, 65535));
    } else if (option == "--web-root") {
        server.web_root = value;
    } else if (option == "--session-secret") {
        server.session_secret = value;
    } else if (option == "--grant") {
        if (!token_server::is_grant_name(value))
            throw usage_error{"--grant expects tts, stt or agent, got '" + std::string(value) + "'"};
        if (!std::exchange(grants_given, true))
            server.policy.allowed_grants.clear();
        server.policy.allowed_grants.emplace(value);
    } else if (option == "--expires-in") {
        server.policy.max_expires_in = std::chrono::seconds(parse_number(option, value, 1, 3600));
    } else if (option == "--rate") {
        server.rate_limit.rate_per_second = parse_number(option, value, 0.001, 1e6);
    } else if (option == "--burst") {
        server.rate_limit.burst = parse_number(option, value, 1, 1'000'000);
    } else if (option == "--allow-origin") {
        server.allowed_origins.emplace_back(value);
    } else if (option == "--upstream-timeout-ms") {
        result.upstream.timeout = std::chrono::milliseconds(parse_number(option, value, 1, 600'000));
    } else if (option == "--reserve") {
        server.reserve = parse_number<std::size_t>(option, value, 0, 64);
    } else if (option == "--upstream-max-retries") {
        result.upstream.max_retries = parse_number(option, value, 0, 10);
    } else {
        throw usage_error{"unknown option '" + std::string(option) + "' (see --help)"};
    }
}

options parse_options(int argc, char** argv)
{
    options result;
    result.server.endpoint = {asio::ip::make_address("127.0.0.1"), 8080};
    result.server.web_root = TOKEN_SERVER_WEB_ROOT;
    result.server.session_secret = environment("TOKEN_SERVER_SESSION_SECRET");
    result.upstream.api_key = environment("CARTESIA_API_KEY");
    if (const auto base_url = environment("CARTESIA_BASE_URL"); !base_url.empty())
        result.upstream.base_url = base_url;
    result.upstream.timeout = std::chrono::seconds(10);
    result.ca_file = environment("CARTESIA_CA_FILE");

    bool grants_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view option = argv[i];
        if (option == "--no-access-log") { // the one option without a value
            result.server.access_log = false;
            continue;
        }
        if (i + 1 == argc)
            throw usage_error{std::string(option) + " needs a value"};
        apply_option(option, argv[++i], result, grants_given);
    }
    if (result.upstream.api_key.empty())
        throw usage_error{"set CARTESIA_API_KEY"};
    if (result.server.session_secret.empty())
        throw usage_error{"set TOKEN_SERVER_SESSION_SECRET or --session-secret"};
    return result;
}

bool wants_help(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i)
        if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h")
            return true;
    return false;
}

void rethrow_on_failure(const std::exception_ptr& failure)
{
    if (failure)
        std::rethrow_exception(failure);
}

asio::awaitable<void> stop(token_server::server& server, cartesia::client& upstream)
{
    co_await server.shutdown(shutdown_grace);
    upstream.close(); // ends the upstream calls of requests cut off by the grace period
}

int serve(const options& opts)
{
    asio::io_context io;
    auto tls = opts.ca_file.empty() ? cartesia::make_tls_context() : cartesia::make_tls_context(opts.ca_file);
    cartesia::client upstream(io.get_executor(), tls, opts.upstream);
    token_server::server server(io.get_executor(), upstream, opts.server);

    // Caught before "ready", so that a supervisor that stops us right away gets a clean exit.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec)
            return;
        // Stop catching them: a second signal ends the process at once.
        signals.clear();
        asio::co_spawn(io, stop(server, upstream), rethrow_on_failure);
    });

    std::cout << "listening on http://" << server.local_endpoint() << '\n' << "ready" << std::endl;
    asio::co_spawn(io, server.run(), rethrow_on_failure);
    io.run();
    return exit_ok;
}

} // namespace

int main(int argc, char** argv)
{
    if (wants_help(argc, argv)) {
        std::cout << usage;
        return exit_ok;
    }
    try {
        return serve(parse_options(argc, argv));
    } catch (const usage_error& e) {
        std::cerr << "token_server: " << e.message << '\n';
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "token_server: " << e.what() << '\n';
        return exit_failure;
    }
}
