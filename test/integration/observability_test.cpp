// Events and statistics end to end, against the local test server: the steps of
// a retried one-shot and of pooled requests, on which executor they are
// reported, what they never carry, and client::stats() as the pool works.
#include "fixture.hpp"

#include <cartesia/events.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::event;
using cartesia::event_kind;
using cartesia::test::canned_response;
using cartesia::test::server_fixture;
using cartesia::test::server_options;
using namespace std::chrono_literals;

namespace {

// What an event said, kept: its string_views die with the call.
struct seen_event {
    event_kind kind;
    std::uint64_t operation, connection;
    unsigned attempt;
    bool reused, resumed;
    unsigned status;
    unsigned short port;
    std::string tls_version, request_id, reason, line;
    error_code error;
    std::chrono::milliseconds retry_delay;
    std::thread::id thread;
};

struct event_log {
    std::vector<seen_event> events;
    std::function<void(const event&)> recorder()
    {
        return [this](const event& e) {
            events.push_back({e.kind, e.operation, e.connection, e.attempt, e.reused, e.session_resumed, e.http_status,
                              e.peer.port(), std::string(e.tls_version), std::string(e.request_id),
                              std::string(e.reason), cartesia::describe(e), e.error, e.retry_delay,
                              std::this_thread::get_id()});
        };
    }
    std::vector<std::string_view> kinds() const
    {
        std::vector<std::string_view> out;
        for (const auto& e : events)
            out.push_back(cartesia::to_string(e.kind));
        return out;
    }
    std::string all_text() const
    {
        std::string text;
        for (const auto& e : events)
            text += e.line + '\n' + e.reason + '\n' + e.request_id + '\n';
        return text;
    }
};

// Answers 503 (with the key echoed in its message) to the first request, then as usual.
server_options failing_once_echoing(const std::string& echoed)
{
    server_options options;
    auto answered = std::make_shared<std::atomic<bool>>(false);
    options.responder = [answered, echoed](const cartesia::test::recorded_request&) -> std::optional<canned_response> {
        if (answered->exchange(true))
            return std::nullopt;
        canned_response r;
        r.status = 503;
        r.body = R"({"title":"Service Unavailable","message":"echo )" + echoed + R"(","request_id":"rid-503"})";
        r.headers = {{"retry-after-ms", "1"}, {"x-request-id", "rid-503"}};
        return r;
    };
    return options;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_retried_one_shot_reports_each_step_in_order_on_the_io_thread)
{
    server_fixture f(failing_once_echoing("sk_car_test_0123456789abcdef"));
    event_log log;
    auto config = f.config;
    config.max_retries = 1;
    config.on_event = log.recorder();
    const auto out = cartesia::test::mint(f, config);
    BOOST_TEST_REQUIRE(!out.ec, out.ec.message());

    const std::vector<std::string_view> expected{
        "attempt_started", "connected", "response_received", "connection_closed", "retry_scheduled",
        "attempt_started", "connected", "response_received", "connection_closed", "completed"};
    BOOST_TEST(log.kinds() == expected, boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(log.events.size() == expected.size());
    const auto& ev = log.events;
    const std::uint64_t op = ev[0].operation;
    BOOST_TEST(op > 0u);
    for (const auto& e : ev) {
        BOOST_TEST(e.operation == op, e.line);
        BOOST_TEST(e.thread == std::this_thread::get_id()); // io.run() ran here
        BOOST_TEST(e.line.find('\n') == std::string::npos);
    }
    BOOST_TEST(ev[0].attempt == 1u);
    BOOST_TEST(!ev[1].reused);
    BOOST_TEST(ev[1].port == f.server.port());
    BOOST_TEST(ev[1].tls_version.rfind("TLSv1", 0) == 0u);
    BOOST_TEST(ev[2].status == 503u);
    BOOST_TEST(ev[2].request_id == "rid-503");
    BOOST_TEST(ev[4].attempt == 1u);
    BOOST_TEST(ev[4].error == cartesia::error::server_error);
    BOOST_TEST(ev[4].retry_delay == 1ms);
    BOOST_TEST(ev[4].reason.find("HTTP 503 Service Unavailable") == 0u, ev[4].reason);
    BOOST_TEST(ev[5].attempt == 2u);
    BOOST_TEST(ev[6].connection != ev[1].connection);
    BOOST_TEST(!ev[1].resumed); // a fresh ssl::context: nothing to resume
    BOOST_TEST(ev[7].status == 200u);
    BOOST_TEST(ev[8].reason == "closed after its token");
    BOOST_TEST(ev[9].attempt == 2u);
    BOOST_TEST(!ev[9].error);

    // The key the server echoed, and the token, appear nowhere.
    const std::string text = log.all_text();
    BOOST_TEST(text.find(f.server.api_key()) == std::string::npos, text);
    BOOST_TEST(text.find(out.response.token) == std::string::npos);
    BOOST_TEST(text.find("sk_car_...") != std::string::npos); // it was there, redacted
}

BOOST_AUTO_TEST_CASE(a_failed_operation_completes_with_its_error_and_reason)
{
    server_fixture f;
    event_log log;
    auto config = f.config_with_fault("retry-after-ms-1"); // always 429
    config.max_retries = 2;
    config.on_event = log.recorder();
    const auto out = cartesia::test::mint(f, config);
    BOOST_TEST(out.ec == cartesia::error::rate_limited);
    BOOST_TEST_REQUIRE(!log.events.empty());
    const auto& last = log.events.back();
    BOOST_TEST((last.kind == event_kind::completed));
    BOOST_TEST(last.error == cartesia::error::rate_limited);
    BOOST_TEST(last.attempt == 3u);
    BOOST_TEST(last.line.find("failed after 3 attempts in ") != std::string::npos, last.line);
    BOOST_TEST(last.line.find("HTTP 429") != std::string::npos, last.line);
    std::size_t retries = 0;
    for (const auto& e : log.events)
        retries += e.kind == event_kind::retry_scheduled;
    BOOST_TEST(retries == 2u);
}

BOOST_AUTO_TEST_CASE(invalid_input_makes_no_event)
{
    server_fixture f;
    event_log log;
    auto config = f.config;
    config.on_event = log.recorder();
    cartesia::token_request request;
    request.expires_in = std::chrono::seconds(0);
    const auto out = cartesia::test::mint(f, config, request);
    BOOST_TEST(out.ec == cartesia::error::invalid_argument);
    BOOST_TEST(log.events.empty());
    BOOST_TEST(f.server.connections_accepted() == 0u);
}

// Three tokens one after the other over one keep-alive connection, then close():
// the second and third reuse it, and the pool reports its closing.
BOOST_AUTO_TEST_CASE(pooled_requests_report_reuse_and_the_pool_its_closing)
{
    server_fixture f;
    event_log log;
    auto config = f.config;
    config.on_event = log.recorder();
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    BOOST_TEST(cartesia::test::mint_in_sequence(pool, f.io, 3) == 3);

    std::vector<bool> reused;
    std::set<std::uint64_t> operations;
    std::size_t closed = 0;
    for (const auto& e : log.events) {
        if (e.kind == event_kind::connected)
            reused.push_back(e.reused);
        if (e.kind == event_kind::completed)
            operations.insert(e.operation);
        if (e.kind == event_kind::connection_closed) {
            ++closed;
            BOOST_TEST(e.reason == "the client was closed");
            BOOST_TEST(e.operation == 0u); // close() closed it, no operation did
            BOOST_TEST(e.line.find("after 3 exchanges") != std::string::npos, e.line);
        }
    }
    BOOST_TEST(reused == (std::vector<bool>{false, true, true}), boost::test_tools::per_element());
    BOOST_TEST(operations.size() == 3u);
    BOOST_TEST(closed == 1u);
}

BOOST_AUTO_TEST_CASE(stats_count_what_the_pool_did)
{
    server_fixture f;
    auto config = f.config;
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    const auto before = pool.stats();
    BOOST_TEST(before.tokens_minted == 0u);
    BOOST_TEST(before.latency_count() == 0u);
    BOOST_TEST(before.latency_quantile(0.5).count() == 0);

    // One token, then a snapshot taken while the connection idles.
    cartesia::client_stats idle{};
    pool.async_generate_token({}, [&](error_code ec, const cartesia::token_response&) {
        BOOST_TEST(!ec);
        idle = pool.stats(); // from the completion handler: any thread, any time
        pool.close();
    });
    f.io.run();
    f.io.restart();
    BOOST_TEST(idle.tokens_minted == 1u);
    BOOST_TEST(idle.failures == 0u);
    BOOST_TEST(idle.connections_opened == 1u);
    BOOST_TEST(idle.handshakes_full == 1u);
    BOOST_TEST(idle.handshakes_resumed == 0u);
    BOOST_TEST(idle.connections_open == 1u);
    BOOST_TEST(idle.connections_idle == 1u);
    BOOST_TEST(idle.requests_queued == 0u);
    BOOST_TEST(idle.latency_count() == 1u);
    BOOST_TEST(idle.latency_quantile(0.5).count() > 0);

    const auto closed = pool.stats();
    BOOST_TEST(closed.connections_open == 0u);
    BOOST_TEST(closed.connections_idle == 0u);
}

BOOST_AUTO_TEST_CASE(stats_count_resumed_handshakes)
{
    // Keep-Alive: max=1: each request opens a connection, which resumes the
    // session of the one before.
    server_options options;
    options.responder = [](const cartesia::test::recorded_request&) -> std::optional<canned_response> {
        canned_response answer;
        answer.body = R"({"token":"opaque-token-for-tests"})";
        answer.headers = {{"Keep-Alive", "timeout=60, max=1"}};
        return answer;
    };
    server_fixture f(options);
    event_log log;
    auto config = f.config;
    config.on_event = log.recorder();
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    BOOST_TEST(cartesia::test::mint_in_sequence(pool, f.io, 3) == 3);
    const auto s = pool.stats();
    BOOST_TEST(s.tokens_minted == 3u);
    BOOST_TEST(s.connections_opened == 3u);
    BOOST_TEST(s.handshakes_full + s.handshakes_resumed == 3u);
    BOOST_TEST(s.handshakes_resumed >= 1u);
    BOOST_TEST(s.stale_moves == 0u);
    std::size_t at_limit = 0;
    for (const auto& e : log.events)
        at_limit += e.kind == event_kind::connection_closed && e.reason == "the server's Keep-Alive max reached";
    BOOST_TEST(at_limit == 3u);
}

BOOST_AUTO_TEST_CASE(stats_count_failures_and_retries)
{
    server_fixture f;
    auto failing = f.config_with_fault("retry-after-ms-1"); // always 429
    failing.max_retries = 1;
    cartesia::client limited(f.io.get_executor(), f.tls, failing);
    error_code got;
    limited.async_generate_token({}, [&](error_code ec, const cartesia::token_response&) {
        got = ec;
        limited.close();
    });
    f.io.run();
    f.io.restart();
    BOOST_TEST(got == cartesia::error::rate_limited);
    const auto t = limited.stats();
    BOOST_TEST(t.failures == 1u);
    BOOST_TEST(t.failures_http == 1u);
    BOOST_TEST(t.retries == 1u);
    BOOST_TEST(t.tokens_minted == 0u);
}

// stats() from other threads while the io_context mints on its own: under TSan,
// any unguarded read of the pool's state shows.
BOOST_AUTO_TEST_CASE(stats_may_be_read_from_any_thread_while_the_pool_works)
{
    server_fixture f;
    auto config = f.config;
    config.max_connections = 4;
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> max_seen{0};
    std::thread reader([&] {
        while (!done.load()) {
            const auto s = pool.stats();
            if (s.latency_count() != s.tokens_minted + s.failures || s.connections_idle > s.connections_open)
                max_seen = ~std::uint64_t{0}; // inconsistent
            else if (s.tokens_minted > max_seen && max_seen != ~std::uint64_t{0})
                max_seen = s.tokens_minted;
        }
    });
    constexpr int total = 40;
    std::atomic<int> completed{0};
    for (int i = 0; i < total; ++i)
        pool.async_generate_token({}, [&](error_code ec, const cartesia::token_response&) {
            BOOST_TEST(!ec);
            if (++completed == total)
                pool.close();
        });
    f.io.run();
    done = true;
    reader.join();
    BOOST_TEST(max_seen.load() != ~std::uint64_t{0});
    BOOST_TEST(pool.stats().tokens_minted == static_cast<std::uint64_t>(total));
}
