// The sans-io protocol: validation, request bytes, response interpretation, retry rules.
#include "protocol.hpp"
#include "retry_policy.hpp"
#include <cartesia/error.hpp>
#include <cartesia/version.hpp>
#include <support/printing.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>
#include <vector>

namespace cd = cartesia::detail;
using cartesia::error;
using namespace std::chrono_literals;

namespace {

cartesia::client_config valid_config()
{
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789abcdef";
    return config;
}

// Validates and returns the error; the client message goes to `message`.
boost::system::error_code check(const cartesia::client_config& config, const cartesia::token_request& request,
                                std::string* message = nullptr, cd::endpoint* where = nullptr)
{
    cd::endpoint local;
    cartesia::diagnostics diag;
    auto ec = cd::validate(config, request, where ? *where : local, diag);
    if (message)
        *message = std::string(diag.client_message());
    return ec;
}

} // namespace

BOOST_AUTO_TEST_SUITE(validation)

BOOST_AUTO_TEST_CASE(default_config_is_valid_and_targets_the_real_api)
{
    cd::endpoint where;
    BOOST_TEST(!check(valid_config(), {}, nullptr, &where));
    BOOST_TEST(where.host == "api.cartesia.ai");
    BOOST_TEST(where.port == "443");
    BOOST_TEST(where.host_header == "api.cartesia.ai");
    BOOST_TEST(where.target == "/access-token");
    BOOST_TEST(!where.host_is_ip);
}

BOOST_AUTO_TEST_CASE(base_url_prefix_port_and_ip_literals)
{
    struct case_t {
        std::string url, host, port, host_header, target;
        bool is_ip;
    };
    const std::vector<case_t> cases{
        {"https://proxy.example:8443/v1", "proxy.example", "8443", "proxy.example:8443", "/v1/access-token", false},
        {"https://proxy.example/v1/", "proxy.example", "443", "proxy.example", "/v1/access-token", false},
        {"https://proxy.example/", "proxy.example", "443", "proxy.example", "/access-token", false},
        {"HTTPS://Proxy.Example", "Proxy.Example", "443", "Proxy.Example", "/access-token", false},
        {"https://127.0.0.1:9000", "127.0.0.1", "9000", "127.0.0.1:9000", "/access-token", true},
        {"https://[::1]:9000/fault/hang", "::1", "9000", "[::1]:9000", "/fault/hang/access-token", true},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.url)
        {
            auto config = valid_config();
            config.base_url = c.url;
            cd::endpoint where;
            BOOST_TEST(!check(config, {}, nullptr, &where));
            BOOST_TEST(where.host == c.host);
            BOOST_TEST(where.port == c.port);
            BOOST_TEST(where.host_header == c.host_header);
            BOOST_TEST(where.target == c.target);
            BOOST_TEST(where.host_is_ip == c.is_ip);
        }
    }
}

namespace {
// Each URL is an invalid_argument whose message starts with `message_start`.
void expect_invalid_base_urls(std::initializer_list<const char*> urls, std::string_view message_start)
{
    for (const char* url : urls) {
        BOOST_TEST_CONTEXT(url)
        {
            auto config = valid_config();
            config.base_url = url;
            std::string message;
            BOOST_TEST(check(config, {}, &message) == error::invalid_argument);
            BOOST_TEST(message.starts_with(message_start), message);
        }
    }
}
} // namespace

BOOST_AUTO_TEST_CASE(bad_base_urls_are_invalid_arguments_naming_the_field)
{
    expect_invalid_base_urls({"", "api.cartesia.ai", "http://api.cartesia.ai", "ftp://x", "https://", "https:///path",
                              "https://user:pw@api.cartesia.ai", "https://api.cartesia.ai?x=1",
                              "https://api.cartesia.ai#frag", "https://api.cartesia.ai:0", "https://bad host",
                              "https://a_b.example", "https://[::1"},
                             "client_config::base_url");
}

