// Mint a token from synchronous code: the io_context runs on a background thread
// and std::future hands the result back.
#include "environment.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>
#include <thread>

namespace asio = boost::asio;

int main()
{
    try {
        asio::io_context io;
        auto work = asio::make_work_guard(io); // keeps run() going between operations
        std::thread io_thread([&io] { io.run(); });

        auto tls = tls_from_environment();
        cartesia::token_request request;
        request.grants = cartesia::token_grant{.stt = true};
        std::future<cartesia::token_response> pending =
            cartesia::async_generate_token(io, tls, config_from_environment(), request, asio::use_future);

        int status = 0;
        try {
            std::cout << "future: " << pending.get().token << '\n'; // get() rethrows a failure
        } catch (const boost::system::system_error& e) {
            // Without a diagnostics object, the code alone: e.g. "unauthorized (HTTP 401)".
            std::cerr << "failed: " << e.code().message() << '\n';
            status = 1;
        }
        work.reset();
        io_thread.join();
        return status;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
