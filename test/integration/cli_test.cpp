// The cartesia-token command line: output, error lines and exit codes; its log
// (--verbose, CARTESIA_LOG=debug) of the library's events.
#include <support/squid.hpp>
#include <support/test_server.hpp>

#include <cartesia/cartesia.hpp>
#include <cartesia/events.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <utility>
#include <vector>

namespace {

struct run_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
}

// Runs the CLI with `env` (assignments) and `args`, capturing stdout and stderr.
run_result run_cli(const std::string& env, const std::string& args)
{
    const std::string err_file = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                                 "/cartesia-cli-test-" + std::to_string(::getpid()) + ".err";
    const std::string command =
        "env -u CARTESIA_API_KEY -u CARTESIA_BASE_URL -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY "
        "-u no_proxy -u NO_PROXY " +
        env + " " CARTESIA_TOKEN_EXE " " + args + " 2>" + err_file;
    run_result result;
    FILE* pipe = ::popen(command.c_str(), "r");
    BOOST_REQUIRE(pipe);
    char chunk[4096];
    while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
        result.out.append(chunk, n);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.err = read_file(err_file);
    std::remove(err_file.c_str());
    return result;
}

struct cli_fixture {
    cartesia::test::test_server server;
    std::string key_env() const { return "CARTESIA_API_KEY=" + server.api_key(); }
    std::string target() const { return "--base-url " + server.base_url() + " --ca-file " + server.ca_file(); }
};

bool is_one_jwt_line(const std::string& out)
{
    return !out.empty() && out.back() == '\n' && out.find('\n') == out.size() - 1 &&
           std::count(out.begin(), out.end(), '.') == 2;
}

} // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_FIXTURE_TEST_CASE(prints_the_token_alone, cli_fixture)
{
    auto r = run_cli(key_env(), target() + " --tts --stt --expires-in 120");
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(is_one_jwt_line(r.out), r.out);
    BOOST_TEST(r.err.empty(), r.err);
    const auto seen = server.recorded_requests();
    BOOST_TEST_REQUIRE(seen.size() == 1u);
    BOOST_TEST(seen[0].body == R"({"grants":{"tts":true,"stt":true},"expires_in":120})");
}

BOOST_FIXTURE_TEST_CASE(base_url_from_the_environment_and_json_output, cli_fixture)
{
    auto r = run_cli(key_env() + " CARTESIA_BASE_URL=" + server.base_url(),
                     "--ca-file " + server.ca_file() +
                         " --agent --json --api-version 2026-03-01 --timeout-ms 5000 --max-retries 0");
    BOOST_TEST(r.exit_code == 0);
    auto parsed = boost::json::parse(r.out);
    BOOST_TEST(parsed.at("token").is_string());
}

BOOST_FIXTURE_TEST_CASE(api_errors_exit_1_with_status_message_and_request_id, cli_fixture)
{
    const std::string wrong_key = "sk_car_this_key_is_wrong_123";
    auto r = run_cli("CARTESIA_API_KEY=" + wrong_key, target());
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(r.err.find("HTTP 401") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("request id") != std::string::npos, r.err);
    BOOST_TEST(r.err.find(wrong_key) == std::string::npos);
    BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);

    auto unavailable = run_cli(key_env(), "--base-url " + server.base_url() + "/fault/status-503 --ca-file " +
                                              server.ca_file() + " --max-retries 0");
    BOOST_TEST(unavailable.exit_code == 1);
    BOOST_TEST(unavailable.err.find("HTTP 503") != std::string::npos, unavailable.err);
}

BOOST_FIXTURE_TEST_CASE(network_tls_and_timeout_failures_exit_1, cli_fixture)
{
    auto untrusted = run_cli(key_env(), "--base-url " + server.base_url());
    BOOST_TEST(untrusted.exit_code == 1);
    BOOST_TEST(untrusted.out.empty());
    BOOST_TEST(untrusted.err.find("certificate verification failed") != std::string::npos, untrusted.err);

    auto hang = run_cli(key_env(), "--base-url " + server.base_url() + "/fault/hang --ca-file " + server.ca_file() +
                                       " --timeout-ms 200 --max-retries 0");
    BOOST_TEST(hang.exit_code == 1);
    BOOST_TEST(hang.err.find("timeout") != std::string::npos, hang.err);
}

