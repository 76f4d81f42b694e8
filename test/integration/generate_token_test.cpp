// async_generate_token against the local test server: the wire, statuses,
// validation, TLS verification, deadlines, cancellation and retries.
#include "fixture.hpp"

#include "protocol.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::error;
using cartesia::token_response;
using cartesia::test::clock_type;
using cartesia::test::milliseconds_since;
using cartesia::test::mint;
using cartesia::test::outcome;
using cartesia::test::server_fixture;
using namespace std::chrono_literals;

namespace {

cartesia::test::canned_response error_answer(unsigned status)
{
    return {status,
            "application/json",
            R"({"error_code":"code_)" + std::to_string(status) + R"(","title":"Title )" + std::to_string(status) +
                R"(","message":"Message )" + std::to_string(status) + R"(","request_id":"rid-)" +
                std::to_string(status) + R"("})",
            {}};
}

} // namespace

BOOST_AUTO_TEST_SUITE(generate_token)

BOOST_FIXTURE_TEST_CASE(the_request_on_the_wire_for_each_grant_and_lifetime, server_fixture)
{
    const std::optional<bool> states[] = {std::nullopt, true, false};
    std::vector<cartesia::token_request> requests;
    requests.push_back({});
    for (auto tts : states)
        for (auto stt : states)
            for (auto agent : states)
                for (auto expires : {std::optional<std::chrono::seconds>(), std::optional<std::chrono::seconds>(3600s)})
                    requests.push_back({cartesia::token_grant{tts, stt, agent}, expires});
    requests.push_back({std::nullopt, 1s});

    for (const auto& request : requests) {
        auto r = mint(*this, config, request);
        BOOST_TEST(!r.ec, r.ec.message());
    }
    const auto recorded = server.recorded_requests();
    BOOST_TEST_REQUIRE(recorded.size() == requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& seen = recorded[i];
        BOOST_TEST(seen.method == "POST");
        BOOST_TEST(seen.target == "/access-token");
        BOOST_TEST(seen.version == "1.1");
        BOOST_TEST(seen.body == cartesia::detail::serialize_request_body(requests[i]));
        BOOST_TEST(seen.header("host").value_or("") == "localhost:" + std::to_string(server.port()));
        BOOST_TEST(seen.header("authorization").value_or("") == "Bearer " + server.api_key());
        BOOST_TEST(seen.header("cartesia-version").value_or("") == "2026-03-01");
        BOOST_TEST(seen.header("content-type").value_or("") == "application/json");
        BOOST_TEST(seen.header("accept").value_or("") == "application/json");
        BOOST_TEST(seen.header("user-agent").value_or("") == "cartesia-asio/" CARTESIA_ASIO_VERSION_STRING);
        BOOST_TEST(seen.header("content-length").value_or("") == std::to_string(seen.body.size()));
    }
}

BOOST_FIXTURE_TEST_CASE(path_prefix_and_api_version_are_honoured, server_fixture)
{
    auto prefixed = config_with_fault("ok");
    prefixed.api_version = "2025-04-16";
    auto r = mint(*this, prefixed);
    BOOST_TEST(!r.ec);
    BOOST_TEST(server.recorded_requests().at(0).target == "/fault/ok/access-token");
    BOOST_TEST(server.recorded_requests().at(0).header("cartesia-version").value_or("") == "2025-04-16");
}

BOOST_AUTO_TEST_CASE(each_status_maps_to_its_error_with_diagnostics)
{
    const std::pair<unsigned, error> cases[] = {
        {400, error::bad_request},       {401, error::unauthorized}, {403, error::forbidden},
        {404, error::not_found},         {409, error::conflict},     {422, error::unprocessable_entity},
        {429, error::rate_limited},      {500, error::server_error}, {503, error::server_error},
        {418, error::unexpected_status},
    };
    std::atomic<unsigned> status_to_send{0};
    cartesia::test::server_options options;
    options.responder = [&](const cartesia::test::recorded_request&) -> std::optional<cartesia::test::canned_response> {
        return error_answer(status_to_send.load());
    };
    server_fixture f(options);
    for (auto [status, expected] : cases) {
        BOOST_TEST_CONTEXT(status)
        {
            status_to_send = status;
            auto r = mint(f, f.config);
            BOOST_TEST(r.ec == expected);
            BOOST_TEST(r.response.token.empty());
            BOOST_TEST(r.diag.http_status() == status);
            BOOST_TEST(r.diag.server_title() == "Title " + std::to_string(status));
            BOOST_TEST(r.diag.server_message() == "Message " + std::to_string(status));
            BOOST_TEST(r.diag.request_id() == "rid-" + std::to_string(status));
            BOOST_TEST(r.diag.attempts() == 1u);
        }
    }
}

