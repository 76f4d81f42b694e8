// cartesia::token_reserve against the local test server: filling and refilling,
// each token handed out once under concurrent takers, waiting takers, their
// cancellation, a failing API and its recovery, close() with takers waiting, and
// that the tokens it holds are erased from memory; cancellation at each point of a
// take (from a caller's strand while two threads run), a handler's own executor and
// allocator, completion tokens, and the client closed, destroyed or moved.
#include "fixture.hpp"
#include "freed_memory.hpp"

#include <cartesia/token_reserve.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::token_response;
using cartesia::test::canned_response;
using cartesia::test::server_fixture;
using cartesia::test::server_options;
using namespace std::chrono_literals;

namespace {

// A token per request, each different, answered at once; `down` makes it 503.
// `on_request` is told each request's number (on the server's thread).
server_options numbered_tokens(const std::shared_ptr<std::atomic<bool>>& down = nullptr,
                               const std::function<void(std::size_t)>& on_request = nullptr)
{
    server_options options;
    auto count = std::make_shared<std::atomic<std::size_t>>(0);
    options.responder = [=](const cartesia::test::recorded_request&) -> std::optional<canned_response> {
        const std::size_t n = ++*count;
        canned_response answer;
        if (down && *down) {
            answer.status = 503;
            answer.body = R"({"title":"Service Unavailable","message":"down"})";
        } else {
            answer.body = R"({"token":"reserve-token-)" + std::to_string(n) + R"("})";
        }
        if (on_request)
            on_request(n);
        return answer;
    };
    return options;
}

// One take, waited for from this thread (no Boost.Test macro: takers run on
// threads of their own); a take that hangs reads as timed_out.
std::pair<error_code, token_response> take(cartesia::token_reserve& reserve)
{
    auto f = reserve.async_take(
        asio::use_future([](error_code ec, token_response t) { return std::make_pair(ec, std::move(t)); }));
    if (f.wait_for(20s) != std::future_status::ready)
        return {asio::error::timed_out, {}};
    return f.get();
}

constexpr std::string_view held_marker = "held-by-the-reserve-";
// The length of their heap buffers' start that an erasure zeroes (marker, number, 'x's).
constexpr std::size_t held_token_size = 200;

// Tokens long enough to live on the heap (no small-string buffer), with the marker,
// each different.
server_options marked_tokens()
{
    server_options options;
    auto count = std::make_shared<std::atomic<std::size_t>>(0);
    options.responder = [=](const cartesia::test::recorded_request&) -> std::optional<canned_response> {
        canned_response answer;
        answer.body =
            R"({"token":")" + std::string(held_marker) + std::to_string(++*count) + std::string(200, 'x') + R"("})";
        return answer;
    };
    return options;
}

// Runs the io_context, on this thread, until `done` or 20 s.
template <class Condition> bool run_until(asio::io_context& io, Condition done)
{
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_one_for(100ms);
    }
    return done();
}

// What a take ended with: its error, or no_data for a success without a token.
error_code outcome(error_code ec, const token_response& t)
{
    return ec ? ec : t.token.empty() ? asio::error::no_data : error_code{};
}

// Closes both and runs what is left until the io_context has no more work.
void close_and_drain(cartesia::token_reserve& reserve, cartesia::client& pool, asio::io_context& io)
{
    reserve.close();
    pool.close();
    io.restart();
    io.run();
}

} // namespace