BOOST_FIXTURE_TEST_CASE(bad_usage_exits_2_before_any_connection, cli_fixture)
{
    const std::string cases[] = {
        "--expires-in 3601",
        "--expires-in 0",
        "--expires-in ten",
        "--base-url http://localhost:1",
        "--base-url not-a-url",
        "--api-version v2",
        "--timeout-ms -5",
        "--max-retries -1",
        "--frobnicate",
        "--base-url",
        "--ca-file /nonexistent/ca.pem",
    };
    for (const auto& args : cases) {
        BOOST_TEST_CONTEXT(args)
        {
            auto r = run_cli(key_env(), (args.rfind("--base-url", 0) == 0 ? "" : target() + " ") + args);
            BOOST_TEST(r.exit_code == 2);
            BOOST_TEST(r.out.empty());
            BOOST_TEST(!r.err.empty());
            BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        }
    }
    auto no_key = run_cli("", target());
    BOOST_TEST(no_key.exit_code == 2);
    BOOST_TEST(no_key.err.find("CARTESIA_API_KEY") != std::string::npos);
    auto control_key = run_cli("CARTESIA_API_KEY=\"$(printf 'sk_car_a\\tb')\"", target());
    BOOST_TEST(control_key.exit_code == 2);
    BOOST_TEST(server.connections_accepted() == 0u);
}