BOOST_FIXTURE_TEST_CASE(real_server_errors_wrong_key_and_plain_text, server_fixture)
{
    auto wrong_key = config;
    wrong_key.api_key = "sk_car_not_the_right_one_42";
    auto r = mint(*this, wrong_key);
    BOOST_TEST(r.ec == error::unauthorized);
    BOOST_TEST(r.diag.http_status() == 401u);
    BOOST_TEST(!r.diag.request_id().empty());
    BOOST_TEST(!r.diag.server_message().empty());
    const std::string line = cartesia::describe(r.ec, r.diag);
    BOOST_TEST(line.find("HTTP 401") == 0u, line);
    BOOST_TEST(line.find("sk_car_not_the_right_one_42") == std::string::npos);

    auto plain = mint(*this, config_with_fault("plain-403"));
    BOOST_TEST(plain.ec == error::forbidden);
    BOOST_TEST(!plain.diag.server_message().empty());

    auto html = mint(*this, config_with_fault("html"));
    BOOST_TEST(html.ec == error::bad_response);
    BOOST_TEST(html.diag.client_message().find("text/html") != std::string_view::npos);
}

BOOST_FIXTURE_TEST_CASE(invalid_input_fails_before_any_connection_and_never_inline, server_fixture)
{
    auto bad_key = config;
    bad_key.api_key = "sk_car_\r\nX-Evil: 1";
    auto bad_url = config;
    bad_url.base_url = "http://localhost:" + std::to_string(server.port());
    auto bad_version = config;
    bad_version.api_version = "yesterday";
    auto https_proxy = config;
    https_proxy.proxy = "https://user:Pr0xyS3cret@127.0.0.1:" + std::to_string(server.port());
    auto bad_resolve = config;
    bad_resolve.resolve = {"localhost:" + std::to_string(server.port()) + ":not-an-address"};
    auto no_connect_time = config;
    no_connect_time.connect_timeout = 0s;
    cartesia::token_request too_long;
    too_long.expires_in = 3601s;

    for (auto [cfg, request] :
         {std::pair{bad_key, cartesia::token_request{}}, std::pair{bad_url, cartesia::token_request{}},
          std::pair{bad_version, cartesia::token_request{}}, std::pair{config, too_long},
          std::pair{https_proxy, cartesia::token_request{}}, std::pair{bad_resolve, cartesia::token_request{}},
          std::pair{no_connect_time, cartesia::token_request{}}}) {
        bool called = false;
        cartesia::diagnostics diag;
        cartesia::async_generate_token(io, tls, cfg, request, diag, [&](error_code ec, const token_response&) {
            BOOST_TEST(ec == error::invalid_argument);
            called = true;
        });
        BOOST_TEST(!called);
        io.run();
        io.restart();
        BOOST_TEST(called);
        BOOST_TEST(!diag.client_message().empty());
        BOOST_TEST(diag.attempts() == 0u);
        BOOST_TEST(std::string(diag.client_message()).find("X-Evil") == std::string::npos);
        BOOST_TEST(std::string(diag.client_message()).find("Pr0xyS3cret") == std::string::npos);
    }
    BOOST_TEST(server.connections_accepted() == 0u);
}