BOOST_AUTO_TEST_CASE(the_tokens_it_holds_are_erased_when_it_is_destroyed)
{
    server_fixture f(marked_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    {
        cartesia::token_reserve reserve(pool, {}, {4, 60s});
        BOOST_TEST_REQUIRE(run_until(f.io, [&] { return reserve.ready() == 4; }));
        cartesia::test::start_scanning_freed_blocks(held_marker, held_token_size);
    } // destroyed: its close() is posted, then the last reference goes
    f.io.restart();
    f.io.poll();
    const auto freed = cartesia::test::stop_scanning_freed_blocks();
    BOOST_TEST(freed.holding_marker == 0);
    BOOST_TEST(freed.wiped >= 8); // the four tokens, and their responses, were freed
    pool.close();
    f.io.restart();
    f.io.run();
}

BOOST_AUTO_TEST_CASE(a_token_that_reaches_max_age_is_discarded_erased_and_not_replaced_for_nobody)
{
    server_fixture f(marked_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {2, 1s});
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return reserve.ready() == 2; }));
    cartesia::test::start_scanning_freed_blocks(held_marker, held_token_size);
    const bool discarded = run_until(f.io, [&] { return reserve.ready() == 0; }); // a second later
    const auto freed = cartesia::test::stop_scanning_freed_blocks();
    BOOST_TEST(freed.holding_marker == 0);
    BOOST_TEST(freed.wiped >= 4); // two tokens and their responses
    BOOST_TEST_REQUIRE(discarded);
    // Nobody took one: no replacement is minted. One would be started in the step
    // that discarded them; poll() runs the client's side of it, which would take a
    // connection (or queue, or open one).
    f.io.restart();
    f.io.poll();
    const auto quiet = pool.stats();
    BOOST_TEST(quiet.connections_idle == quiet.connections_open);
    BOOST_TEST(quiet.connections_opening == 0u);
    BOOST_TEST(quiet.requests_queued == 0u);
    BOOST_TEST(f.server.requests_received() == 2u);
    // A take shows demand again: it waits for a mint, and the reserve refills.
    error_code got = asio::error::would_block;
    std::string taken;
    reserve.async_take([&](error_code ec, const token_response& t) {
        got = ec;
        taken = t.token;
    });
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return got != asio::error::would_block && reserve.ready() == 2; }));
    BOOST_TEST(!got, got.message());
    // Minted after the take: the third or fourth (they are minted together).
    BOOST_TEST(
        (taken.rfind(std::string(held_marker) + "3", 0) == 0u || taken.rfind(std::string(held_marker) + "4", 0) == 0u));
    BOOST_TEST(f.server.requests_received() == 5u); // the taker's, and two to refill
    close_and_drain(reserve, pool, f.io);
}

BOOST_AUTO_TEST_CASE(it_fills_itself_and_replaces_what_is_taken)
{
    auto filled = std::make_shared<std::promise<void>>();
    auto replaced = std::make_shared<std::promise<void>>();
    server_fixture f(numbered_tokens(nullptr, [filled, replaced](std::size_t n) {
        if (n == 4)
            filled->set_value();
        if (n == 5)
            replaced->set_value();
    }));
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    {
        cartesia::test::running_io io(f.io);
        cartesia::token_reserve reserve(pool, {});
        BOOST_TEST_REQUIRE((filled->get_future().wait_for(20s) == std::future_status::ready));
        const auto [ec, token] = take(reserve);
        BOOST_TEST(!ec, ec.message());
        // One of the four minted ahead, not one minted for the take.
        const std::set<std::string> ahead{"reserve-token-1", "reserve-token-2", "reserve-token-3", "reserve-token-4"};
        BOOST_TEST(ahead.count(token.token) == 1u, token.token);
        // The one taken is replaced by a fifth mint.
        BOOST_TEST_REQUIRE((replaced->get_future().wait_for(20s) == std::future_status::ready));
        const auto [ec2, token2] = take(reserve);
        BOOST_TEST(!ec2);
        BOOST_TEST(token2.token != token.token);
        reserve.close();
        pool.close();
    }
    BOOST_TEST(f.server.requests_received() <= 6u); // the size, and one replacement per take
}

BOOST_AUTO_TEST_CASE(each_token_is_handed_out_once_to_four_threads_taking_at_once)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    constexpr int per_thread = 10;
    std::vector<std::string> tokens;
    int failures = 0;
    std::mutex lock;
    {
        cartesia::test::running_io io(f.io, 4);
        cartesia::token_reserve reserve(pool, {}, {4, 60s});
        std::vector<std::thread> takers;
        takers.reserve(4);
        for (int t = 0; t < 4; ++t)
            takers.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i) {
                    auto [ec, token] = take(reserve);
                    const std::lock_guard hold(lock);
                    failures += ec ? 1 : 0;
                    tokens.push_back(std::move(token.token));
                }
            });
        for (auto& t : takers)
            t.join();
        reserve.close();
        pool.close();
    }
    BOOST_TEST(failures == 0);
    BOOST_TEST(tokens.size() == 40u);
    const std::set<std::string> distinct(tokens.begin(), tokens.end());
    BOOST_TEST(distinct.size() == tokens.size());
    BOOST_TEST(f.server.requests_received() <= 40u + 4u); // what was taken, and a reserve's worth
}