BOOST_AUTO_TEST_CASE(help_and_version)
{
    auto help = run_cli("", "--help");
    BOOST_TEST(help.exit_code == 0);
    BOOST_TEST(help.out.find("CARTESIA_API_KEY") != std::string::npos);
    auto version = run_cli("", "--version");
    BOOST_TEST(version.exit_code == 0);
    BOOST_TEST(version.out.find("cartesia-token ") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// --- The log: --verbose, -v and CARTESIA_LOG=debug ---------------------------------

namespace {

constexpr std::string_view log_prefix = "cartesia: ";
constexpr std::string_view config_prefix = "cartesia: config {";
constexpr std::string_view failure_prefix = "cartesia-token: ";

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            lines.push_back(text.substr(start)); // an unterminated last line: the checks below see it
            break;
        }
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// The event lines of a log: its lines but the configuration and the failure line.
std::vector<std::string> event_lines(const std::string& err)
{
    std::vector<std::string> events;
    for (auto& line : lines_of(err)) {
        if (line.starts_with(log_prefix) && !line.starts_with(config_prefix))
            events.push_back(std::move(line));
    }
    return events;
}

// The index of the first line from `from` on that contains `text`, or npos.
std::size_t find_line(const std::vector<std::string>& lines, std::string_view text, std::size_t from = 0)
{
    for (std::size_t i = from; i < lines.size(); ++i) {
        if (lines[i].find(text) != std::string::npos)
            return i;
    }
    return std::string::npos;
}

std::size_t count_lines(const std::vector<std::string>& lines, std::string_view text)
{
    return static_cast<std::size_t>(
        std::ranges::count_if(lines, [&](const std::string& line) { return line.find(text) != std::string::npos; }));
}

// How describe(const event&) words each kind (src/events.cpp), as a person reads the log.
constexpr std::string_view started_text = " started (+";                // attempt_started
constexpr std::string_view connected_text = " connected: conn ";        // connected
constexpr std::string_view received_text = " response: HTTP ";          // response_received
constexpr std::string_view retry_text = " failed, retry in ";           // retry_scheduled
constexpr std::string_view completed_text = " completed: token after "; // completed with a token
constexpr std::string_view failed_text = " failed after ";              // completed with an error

// A line holds no byte that a terminal would act on: no newline, carriage return,
// escape, NUL or DEL.
bool is_plain_line(std::string_view line)
{
    return std::ranges::none_of(line, [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
    });
}

// What the log of a call that got `first_status` and then a token must hold, in
// this order: attempt 1 started, connected, `first_status` received, the retry
// scheduled, attempt 2 started, connected, 200 received, and completed, last.
void check_log_of_a_retried_call(const run_result& r, const std::string& first_status = "503")
{
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(is_one_jwt_line(r.out), r.out); // stdout: the token, nothing else
    const auto all = lines_of(r.err);
    BOOST_TEST(!r.err.empty());
    BOOST_TEST(r.err.back() == '\n');
    for (const auto& line : all)
        BOOST_TEST(line.starts_with(log_prefix), "not a line of the log: " << line);
    BOOST_TEST(std::ranges::count_if(all, [](const std::string& l) { return l.starts_with(config_prefix); }) == 1);
    BOOST_TEST_REQUIRE(!all.empty());
    BOOST_TEST(all.front().starts_with(config_prefix), all.front()); // before any event

    const auto events = event_lines(r.err);
    const auto at = [&](std::string_view what, std::size_t from = 0) {
        return find_line(events, std::string(what), from);
    };
    const std::size_t first = at("attempt 1" + std::string(started_text));
    const std::size_t first_connected = at("attempt 1" + std::string(connected_text), first);
    const std::size_t got_503 = at("attempt 1" + std::string(received_text) + first_status, first);
    const std::size_t retried = at("attempt 1" + std::string(retry_text), got_503);
    const std::size_t second = at("attempt 2" + std::string(started_text), retried);
    const std::size_t second_connected = at("attempt 2" + std::string(connected_text), second);
    const std::size_t got_200 = at("attempt 2" + std::string(received_text) + "200", second);
    const std::size_t done = at(std::string(completed_text) + "2 attempts", got_200);
    BOOST_TEST(first != std::string::npos, r.err);
    BOOST_TEST(first_connected != std::string::npos, r.err);
    BOOST_TEST(got_503 != std::string::npos, r.err);
    BOOST_TEST(retried != std::string::npos, r.err);
    BOOST_TEST(second != std::string::npos, r.err);
    BOOST_TEST(second_connected != std::string::npos, r.err);
    BOOST_TEST(got_200 != std::string::npos, r.err);
    BOOST_TEST(done == events.size() - 1, r.err); // completed, once, last
    BOOST_TEST(count_lines(events, completed_text) == 1u, r.err);
    BOOST_TEST(count_lines(events, retry_text) == 1u, r.err);
    BOOST_TEST(count_lines(events, started_text) == 2u, r.err);
    BOOST_TEST(count_lines(events, connected_text) == 2u, r.err);
    for (const auto& line : events)
        BOOST_TEST(is_plain_line(line), line);
}

std::string basic_credentials(const std::string& user, const std::string& password)
{
    namespace base64 = boost::beast::detail::base64;
    const std::string plain = user + ":" + password;
    std::string encoded(base64::encoded_size(plain.size()), '\0');
    encoded.resize(base64::encode(encoded.data(), plain.data(), plain.size()));
    return encoded;
}

const std::string proxy_user = "tester";
const std::string proxy_password = "s3cr3tpw";

cartesia::test::squid_options authenticating_squid()
{
    cartesia::test::squid_options options;
    options.user = proxy_user;
    options.password = proxy_password;
    return options;
}

struct proxied_cli_fixture : cli_fixture {
    cartesia::test::squid_proxy proxy{authenticating_squid()};
    std::string proxy_url() const { return "http://" + proxy_user + ":" + proxy_password + "@" + proxy.address(); }
};

} // namespace

// --- Server text made to break a log ---------------------------------------------

namespace {

// An error answer whose text holds the API key, the proxy's password and bytes a
// terminal acts on, and what it is, for the test's context.
struct hostile_answer {
    std::string what;
    cartesia::test::canned_response answer;
};

// Every character as a JSON \u escape: the key as the parser decodes it, never as sent.
std::string json_unicode_escaped(std::string_view text)
{
    constexpr std::string_view hex = "0123456789abcdef";
    std::string escaped;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        escaped += "\\u00";
        escaped += hex[byte >> 4U];
        escaped += hex[byte & 0xfU];
    }
    return escaped;
}

// `count` answers from a seeded generator: the same ones on every run.
std::vector<hostile_answer> hostile_answers(const std::string& key, const std::string& password, std::size_t count)
{
    std::mt19937 random(20261201U); // NOLINT(cert-msc32-c,cert-msc51-cpp): deterministic on purpose
    const auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
    const std::vector<std::string> pieces = {
        key,
        password,
        "\n",
        "\r\n",
        "\r",
        "\t",
        std::string(1, '\0'),
        "\x7f",
        "\b\b\b\b\b\b",
        "\x1b[2J\x1b[1;1H",   // clear the screen, cursor home
        "\x1b]0;owned\x07",   // set the terminal's title
        "\x1b[31mred\x1b[0m", // colour
        "\xc2\x85",           // U+0085 NEXT LINE
        "\xe2\x80\xa8",       // U+2028 LINE SEPARATOR
        "\xff\xfe\xc0",       // not UTF-8
        "\ncartesia: op 1 completed: forged line\n",
        key.substr(0, 12) + "\n" + key.substr(12),         // the key, once a line break is dropped
        key.substr(0, 12) + "\x1b" + key.substr(12),       // ... or an escape
        password.substr(0, 4) + "\r" + password.substr(4), // the password too
        "Invalid API key ",
        " value ",
        "'\"\\ {}[]%s%n ",
    };
    const unsigned statuses[] = {400, 401, 403, 404, 409, 422, 429, 500, 502, 503};

    // Some pieces, always the key and the password among them.
    const auto text = [&](std::size_t min_pieces, std::size_t max_pieces) {
        std::vector<std::string> chosen = {key, password};
        const std::size_t n = min_pieces + pick(max_pieces - min_pieces + 1);
        for (std::size_t i = 0; i < n; ++i)
            chosen.push_back(pieces[pick(pieces.size())]);
        std::shuffle(chosen.begin(), chosen.end(), random);
        std::string joined;
        for (const auto& piece : chosen)
            joined += piece;
        if (pick(5) == 0)
            joined += std::string(1000 + pick(30000), 'L'); // long: well past the 1024 bytes kept of a field
        return joined;
    };

    std::vector<hostile_answer> answers;
    for (std::size_t i = 0; i < count; ++i) {
        const unsigned status = statuses[pick(std::size(statuses))];
        cartesia::test::canned_response answer{status, "application/json", "", {}};
        std::string what = "HTTP " + std::to_string(status) + ", ";
        switch (i % 5) {
        case 0: { // the API's error body, each text member hostile
            boost::json::object body{
                {"error_code", text(0, 2)}, {"title", text(1, 4)}, {"message", text(2, 8)}, {"request_id", text(0, 2)}};
            answer.body = boost::json::serialize(body);
            what += "JSON error_code, title, message and request_id";
            break;
        }
        case 1: // the key and the password written as \u escapes
            answer.body = R"({"error_code":null,"title":"Bad )";
            answer.body += json_unicode_escaped("\n" + key);
            answer.body += R"(","message":")";
            answer.body += json_unicode_escaped(password + "\x1b[2K");
            answer.body += json_unicode_escaped(key + "\r\n");
            answer.body += R"("})";
            what += "JSON with the secrets as \\u escapes";
            break;
        case 2: // an old API version's plain-text body, raw bytes
            answer.content_type = "text/plain";
            answer.body = text(2, 10);
            what += "a text/plain body";
            break;
        case 3: // an HTML page, as a proxy or a captive portal sends
            answer.content_type = "text/html";
            answer.body = "<html><body><h1>" + text(1, 4) + "</h1>\n<p>" + text(1, 6) + "</p></body></html>";
            what += "an HTML body";
            break;
        default: // the secrets in x-request-id (a header holds no control character)
            answer.headers.emplace_back("x-request-id", key + "-");
            answer.headers.back().second += password;
            answer.body = boost::json::serialize(boost::json::object{{"title", text(0, 3)}, {"message", text(1, 4)}});
            what += "the secrets in x-request-id";
            break;
        }
        // A retry at once, so that retry_scheduled carries the server's text too.
        if (status == 409 || status == 429 || status >= 500)
            answer.headers.emplace_back("retry-after-ms", "0");
        answers.push_back(
            {std::move(what) + ", body " + std::to_string(answer.body.size()) + " bytes", std::move(answer)});
    }
    return answers;
}

