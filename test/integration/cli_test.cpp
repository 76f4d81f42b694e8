// The cartesia-token command line: output, error lines and exit codes.
#include <support/test_server.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

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
