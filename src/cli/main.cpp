// cartesia-token: mint one Cartesia access token from the command line.
//
// The API key comes from the environment only: argv is visible to every user of
// the machine through ps(1).
//
// --verbose (or CARTESIA_LOG=debug) logs the configuration and every event of the
// operation (cartesia/events.hpp) on stderr, one line each, prefixed "cartesia: ";
// stdout keeps only the result.
#include <cartesia/cartesia.hpp>
#include <cartesia/events.hpp>

#include <boost/asio/io_context.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_request_failed = 1;
constexpr int exit_usage = 2;

constexpr std::string_view usage = R"(usage: cartesia-token [options]

Mints a short-lived Cartesia access token and prints it on stdout.
The API key is read from the environment variable CARTESIA_API_KEY.

options:
  --base-url URL        API base URL (default: $CARTESIA_BASE_URL, else https://api.cartesia.ai)
  --ca-file PATH        also trust the CA certificates in this PEM file
  --tts, --stt, --agent grant these capabilities (default: the server's)
  --expires-in SECONDS  token lifetime, 1 to 3600
  --api-version V       Cartesia-Version header (default 2026-03-01)
  --timeout-ms N        deadline of one attempt (default 60000)
  --max-retries N       retries after the first attempt (default 2)
  --proxy URL           HTTP proxy, http://[user:password@]host[:port] (default: $https_proxy,
                        $HTTPS_PROXY, $all_proxy, $ALL_PROXY, the first set; "" connects directly)
  --noproxy LIST        hosts that bypass the proxy, comma-separated, curl's syntax
                        (default: $no_proxy, else $NO_PROXY)
  --resolve HOST:PORT:ADDR[,ADDR...]
                        use these addresses for HOST and PORT, as curl's --resolve (repeatable)
  --connect-timeout-ms N
                        bound of one address's TCP connect and of the proxy's CONNECT
                        (default 10000)
  --json                print the whole response object instead of the token
  -v, --verbose         log the configuration (key and proxy credentials redacted) and each
                        step of the request (attempts, connection, responses, retries) on
                        stderr, one line each, prefixed "cartesia: "
  --help                print this help
  --version             print the version

environment: CARTESIA_API_KEY (required; never a flag: argv is visible to all users),
  CARTESIA_BASE_URL, https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY, no_proxy, NO_PROXY,
  CARTESIA_LOG (exactly "debug": as --verbose; any other value, "info" too, logs nothing)

exit status: 0 success, 1 the request failed, 2 bad usage or input (no connection made)
)";

struct usage_error {
    std::string message;
};

template <class Int> Int parse_integer(std::string_view option, std::string_view text)
{
    Int value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        throw usage_error{std::string(option) + " expects an integer, got '" + std::string(text) + "'"};
    return value;
}

struct options {
    cartesia::client_config config;
    cartesia::token_request request;
    std::optional<std::string> ca_file;
    bool print_json = false;
    bool verbose = false;
};

// CARTESIA_LOG, as the official Cartesia SDKs name it. Only "debug" has a log to
// give here: the CLI's one other line, a failure, is printed at every level.
bool log_requested_by_environment()
{
    const char* level = std::getenv("CARTESIA_LOG");
    return level != nullptr && std::string_view(level) == "debug";
}

// One line of the log on stderr. describe() promises a single line; a control
// character (a newline, a terminal escape) that would reach the terminal anyway is
// shown as \xNN, so that no text can forge or hide a line.
void log_line(std::string_view text)
{
    std::string line = "cartesia: ";
    line.reserve(line.size() + text.size() + 1);
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            constexpr std::string_view hex = "0123456789abcdef";
            line += "\\x";
            line += hex[byte >> 4U];
            line += hex[byte & 0xfU];
        } else {
            line += c;
        }
    }
    line += '\n';
    std::cerr << line; // one write: the line is never interleaved with another
}