BOOST_AUTO_TEST_CASE(an_untrusted_certificate_fails_verification)
{
    server_fixture f;
    boost::asio::ssl::context system_only = cartesia::make_tls_context(); // does not trust the test CA
    outcome out;
    cartesia::async_generate_token(f.io, system_only, f.config, {}, out.diag,
                                   [&](error_code ec, const token_response&) { out.ec = ec; });
    f.io.run();
    BOOST_TEST((out.ec.category() == asio::error::get_ssl_category()), out.ec.message());
    BOOST_TEST(out.diag.client_message().find("certificate verification failed") != std::string_view::npos,
               out.diag.client_message());
    BOOST_TEST(f.server.requests_received() == 0u);
}

// A verify callback on the caller's context that accepts everything (a common
// debugging leftover) must not switch verification off: each connection drops it.
BOOST_AUTO_TEST_CASE(a_permissive_verify_callback_on_the_context_is_ignored)
{
    server_fixture f;
    boost::asio::ssl::context permissive = cartesia::make_tls_context(); // does not trust the test CA
    permissive.set_verify_callback([](bool, boost::asio::ssl::verify_context&) { return true; });
    outcome out;
    cartesia::async_generate_token(f.io, permissive, f.config, {}, out.diag,
                                   [&](error_code ec, const token_response&) { out.ec = ec; });
    f.io.run();
    BOOST_TEST((out.ec.category() == asio::error::get_ssl_category()), out.ec.message());
    BOOST_TEST(f.server.requests_received() == 0u);

    cartesia::test::server_options options;
    options.certificate.subject_alt_names = {"DNS:wrong.example"};
    server_fixture g(options);
    g.tls.set_verify_callback([](bool, boost::asio::ssl::verify_context&) { return true; });
    auto r = mint(g, g.config);
    BOOST_TEST((r.ec.category() == asio::error::get_ssl_category()), r.ec.message());
    BOOST_TEST(r.diag.client_message().find("hostname mismatch") != std::string_view::npos, r.diag.client_message());
    BOOST_TEST(g.server.requests_received() == 0u);
}

// The context's callback may still reject what OpenSSL accepted (pinning).
BOOST_AUTO_TEST_CASE(a_rejecting_verify_callback_on_the_context_still_rejects)
{
    server_fixture f;
    int calls = 0;
    f.tls.set_verify_callback([&](bool, boost::asio::ssl::verify_context&) {
        ++calls;
        return false;
    });
    auto r = mint(f, f.config);
    BOOST_TEST((r.ec.category() == asio::error::get_ssl_category()), r.ec.message());
    BOOST_TEST(calls > 0);
    BOOST_TEST(f.server.requests_received() == 0u);
}

BOOST_AUTO_TEST_CASE(a_wrong_host_name_fails_verification)
{
    cartesia::test::server_options options;
    options.certificate.subject_alt_names = {"DNS:wrong.example"};
    server_fixture f(options);
    auto r = mint(f, f.config);
    BOOST_TEST((r.ec.category() == asio::error::get_ssl_category()), r.ec.message());
    BOOST_TEST(r.diag.client_message().find("hostname mismatch") != std::string_view::npos, r.diag.client_message());
    BOOST_TEST(f.server.requests_received() == 0u);

    // An IP literal is checked against the IP addresses of the certificate.
    cartesia::test::server_options dns_only;
    dns_only.certificate.subject_alt_names = {"DNS:localhost"};
    server_fixture g(dns_only);
    auto by_ip = g.config;
    by_ip.base_url = "https://127.0.0.1:" + std::to_string(g.server.port());
    auto r2 = mint(g, by_ip);
    BOOST_TEST((r2.ec.category() == asio::error::get_ssl_category()), r2.ec.message());
    BOOST_TEST(r2.diag.client_message().find("IP address mismatch") != std::string_view::npos,
               r2.diag.client_message());

    auto by_ip_ok = f.config; // the default certificate lists 127.0.0.1
    server_fixture h;
    by_ip_ok = h.config;
    by_ip_ok.base_url = "https://127.0.0.1:" + std::to_string(h.server.port());
    BOOST_TEST(!mint(h, by_ip_ok).ec);
}

