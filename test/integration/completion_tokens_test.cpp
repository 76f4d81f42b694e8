// async_generate_token under every completion token it promises to support.
#include "fixture.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::token_response;
using cartesia::test::server_fixture;

namespace {

cartesia::token_request tts_for_a_minute()
{
    cartesia::token_request request;
    request.grants = cartesia::token_grant{true, std::nullopt, std::nullopt};
    request.expires_in = std::chrono::seconds(60);
    return request;
}

void check_token(const token_response& response)
{
    auto payload = cartesia::test::jwt_payload(response.token);
    BOOST_TEST_REQUIRE(payload.is_object(), "not a JWT: " << response.token.size() << " chars");
    BOOST_TEST(payload.at("grants").at("tts").as_bool());
    BOOST_TEST(payload.at("exp").to_number<long long>() - payload.at("iat").to_number<long long>() == 60);
}

} // namespace

BOOST_AUTO_TEST_SUITE(completion_tokens)

BOOST_FIXTURE_TEST_CASE(callback, server_fixture)
{
    bool called = false;
    cartesia::async_generate_token(io, tls, config, tts_for_a_minute(),
                                   [&](error_code ec, const token_response& response) {
                                       BOOST_TEST(!ec, ec.message());
                                       check_token(response);
                                       called = true;
                                   });
    BOOST_TEST(!called); // never inside the initiating function
    io.run();
    BOOST_TEST(called);
}

BOOST_FIXTURE_TEST_CASE(use_future_with_the_io_context_on_another_thread, server_fixture)
{
    auto work = asio::make_work_guard(io);
    std::thread runner([this] { io.run(); });
    auto token = cartesia::async_generate_token(io, tls, config, tts_for_a_minute(), asio::use_future);
    check_token(token.get());

    cartesia::client_config wrong_key = config;
    wrong_key.api_key = "sk_car_wrong_key_000000";
    auto failing = cartesia::async_generate_token(io.get_executor(), tls, wrong_key, {}, asio::use_future);
    try {
        failing.get();
        BOOST_FAIL("expected an exception");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == cartesia::error::unauthorized);
        BOOST_TEST(std::string(e.what()).find("sk_car_wrong_key") == std::string::npos);
    }
    work.reset();
    runner.join();
}

BOOST_FIXTURE_TEST_CASE(use_awaitable_as_tuple_and_redirect_error, server_fixture)
{
    int completed = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            check_token(
                co_await cartesia::async_generate_token(io, tls, config, tts_for_a_minute(), asio::use_awaitable));

            auto [ec, response] = co_await cartesia::async_generate_token(
                io.get_executor(), tls, config, tts_for_a_minute(), asio::as_tuple(asio::use_awaitable));
            BOOST_TEST(!ec);
            check_token(response);

            cartesia::client_config wrong_key = config;
            wrong_key.api_key = "sk_car_wrong_key_000000";
            error_code redirected;
            auto nothing = co_await cartesia::async_generate_token(
                io, tls, wrong_key, {}, asio::redirect_error(asio::use_awaitable, redirected));
            BOOST_TEST(redirected == cartesia::error::unauthorized);
            BOOST_TEST(nothing.token.empty());

            try {
                co_await cartesia::async_generate_token(io, tls, wrong_key, {}, asio::use_awaitable);
                BOOST_FAIL("expected an exception");
            } catch (const boost::system::system_error& e) {
                BOOST_TEST(e.code() == cartesia::error::unauthorized);
            }
            ++completed;
        },
        [&](const std::exception_ptr& e) {
            BOOST_TEST(!e);
            ++completed;
        });
    io.run();
    BOOST_TEST(completed == 2);
}

BOOST_FIXTURE_TEST_CASE(deferred_is_the_default_and_runs_only_when_launched, server_fixture)
{
    auto operation = cartesia::async_generate_token(io, tls, config, tts_for_a_minute());
    static_assert(!std::is_same_v<decltype(operation), void>);
    io.run();
    io.restart();
    BOOST_TEST(server.connections_accepted() == 0u); // nothing happens until launched

    // The deferred operation owns copies of its arguments.
    auto launched_later = [&] {
        cartesia::client_config short_lived = config;
        return cartesia::async_generate_token(io, tls, short_lived, tts_for_a_minute(), asio::deferred);
    }();
    bool called = false;
    std::move(launched_later)([&](error_code ec, const token_response& response) {
        BOOST_TEST(!ec);
        check_token(response);
        called = true;
    });
    io.run();
    BOOST_TEST(called);
    BOOST_TEST(server.connections_accepted() == 1u);
}

