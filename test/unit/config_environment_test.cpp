// config_from_environment() and operator<<(ostream, client_config): what is read
// from where, in which order, and that printing never shows a secret.
#include <cartesia/types.hpp>

#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

namespace {

using namespace std::chrono_literals;

// Every variable config_from_environment() reads, and one it must not.
constexpr std::array<const char*, 11> variables{
    "CARTESIA_API_KEY", "CARTESIA_BASE_URL", "https_proxy", "HTTPS_PROXY", "all_proxy",      "ALL_PROXY",
    "no_proxy",         "NO_PROXY",          "http_proxy",  "HTTP_PROXY",  "CARTESIA_PROXY",
};

// Clears those variables for one test and puts the process's values back after it,
// so that the machine's own proxy settings neither leak in nor get lost.
struct clean_environment {
    std::array<std::optional<std::string>, variables.size()> saved;

    clean_environment()
    {
        for (std::size_t i = 0; i < variables.size(); ++i) {
            if (const char* value = std::getenv(variables[i]))
                saved[i] = value;
            ::unsetenv(variables[i]);
        }
    }
    ~clean_environment()
    {
        for (std::size_t i = 0; i < variables.size(); ++i) {
            if (saved[i])
                ::setenv(variables[i], saved[i]->c_str(), 1);
            else
                ::unsetenv(variables[i]);
        }
    }
    clean_environment(const clean_environment&) = delete;
    clean_environment& operator=(const clean_environment&) = delete;