BOOST_FIXTURE_TEST_CASE(connection_refused_surfaces_the_network_error, server_fixture)
{
    auto nowhere = config;
    {
        // A port that was just free: nothing listens there.
        asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
        nowhere.base_url = "https://127.0.0.1:" + std::to_string(probe.local_endpoint().port());
    }
    auto r = mint(*this, nowhere);
    BOOST_TEST(r.ec == asio::error::connection_refused);
    BOOST_TEST(r.diag.http_status() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_silent_server_is_cut_off_at_the_deadline, server_fixture)
{
    auto hanging = config_with_fault("hang");
    hanging.timeout = 300ms;
    auto r = mint(*this, hanging);
    BOOST_TEST(r.ec == error::timeout);
    BOOST_TEST(r.elapsed_ms >= 250);
    BOOST_TEST(r.elapsed_ms < 5000);
    BOOST_TEST(r.diag.client_message().find("300 ms") != std::string_view::npos);
    BOOST_TEST(server.requests_received() == 1u);
}

BOOST_AUTO_TEST_CASE(cancellation_by_slot_terminal_and_partial)
{
    for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial}) {
        asio::io_context io;
        asio::cancellation_signal signal;
        server_fixture f(cartesia::test::notify_when_requests_reach(1, io, [&signal, type] { signal.emit(type); }));
        outcome out;
        const auto start = clock_type::now();
        cartesia::async_generate_token(
            io, f.tls, f.config_with_fault("hang"), {}, out.diag,
            asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, token_response r) {
                out.ec = ec;
                out.response = std::move(r);
                ++out.calls;
            }));
        io.run(); // returns only when nothing is pending: the socket is closed
        BOOST_TEST(out.calls == 1);
        BOOST_TEST(out.ec == asio::error::operation_aborted);
        BOOST_TEST(out.response.token.empty());
        BOOST_TEST(milliseconds_since(start) < 5000);
        BOOST_TEST(f.server.requests_received() == 1u);
    }
}

BOOST_AUTO_TEST_CASE(total_cancellation_is_ignored)
{
    asio::io_context io;
    asio::cancellation_signal signal;
    server_fixture f(
        cartesia::test::notify_when_requests_reach(1, io, [&signal] { signal.emit(asio::cancellation_type::total); }));
    auto slow = f.config_with_fault("slow-200");
    outcome out;
    cartesia::async_generate_token(io, f.tls, slow, {}, out.diag,
                                   asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, token_response r) {
                                       out.ec = ec;
                                       out.response = std::move(r);
                                   }));
    io.run();
    BOOST_TEST(!out.ec);
    BOOST_TEST(!out.response.token.empty());
}

BOOST_FIXTURE_TEST_CASE(racing_a_timer_with_the_or_operator, server_fixture)
{
    using namespace asio::experimental::awaitable_operators;
    bool timer_won = false;
    const auto start = clock_type::now();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(io, 200ms);
            auto winner =
                co_await (cartesia::async_generate_token(io, tls, config_with_fault("hang"), {}, asio::use_awaitable) ||
                          timer.async_wait(asio::use_awaitable));
            timer_won = winner.index() == 1;
        },
        [](const std::exception_ptr& e) { BOOST_TEST(!e); });
    io.run(); // returns only once the losing operation has closed its socket
    BOOST_TEST(timer_won);
    BOOST_TEST(milliseconds_since(start) < 5000);
}

BOOST_AUTO_TEST_CASE(retries_a_5xx_then_succeeds)
{
    std::atomic<int> seen{0};
    server_fixture f([&] {
        cartesia::test::server_options options;
        options.responder =
            [&seen](const cartesia::test::recorded_request&) -> std::optional<cartesia::test::canned_response> {
            if (seen++ == 0)
                return error_answer(500);
            return std::nullopt;
        };
        return options;
    }());
    auto retrying = f.config;
    retrying.max_retries = 2;
    auto r = mint(f, retrying);
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(!r.response.token.empty());
    BOOST_TEST(r.diag.attempts() == 2u);
    BOOST_TEST(f.server.requests_received() == 2u);
    BOOST_TEST(r.elapsed_ms >= 370); // the first backoff is 375-500 ms
}

