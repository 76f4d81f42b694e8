// Mints one token with the installed library; prints it.
#include <cartesia/cartesia.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <iostream>

int main()
{
    const char* ca_file = std::getenv("CARTESIA_CA_FILE");
    const char* key = std::getenv("CARTESIA_API_KEY");
    const char* url = std::getenv("CARTESIA_BASE_URL");
    if (!ca_file || !key || !url) {
        std::cerr << "set CARTESIA_CA_FILE, CARTESIA_API_KEY and CARTESIA_BASE_URL\n";
        return 2;
    }
    boost::asio::io_context io;
    auto tls = cartesia::make_tls_context(ca_file);
    cartesia::client_config config;
    config.api_key = key;
    config.base_url = url;
    int status = 1;
    cartesia::async_generate_token(io, tls, config, {},
                                   [&](boost::system::error_code ec, cartesia::token_response response) {
                                       if (ec) {
                                           std::cerr << ec.message() << '\n';
                                           return;
                                       }
                                       std::cout << "consumer: " << response.token << '\n';
                                       status = 0;
                                   });
    io.run();
    return status;
}