// Found by fuzz_base_url: Boost.URL 1.81 ends an authority early, reading
// "https://host:8x" as port 8 and path "x" (the request line became
// "POST x/access-token") and "https://10.0.0.1.nip.io" as host 10.0.0.1; and its
// port_number() wraps some ports ("https://127.0.0.1:100443" connected to port 34907).
BOOST_AUTO_TEST_CASE(misread_hosts_and_ports_are_invalid)
{
    expect_invalid_base_urls({"https://localhost:8s443", "https://h:8x", "https://[::1]:8s/",
                              "https://127.0.0.1:1a/v1/", "https://10.0.0.1.nip.io", "https://1.7.0.0.1:100443",
                              "https://1.2.3.4./", "https://127.0.0.1:100443", "https://h:65536", "https://h:0000",
                              "https://h:"},
                             "client_config::base_url has an invalid ");
    auto config = valid_config();
    config.base_url = "https://localhost:065535/v1";
    cd::endpoint where;
    BOOST_TEST(!check(config, {}, nullptr, &where));
    BOOST_TEST(where.port == "065535");
    BOOST_TEST(where.target == "/v1/access-token");
}

BOOST_AUTO_TEST_CASE(bad_keys_are_rejected_without_echoing_them)
{
    for (const std::string& key : {std::string(), std::string("sk_car_abc\r\nX-Injected: 1"),
                                   std::string("sk_car_a\nb"), std::string("sk_car_ tab"), std::string("sk_car_\x7f"),
                                   std::string("sk_car_\0x", 9), std::string(600, 'k')}) {
        auto config = valid_config();
        config.api_key = key;
        std::string message;
        BOOST_TEST(check(config, {}, &message) == error::invalid_argument);
        BOOST_TEST(message.find("client_config::api_key") != std::string::npos);
        if (!key.empty())
            BOOST_TEST(message.find(key) == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(expires_in_must_be_1_to_3600)
{
    for (long long seconds : {1LL, 60LL, 3600LL}) {
        cartesia::token_request request;
        request.expires_in = std::chrono::seconds(seconds);
        BOOST_TEST(!check(valid_config(), request));
    }
    for (long long seconds : {0LL, -1LL, 3601LL, 1LL << 40}) {
        cartesia::token_request request;
        request.expires_in = std::chrono::seconds(seconds);
        std::string message;
        BOOST_TEST(check(valid_config(), request, &message) == error::invalid_argument);
        BOOST_TEST(message.find("token_request::expires_in") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(other_fields)
{
    auto expect_invalid = [](const cartesia::client_config& config, const std::string& field) {
        std::string message;
        BOOST_TEST(check(config, {}, &message) == error::invalid_argument);
        BOOST_TEST(message.find(field) != std::string::npos, message);
    };
    for (std::string version : {"", "2026-3-01", "2026-13-01", "2026-03-32", "20260301", "latest", "2026-03-01\r\n"}) {
        auto config = valid_config();
        config.api_version = version;
        expect_invalid(config, "client_config::api_version");
    }
    auto config = valid_config();
    config.timeout = 0ms;
    expect_invalid(config, "client_config::timeout");
    config = valid_config();
    config.max_retries = -1;
    expect_invalid(config, "client_config::max_retries");
    config.max_retries = 11;
    expect_invalid(config, "client_config::max_retries");
    config = valid_config();
    config.user_agent_suffix = "app\r\nX: y";
    expect_invalid(config, "client_config::user_agent_suffix");
    config = valid_config();
    config.max_body_bytes = 0;
    expect_invalid(config, "max_body_bytes");
    config = valid_config();
    config.max_connections = 4;
    config.min_connections = 5;
    expect_invalid(config, "client_config::min_connections");
    config.min_connections = 4;
    BOOST_TEST(!check(config, {}));
    config = valid_config();
    config.total_timeout = 0ms;
    expect_invalid(config, "client_config::total_timeout");
    config.total_timeout = 1ms;
    BOOST_TEST(!check(config, {}));
    for (double ratio :
         {-0.1, 1.01, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        config = valid_config();
        config.retry_budget_ratio = ratio;
        expect_invalid(config, "client_config::retry_budget_ratio");
    }
    for (double ratio : {0.0, 0.2, 1.0}) {
        config = valid_config();
        config.retry_budget_ratio = ratio;
        BOOST_TEST(!check(config, {}));
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(request_bytes)

BOOST_AUTO_TEST_CASE(body_holds_only_the_fields_set_for_every_combination)
{
    const std::optional<bool> states[] = {std::nullopt, true, false};
    auto member = [](const char* name, std::optional<bool> v) -> std::string {
        if (!v)
            return {};
        return std::string("\"") + name + "\":" + (*v ? "true" : "false");
    };
    int cases = 0;
    for (bool with_grants : {false, true})
        for (auto tts : states)
            for (auto stt : states)
                for (auto agent : states)
                    for (std::optional<long long> expires :
                         {std::optional<long long>(), std::optional<long long>(60)}) {
                        if (!with_grants && (tts || stt || agent))
                            continue;
                        cartesia::token_request request;
                        if (with_grants)
                            request.grants = cartesia::token_grant{tts, stt, agent};
                        if (expires)
                            request.expires_in = std::chrono::seconds(*expires);

                        std::string grants;
                        for (const auto& part : {member("tts", tts), member("stt", stt), member("agent", agent)})
                            if (!part.empty()) {
                                if (!grants.empty())
                                    grants += ',';
                                grants += part;
                            }
                        std::string expected;
                        if (with_grants)
                            expected += "\"grants\":{" + grants + "}";
                        if (expires) {
                            if (!expected.empty())
                                expected += ',';
                            expected += "\"expires_in\":60";
                        }
                        expected.insert(0, 1, '{').push_back('}');
                        BOOST_TEST(cd::serialize_request_body(request) == expected);
                        ++cases;
                    }
    BOOST_TEST(cases == 2 + 27 * 2);
}

BOOST_AUTO_TEST_CASE(request_head_is_exact)
{
    auto config = valid_config();
    config.base_url = "https://proxy.example:8443/v1";
    config.user_agent_suffix = "my-backend/1.4";
    cartesia::token_request request;
    request.grants = cartesia::token_grant{true, std::nullopt, std::nullopt};
    request.expires_in = 60s;
    cd::endpoint where;
    cartesia::diagnostics diag;
    BOOST_REQUIRE(!cd::validate(config, request, where, diag));
    const std::string body = R"({"grants":{"tts":true},"expires_in":60})";
    const std::string head = "POST /v1/access-token HTTP/1.1\r\n"
                             "Host: proxy.example:8443\r\n"
                             "Authorization: Bearer sk_car_0123456789abcdef\r\n"
                             "Cartesia-Version: 2026-03-01\r\n"
                             "Content-Type: application/json\r\n"
                             "Accept: application/json\r\n"
                             "User-Agent: cartesia-asio/" CARTESIA_ASIO_VERSION_STRING " my-backend/1.4\r\n";
    const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    const std::string tail(cd::serialize_request_tail(request).view());
    BOOST_TEST(cd::serialize_request_head(config, where, true) + tail == head + length + body);
    BOOST_TEST(cd::serialize_request_head(config, where, false) + tail ==
               head + "Connection: close\r\n" + length + body);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(responses)

namespace {
struct interpreted {
    boost::system::error_code ec;
    cartesia::token_response response;
    cartesia::diagnostics diag;
};

interpreted interpret(unsigned status, std::string_view body, std::string_view content_type = "application/json",
                      std::string_view request_id_header = "")
{
    interpreted out;
    cd::response_view view{status, content_type, request_id_header, body};
    out.ec = cd::interpret_response(view, "sk_car_0123456789abcdef", out.response, out.diag);
    return out;
}
} // namespace

BOOST_AUTO_TEST_CASE(token_with_unknown_fields_and_escapes)
{
    auto r = interpret(200, R"({"token":"abc.def.ghi","expires_at":123,"extra":{"a":[1,2]}})");
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.response.token == "abc.def.ghi");
    BOOST_TEST(r.response.raw_json == R"({"token":"abc.def.ghi","expires_at":123,"extra":{"a":[1,2]}})");

    r = interpret(200, R"({"token":"a\/b\u0041\"c"})");
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.response.token == "a/bA\"c");
    BOOST_TEST(r.diag.http_status() == 200u);

    BOOST_TEST(!interpret(201, R"({"token":"t"})").ec);
}

BOOST_AUTO_TEST_CASE(unusable_2xx_bodies_are_bad_responses)
{
    for (std::string body : {"", "not json", "<html><body>hi</body></html>", R"({"token":"abc")", "[]", R"(["token"])",
                             "42", R"("token")", "{}", R"({"Token":"x"})", R"({"token":null})", R"({"token":42})",
                             R"({"token":["x"]})", R"({"token":""})", R"({"token":"x"} trailing)"}) {
        BOOST_TEST_CONTEXT(body)
        {
            auto r = interpret(200, body);
            BOOST_TEST(r.ec == error::bad_response);
            BOOST_TEST(r.response.token.empty());
            BOOST_TEST(!r.diag.client_message().empty());
            BOOST_TEST(r.diag.http_status() == 200u);
        }
    }
    auto html = interpret(200, "<html></html>", "text/html");
    BOOST_TEST(html.diag.client_message().find("text/html") != std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(each_status_maps_to_its_error_with_the_server_text)
{
    const std::pair<unsigned, error> cases[] = {
        {400, error::bad_request},       {401, error::unauthorized},      {403, error::forbidden},
        {404, error::not_found},         {409, error::conflict},          {422, error::unprocessable_entity},
        {429, error::rate_limited},      {500, error::server_error},      {502, error::server_error},
        {503, error::server_error},      {599, error::server_error},      {302, error::unexpected_status},
        {408, error::unexpected_status}, {418, error::unexpected_status},
    };
    for (auto [status, expected] : cases) {
        BOOST_TEST_CONTEXT(status)
        {
            auto r = interpret(status, R"({"error_code":"some_code","title":"Some Title","message":"Some message",)"
                                       R"("request_id":"0b9a3c1e-1111-4222-8333-444455556666","doc_url":"https://x"})");
            BOOST_TEST(r.ec == expected);
            BOOST_TEST(r.diag.http_status() == status);
            BOOST_TEST(r.diag.server_title() == "Some Title");
            BOOST_TEST(r.diag.server_message() == "Some message");
            BOOST_TEST(r.diag.server_error_code() == "some_code");
            BOOST_TEST(r.diag.request_id() == "0b9a3c1e-1111-4222-8333-444455556666");
            BOOST_TEST(r.diag.client_message().empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(error_bodies_plain_text_null_code_header_id_and_scrubbing)
{
    auto plain = interpret(401, "Unauthorized: Invalid API key\n", "text/plain", "req-7");
    BOOST_TEST(plain.ec == error::unauthorized);
    BOOST_TEST(plain.diag.server_message() == "Unauthorized: Invalid API key");
    BOOST_TEST(plain.diag.server_title().empty());
    BOOST_TEST(plain.diag.request_id() == "req-7");

    auto null_code = interpret(403, R"({"error_code":null,"title":"Forbidden","message":"no","request_id":"r1"})");
    BOOST_TEST(null_code.diag.server_error_code().empty());
    BOOST_TEST(null_code.diag.request_id() == "r1");

    auto echo = interpret(401, R"({"title":"Unauthorized","message":"key sk_car_0123456789abcdef is revoked"})");
    BOOST_TEST(echo.diag.server_message() == "key sk_car_... is revoked");

    // A key straddling the 1024-byte bound is scrubbed before the text is cut.
    auto straddling = interpret(401, std::string(1010, 'x') + "sk_car_0123456789abcdef", "text/plain");
    BOOST_TEST(straddling.diag.server_message().find("0123") == std::string_view::npos);
    auto html_with_key = interpret(200, "<html/>", "text/html; sk_car_0123456789abcdef");
    BOOST_TEST(html_with_key.diag.client_message().find("0123456789abcdef") == std::string_view::npos);

    auto huge = interpret(500, std::string(10000, 'x'), "text/plain");
    BOOST_TEST(huge.diag.server_message().size() <= 1024u);

    const std::string line = cartesia::describe(null_code.ec, null_code.diag);
    BOOST_TEST(line == "HTTP 403 Forbidden: no (request id r1)");
}

// Found by fuzz_error_body: a key equal to its replacement (the docs' placeholder
// "sk_car_...") made scrubbing find it again forever in a body that echoed it.
BOOST_AUTO_TEST_CASE(scrubbing_ends_when_the_key_is_the_placeholder)
{
    cartesia::diagnostics diag;
    cd::parse_error_body("Invalid API key: sk_car_... (sk_car_...)", "", "sk_car_...", diag);
    BOOST_TEST(diag.server_message() == "Invalid API key: sk_car_... (sk_car_...)");
    cd::parse_error_body("sk_car_0123456789abcdefsk_car_0123456789abcdef", "", "sk_car_0123456789abcdef", diag);
    BOOST_TEST(diag.server_message() == "sk_car_...sk_car_...");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(retries)

BOOST_AUTO_TEST_CASE(what_is_retried)
{
    auto outcome = [](boost::system::error_code ec, unsigned status = 0, bool started = false) {
        cd::attempt_outcome o;
        o.ec = ec;
        o.status = status;
        o.response_started = started || status != 0;
        return o;
    };
    BOOST_TEST(cd::is_retryable(outcome(boost::asio::error::connection_refused)));
    BOOST_TEST(cd::is_retryable(outcome(boost::asio::error::connection_reset)));
    BOOST_TEST(cd::is_retryable(outcome(boost::asio::ssl::error::stream_truncated)));
    BOOST_TEST(cd::is_retryable(outcome(error::timeout)));
    for (unsigned status : {408u, 409u, 429u, 500u, 503u})
        BOOST_TEST(cd::is_retryable(outcome(cartesia::detail::status_to_error(status), status)));
    for (unsigned status : {400u, 401u, 403u, 404u, 422u})
        BOOST_TEST(!cd::is_retryable(outcome(cartesia::detail::status_to_error(status), status)));
    BOOST_TEST(!cd::is_retryable(outcome({})));
    BOOST_TEST(!cd::is_retryable(outcome(error::invalid_argument)));
    BOOST_TEST(!cd::is_retryable(outcome(error::proxy_error)));
    BOOST_TEST(!cd::is_retryable(outcome(error::proxy_auth_required)));
    BOOST_TEST(!cd::is_retryable(outcome(error::bad_response, 200)));
    BOOST_TEST(!cd::is_retryable(outcome(error::response_too_large, 200)));
    BOOST_TEST(!cd::is_retryable(outcome(boost::asio::error::connection_reset, 0, true)));
    const boost::system::error_code verify_failed(0x0A000086, boost::asio::error::get_ssl_category());
    BOOST_TEST(!cd::is_retryable(outcome(verify_failed)));

    auto overridden = outcome(error::bad_request, 400);
    overridden.should_retry_header = true;
    BOOST_TEST(cd::is_retryable(overridden));
    overridden = outcome(error::server_error, 503);
    overridden.should_retry_header = false;
    BOOST_TEST(!cd::is_retryable(overridden));
}

BOOST_AUTO_TEST_CASE(backoff_is_exponential_capped_and_jittered_down)
{
    BOOST_TEST(cd::retry_delay(0, 0.0, std::nullopt).count() == 500);
    BOOST_TEST(cd::retry_delay(1, 0.0, std::nullopt).count() == 1000);
    BOOST_TEST(cd::retry_delay(4, 0.0, std::nullopt).count() == 8000);
    BOOST_TEST(cd::retry_delay(9, 0.0, std::nullopt).count() == 8000);
    BOOST_TEST(cd::retry_delay(0, 0.999, std::nullopt).count() >= 375);
    BOOST_TEST(cd::retry_delay(0, 0.5, std::nullopt).count() == 437);
    BOOST_TEST(cd::retry_delay(0, 0.5, 1200ms).count() == 1200);
    BOOST_TEST(cd::retry_delay(0, 0.0, 0ms).count() == 0);
    BOOST_TEST(cd::retry_delay(0, 0.0, 61s).count() == 500);  // above 60 s: ignored
    BOOST_TEST(cd::retry_delay(0, 0.0, -5ms).count() == 500); // a date in the past: ignored
}

BOOST_AUTO_TEST_CASE(retry_after_headers)
{
    const auto now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 12h;
    BOOST_TEST(cd::parse_retry_after("250", "", now)->count() == 250);
    BOOST_TEST(cd::parse_retry_after("12.7", "9", now)->count() == 12);
    BOOST_TEST(cd::parse_retry_after("", "3", now)->count() == 3000);
    BOOST_TEST(cd::parse_retry_after("", " 1.5 ", now)->count() == 1500);
    BOOST_TEST(cd::parse_retry_after("", "Sat, 28 Nov 2026 12:00:07 GMT", now)->count() == 7000);
    BOOST_TEST(cd::parse_retry_after("", "Sat, 28 Nov 2026 11:59:00 GMT", now)->count() == -60000);
    BOOST_TEST(!cd::parse_retry_after("", "", now));
    BOOST_TEST(!cd::parse_retry_after("soon", "later", now));
    BOOST_TEST(!cd::parse_retry_after("", "-3", now));
    BOOST_TEST(!cd::parse_retry_after("", "Sat, 28 Foo 2026 12:00:07 GMT", now));
    BOOST_TEST(!cd::parse_retry_after("", "Sat, 31 Feb 2026 12:00:07 GMT", now));
}

// Found by fuzz_retry_after: a date outside 1677..2262 overflowed the clock's
// nanoseconds (undefined behaviour, reported by UBSan; a wrapped value otherwise).
BOOST_AUTO_TEST_CASE(retry_after_dates_of_any_year)
{
    using std::chrono::milliseconds;
    using std::chrono::sys_days;
    using std::chrono::year;
    const auto now = sys_days{year{2026} / 11 / 28} + 12h;
    const auto far = cd::parse_retry_after("", "Fri, 31 Dec 9999 23:59:59 GMT", now);
    BOOST_TEST_REQUIRE(far.has_value());
    BOOST_TEST(far->count() ==
               std::chrono::duration_cast<milliseconds>(sys_days{year{9999} / 12 / 31} + 86399s - now).count());
    const auto ancient = cd::parse_retry_after("", "Sat, 01 Jan 0000 00:00:00 GMT", now);
    BOOST_TEST_REQUIRE(ancient.has_value());
    BOOST_TEST(ancient->count() == std::chrono::duration_cast<milliseconds>(sys_days{year{0} / 1 / 1} - now).count());
    // Out of [0, 60 s]: the backoff decides.
    BOOST_TEST(cd::retry_delay(0, 0.0, far).count() == 500);
    BOOST_TEST(cd::retry_delay(0, 0.0, ancient).count() == 500);
    // The wait is rounded up to the millisecond: it never ends before the date.
    BOOST_TEST(cd::parse_retry_after("", "Sat, 28 Nov 2026 12:00:07 GMT", now + 300us)->count() == 7000);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(keep_alive_header)

BOOST_AUTO_TEST_CASE(timeout_and_max_in_any_order_and_case)
{
    auto hint = cd::parse_keep_alive("timeout=5, max=100");
    BOOST_TEST(hint.timeout.value().count() == 5);
    BOOST_TEST(hint.max.value() == 100u);
    hint = cd::parse_keep_alive("MAX=3,Timeout = 60 ,other=x");
    BOOST_TEST(hint.timeout.value().count() == 60);
    BOOST_TEST(hint.max.value() == 3u);
    hint = cd::parse_keep_alive("timeout=\"7\"");
    BOOST_TEST(hint.timeout.value().count() == 7);
    BOOST_TEST(!hint.max);
    hint = cd::parse_keep_alive("timeout=0");
    BOOST_TEST(hint.timeout.value().count() == 0);
}

BOOST_AUTO_TEST_CASE(malformed_or_absurd_values_are_ignored)
{
    for (const char* header : {"", "timeout", "timeout=", "timeout=-1", "timeout=5s", "timeout=1.5", "timeout=86401",
                               "max=1000001", "timeout=99999999999999999999", "max=0x10", ",,,", "timeout=\"5"}) {
        const auto hint = cd::parse_keep_alive(header);
        BOOST_TEST(!hint.timeout, header);
        BOOST_TEST(!hint.max, header);
    }
    // The first occurrence of a parameter wins, as the first header field does.
    const auto hint = cd::parse_keep_alive("timeout=5, timeout=1, max=2, max=1");
    BOOST_TEST(hint.timeout.value().count() == 5);
    BOOST_TEST(hint.max.value() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