// Returns nullopt when the program should exit successfully (--help, --version).
std::optional<options> parse_command_line(int argc, char** argv)
{
    // The environment first (the key, the base URL, the proxy variables): the
    // flags then override it.
    options parsed;
    parsed.config = cartesia::config_from_environment();
    parsed.verbose = log_requested_by_environment();
    auto grant = [&]() -> cartesia::token_grant& {
        if (!parsed.request.grants)
            parsed.request.grants.emplace();
        return *parsed.request.grants;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc)
                throw usage_error{std::string(arg) + " expects a value"};
            return argv[++i];
        };
        if (arg == "--help") {
            std::cout << usage;
            return std::nullopt;
        } else if (arg == "--version") {
            std::cout << "cartesia-token " CARTESIA_ASIO_VERSION_STRING "\n";
            return std::nullopt;
        } else if (arg == "--base-url") {
            parsed.config.base_url = value();
        } else if (arg == "--ca-file") {
            parsed.ca_file = std::string(value());
        } else if (arg == "--tts") {
            grant().tts = true;
        } else if (arg == "--stt") {
            grant().stt = true;
        } else if (arg == "--agent") {
            grant().agent = true;
        } else if (arg == "--expires-in") {
            parsed.request.expires_in = std::chrono::seconds(parse_integer<long long>(arg, value()));
        } else if (arg == "--api-version") {
            parsed.config.api_version = value();
        } else if (arg == "--timeout-ms") {
            parsed.config.timeout = std::chrono::milliseconds(parse_integer<long long>(arg, value()));
        } else if (arg == "--max-retries") {
            parsed.config.max_retries = parse_integer<int>(arg, value());
        } else if (arg == "--proxy") {
            parsed.config.proxy = value();
        } else if (arg == "--noproxy") {
            parsed.config.no_proxy = value();
        } else if (arg == "--resolve") {
            parsed.config.resolve.emplace_back(value());
        } else if (arg == "--connect-timeout-ms") {
            parsed.config.connect_timeout = std::chrono::milliseconds(parse_integer<long long>(arg, value()));
        } else if (arg == "--json") {
            parsed.print_json = true;
        } else if (arg == "--verbose" || arg == "-v") {
            parsed.verbose = true;
        } else {
            throw usage_error{"unknown option '" + std::string(arg) + "' (see --help)"};
        }
    }
    if (parsed.config.api_key.empty())
        throw usage_error{"CARTESIA_API_KEY is not set"};
    return parsed;
}

int run(int argc, char** argv)
{
    std::optional<options> opts;
    try {
        opts = parse_command_line(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "cartesia-token: " << e.message << '\n';
        return exit_usage;
    }
    if (!opts)
        return exit_ok;

    std::optional<boost::asio::ssl::context> tls;
    try {
        tls.emplace(opts->ca_file ? cartesia::make_tls_context(*opts->ca_file) : cartesia::make_tls_context());
    } catch (const boost::system::system_error& e) {
        std::cerr << "cartesia-token: cannot use --ca-file: " << e.code().message() << '\n';
        return exit_usage;
    }

    if (opts->verbose) {
        std::ostringstream config;
        config << "config " << opts->config;
        log_line(config.str());
        // Must not throw (types.hpp): a line that cannot be made is left out.
        opts->config.on_event = [](const cartesia::event& e) noexcept {
            try {
                log_line(cartesia::describe(e));
            } catch (...) { // NOLINT(bugprone-empty-catch): std::bad_alloc; the log is best effort
            }
        };
    }

    boost::asio::io_context io;
    cartesia::diagnostics diag;
    int status = exit_request_failed;
    cartesia::async_generate_token(io, *tls, opts->config, opts->request, diag,
                                   [&](boost::system::error_code ec, const cartesia::token_response& response) {
                                       if (!ec) {
                                           std::cout << (opts->print_json ? response.raw_json : response.token) << '\n';
                                           status = exit_ok;
                                           return;
                                       }
                                       // The diagnostics hold neither the key nor the proxy's password: the
                                       // library scrubs them of both.
                                       std::cerr << "cartesia-token: " << cartesia::describe(ec, diag) << '\n';
                                       status =
                                           ec == cartesia::error::invalid_argument ? exit_usage : exit_request_failed;
                                   });
    io.run();
    std::cout.flush();
    return status;
}

} // namespace

int main(int argc, char** argv)
{
    // Only an allocation failure or a broken output stream can throw this far; say
    // so in one line instead of terminating with a core dump.
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "cartesia-token: " << e.what() << '\n';
        return exit_request_failed;
    }
}
