// Mint tokens with plain completion handlers, and cancel one of them with a
// cancellation_signal: the pattern for per-request cancellation in callback code.
#include "environment.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <iostream>

namespace asio = boost::asio;

int main()
{
    try {
        asio::io_context io;
        auto tls = tls_from_environment();
        const auto config = config_from_environment();
        int status = 0;

        cartesia::diagnostics diag; // must outlive the operation
        cartesia::async_generate_token(io, tls, config, cartesia::token_request{}, diag,
                                       [&](boost::system::error_code ec, const cartesia::token_response& response) {
                                           if (ec) {
                                               std::cerr << "failed: " << cartesia::describe(ec, diag) << '\n';
                                               status = 1;
                                               return;
                                           }
                                           std::cout << "callback: " << response.token << '\n';
                                       });

        // A second request, cancelled before it can finish: its handler runs once,
        // with operation_aborted, and its connection is closed.
        asio::cancellation_signal cancel;
        cartesia::async_generate_token(
            io, tls, config, cartesia::token_request{},
            asio::bind_cancellation_slot(
                cancel.slot(), [&](boost::system::error_code ec, const cartesia::token_response&) {
                    std::cout << "callback: second request "
                              << (ec == asio::error::operation_aborted ? "cancelled" : "not cancelled") << '\n';
                }));
        asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });

        io.run();
        return status;
    } catch (const std::exception& e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
