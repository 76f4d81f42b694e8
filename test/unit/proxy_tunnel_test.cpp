// The sans-io parts of the CONNECT tunnel (proxy_tunnel.hpp): where the client
// connects, how it names that in messages, the CONNECT request's bytes, and what
// of the proxy's reason phrase may reach a message. The tunnel itself runs against
// squid in integration_proxy.
#include "protocol.hpp"
#include "proxy_tunnel.hpp"

#include <boost/test/unit_test.hpp>

#include <string>

namespace {

namespace cd = cartesia::detail;

cd::endpoint endpoint_of(const std::string& base_url, const std::string& proxy, const std::string& no_proxy = {})
{
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789abcdef";
    config.base_url = base_url;
    config.proxy = proxy;
    config.no_proxy = no_proxy;
    cd::endpoint where;
    cartesia::diagnostics diag;
    BOOST_REQUIRE_MESSAGE(!cd::validate(config, {}, where, diag), diag.client_message());
    return where;
}

} // namespace

BOOST_AUTO_TEST_SUITE(proxy_tunnel)

BOOST_AUTO_TEST_CASE(the_client_connects_to_the_proxy_when_it_tunnels)
{
    const auto where = endpoint_of("https://api.example.com", "http://proxy.corp:3128");
    const auto target = cd::connect_target_of(where);
    BOOST_TEST(target.host == "proxy.corp");
    BOOST_TEST(target.port == "3128");
    BOOST_TEST(target.is_proxy);
    BOOST_TEST(!target.host_is_ip);
    BOOST_TEST(cd::connect_target_name(where) == "the proxy proxy.corp:3128");
}

BOOST_AUTO_TEST_CASE(the_client_connects_to_the_api_when_no_proxy_names_it)
{
    const auto where = endpoint_of("https://api.example.com", "http://proxy.corp:3128", ".example.com");
    const auto target = cd::connect_target_of(where);
    BOOST_TEST(target.host == "api.example.com");
    BOOST_TEST(target.port == "443");
    BOOST_TEST(!target.is_proxy);
}

BOOST_AUTO_TEST_CASE(an_ip_literal_proxy_needs_no_resolver_and_is_named_without_its_user_info)
{
    const auto where = endpoint_of("https://api.example.com", "http://tester:s3cret@[::1]:3128");
    const auto target = cd::connect_target_of(where);
    BOOST_TEST(target.host == "::1");
    BOOST_TEST(target.host_is_ip);
    const std::string name = cd::connect_target_name(where);
    BOOST_TEST(name == "the proxy [::1]:3128");
    BOOST_TEST(name.find("s3cret") == std::string::npos);
    BOOST_TEST(name.find("tester") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(connect_names_the_api_host_and_port_with_basic_credentials_decoded)
{
    const auto where = endpoint_of("https://api.example.com/v1", "http://tester:p%40ss@proxy.corp:3128");
    BOOST_TEST(cd::tunnel_authority(where) == "api.example.com:443");
    BOOST_TEST(cd::serialize_connect_request(where) == "CONNECT api.example.com:443 HTTP/1.1\r\n"
                                                       "Host: api.example.com:443\r\n"
                                                       "Proxy-Authorization: Basic dGVzdGVyOnBAc3M=\r\n"
                                                       "\r\n");
}

BOOST_AUTO_TEST_CASE(connect_without_user_info_has_no_authorization_and_brackets_ipv6)
{
    const auto where = endpoint_of("https://[::1]:8443", "http://proxy.corp:3128");
    BOOST_TEST(cd::tunnel_authority(where) == "[::1]:8443");
    BOOST_TEST(cd::serialize_connect_request(where) == "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_reason_phrase_keeps_printable_ascii_only_and_is_bounded)
{
    BOOST_TEST(cd::sanitized_reason("Proxy Authentication Required") == "Proxy Authentication Required");
    BOOST_TEST(cd::sanitized_reason("Bad\r\nX-Injected: 1") == "Bad??X-Injected: 1");
    BOOST_TEST(cd::sanitized_reason("caf\xc3\xa9") == "caf??");
    BOOST_TEST(cd::sanitized_reason("Forbidden   ") == "Forbidden");
    BOOST_TEST(cd::sanitized_reason("") == "");
    const std::string endless(1000, 'x');
    BOOST_TEST(cd::sanitized_reason(endless).size() == 64u);
}

BOOST_AUTO_TEST_SUITE_END()
