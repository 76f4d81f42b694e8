// Mint a token from a C++20 coroutine, with an overall time limit.
#include "environment.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<int> mint(asio::ssl::context& tls, cartesia::client_config config)
{
    auto executor = co_await asio::this_coro::executor;
    cartesia::token_request request;
    request.grants = cartesia::token_grant{.tts = true};
    request.expires_in = std::chrono::seconds(60);

    // The library bounds each attempt (config.timeout); `||` bounds the whole call,
    // retries included: whichever finishes first cancels the other. `||` waits for
    // the first *success*, so the token operation reports errors as a value
    // (as_tuple) rather than an exception: a failure then ends the race at once.
    asio::steady_timer limit(executor, std::chrono::seconds(10));
    cartesia::diagnostics diag;
    auto first = co_await (
        cartesia::async_generate_token(executor, tls, config, request, diag, asio::as_tuple(asio::use_awaitable)) ||
        limit.async_wait(asio::use_awaitable));
    if (first.index() == 1) {
        std::cerr << "gave up after 10 s\n";
        co_return 1;
    }
    auto [ec, response] = std::get<0>(std::move(first));
    if (ec) {
        // describe() puts the status, the server's message and its request id on one line.
        std::cerr << "failed: " << cartesia::describe(ec, diag) << '\n';
        co_return 1;
    }
    std::cout << "coroutine: " << response.token << '\n';
    co_return 0;
}

int main()
{
    try {
        asio::io_context io;
        auto tls = tls_from_environment();
        int status = 1;
        asio::co_spawn(io, mint(tls, config_from_environment()), [&](const std::exception_ptr& e, int result) {
            if (e)
                std::rethrow_exception(e);
            status = result;
        });
        io.run();
        return status;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
