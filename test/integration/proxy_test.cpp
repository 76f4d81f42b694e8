// HTTP CONNECT proxies, against a real squid started by each test: the one-shot
// function, the pool and the CLI through the tunnel, Basic credentials, no_proxy,
// certificate checks inside the tunnel, and a proxy that is down or silent.
#include "fixture.hpp"

#include <support/squid.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::error;
using cartesia::test::mint;
using cartesia::test::server_fixture;
using cartesia::test::squid_options;
using cartesia::test::squid_proxy;
using namespace std::chrono_literals;

namespace {

// squid logs a CONNECT when its tunnel closes: how long a test waits for the line.
constexpr auto log_wait = 10s;

// The user and the password that needs percent-encoding in a URL.
const std::string proxy_user = "tester";
const std::string proxy_password = "p@ss:w/rd%";
const std::string encoded_password = "p%40ss%3Aw%2Frd%25";
const std::string wrong_password = "wr0ng:p@ss%";
const std::string encoded_wrong_password = "wr0ng%3Ap%40ss%25";

squid_options with_credentials()
{
    squid_options options;
    options.user = proxy_user;
    options.password = proxy_password;
    return options;
}

std::string url_with_password(const squid_proxy& proxy, const std::string& encoded)
{
    return "http://" + proxy_user + ":" + encoded + "@" + proxy.address();
}

std::string basic_value(const std::string& user, const std::string& password)
{
    namespace base64 = boost::beast::detail::base64;
    const std::string plain = user + ":" + password;
    std::string encoded(base64::encoded_size(plain.size()), '\0');
    encoded.resize(base64::encode(encoded.data(), plain.data(), plain.size()));
    return "Basic " + encoded;
}

// Every form of the secret that must never be shown.
std::vector<std::string> secret_forms(const std::string& password, const std::string& encoded)
{
    const std::string basic = basic_value(proxy_user, password);
    return {password, encoded, basic, basic.substr(6)};
}

void check_nothing_shows(const std::string& text, const std::vector<std::string>& secrets)
{
    for (const auto& secret : secrets)
        BOOST_TEST(text.find(secret) == std::string::npos, "'" << secret << "' appears in: " << text);
}

// A loopback port that nothing listens on (picked by the kernel, then closed).
unsigned short closed_port()
{
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
}

struct proxy_fixture : server_fixture {
    explicit proxy_fixture(cartesia::test::server_options options = {}, const squid_options& proxy_options = {})
        : server_fixture(std::move(options)), proxy(proxy_options)
    {
        config.proxy = proxy.url();
    }
    // The API's authority as the CONNECT line and the messages name it.
    std::string api_authority() const { return "localhost:" + std::to_string(server.port()); }

    squid_proxy proxy;
};

struct authenticating_proxy_fixture : proxy_fixture {
    authenticating_proxy_fixture() : proxy_fixture({}, with_credentials()) {}
};

// The CLI, run as integration_cli runs it, with no proxy variable of the caller's.
struct run_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

run_result run_cli(const std::string& env, const std::string& args)
{
    const std::string err_file = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                                 "/cartesia-proxy-test-" + std::to_string(::getpid()) + ".err";
    const std::string command = "env -u CARTESIA_API_KEY -u CARTESIA_BASE_URL -u https_proxy -u HTTPS_PROXY "
                                "-u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY " +
                                env + " " CARTESIA_TOKEN_EXE " " + args + " 2>" + err_file;
    run_result result;
    FILE* pipe = ::popen(command.c_str(), "r");
    BOOST_REQUIRE(pipe);
    char chunk[4096];
    while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
        result.out.append(chunk, n);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    std::stringstream content;
    content << in.rdbuf();
    result.err = content.str();
    std::remove(err_file.c_str());
    return result;
}

std::string quoted(const std::string& word)
{
    return "'" + word + "'";
}

} // namespace

BOOST_AUTO_TEST_SUITE(proxy)