BOOST_AUTO_TEST_CASE(takers_of_an_empty_reserve_wait_and_are_served_in_order)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    std::vector<int> order;
    for (int i = 0; i < 5; ++i)
        reserve.async_take([&, i](error_code ec, const token_response&) {
            BOOST_TEST(!ec, ec.message());
            order.push_back(i);
            if (order.size() == 5) {
                reserve.close();
                pool.close();
            }
        });
    f.io.run();
    BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_waiting_take_can_be_cancelled)
{
    server_fixture f;
    auto config = f.config_with_fault("hang");
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    asio::cancellation_signal signal;
    error_code got;
    int calls = 0;
    reserve.async_take(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, const token_response&) {
        got = ec;
        ++calls;
        reserve.close();
        pool.close();
    }));
    // Once the mint it waits for has reached the server, cancel the take.
    bool reached = false;
    std::thread canceller([&] {
        reached = f.server.wait_for_connections_accepted(1, 20s);
        asio::post(f.io, [&] { signal.emit(asio::cancellation_type::terminal); });
    });
    f.io.run();
    canceller.join();
    BOOST_TEST(reached);
    BOOST_TEST(calls == 1);
    BOOST_TEST(got == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(close_completes_the_waiting_takers_and_later_takes)
{
    server_fixture f;
    auto config = f.config_with_fault("hang");
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    cartesia::token_reserve reserve(pool, {}, {2, 60s});
    std::vector<error_code> codes;
    for (int i = 0; i < 3; ++i)
        reserve.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
    bool reached = false;
    std::thread closer([&] {
        reached = f.server.wait_for_connections_accepted(2, 20s);
        asio::post(f.io, [&] {
            reserve.close();
            reserve.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
        });
    });
    // close() itself cancels the two mints hanging in flight: the client stays open.
    const bool ended = run_until(f.io, [&] { return codes.size() == 4 && pool.stats().failures_cancelled == 2; });
    closer.join();
    BOOST_TEST(reached);
    BOOST_TEST(ended);
    BOOST_TEST(codes.size() == 4u);
    for (const auto& ec : codes)
        BOOST_TEST(ec == asio::error::operation_aborted);
    BOOST_TEST(reserve.ready() == 0u);
    pool.close();
    f.io.restart();
    f.io.run();
}

BOOST_AUTO_TEST_CASE(a_failing_api_fails_the_takers_then_the_reserve_recovers_by_itself)
{
    auto down = std::make_shared<std::atomic<bool>>(true);
    auto probe = std::make_shared<std::promise<void>>();
    auto probed = std::make_shared<std::atomic<bool>>(false);
    server_fixture f(numbered_tokens(down, [down, probe, probed](std::size_t) {
        if (!*down && !probed->exchange(true))
            probe->set_value(); // the first request once the API is back
    }));
    cartesia::client pool(f.io.get_executor(), f.tls, f.config); // max_retries 0
    cartesia::test::running_io io(f.io);
    cartesia::token_reserve reserve(pool, {}, {2, 60s});
    const auto [ec, token] = take(reserve);
    BOOST_TEST(ec == cartesia::error::server_error);
    BOOST_TEST(token.token.empty());
    // Backing off: takes fail at once with the same error, and cost no call (without
    // the backoff, each would wait for a mint of its own). The bound leaves room for
    // the other first mint and for the probes of two backoff periods, on a slow day.
    for (int i = 0; i < 8; ++i) {
        const auto [ec2, token2] = take(reserve);
        BOOST_TEST(ec2 == cartesia::error::server_error);
    }
    BOOST_TEST(f.server.requests_received() <= 2u + 2u);
    // The API comes back: after its backoff, the reserve probes it by itself, and
    // a take then gets a token (the probe's, or one minted after it).
    *down = false;
    BOOST_TEST_REQUIRE((probe->get_future().wait_for(20s) == std::future_status::ready));
    const auto [ec3, token3] = take(reserve);
    BOOST_TEST(!ec3, ec3.message());
    BOOST_TEST(token3.token.rfind("reserve-token-", 0) == 0u);
    reserve.close();
    pool.close();
}

BOOST_AUTO_TEST_CASE(bad_options_fail_every_take)
{
    server_fixture f;
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_request bad;
    bad.expires_in = std::chrono::seconds(0);
    cartesia::token_reserve by_request(pool, bad);
    cartesia::token_reserve by_size(pool, {}, {0, 60s});
    std::vector<error_code> codes;
    by_request.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
    by_size.async_take([&](error_code ec, const token_response&) {
        codes.push_back(ec);
        pool.close();
    });
    f.io.run();
    BOOST_TEST(codes.size() == 2u);
    for (const auto& ec : codes)
        BOOST_TEST(ec == cartesia::error::invalid_argument);
    BOOST_TEST(f.server.requests_received() == 0u);
}

BOOST_AUTO_TEST_CASE(a_cancellation_emitted_before_the_take_reaches_the_reserve_is_not_lost)
{
    server_fixture f;
    auto config = f.config_with_fault("hang"); // no mint ever ends by itself
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    asio::cancellation_signal signal;
    std::vector<error_code> codes;
    reserve.async_take(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, const token_response&) {
        codes.push_back(ec);
        reserve.close();
        pool.close();
    }));
    signal.emit(asio::cancellation_type::total); // before io.run(): the take is not on the strand yet
    f.io.run();
    BOOST_TEST(codes.size() == 1u);
    BOOST_TEST((codes.empty() || codes[0] == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(a_take_cancelled_before_it_reaches_the_reserve_leaves_the_ready_token_alone)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return reserve.ready() == 1; }));
    asio::cancellation_signal signal;
    std::vector<error_code> codes;
    reserve.async_take(asio::bind_cancellation_slot(
        signal.slot(), [&](error_code ec, const token_response& t) { codes.push_back(outcome(ec, t)); }));
    signal.emit(asio::cancellation_type::terminal); // the take is not on the strand yet
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return !codes.empty(); }));
    BOOST_TEST(codes.size() == 1u);
    BOOST_TEST(codes[0] == asio::error::operation_aborted);
    BOOST_TEST(reserve.ready() == 1u); // not handed to a taker that had gone
    const auto requests = f.server.requests_received();
    std::vector<error_code> later;
    reserve.async_take([&](error_code ec, const token_response&) {
        later.push_back(ec);
        reserve.close();
        pool.close();
    });
    f.io.restart();
    f.io.run();
    BOOST_TEST(later.size() == 1u);
    BOOST_TEST((later.empty() || !later[0]));
    BOOST_TEST(requests == 1u); // the first take minted nothing
}