BOOST_FIXTURE_TEST_CASE(gives_up_after_max_retries_with_the_last_error, server_fixture)
{
    auto retrying = config_with_fault("status-503");
    retrying.max_retries = 1;
    auto r = mint(*this, retrying);
    BOOST_TEST(r.ec == error::server_error);
    BOOST_TEST(r.diag.attempts() == 2u);
    BOOST_TEST(r.diag.http_status() == 503u);
    BOOST_TEST(server.requests_received() == 2u);

    auto not_retried = config_with_fault("status-401");
    not_retried.max_retries = 2;
    auto r2 = mint(*this, not_retried);
    BOOST_TEST(r2.ec == error::unauthorized);
    BOOST_TEST(r2.diag.attempts() == 1u);
    BOOST_TEST(server.requests_received() == 3u);
}

BOOST_FIXTURE_TEST_CASE(expires_at_is_the_exp_claim_of_the_servers_jwt, server_fixture)
{
    // The test server mints HS256 JWTs whose exp is its clock's second plus expires_in
    // (300 s when the request names none).
    for (auto expires_in : {std::optional<std::chrono::seconds>(), std::optional<std::chrono::seconds>(60s)}) {
        const auto before = std::chrono::system_clock::now();
        auto r = mint(*this, config, {std::nullopt, expires_in});
        const auto after = std::chrono::system_clock::now();
        BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
        const auto payload = cartesia::test::jwt_payload(r.response.token);
        BOOST_TEST_REQUIRE(payload.is_object());
        const auto* exp = payload.get_object().if_contains("exp");
        BOOST_TEST_REQUIRE((exp && exp->is_int64()));
        BOOST_TEST_REQUIRE(r.response.expires_at.has_value());
        BOOST_TEST(
            std::chrono::duration_cast<std::chrono::seconds>(r.response.expires_at->time_since_epoch()).count() ==
            exp->get_int64());
        const auto lifetime = expires_in.value_or(300s);
        BOOST_TEST((std::chrono::floor<std::chrono::seconds>(before) + lifetime <= *r.response.expires_at));
        BOOST_TEST((*r.response.expires_at <= after + lifetime));
    }
}

BOOST_AUTO_TEST_CASE(expires_at_of_an_opaque_token_is_sent_at_plus_expires_in)
{
    server_fixture f([] {
        cartesia::test::server_options options;
        options.responder =
            [](const cartesia::test::recorded_request&) -> std::optional<cartesia::test::canned_response> {
            return cartesia::test::canned_response{200, "application/json", R"({"token":"opaque-token"})", {}};
        };
        return options;
    }());
    const auto before = std::chrono::system_clock::now();
    auto r = mint(f, f.config, {std::nullopt, 90s});
    const auto after = std::chrono::system_clock::now();
    BOOST_TEST_REQUIRE(!r.ec, r.ec.message());
    BOOST_TEST(r.response.token == "opaque-token");
    BOOST_TEST_REQUIRE(r.response.expires_at.has_value());
    BOOST_TEST((before + 90s <= *r.response.expires_at));
    BOOST_TEST((*r.response.expires_at <= after + 90s));

    auto unbounded = mint(f, f.config, {});
    BOOST_TEST_REQUIRE(!unbounded.ec, unbounded.ec.message());
    BOOST_TEST(!unbounded.response.expires_at.has_value());

    // On failure the response is empty, expires_at included.
    auto failed = mint(f, f.config, {std::nullopt, 0s});
    BOOST_TEST(failed.ec == error::invalid_argument);
    BOOST_TEST(!failed.response.expires_at.has_value());
}

BOOST_FIXTURE_TEST_CASE(many_operations_on_a_multithreaded_io_context, server_fixture)
{
    constexpr int count = 24;
    std::atomic<int> succeeded{0}, completed{0};
    for (int i = 0; i < count; ++i)
        cartesia::async_generate_token(io, tls, config, {}, [&](error_code ec, const token_response& response) {
            if (!ec && !response.token.empty())
                ++succeeded;
            ++completed;
        });
    std::thread second([this] { io.run(); });
    io.run();
    second.join();
    BOOST_TEST(completed == count);
    BOOST_TEST(succeeded == count);
    BOOST_TEST(server.connections_accepted() == static_cast<std::size_t>(count));
}

BOOST_AUTO_TEST_SUITE_END()