BOOST_FIXTURE_TEST_CASE(the_one_shot_function_gets_a_token_through_the_tunnel, proxy_fixture)
{
    const auto r = mint(*this, config);
    BOOST_TEST(!r.ec, cartesia::describe(r.ec, r.diag));
    BOOST_TEST(!r.response.token.empty());
    BOOST_TEST(server.connections_accepted() == 1u);
    BOOST_TEST(proxy.wait_for_connects_logged(1, log_wait) == 1u);
    const auto lines = proxy.access_log_lines();
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].find("CONNECT " + api_authority()) != std::string::npos, lines[0]);
    BOOST_TEST_MESSAGE("a token through squid in " << r.elapsed_ms << " ms");
}

BOOST_FIXTURE_TEST_CASE(the_pool_keeps_one_tunnel_for_several_tokens, proxy_fixture)
{
    cartesia::client client(io.get_executor(), tls, config);
    BOOST_TEST(cartesia::test::mint_in_sequence(client, io, 5) == 5);
    BOOST_TEST(server.connections_accepted() == 1u);
    BOOST_TEST(server.requests_received() == 5u);
    BOOST_TEST(proxy.wait_for_connects_logged(1, log_wait) == 1u);
}

BOOST_FIXTURE_TEST_CASE(tls_sessions_resume_through_tunnels, proxy_fixture)
{
    // The server closes every connection after its response: each token takes a
    // new tunnel, and all but the first resume the first's TLS session.
    cartesia::client client(io.get_executor(), tls, config_with_fault("eof-delimited"));
    BOOST_TEST(cartesia::test::mint_in_sequence(client, io, 3) == 3);
    BOOST_TEST(server.connections_accepted() == 3u);
    BOOST_TEST(server.resumed_handshakes() == 2u);
    BOOST_TEST(proxy.wait_for_connects_logged(3, log_wait) == 3u);
}

BOOST_FIXTURE_TEST_CASE(basic_credentials_with_a_percent_encoded_password, authenticating_proxy_fixture)
{
    config.proxy = url_with_password(proxy, encoded_password);
    const auto r = mint(*this, config);
    BOOST_TEST(!r.ec, cartesia::describe(r.ec, r.diag));
    BOOST_TEST(proxy.wait_for_connects_logged(1, log_wait) == 1u);
    const auto lines = proxy.access_log_lines();
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].find(" " + proxy_user + " ") != std::string::npos, lines[0]); // squid names the user
}

BOOST_FIXTURE_TEST_CASE(a_wrong_password_is_a_407_that_never_shows_the_password, authenticating_proxy_fixture)
{
    config.proxy = url_with_password(proxy, encoded_wrong_password);
    config.max_retries = 2; // to see that a refusal is not retried
    const auto secrets = secret_forms(wrong_password, encoded_wrong_password);

    const auto r = mint(*this, config);
    BOOST_TEST(r.ec == error::proxy_auth_required, r.ec.message());
    BOOST_TEST(r.diag.http_status() == 407u);
    BOOST_TEST(r.diag.attempts() == 1u, cartesia::describe(r.ec, r.diag));
    const std::string message(r.diag.client_message());
    BOOST_TEST(message.find("the proxy " + proxy.address() + " refused CONNECT to " + api_authority() + ": 407") == 0u,
               message);
    BOOST_TEST(server.connections_accepted() == 0u);
    for (const std::string& text : {message, std::string(r.diag.server_message()), std::string(r.diag.server_title()),
                                    cartesia::describe(r.ec, r.diag)})
        check_nothing_shows(text, secrets);

    // The pool's openings tell the request the same story.
    cartesia::client client(io.get_executor(), tls, config);
    cartesia::diagnostics pooled_diag;
    error_code pooled_ec;
    client.async_generate_token({}, pooled_diag, [&](error_code ec, const cartesia::token_response&) {
        pooled_ec = ec;
        client.close();
    });
    io.run();
    BOOST_TEST(pooled_ec == error::proxy_auth_required, pooled_ec.message());
    BOOST_TEST(pooled_diag.http_status() == 407u);
    check_nothing_shows(cartesia::describe(pooled_ec, pooled_diag), secrets);

    const auto cli =
        run_cli("CARTESIA_API_KEY=" + server.api_key(), "--base-url " + server.base_url() + " --ca-file " +
                                                            server.ca_file() + " --proxy " + quoted(config.proxy));
    BOOST_TEST(cli.exit_code == 1);
    BOOST_TEST(cli.err.find("407") != std::string::npos, cli.err);
    check_nothing_shows(cli.err, secrets);
    check_nothing_shows(cli.out, secrets);
}