BOOST_AUTO_TEST_CASE(a_cancellation_after_the_take_was_served_does_nothing)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return reserve.ready() == 1; }));
    // The handler runs on `other`, not run yet: the take is served, its completion
    // queued there with the slot still connected, when the signal is emitted.
    asio::io_context other;
    asio::cancellation_signal signal;
    int calls = 0;
    error_code got;
    std::string token;
    reserve.async_take(asio::bind_cancellation_slot(
        signal.slot(), asio::bind_executor(other, [&](error_code ec, const token_response& t) {
            got = ec;
            token = t.token;
            ++calls;
        })));
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return reserve.ready() == 0; })); // served
    f.io.restart();
    f.io.poll();                                    // the completion is on its way to `other`
    signal.emit(asio::cancellation_type::terminal); // too late
    f.io.restart();
    f.io.poll(); // the reserve's side of the emission
    other.run_for(20s);
    BOOST_TEST(calls == 1);
    BOOST_TEST(!got, got.message());
    BOOST_TEST(token == "reserve-token-1");
    close_and_drain(reserve, pool, f.io);
}

BOOST_AUTO_TEST_CASE(a_handler_with_its_own_executor_completes_there_and_keeps_it_busy)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    asio::io_context other; // the handler's; it has no other work
    std::thread::id ran_on;
    error_code got = asio::error::would_block;
    reserve.async_take(asio::bind_executor(other, [&](error_code ec, const token_response&) {
        got = ec;
        ran_on = std::this_thread::get_id();
    }));
    {
        cartesia::test::running_io io(f.io);
        other.run_for(20s); // returns once the handler ran: the take counts as its work
        reserve.close();
        pool.close();
    }
    BOOST_TEST(!got, got.message());
    BOOST_TEST((ran_on == std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(a_closed_client_closes_the_reserve_and_its_waiting_takers_complete)
{
    server_fixture f;
    auto config = f.config_with_fault("hang");
    cartesia::client pool(f.io.get_executor(), f.tls, config);
    cartesia::token_reserve reserve(pool, {}, {2, 60s});
    std::vector<error_code> codes;
    reserve.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
    bool reached = false;
    std::thread closer([&] {
        reached = f.server.wait_for_connections_accepted(2, 20s);
        pool.close(); // any thread; the reserve is not told, its mints fail
    });
    f.io.run(); // returns: the reserve stops minting (and probing) for good
    closer.join();
    BOOST_TEST(reached);
    BOOST_TEST(codes.size() == 1u);
    BOOST_TEST((codes.empty() || codes[0] == asio::error::operation_aborted));
    BOOST_TEST(pool.stats().failures_cancelled == 2u); // its two mints; no probe after them
    // Later takes too, with no mint.
    reserve.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
    f.io.restart();
    f.io.run();
    BOOST_TEST(codes.size() == 2u);
    BOOST_TEST((codes.size() < 2 || codes[1] == asio::error::operation_aborted));
    BOOST_TEST(pool.stats().failures_cancelled == 2u);
}

BOOST_AUTO_TEST_CASE(client_and_reserve_destroyed_in_either_order_before_the_executor_runs)
{
    server_fixture f(numbered_tokens());
    std::vector<error_code> codes;
    {
        cartesia::client pool(f.io.get_executor(), f.tls, f.config);
        cartesia::token_reserve reserve(pool, {});
        reserve.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
    } // the reserve first, then the client: nothing has run yet
    {
        auto pool = std::make_unique<cartesia::client>(f.io.get_executor(), f.tls, f.config);
        cartesia::token_reserve reserve(*pool, {});
        reserve.async_take([&](error_code ec, const token_response&) { codes.push_back(ec); });
        pool.reset(); // the client first: the reserve's mints fail, it closes itself
    }
    f.io.run();
    BOOST_TEST(codes.size() == 2u);
    for (const auto& ec : codes)
        BOOST_TEST(ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(it_mints_through_a_client_that_was_moved)
{
    server_fixture f(numbered_tokens());
    cartesia::client first(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(first, {}, {1, 60s});
    cartesia::client moved(std::move(first));
    error_code got = asio::error::would_block;
    std::string token;
    reserve.async_take([&](error_code ec, const token_response& t) {
        got = ec;
        token = t.token;
        reserve.close();
        moved.close();
    });
    f.io.run();
    BOOST_TEST(!got, got.message());
    BOOST_TEST(token.rfind("reserve-token-", 0) == 0u);
}

// Asio's rule for a cancellation slot, as for the client's operations: a caller on a
// strand of its own may emit at any point of a take's life, its completion included,
// while two threads run the io_context (TSan checks). A quarter of the takes are
// never cancelled, a quarter at once, the others after a few hops of the caller's
// strand, and again at every hop until their completion.
BOOST_AUTO_TEST_CASE(a_caller_on_its_own_strand_may_emit_the_cancellation_at_any_time)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {4, 60s});
    auto caller = asio::make_strand(f.io);
    constexpr std::size_t takes = 40;
    std::vector<asio::cancellation_signal> signals(takes);
    std::vector<int> calls(takes, 0); // on the caller's strand only
    std::set<std::string> tokens;
    std::size_t completed = 0, served = 0, aborted = 0, other = 0, emissions = 0;
    std::promise<void> all_completed;
    // On the caller's strand: the i-th take's hop `hop`, until it completed.
    std::function<void(std::size_t, std::size_t)> pester = [&](std::size_t i, std::size_t hop) {
        if (calls[i] != 0)
            return;
        if (hop >= i % 8) {
            signals[i].emit(asio::cancellation_type::terminal);
            ++emissions;
        }
        asio::post(caller, [&pester, i, hop] { pester(i, hop + 1); });
    };
    asio::post(caller, [&] {
        for (std::size_t i = 0; i < takes; ++i) {
            reserve.async_take(asio::bind_cancellation_slot(
                signals[i].slot(), asio::bind_executor(caller, [&, i](error_code ec, const token_response& t) {
                    ++calls[i];
                    if (!ec && !t.token.empty()) {
                        ++served;
                        tokens.insert(t.token);
                    } else if (ec == asio::error::operation_aborted) {
                        ++aborted;
                    } else {
                        ++other;
                    }
                    if (++completed == takes)
                        all_completed.set_value();
                })));
            if (i % 4 == 1)
                signals[i].emit(asio::cancellation_type::terminal); // before the take reached the reserve
            else if (i % 4 != 0)
                pester(i, 0);
        }
    });
    {
        cartesia::test::running_io two_threads(f.io, 2);
        const bool ended = all_completed.get_future().wait_for(20s) == std::future_status::ready;
        reserve.close();
        pool.close();
        BOOST_TEST_REQUIRE(ended);
    }
    BOOST_TEST(static_cast<std::size_t>(std::count(calls.begin(), calls.end(), 1)) == takes); // each once
    BOOST_TEST(other == 0u);
    BOOST_TEST(served + aborted == takes);
    BOOST_TEST(served >= takes / 4);     // those never cancelled
    BOOST_TEST(aborted >= takes / 4);    // those cancelled at once
    BOOST_TEST(tokens.size() == served); // each token handed out once
    BOOST_TEST(emissions > takes / 2);
}

BOOST_AUTO_TEST_CASE(deferred_is_the_default_and_use_awaitable_works)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {2, 60s});
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return reserve.ready() == 2; }));
    auto deferred_take = reserve.async_take();
    static_assert(!std::is_same_v<decltype(deferred_take), void>);
    f.io.restart();
    f.io.poll();
    BOOST_TEST(reserve.ready() == 2u); // nothing is taken until it is launched
    std::vector<std::string> tokens;
    std::exception_ptr failure;
    bool done = false;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
            tokens.push_back((co_await std::move(deferred_take)(asio::use_awaitable)).token);
            tokens.push_back((co_await reserve.async_take(asio::use_awaitable)).token);
            auto [ec, t] = co_await reserve.async_take(asio::as_tuple(asio::use_awaitable));
            BOOST_TEST(!ec, ec.message());
            tokens.push_back(t.token);
        },
        [&](std::exception_ptr e) {
            failure = std::move(e);
            done = true;
        });
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return done; }));
    BOOST_TEST(!failure);
    BOOST_TEST(tokens.size() == 3u);
    BOOST_TEST(std::set<std::string>(tokens.begin(), tokens.end()).size() == 3u);
    close_and_drain(reserve, pool, f.io);
}