// A server that answers every request with hostile_answers()[current], behind squid
// with credentials.
struct hostile_server_fixture {
    static constexpr std::size_t answer_count = 40;

    hostile_server_fixture()
        : answers(hostile_answers(key, proxy_password, answer_count)), server([this] {
              cartesia::test::server_options options;
              options.api_key = key;
              options.responder = [this](const cartesia::test::recorded_request&) {
                  return std::optional(answers.at(current.load()).answer);
              };
              return options;
          }())
    {
    }

    std::string proxy_url() const { return "http://" + proxy_user + ":" + proxy_password + "@" + proxy.address(); }

    const std::string key = "sk_car_hostile_0123456789abcdef";
    const std::vector<hostile_answer> answers; // read by the server's thread: never changed
    std::atomic<std::size_t> current{0};       // the answer of the next requests
    cartesia::test::test_server server;
    cartesia::test::squid_proxy proxy{authenticating_squid()};
};

} // namespace

BOOST_AUTO_TEST_SUITE(cli_log)

BOOST_FIXTURE_TEST_CASE(verbose_logs_each_step_of_a_retried_call_on_stderr, cli_fixture)
{
    auto r = run_cli(key_env(), "--base-url " + server.base_url() + "/fault/once-503 --ca-file " + server.ca_file() +
                                    " --tts --verbose");
    check_log_of_a_retried_call(r);
    BOOST_TEST(server.requests_received() == 2u);
    BOOST_TEST_MESSAGE("cartesia-token --verbose, 503 then 200:\n" << r.err);

    // -v is --verbose.
    auto short_flag =
        run_cli(key_env(), "--base-url " + server.base_url() + "/fault/once-502 --ca-file " + server.ca_file() + " -v");
    check_log_of_a_retried_call(short_flag, "502");
}

