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
    for (int e = static_cast<int>(cartesia::error::invalid_argument); e <= static_cast<int>(cartesia::error::timeout);
         ++e)
        BOOST_TEST(make_error_code(static_cast<cartesia::error>(e)).message() != "unknown cartesia error");
}

BOOST_AUTO_TEST_CASE(describe_success_and_plain_network_error)
{
    cartesia::diagnostics diag;
    BOOST_TEST(cartesia::describe({}, diag) == "success");
    const std::string line = cartesia::describe(boost::asio::error::connection_refused, diag);
    BOOST_TEST(line == boost::system::error_code(boost::asio::error::connection_refused).message());
}

BOOST_AUTO_TEST_SUITE_END()