BOOST_FIXTURE_TEST_CASE(bind_executor_runs_the_handler_on_the_bound_strand, server_fixture)
{
    auto strand = asio::make_strand(io);
    bool called = false;
    cartesia::async_generate_token(io, tls, config, tts_for_a_minute(),
                                   asio::bind_executor(strand, [&](error_code ec, const token_response&) {
                                       BOOST_TEST(!ec);
                                       BOOST_TEST(strand.running_in_this_thread());
                                       called = true;
                                   }));
    io.run();
    BOOST_TEST(called);
}

// A strand, a blocking.never executor and a thread_pool as the I/O executor, with
// handlers that have no executor of their own: each completes once, on that executor.
BOOST_FIXTURE_TEST_CASE(io_executors_other_than_an_io_contexts_own, server_fixture)
{
    int called = 0;
    auto strand = asio::make_strand(io);
    cartesia::async_generate_token(strand, tls, config, tts_for_a_minute(), [&](error_code ec, const token_response&) {
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(strand.running_in_this_thread());
        ++called;
    });
    cartesia::async_generate_token(asio::require(io.get_executor(), asio::execution::blocking.never), tls, config,
                                   tts_for_a_minute(), [&](error_code ec, const token_response&) {
                                       BOOST_TEST(!ec, ec.message());
                                       ++called;
                                   });
    io.run();
    BOOST_TEST(called == 2);

    asio::thread_pool pool(2);
    std::promise<error_code> done;
    cartesia::async_generate_token(pool.get_executor(), tls, config, tts_for_a_minute(),
                                   [&](error_code ec, const token_response&) { done.set_value(ec); });
    const error_code pooled = done.get_future().get();
    BOOST_TEST(!pooled, pooled.message());
    pool.join();
}

// The operation counts as work on the handler's executor: a context that has nothing
// else to do still waits for the handler, instead of returning from run() at once.
BOOST_FIXTURE_TEST_CASE(a_handler_bound_to_another_io_context_keeps_it_running, server_fixture)
{
    asio::io_context handler_context;
    bool called = false;
    cartesia::async_generate_token(io, tls, config, tts_for_a_minute(),
                                   asio::bind_executor(handler_context, [&](error_code ec, const token_response&) {
                                       BOOST_TEST(!ec, ec.message());
                                       called = true;
                                   }));
    std::thread io_thread([&] { io.run(); });
    const std::size_t handlers_run = handler_context.run();
    io_thread.join();
    BOOST_TEST(called);
    BOOST_TEST(handlers_run >= 1u);
}

BOOST_FIXTURE_TEST_CASE(bind_allocator_is_used_for_the_handler, server_fixture)
{
    std::size_t allocations = 0;
    bool called = false;
    cartesia::async_generate_token(io, tls, config, tts_for_a_minute(),
                                   asio::bind_allocator(cartesia::test::counting_allocator<void>(&allocations),
                                                        [&](error_code ec, const token_response&) {
                                                            BOOST_TEST(!ec);
                                                            called = true;
                                                        }));
    BOOST_TEST(allocations > 0u);
    io.run();
    BOOST_TEST(called);
}

BOOST_FIXTURE_TEST_CASE(stackful_spawn_with_yield_context, server_fixture)
{
    bool finished = false;
    asio::spawn(
        io,
        [&](asio::yield_context yield) {
            check_token(cartesia::async_generate_token(io, tls, config, tts_for_a_minute(), yield));
            error_code ec;
            cartesia::client_config wrong_key = config;
            wrong_key.api_key = "sk_car_wrong_key_000000";
            cartesia::async_generate_token(io, tls, wrong_key, {}, yield[ec]);
            BOOST_TEST(ec == cartesia::error::unauthorized);
        },
        [&](const std::exception_ptr& e) {
            BOOST_TEST(!e);
            finished = true;
        });
    io.run();
    BOOST_TEST(finished);
}

BOOST_AUTO_TEST_SUITE_END()