BOOST_FIXTURE_TEST_CASE(cartesia_log_debug_logs_as_verbose_does, cli_fixture)
{
    auto r = run_cli(key_env() + " CARTESIA_LOG=debug",
                     "--base-url " + server.base_url() + "/fault/once-503 --ca-file " + server.ca_file());
    check_log_of_a_retried_call(r);
    BOOST_TEST(server.requests_received() == 2u);
}

BOOST_FIXTURE_TEST_CASE(without_the_flag_or_cartesia_log_debug_nothing_is_logged, cli_fixture)
{
    // Each run is retried (a once-<code> of its own), so each had events to log.
    const std::pair<std::string, std::string> runs[] = {
        {"", "once-503"},
        {"CARTESIA_LOG=info", "once-502"},
        {"CARTESIA_LOG=warn", "once-500"},
        {"CARTESIA_LOG=DEBUG", "once-504"}, // exactly "debug", as the SDKs spell it
        {"CARTESIA_LOG=", "once-429"},
    };
    std::size_t requests = 0;
    for (const auto& [env, fault] : runs) {
        BOOST_TEST_CONTEXT(env << " " << fault)
        {
            auto r = run_cli(key_env() + " " + env,
                             "--base-url " + server.base_url() + "/fault/" + fault + " --ca-file " + server.ca_file());
            BOOST_TEST(r.exit_code == 0);
            BOOST_TEST(is_one_jwt_line(r.out), r.out);
            BOOST_TEST(r.err.empty(), r.err);
            requests += 2;
            BOOST_TEST(server.requests_received() == requests); // retried: there were events
        }
    }
}

BOOST_FIXTURE_TEST_CASE(the_log_never_shows_the_key_the_token_or_the_proxy_password, proxied_cli_fixture)
{
    auto r = run_cli(key_env(), "--base-url " + server.base_url() + "/fault/once-503 --ca-file " + server.ca_file() +
                                    " --verbose --proxy " + proxy_url());
    check_log_of_a_retried_call(r);
    const std::string token = r.out.substr(0, r.out.find('\n'));
    BOOST_TEST_REQUIRE(!token.empty());
    const std::string secrets[] = {
        server.api_key(),
        server.api_key().substr(std::string_view("sk_car_").size()), // the secret part alone
        token,
        token.substr(token.rfind('.') + 1), // the signature
        proxy_password,
        basic_credentials(proxy_user, proxy_password),
    };
    for (const auto& secret : secrets)
        BOOST_TEST(r.err.find(secret) == std::string::npos, "'" << secret << "' appears in:\n" << r.err);
    // It did go through the proxy, whose address the log may name.
    const auto events = event_lines(r.err);
    BOOST_TEST(count_lines(events, " (proxy) ") == 2u, r.err); // both connections: tunnels through squid
    BOOST_TEST(proxy.wait_for_connects_logged(2, std::chrono::seconds(10)) == 2u);
}

