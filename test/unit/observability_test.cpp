// Events (describe, to_string, what their texts may carry) and the client's
// statistics (stats_recorder), without I/O.
#include "event_sink.hpp"
#include "stats_recorder.hpp"

#include <cartesia/error.hpp>
#include <cartesia/events.hpp>

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <set>
#include <string>
#include <thread>

namespace cd = cartesia::detail;
using cartesia::event;
using cartesia::event_kind;
using namespace std::chrono_literals;

namespace {

event of(event_kind kind)
{
    event e;
    e.kind = kind;
    e.operation = 7;
    e.attempt = 2;
    e.connection = 3;
    e.elapsed = 41'250us;
    return e;
}

bool contains(const std::string& text, std::string_view part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(events)

BOOST_AUTO_TEST_CASE(every_kind_has_its_name)
{
    std::set<std::string_view> names;
    for (auto kind : {event_kind::attempt_started, event_kind::connected, event_kind::response_received,
                      event_kind::retry_scheduled, event_kind::connection_closed, event_kind::completed})
        names.insert(cartesia::to_string(kind));
    BOOST_TEST(names.size() == 6u);
    BOOST_TEST(cartesia::to_string(event_kind::retry_scheduled) == "retry_scheduled");
    BOOST_TEST(cartesia::to_string(event_kind::connection_closed) == "connection_closed");
}

BOOST_AUTO_TEST_CASE(describe_says_what_each_kind_knows)
{
    BOOST_TEST(describe(of(event_kind::attempt_started)) == "op 7 attempt 2 started (+41.2 ms)");

    auto connected = of(event_kind::connected);
    connected.peer = {boost::asio::ip::make_address("203.0.113.5"), 443};
    connected.tls_version = "TLSv1.3";
    connected.session_resumed = true;
    connected.connect_time = 12'340us;
    BOOST_TEST(describe(connected) ==
               "op 7 attempt 2 connected: conn 3 to 203.0.113.5:443 TLSv1.3 resumed, opened in 12.3 ms (+41.2 ms)");
    connected.peer = {boost::asio::ip::make_address("2001:db8::1"), 3128};
    connected.via_proxy = true;
    connected.session_resumed = false;
    BOOST_TEST(contains(describe(connected), "to [2001:db8::1]:3128 (proxy) TLSv1.3 full handshake"));
    connected.reused = true;
    BOOST_TEST(describe(connected) == "op 7 attempt 2 connected: conn 3 reused (+41.2 ms)");

    auto response = of(event_kind::response_received);
    response.http_status = 503;
    response.request_id = "req-1";
    BOOST_TEST(describe(response) == "op 7 attempt 2 response: HTTP 503 (request id req-1) on conn 3 (+41.2 ms)");

    auto retry = of(event_kind::retry_scheduled);
    retry.retry_delay = 480ms;
    retry.error = cartesia::error::server_error;
    retry.reason = "HTTP 503 Service Unavailable";
    BOOST_TEST(describe(retry) == "op 7 attempt 2 failed, retry in 480 ms: HTTP 503 Service Unavailable");

    auto closed = of(event_kind::connection_closed);
    closed.reason = "idle";
    closed.exchanges = 1;
    closed.operation = 0;
    BOOST_TEST(describe(closed) == "conn 3 closed (idle) after 1 exchange, open 41.2 ms");
    closed.operation = 9;
    closed.exchanges = 2;
    closed.error = boost::asio::error::connection_reset;
    BOOST_TEST(contains(describe(closed), "op 9: conn 3 closed (idle) after 2 exchanges, open 41.2 ms: "));

    auto done = of(event_kind::completed);
    BOOST_TEST(describe(done) == "op 7 completed: token after 2 attempts in 41.2 ms");
    done.attempt = 1;
    done.error = cartesia::error::timeout;
    done.reason = "timeout: no complete response within 2000 ms";
    BOOST_TEST(describe(done) ==
               "op 7 failed after 1 attempt in 41.2 ms: timeout: no complete response within 2000 ms");
}

// What an event's text may quote of the server (a message, a request id) loses
// the secrets and every control character: one line, without the key, the
// proxy's password or its Authorization value.
BOOST_AUTO_TEST_CASE(the_sink_cleans_server_text_of_secrets)
{
    cartesia::client_config config;
    config.api_key = "sk_car_secret_key_0123456789";
    config.on_event = [](const event&) {};
    cd::endpoint where;
    where.network.proxy.emplace();
    where.network.proxy->password = "pr0xy-pw";
    where.network.proxy->authorization = "Basic dXNlcjpwcjB4eS1wdw==";
    cd::event_sink sink;
    BOOST_TEST(!sink.enabled());
    sink.configure(config, where);
    BOOST_TEST(sink.enabled());
    BOOST_TEST(sink.via_proxy());

    const std::string dirty =
        "key " + config.api_key + " pw pr0xy-pw auth Basic dXNlcjpwcjB4eS1wdw==\r\nX-Injected: 1\x1b[2J\x7f";
    const std::string clean = sink.clean(dirty);
    BOOST_TEST(!contains(clean, config.api_key));
    BOOST_TEST(!contains(clean, "pr0xy-pw"));
    BOOST_TEST(!contains(clean, "dXNlcjpwcjB4eS1wdw=="));
    BOOST_TEST(contains(clean, "sk_car_..."));
    for (const char c : clean)
        BOOST_TEST((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
    BOOST_TEST(sink.clean(std::string(5000, 'x')).size() <= 404u);

    cartesia::client_config quiet; // no on_event: no events, whatever else is set
    cd::event_sink off;
    off.configure(quiet, where);
    BOOST_TEST(!off.enabled());
}

BOOST_AUTO_TEST_CASE(numbers_are_unique_and_increasing)
{
    const auto a = cd::event_sink::next_operation_number();
    const auto b = cd::event_sink::next_operation_number();
    BOOST_TEST(a > 0u);
    BOOST_TEST(b > a);
    BOOST_TEST(cd::event_sink::next_connection_number() > 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stats)

BOOST_AUTO_TEST_CASE(completions_count_by_kind)
{
    cd::stats_recorder r;
    const cd::pool_gauges now{3, 1, 1, 4};
    r.completed({}, 10ms, 1, 0, 0, now);
    r.completed({}, 20ms, 3, 1, 0, now); // two retries, one stale move
    r.completed(cartesia::error::rate_limited, 5ms, 1, 0, 2, now);
    r.completed(cartesia::error::timeout, 5ms, 1, 0, 2, now);
    r.completed(boost::asio::error::operation_aborted, 5ms, 1, 0, 2, now);
    r.completed(boost::asio::error::connection_refused, 5ms, 2, 0, 2, now);
    r.completed(cartesia::error::proxy_auth_required, 5ms, 1, 0, 2, now);
    r.completed(cartesia::error::bad_response, 5ms, 1, 0, 3, now);
    r.opened(false, now);
    r.opened(true, now);
    r.opened(true, now);
    r.opening_failed(now);

    const auto s = r.snapshot();
    BOOST_TEST(s.tokens_minted == 2u);
    BOOST_TEST(s.failures == 6u);
    BOOST_TEST(s.failures_http == 1u);
    BOOST_TEST(s.failures_timeout == 1u);
    BOOST_TEST(s.failures_cancelled == 1u);
    BOOST_TEST(s.failures_network == 2u);
    BOOST_TEST(s.failures_other == 1u);
    BOOST_TEST(s.failures ==
               s.failures_http + s.failures_timeout + s.failures_cancelled + s.failures_network + s.failures_other);
    BOOST_TEST(s.retries == 3u);
    BOOST_TEST(s.stale_moves == 1u);
    BOOST_TEST(s.retries_refused == 3u);
    BOOST_TEST(s.connections_opened == 3u);
    BOOST_TEST(s.handshakes_full == 1u);
    BOOST_TEST(s.handshakes_resumed == 2u);
    BOOST_TEST(s.connection_failures == 1u);
    BOOST_TEST(s.connections_open == 3u);
    BOOST_TEST(s.connections_idle == 1u);
    BOOST_TEST(s.connections_opening == 1u);
    BOOST_TEST(s.requests_queued == 4u);
    BOOST_TEST(s.latency_count() == 8u);
}

BOOST_AUTO_TEST_CASE(latency_quantiles_are_within_their_precision)
{
    cd::stats_recorder r;
    BOOST_TEST(r.snapshot().latency_quantile(0.5).count() == 0); // none yet
    BOOST_TEST(r.snapshot().latency_count() == 0u);
    // 1 ms to 1000 ms, one each: the q-quantile is about q seconds.
    for (int ms = 1; ms <= 1000; ++ms)
        r.completed({}, std::chrono::milliseconds(ms), 1, 0, 0, {});
    const auto s = r.snapshot();
    for (const double q : {0.01, 0.1, 0.5, 0.9, 0.99}) {
        const double expected_us = std::floor(q * 1000.0 + 1.0) * 1000.0; // rank floor(q * n), 1-based ms
        const auto got = static_cast<double>(s.latency_quantile(q).count());
        BOOST_TEST(std::abs(got - expected_us) <= expected_us * 0.032, "q " << q << ": " << got << " us");
    }
    BOOST_TEST(s.latency_quantile(0.0).count() >= 968);       // the minimum, 1 ms, within 3.1%
    BOOST_TEST(s.latency_quantile(1.0).count() <= 1'000'000); // clamped to the maximum
    // A later snapshot does not change an earlier one.
    r.completed({}, 100s, 1, 0, 0, {});
    BOOST_TEST(s.latency_count() == 1000u);
    BOOST_TEST(r.snapshot().latency_count() == 1001u);
}

// The writer on one thread, snapshots on another: each snapshot is one instant,
// so the counts it holds agree with each other (run under TSan too).
BOOST_AUTO_TEST_CASE(a_snapshot_is_consistent_while_another_thread_records)
{
    cd::stats_recorder r;
    constexpr int operations = 20000;
    std::thread writer([&] {
        for (int i = 0; i < operations; ++i) {
            const auto n = static_cast<std::size_t>(i % 5);
            r.completed(i % 3 == 0 ? cartesia::error::timeout : boost::system::error_code{}, 1ms, 1, 0, 0,
                        {n, n, 0, 0});
        }
    });
    bool consistent = true;
    std::uint64_t last = 0;
    while (last < static_cast<std::uint64_t>(operations)) {
        const auto s = r.snapshot();
        consistent = consistent && s.latency_count() == s.tokens_minted + s.failures &&
                     s.connections_idle == s.connections_open && s.tokens_minted + s.failures >= last;
        last = s.tokens_minted + s.failures;
    }
    writer.join();
    BOOST_TEST(consistent);
}

BOOST_AUTO_TEST_SUITE_END()