BOOST_FIXTURE_TEST_CASE(no_proxy_naming_the_api_host_goes_direct, proxy_fixture)
{
    auto direct = config;
    direct.no_proxy = "example.com, LOCALHOST";
    const auto r = mint(*this, direct);
    BOOST_TEST(!r.ec, cartesia::describe(r.ec, r.diag));
    // squid logs in the order tunnels close: once a later token's CONNECT is there,
    // a CONNECT for the first would have been too.
    const auto sentinel = mint(*this, config);
    BOOST_TEST(!sentinel.ec, cartesia::describe(sentinel.ec, sentinel.diag));
    BOOST_TEST(proxy.wait_for_connects_logged(1, log_wait) == 1u);
    BOOST_TEST(proxy.connects_logged() == 1u);
    BOOST_TEST(server.connections_accepted() == 2u);
}

namespace {
cartesia::test::server_options certificate_for_another_name()
{
    cartesia::test::server_options options;
    options.certificate.subject_alt_names = {"DNS:elsewhere.example"};
    return options;
}
struct wrong_certificate_fixture : proxy_fixture {
    wrong_certificate_fixture() : proxy_fixture(certificate_for_another_name()) {}
};
} // namespace

BOOST_FIXTURE_TEST_CASE(a_certificate_for_another_name_fails_in_the_tunnel_as_it_does_directly,
                        wrong_certificate_fixture)
{
    auto direct_config = config;
    direct_config.proxy.clear();
    const auto direct = mint(*this, direct_config);
    const auto tunnelled = mint(*this, config);
    BOOST_TEST(direct.ec);
    BOOST_TEST(tunnelled.ec == direct.ec, tunnelled.ec.message() << " vs " << direct.ec.message());
    BOOST_TEST(tunnelled.diag.client_message() == direct.diag.client_message());
    BOOST_TEST(std::string(tunnelled.diag.client_message()).find("certificate verification failed") !=
                   std::string::npos,
               tunnelled.diag.client_message());
    BOOST_TEST(server.requests_received() == 0u);
    BOOST_TEST(proxy.wait_for_connects_logged(1, log_wait) == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_proxy_that_is_down_fails_fast_naming_the_proxy, server_fixture)
{
    const std::string address = "127.0.0.1:" + std::to_string(closed_port());
    config.proxy = "http://" + proxy_user + ":" + encoded_password + "@" + address;
    const auto r = mint(*this, config);
    BOOST_TEST(r.ec == asio::error::connection_refused, r.ec.message());
    BOOST_TEST(std::string(r.diag.client_message()).find("connect to the proxy " + address) != std::string::npos,
               r.diag.client_message());
    BOOST_TEST(r.elapsed_ms < 1000);
    check_nothing_shows(cartesia::describe(r.ec, r.diag), secret_forms(proxy_password, encoded_password));
    BOOST_TEST(server.connections_accepted() == 0u);
    BOOST_TEST_MESSAGE("a refused proxy fails in " << r.elapsed_ms << " ms");
}

BOOST_FIXTURE_TEST_CASE(a_silent_proxy_is_bounded_by_connect_timeout_and_by_the_deadline, server_fixture)
{
    // A listener that never accepts: the kernel completes the TCP handshake, the
    // CONNECT is written, and no answer ever comes.
    asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
    config.proxy = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port());

    config.connect_timeout = 200ms;
    auto r = mint(*this, config);
    BOOST_TEST(r.ec == asio::error::timed_out, r.ec.message());
    BOOST_TEST(std::string(r.diag.client_message()).find("did not answer CONNECT within 200 ms") != std::string::npos,
               r.diag.client_message());
    BOOST_TEST(r.elapsed_ms < 2000);
    BOOST_TEST_MESSAGE("connect_timeout 200 ms: the CONNECT failed in " << r.elapsed_ms << " ms");

    // The attempt's deadline aborts a pending CONNECT as it aborts any step.
    config.connect_timeout = 10s;
    config.timeout = 300ms;
    r = mint(*this, config);
    BOOST_TEST(r.ec == error::timeout, r.ec.message());
    BOOST_TEST(r.elapsed_ms < 2000);
    BOOST_TEST_MESSAGE("timeout 300 ms: the CONNECT was aborted in " << r.elapsed_ms << " ms");
}

