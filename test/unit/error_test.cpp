#include "protocol.hpp"
#include <cartesia/diagnostics.hpp>
#include <cartesia/error.hpp>
#include <support/printing.hpp>

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(codes_belong_to_the_cartesia_category)
{
    boost::system::error_code ec = cartesia::error::timeout;
    BOOST_TEST(ec.category().name() == std::string("cartesia"));
    BOOST_TEST(ec.message() == "timeout");
    BOOST_TEST(ec == cartesia::error::timeout);
    BOOST_TEST(ec != cartesia::error::bad_response);
    for (int e = static_cast<int>(cartesia::error::invalid_argument);
         e <= static_cast<int>(cartesia::error::proxy_auth_required); ++e)
        BOOST_TEST(make_error_code(static_cast<cartesia::error>(e)).message() != "unknown cartesia error");
    BOOST_TEST(make_error_code(static_cast<cartesia::error>(static_cast<int>(cartesia::error::proxy_auth_required) + 1))
                   .message() == "unknown cartesia error");
    BOOST_TEST(make_error_code(cartesia::error::proxy_error).message() == "proxy error");
    BOOST_TEST(make_error_code(cartesia::error::proxy_auth_required).message() ==
               "proxy authentication required (HTTP 407)");
}

BOOST_AUTO_TEST_CASE(describe_success_and_plain_network_error)
{
    cartesia::diagnostics diag;
    BOOST_TEST(cartesia::describe({}, diag) == "success");
    const std::string line = cartesia::describe(boost::asio::error::connection_refused, diag);
    BOOST_TEST(line == boost::system::error_code(boost::asio::error::connection_refused).message());
}

BOOST_AUTO_TEST_CASE(describe_is_one_line_without_control_characters)
{
    // Server text with line breaks, a tab, DEL and an ANSI escape that would clear a terminal.
    cartesia::diagnostics diag;
    cartesia::detail::diagnostics_access::set_http_status(diag, 401);
    cartesia::detail::diagnostics_access::set_server_fields(diag, "Unauthorized", "bad\r\nkey\t\x1b[2J\x7f!", "",
                                                            "req\n1");
    const std::string line = cartesia::describe(cartesia::error::unauthorized, diag);
    BOOST_TEST(line == "HTTP 401 Unauthorized: bad  key  [2J ! (request id req 1)");
    for (const char c : line)
        BOOST_TEST((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
}

BOOST_AUTO_TEST_SUITE_END()

#include <cartesia/types.hpp>

#include <sstream>

BOOST_AUTO_TEST_SUITE(config_printing)

BOOST_AUTO_TEST_CASE(the_key_is_redacted_to_its_public_prefix)
{
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789secretpart";
    std::ostringstream printed;
    printed << config;
    BOOST_TEST(printed.str().find("sk_car_…") != std::string::npos, printed.str());
    BOOST_TEST(printed.str().find("0123456789") == std::string::npos);
    BOOST_TEST(printed.str().find("https://api.cartesia.ai") != std::string::npos);

    config.api_key = "legacy-key-without-prefix";
    std::ostringstream legacy;
    legacy << config;
    BOOST_TEST(legacy.str().find("legacy") == std::string::npos, legacy.str());
}

BOOST_AUTO_TEST_SUITE_END()