BOOST_AUTO_TEST_CASE(bind_allocator_is_used_for_the_type_erased_handler)
{
    server_fixture f(numbered_tokens());
    cartesia::client pool(f.io.get_executor(), f.tls, f.config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    std::size_t allocations = 0;
    bool called = false;
    reserve.async_take(asio::bind_allocator(cartesia::test::counting_allocator<void>(&allocations),
                                            [&](error_code ec, const token_response&) {
                                                BOOST_TEST(!ec, ec.message());
                                                called = true;
                                            }));
    BOOST_TEST(allocations > 0u); // the type-erased handler's
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return called; }));
    close_and_drain(reserve, pool, f.io);
}

// A take whose cancellation is on its way to the reserve's strand when the mint it
// waits for ends, queued behind that mint's result: it is not served (its result
// would be dropped, and a token wasted), and the token stays ready. The
// cancellation is emitted by a handler that the client's `completed` event queues
// just before the mint's result; on an executor that never runs a function inline,
// the result is queued too, and the reserve's strand sees it first.
BOOST_AUTO_TEST_CASE(a_take_whose_cancellation_is_on_its_way_is_not_served)
{
    server_fixture f(numbered_tokens());
    asio::cancellation_signal signal;
    bool emitted = false;
    auto config = f.config;
    config.on_event = [&](const cartesia::event& e) {
        if (e.kind == cartesia::event_kind::completed && !emitted) {
            emitted = true;
            asio::post(f.io, [&] { signal.emit(asio::cancellation_type::terminal); });
        }
    };
    cartesia::client pool(asio::require(f.io.get_executor(), asio::execution::blocking.never), f.tls, config);
    cartesia::token_reserve reserve(pool, {}, {1, 60s});
    std::vector<error_code> codes;
    reserve.async_take(asio::bind_cancellation_slot(
        signal.slot(), [&](error_code ec, const token_response& t) { codes.push_back(outcome(ec, t)); }));
    BOOST_TEST_REQUIRE(run_until(f.io, [&] { return !codes.empty() && reserve.ready() == 1; }));
    BOOST_TEST(emitted);
    BOOST_TEST(codes.size() == 1u);
    BOOST_TEST(codes[0] == asio::error::operation_aborted);
    BOOST_TEST(f.server.requests_received() == 1u); // the token went into the reserve
    close_and_drain(reserve, pool, f.io);
}