BOOST_AUTO_TEST_SUITE(cli)

BOOST_FIXTURE_TEST_CASE(the_cli_tunnels_with_the_proxy_flag_and_with_https_proxy, proxy_fixture)
{
    const std::string key_env = "CARTESIA_API_KEY=" + server.api_key();
    const std::string target = "--base-url " + server.base_url() + " --ca-file " + server.ca_file();

    auto r = run_cli(key_env, target + " --proxy " + proxy.url());
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '.') == 2, r.out);
    BOOST_TEST(proxy.wait_for_connects_logged(1, log_wait) == 1u);

    r = run_cli(key_env + " HTTPS_PROXY=" + proxy.url(), target);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(proxy.wait_for_connects_logged(2, log_wait) == 2u);

    // --noproxy and NO_PROXY override the proxy for the API's host.
    r = run_cli(key_env + " HTTPS_PROXY=" + proxy.url(), target + " --noproxy localhost");
    BOOST_TEST(r.exit_code == 0, r.err);
    r = run_cli(key_env + " HTTPS_PROXY=" + proxy.url() + " NO_PROXY=localhost", target);
    BOOST_TEST(r.exit_code == 0, r.err);
    // An empty --proxy connects directly, whatever the environment says.
    r = run_cli(key_env + " HTTPS_PROXY=" + proxy.url(), target + " --proxy ''");
    BOOST_TEST(r.exit_code == 0, r.err);
    r = run_cli(key_env, target + " --proxy " + proxy.url()); // the sentinel: the next CONNECT is this one
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(proxy.wait_for_connects_logged(3, log_wait) == 3u);
    BOOST_TEST(proxy.connects_logged() == 3u);
    BOOST_TEST(server.connections_accepted() == 6u);
}

BOOST_AUTO_TEST_CASE(bad_network_flags_exit_2_before_any_connection)
{
    cartesia::test::test_server server;
    const std::string key_env = "CARTESIA_API_KEY=" + server.api_key();
    const std::string target = "--base-url " + server.base_url() + " --ca-file " + server.ca_file();
    for (const char* flags : {"--proxy https://127.0.0.1:3128", "--proxy 'http://127.0.0.1:99999'",
                              "--resolve localhost:443", "--resolve 'localhost:443:not-an-address'",
                              "--connect-timeout-ms fast", "--connect-timeout-ms 0", "--proxy"}) {
        const auto r = run_cli(key_env, target + " " + flags);
        BOOST_TEST(r.exit_code == 2, flags << ": " << r.err);
        BOOST_TEST(!r.err.empty(), flags);
        BOOST_TEST(r.out.empty(), flags << ": " << r.out);
    }
    // A bad proxy URL from the environment too, and its password is not quoted.
    const auto r = run_cli(key_env + " HTTPS_PROXY='http://u:s3cret@127.0.0.1:0'", target);
    BOOST_TEST(r.exit_code == 2, r.err);
    BOOST_TEST(r.err.find("s3cret") == std::string::npos, r.err);
    BOOST_TEST(server.connections_accepted() == 0u);
}

BOOST_AUTO_TEST_CASE(help_lists_the_network_flags_and_the_environment)
{
    const auto r = run_cli("", "--help");
    BOOST_TEST(r.exit_code == 0);
    for (const char* word :
         {"--proxy URL", "--noproxy LIST", "--resolve HOST:PORT:ADDR", "--connect-timeout-ms N", "CARTESIA_API_KEY",
          "CARTESIA_BASE_URL", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "NO_PROXY", "no_proxy"})
        BOOST_TEST(r.out.find(word) != std::string::npos, word);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END()