BOOST_FIXTURE_TEST_CASE(hostile_server_text_neither_leaks_secrets_nor_breaks_lines, hostile_server_fixture)
{
    const std::string secrets[] = {key, proxy_password};
    std::size_t longest = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        current = i;
        BOOST_TEST_CONTEXT("answer " << i << ": " << answers[i].what)
        {
            auto r = run_cli("CARTESIA_API_KEY=" + key,
                             "--base-url " + server.base_url() + " --ca-file " + server.ca_file() +
                                 " --verbose --max-retries 1 --timeout-ms 5000 --proxy " + proxy_url());
            BOOST_TEST(r.exit_code == 1);
            BOOST_TEST(r.out.empty(), r.out);
            for (const auto& secret : secrets)
                BOOST_TEST(r.err.find(secret) == std::string::npos, "'" << secret << "' appears in:\n" << r.err);
            BOOST_TEST(!r.err.empty());
            BOOST_TEST(r.err.back() == '\n');
            const auto lines = lines_of(r.err);
            for (const auto& line : lines) {
                BOOST_TEST((line.starts_with(log_prefix) || line.starts_with(failure_prefix)),
                           "a line that is neither the log's nor the failure's: " << line);
                BOOST_TEST(is_plain_line(line), "a control character in: " << line);
                longest = std::max(longest, line.size());
            }
            BOOST_TEST_REQUIRE(!lines.empty());
            BOOST_TEST(lines.back().starts_with(failure_prefix), lines.back()); // the failure, last
            const auto events = event_lines(r.err);
            BOOST_TEST(events.size() >= 4u, r.err); // started, connected, received, completed at least
            BOOST_TEST(find_line(events, failed_text) == events.size() - 1, r.err); // completed, last
        }
    }
    BOOST_TEST_MESSAGE("the longest line of the CLI's stderr: " << longest << " bytes");
}

// The same answers in process, to describe(const event&) itself: its promises (one
// line, never a secret) hold without the CLI's escaping.
BOOST_FIXTURE_TEST_CASE(describe_of_each_event_is_one_clean_line_under_hostile_server_text, hostile_server_fixture)
{
    auto tls = cartesia::make_tls_context(server.ca_file());
    cartesia::client_config config;
    config.api_key = key;
    config.base_url = server.base_url();
    config.proxy = proxy_url();
    config.max_retries = 1;
    config.timeout = std::chrono::seconds(5);
    auto described = std::make_shared<std::vector<std::string>>();
    config.on_event = [described](const cartesia::event& e) { described->push_back(cartesia::describe(e)); };
    const std::string secrets[] = {key, proxy_password};
    std::size_t longest = 0;
    for (std::size_t i = 0; i < answers.size(); ++i) {
        current = i;
        described->clear();
        BOOST_TEST_CONTEXT("answer " << i << ": " << answers[i].what)
        {
            boost::asio::io_context io;
            cartesia::diagnostics diag;
            boost::system::error_code result;
            bool done = false;
            cartesia::async_generate_token(io, tls, config, cartesia::token_request{}, diag,
                                           [&](boost::system::error_code ec, const cartesia::token_response&) {
                                               result = ec;
                                               done = true;
                                           });
            io.run();
            BOOST_TEST_REQUIRE(done);
            BOOST_TEST(result.failed());
            BOOST_TEST(described->size() >= 4u);
            for (const auto& line : *described) {
                BOOST_TEST(is_plain_line(line), "a control character in: " << line);
                for (const auto& secret : secrets)
                    BOOST_TEST(line.find(secret) == std::string::npos, "'" << secret << "' appears in: " << line);
                longest = std::max(longest, line.size());
            }
            // describe(ec, diag), the failure's line: one line, never the key, nor
            // the proxy's password (the diagnostics are cleaned of it at completion).
            const std::string failure = cartesia::describe(result, diag);
            BOOST_TEST(is_plain_line(failure), "a control character in: " << failure);
            BOOST_TEST(failure.find(key) == std::string::npos, failure);
            BOOST_TEST(failure.find(proxy_password) == std::string::npos, failure);
        }
    }
    BOOST_TEST_MESSAGE("the longest describe() line: " << longest << " bytes");
}

BOOST_AUTO_TEST_SUITE_END()