    static void set(const char* name, const char* value) { BOOST_REQUIRE(::setenv(name, value, 1) == 0); }
};

std::string printed(const cartesia::client_config& config)
{
    std::ostringstream out;
    out << config;
    return out.str();
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(environment, clean_environment)

BOOST_AUTO_TEST_CASE(nothing_set_gives_the_defaults)
{
    const auto config = cartesia::config_from_environment();
    const cartesia::client_config defaults;
    BOOST_TEST(config.api_key.empty());
    BOOST_TEST(config.base_url == defaults.base_url);
    BOOST_TEST(config.proxy.empty());
    BOOST_TEST(config.no_proxy.empty());
    BOOST_TEST(config.resolve.empty());
    BOOST_TEST(config.timeout.count() == defaults.timeout.count());
    BOOST_TEST(config.connect_timeout.count() == 10000);
    BOOST_TEST(config.connection_attempt_delay.count() == 250);
}

BOOST_AUTO_TEST_CASE(the_key_and_the_base_url)
{
    set("CARTESIA_API_KEY", "sk_car_from_the_environment");
    set("CARTESIA_BASE_URL", "https://127.0.0.1:9443/v1");
    const auto config = cartesia::config_from_environment();
    BOOST_TEST(config.api_key == "sk_car_from_the_environment");
    BOOST_TEST(config.base_url == "https://127.0.0.1:9443/v1");
}

BOOST_AUTO_TEST_CASE(an_empty_variable_counts_as_unset)
{
    set("CARTESIA_BASE_URL", "");
    set("https_proxy", "");
    set("HTTPS_PROXY", "http://upper.example:3128");
    set("no_proxy", "");
    set("NO_PROXY", "upper.example");
    const auto config = cartesia::config_from_environment();
    BOOST_TEST(config.base_url == cartesia::client_config{}.base_url);
    BOOST_TEST(config.proxy == "http://upper.example:3128");
    BOOST_TEST(config.no_proxy == "upper.example");
}

// curl's order for an https:// URL: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY;
// the lowercase name wins over the uppercase one (curl's manual: "The lower case
// version has precedence").
BOOST_AUTO_TEST_CASE(proxy_precedence_follows_curl)
{
    set("ALL_PROXY", "http://all-upper:1");
    BOOST_TEST(cartesia::config_from_environment().proxy == "http://all-upper:1");
    set("all_proxy", "http://all-lower:2");
    BOOST_TEST(cartesia::config_from_environment().proxy == "http://all-lower:2");
    set("HTTPS_PROXY", "http://https-upper:3");
    BOOST_TEST(cartesia::config_from_environment().proxy == "http://https-upper:3");
    set("https_proxy", "http://https-lower:4");
    BOOST_TEST(cartesia::config_from_environment().proxy == "http://https-lower:4");
}

BOOST_AUTO_TEST_CASE(the_https_variables_win_over_all_proxy_in_either_case)
{
    set("all_proxy", "http://all-lower:2");
    set("HTTPS_PROXY", "http://https-upper:3");
    BOOST_TEST(cartesia::config_from_environment().proxy == "http://https-upper:3");
}

BOOST_AUTO_TEST_CASE(http_proxy_is_not_read_the_api_is_https)
{
    set("http_proxy", "http://plain:1");
    set("HTTP_PROXY", "http://plain-upper:2");
    set("CARTESIA_PROXY", "http://made-up:3");
    BOOST_TEST(cartesia::config_from_environment().proxy.empty());
}

BOOST_AUTO_TEST_CASE(no_proxy_precedence_follows_curl)
{
    set("NO_PROXY", "upper.example");
    BOOST_TEST(cartesia::config_from_environment().no_proxy == "upper.example");
    set("no_proxy", "lower.example, 10.0.0.0/8");
    BOOST_TEST(cartesia::config_from_environment().no_proxy == "lower.example, 10.0.0.0/8");
}

BOOST_AUTO_TEST_CASE(values_are_taken_as_they_are_and_checked_later)
{
    set("HTTPS_PROXY", "not a url");
    set("CARTESIA_API_KEY", "short");
    const auto config = cartesia::config_from_environment();
    BOOST_TEST(config.proxy == "not a url");
    BOOST_TEST(config.api_key == "short");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(printing)

BOOST_AUTO_TEST_CASE(every_field_is_printed)
{
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789secretpart";
    config.proxy = "http://proxy.corp:3128";
    config.no_proxy = "localhost,.internal";
    config.resolve = {"api.cartesia.ai:443:127.0.0.1", "[::1]:9000:[::1]"};
    config.connect_timeout = 1500ms;
    config.connection_attempt_delay = 100ms;
    const std::string text = printed(config);
    BOOST_TEST(text ==
               "{api_key: sk_car_…, base_url: https://api.cartesia.ai, api_version: 2026-03-01, timeout: 60000 ms, "
               "max_retries: 2, user_agent_suffix: , max_header_bytes: 16384, max_body_bytes: 65536, "
               "max_connections: 16, idle_timeout: 30000 ms, proxy: http://proxy.corp:3128, "
               "no_proxy: localhost,.internal, resolve: [api.cartesia.ai:443:127.0.0.1, [::1]:9000:[::1]], "
               "connect_timeout: 1500 ms, connection_attempt_delay: 100 ms, min_connections: 0, total_timeout: none, "
               "retry_budget_ratio: 0.2, retry_budget_min_per_second: 10}");
}

BOOST_AUTO_TEST_CASE(the_proxy_credentials_are_redacted)
{
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789secretpart";
    config.proxy = "http://alice:p%40ss-S3cret@proxy.corp:3128";
    const std::string text = printed(config);
    BOOST_TEST(text.find("proxy: http://…@proxy.corp:3128,") != std::string::npos, text);
    BOOST_TEST(text.find("S3cret") == std::string::npos, text);
    BOOST_TEST(text.find("p%40ss") == std::string::npos, text);
    BOOST_TEST(text.find("0123456789") == std::string::npos, text);
}

// validate() refuses user info in base_url, but a log line may print the
// configuration before that (and CARTESIA_BASE_URL comes from the environment).
BOOST_AUTO_TEST_CASE(credentials_in_the_base_url_are_redacted_too)
{
    cartesia::client_config config;
    config.base_url = "https://alice:S3cret@api.cartesia.ai/v1";
    const std::string text = printed(config);
    BOOST_TEST(text.find("base_url: https://…@api.cartesia.ai/v1,") != std::string::npos, text);
    BOOST_TEST(text.find("S3cret") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(an_invalid_proxy_url_loses_its_password_too)
{
    for (const char* proxy :
         {"http://alice:p@ss-S3cret@proxy.corp", "alice:S3cret@proxy.corp:3128", "http://alice:pa/S3cret@proxy.corp",
          "alice:pa://S3cret@proxy.corp", "socks5://alice:S3cret@proxy.corp", "http://:S3cret@proxy.corp",
          "http://S3cret@proxy.corp"}) {
        BOOST_TEST_CONTEXT(proxy)
        {
            cartesia::client_config config;
            config.proxy = proxy;
            const std::string text = printed(config);
            BOOST_TEST(text.find("S3cret") == std::string::npos, text);
            BOOST_TEST(text.find("@proxy.corp") != std::string::npos, text);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_empty_key_and_proxy)
{
    const std::string text = printed(cartesia::client_config{});
    BOOST_TEST(text.starts_with("{api_key: (empty), "), text);
    BOOST_TEST(text.find(", proxy: , no_proxy: , resolve: [], ") != std::string::npos, text);
}

BOOST_AUTO_TEST_SUITE_END()
