// The network half of client_config, parsed without I/O: the no_proxy matcher, the
// resolve overrides, the proxy URL, and their checks in validate().
#include "network_config.hpp"
#include "protocol.hpp"
#include <cartesia/error.hpp>
#include <support/printing.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace cd = cartesia::detail;
namespace ip = boost::asio::ip;
using cartesia::error;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view api_key = "sk_car_0123456789abcdef";

cartesia::client_config valid_config()
{
    cartesia::client_config config;
    config.api_key = std::string(api_key);
    return config;
}

struct validation {
    boost::system::error_code ec;
    std::string message;
    cd::endpoint where;
};

validation validate(const cartesia::client_config& config)
{
    validation result;
    cartesia::diagnostics diag;
    result.ec = cd::validate(config, {}, result.where, diag);
    result.message = diag.client_message();
    return result;
}

std::vector<std::string> to_strings(std::span<const ip::address> addresses)
{
    std::vector<std::string> out;
    for (const auto& address : addresses)
        out.push_back(address.to_string());
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(no_proxy)

struct match_case {
    const char* list;
    const char* host;
    bool bypass;
};

void check_cases(std::initializer_list<match_case> cases)
{
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT("no_proxy \"" << c.list << "\", host " << c.host)
        {
            BOOST_TEST(cd::no_proxy_list(c.list).matches(c.host) == c.bypass);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_asterisk_matches_every_host)
{
    check_cases({
        {"*", "api.cartesia.ai", true},
        {"*", "127.0.0.1", true},
        {"*", "::1", true},
        {" * ", "api.cartesia.ai", true},
        // curl honours "*" only as the whole list; in a list it can mean nothing else.
        {"localhost, *", "api.cartesia.ai", true},
        {"*.cartesia.ai", "api.cartesia.ai", false}, // no globbing: "*." is not a wildcard
    });
}

BOOST_AUTO_TEST_CASE(an_empty_list_matches_nothing)
{
    check_cases({
        {"", "api.cartesia.ai", false},
        {" , ,,  ", "api.cartesia.ai", false},
        {"", "127.0.0.1", false},
        {"api.cartesia.ai", "", false}, // no host, nothing to match
    });
}

BOOST_AUTO_TEST_CASE(a_name_matches_itself)
{
    check_cases({
        {"api.cartesia.ai", "api.cartesia.ai", true},
        {"localhost", "localhost", true},
        {"api.cartesia.ai", "cartesia.ai", false}, // not the parent domain
        {"api.cartesia.ai", "api.cartesia.ai.evil.example", false},
        {"foobar", "barfoo", false},
    });
}

BOOST_AUTO_TEST_CASE(a_name_matches_its_subdomains_with_or_without_a_leading_dot)
{
    check_cases({
        {"cartesia.ai", "api.cartesia.ai", true},
        {"cartesia.ai", "a.b.cartesia.ai", true},
        {".cartesia.ai", "api.cartesia.ai", true},
        {".cartesia.ai", "cartesia.ai", true}, // the leading dot is ignored, as curl does
        {"localhost,.example.com,.example.de", "www.example.com", true},
        {"www2.example.com, .example.net", "www.example.com", false},
    });
}

BOOST_AUTO_TEST_CASE(a_name_matches_whole_labels_only)
{
    check_cases({
        {"example.com", "badexample.com", false},
        {".example.com", "badexample.com", false},
        {"example.com", "www.badexample.com", false},
        {"ample.com", "example.com", false},
        {".example.com, .example.net", "nonexample.com", false},
    });
}

BOOST_AUTO_TEST_CASE(names_are_case_insensitive_and_trailing_dots_ignored)
{
    check_cases({
        {"Example.COM", "www.EXAMPLE.com", true},
        {"foo, bar", "BAr", true},
        {"example.com.", "www.example.com", true},
        {"example.com", "www.example.com.", true},
        {"example.com", "example.com.", true},
    });
}

BOOST_AUTO_TEST_CASE(blanks_are_ignored)
{
    check_cases({
        {"  foo ,  example.com  ", "example.com", true},
        {"foo,,,,,              bar, ::1/64", "bar", true},
        {"foo\texample.com", "example.com", true},
        {"foo example.com", "example.com", true}, // a blank separates entries, as a comma does
        {" , example.com , ", "www.example.com", true},
    });
}

BOOST_AUTO_TEST_CASE(ipv4_literals_match_addresses)
{
    check_cases({
        {"127.0.0.1", "127.0.0.1", true},
        {"127.0.0.1,localhost,", "127.0.0.1", true},
        {"localhost,127.0.0.1", "127.0.0.1", true},
        {"127.0.0.1", "127.0.0.2", false},
        {"192.168.0.0", "192.168.0.1", false}, // an address, not a range
        {"localhost", "127.0.0.1", false},     // names never match an IP literal
        {"127.0.0.1", "localhost", false},     // nor addresses a name
        {"127.0.0.1", "::ffff:127.0.0.1", false},
        {"127.0.0.1", "[::1]", false},
    });
}

BOOST_AUTO_TEST_CASE(ipv4_cidr_ranges_match_addresses)
{
    check_cases({
        {"10.0.0.0/8", "10.1.2.3", true},
        {"10.0.0.0/8", "11.0.0.1", false},
        {"192.168.0.0/16", "192.168.0.1", true},
        {"192.168.0.0/24", "192.168.0.1", true},
        {"192.168.0.0/24", "192.168.1.1", false},
        {"foo, bar, 192.168.0.0/16", "192.168.1.1", true},
        {"192.168.0.0/32", "192.168.0.1", false},
        {"127.0.0.1/8", "127.200.0.1", true}, // host bits in the entry are ignored
        {"127.0.0.1/31", "127.0.0.0", true},
        {"172.16.0.0/12", "172.31.255.255", true},
        {"172.16.0.0/12", "172.32.0.0", false},
        {"0.0.0.0/0", "203.0.113.9", true}, // every IPv4 address...
        {"0.0.0.0/0", "::1", false},        // ...and no IPv6 one
        {"10.0.0.0/33", "10.0.0.0", false}, // a bad prefix matches nothing, as in curl
        {"10.0.0.0/x", "10.0.0.0", false},
        {"10.0.0.0/", "10.0.0.0", false},
        {"10.0.0.0/8", "10.example.com", false},
        {"example.com/8", "example.com", false},
    });
}

BOOST_AUTO_TEST_CASE(ipv6_literals_match_addresses)
{
    check_cases({
        {"::1", "::1", true},
        {"::1", "[::1]", true},
        {"::1", "0:0::1", true}, // compared as addresses, not as text
        {"0:0::1", "::1", true},
        {"[::1]", "::1", true}, // brackets are accepted (curl wants none)
        {"::1", "::2", false},
        {"::1", "127.0.0.1", false},
        {"foo, bar, 192.168.0.0/16", "[::1]", false},
        {"localhost", "::1", false},
    });
}

BOOST_AUTO_TEST_CASE(ipv6_cidr_ranges_match_addresses)
{
    check_cases({
        {"fd00::/8", "fd12:3456::1", true},
        {"fd00::/8", "fe80::1", false},
        {"foo, bar, ::1/64", "[::1]", true},
        {"fe80::/10", "febf::1", true},
        {"fe80::/10", "fec0::1", false},
        {"2001:db8::/33", "2001:db8:7fff::1", true}, // a prefix ending inside a byte
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"2001:db8::1/128", "2001:db8::1", true},
        {"2001:db8::1/128", "2001:db8::2", false},
        {"[2001:db8::]/32", "2001:db8:1::1", true},
        {"::/0", "2001:db8::1", true},
        {"::/0", "10.0.0.1", false},
        {"::1/129", "::1", false},
    });
}

BOOST_AUTO_TEST_CASE(a_port_suffix_in_an_entry_is_ignored)
{
    check_cases({
        {"example.com:8080", "example.com", true},
        {"example.com:8080", "www.example.com", true},
        {".example.com:443", "api.example.com", true},
        {"127.0.0.1:8080", "127.0.0.1", true},
        {"10.0.0.0/8:8080", "10.2.3.4", true},
        {"[::1]:8080", "::1", true},
        {"[fd00::]/8:8080", "fd00::5", true},
        {"example.com:8080", "badexample.com", false},
    });
}

BOOST_AUTO_TEST_CASE(malformed_entries_match_nothing_and_spoil_nothing)
{
    check_cases({
        {"[::1", "::1", false},
        {"[::1]x, example.com", "::1", false},
        {"[::1]x, example.com", "example.com", true},
        {"[example.com]", "example.com", false},
        {".", "example.com", false},
        {"..", "example.com", false},
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(resolve)

cd::resolve_overrides parse_ok(const std::vector<std::string>& entries)
{
    cd::resolve_overrides overrides;
    cartesia::diagnostics diag;
    BOOST_TEST(!cd::resolve_overrides::parse(entries, overrides, diag), diag.client_message());
    return overrides;
}

using strings = std::vector<std::string>;

BOOST_AUTO_TEST_CASE(an_entry_gives_its_addresses_for_its_host_and_port_only)
{
    const auto overrides = parse_ok({"api.cartesia.ai:443:127.0.0.1"});
    BOOST_TEST(!overrides.empty());
    BOOST_TEST(to_strings(overrides.lookup("api.cartesia.ai", 443)) == strings{"127.0.0.1"});
    BOOST_TEST(overrides.lookup("api.cartesia.ai", 8443).empty());
    BOOST_TEST(overrides.lookup("cartesia.ai", 443).empty());
    BOOST_TEST(overrides.lookup("www.api.cartesia.ai", 443).empty());
    BOOST_TEST(overrides.lookup("api.cartesia.ai", 0).empty());
    BOOST_TEST(parse_ok({}).empty());
    BOOST_TEST(parse_ok({}).lookup("api.cartesia.ai", 443).empty());
}

BOOST_AUTO_TEST_CASE(several_addresses_keep_their_order_ipv6_with_or_without_brackets)
{
    const auto overrides = parse_ok({"h.example:443:[::1],127.0.0.1, ::2 ,[2001:db8::1]"});
    BOOST_TEST(to_strings(overrides.lookup("h.example", 443)) == (strings{"::1", "127.0.0.1", "::2", "2001:db8::1"}));
}

BOOST_AUTO_TEST_CASE(hosts_compare_case_insensitively_without_a_trailing_dot)
{
    const auto overrides = parse_ok({"API.Cartesia.AI:443:192.0.2.1"});
    BOOST_TEST(to_strings(overrides.lookup("api.cartesia.ai", 443)) == strings{"192.0.2.1"});
    BOOST_TEST(to_strings(overrides.lookup("api.CARTESIA.ai", 443)) == strings{"192.0.2.1"});
    BOOST_TEST(to_strings(overrides.lookup("api.cartesia.ai.", 443)) == strings{"192.0.2.1"});
    BOOST_TEST(to_strings(parse_ok({"api.cartesia.ai.:443:192.0.2.1"}).lookup("api.cartesia.ai", 443)) ==
               strings{"192.0.2.1"});
}

BOOST_AUTO_TEST_CASE(ip_literal_hosts_compare_as_addresses)
{
    const auto overrides = parse_ok({"[::1]:9000:127.0.0.1", "192.0.2.7:9000:::1"});
    BOOST_TEST(to_strings(overrides.lookup("::1", 9000)) == strings{"127.0.0.1"});
    BOOST_TEST(to_strings(overrides.lookup("[::1]", 9000)) == strings{"127.0.0.1"});
    BOOST_TEST(to_strings(overrides.lookup("0:0::1", 9000)) == strings{"127.0.0.1"});
    BOOST_TEST(to_strings(overrides.lookup("192.0.2.7", 9000)) == strings{"::1"});
    BOOST_TEST(overrides.lookup("::2", 9000).empty());
}

BOOST_AUTO_TEST_CASE(ports_compare_as_numbers)
{
    const auto overrides = parse_ok({"h.example:0443:192.0.2.1"});
    BOOST_TEST(to_strings(overrides.lookup("h.example", 443)) == strings{"192.0.2.1"});
}

BOOST_AUTO_TEST_CASE(the_later_entry_wins_and_a_host_wins_over_the_wildcard)
{
    const auto overrides =
        parse_ok({"h.example:443:192.0.2.1", "h.example:443:192.0.2.2", "*:443:192.0.2.9", "h.example:8443:192.0.2.3"});
    BOOST_TEST(to_strings(overrides.lookup("h.example", 443)) == strings{"192.0.2.2"});
    BOOST_TEST(to_strings(overrides.lookup("other.example", 443)) == strings{"192.0.2.9"});
    BOOST_TEST(to_strings(overrides.lookup("h.example", 8443)) == strings{"192.0.2.3"});
    BOOST_TEST(overrides.lookup("other.example", 8443).empty());
}

BOOST_AUTO_TEST_CASE(bad_entries_are_invalid_arguments_naming_the_entry)
{
    for (const char* bad : {"",
                            "h.example",
                            "h.example:443",
                            "h.example:443:",
                            "h.example:0:192.0.2.1",
                            "h.example:65536:192.0.2.1",
                            "h.example::192.0.2.1",
                            "h.example:4x3:192.0.2.1",
                            "h.example:443:not-an-address",
                            "h.example:443:192.0.2.1,",
                            "h.example:443:,192.0.2.1",
                            "h.example:443:192.0.2.256",
                            "h.example:443:[192.0.2.1",
                            "::1:443:192.0.2.1",
                            "[::1:443:192.0.2.1",
                            "[::1]443:192.0.2.1",
                            "[192.0.2.1]:443:192.0.2.1",
                            "[h.example]:443:192.0.2.1",
                            "bad host:443:192.0.2.1",
                            "h!x:443:192.0.2.1",
                            ":443:192.0.2.1",
                            ".:443:192.0.2.1",
                            "-h.example:443:192.0.2.1x"}) {
        BOOST_TEST_CONTEXT(bad)
        {
            // A valid entry first: the message must name the second one.
            const cd::resolve_overrides before = parse_ok({"kept.example:443:192.0.2.1"});
            cd::resolve_overrides overrides = before;
            cartesia::diagnostics diag;
            const auto ec = cd::resolve_overrides::parse({"h.example:443:192.0.2.1", bad}, overrides, diag);
            BOOST_TEST(ec == error::invalid_argument);
            BOOST_TEST(diag.client_message().starts_with("client_config::resolve[1] "), diag.client_message());
            // Left as it was.
            BOOST_TEST(to_strings(overrides.lookup("kept.example", 443)) == strings{"192.0.2.1"});
            BOOST_TEST(overrides.lookup("h.example", 443).empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(validate_parses_them_into_the_endpoint)
{
    auto config = valid_config();
    config.resolve = {"api.cartesia.ai:443:[::1],127.0.0.1"};
    const auto result = validate(config);
    BOOST_TEST(!result.ec, result.message);
    BOOST_TEST(to_strings(result.where.network.resolve.lookup(result.where.host, cd::parse_port(result.where.port))) ==
               (strings{"::1", "127.0.0.1"}));

    config.resolve.emplace_back("api.cartesia.ai:443");
    const auto bad = validate(config);
    BOOST_TEST(bad.ec == error::invalid_argument);
    BOOST_TEST(bad.message == "client_config::resolve[1] must be host:port:address[,address...], with an IPv6 host "
                              "in brackets");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(proxy)

cd::http_proxy parse_ok(std::string_view url)
{
    cd::http_proxy proxy;
    cartesia::diagnostics diag;
    BOOST_TEST(!cd::parse_proxy(url, proxy, diag), diag.client_message());
    return proxy;
}

BOOST_AUTO_TEST_CASE(host_and_port)
{
    struct case_t {
        const char* url;
        const char* host;
        const char* port;
        const char* display_name;
        bool is_ip;
    };
    for (const case_t& c : {
             case_t{"http://proxy.corp:3128", "proxy.corp", "3128", "proxy.corp:3128", false},
             case_t{"http://proxy.corp", "proxy.corp", "1080", "proxy.corp:1080", false}, // curl's default port
             case_t{"http://proxy.corp:3128/", "proxy.corp", "3128", "proxy.corp:3128", false},
             case_t{"HTTP://Proxy.Corp:3128", "Proxy.Corp", "3128", "Proxy.Corp:3128", false},
             case_t{"proxy.corp:3128", "proxy.corp", "3128", "proxy.corp:3128", false}, // no scheme: http
             case_t{"squid_proxy:3128", "squid_proxy", "3128", "squid_proxy:3128", false},
             case_t{"http://127.0.0.1:3128", "127.0.0.1", "3128", "127.0.0.1:3128", true},
             case_t{"http://[::1]:3128", "::1", "3128", "[::1]:3128", true},
             case_t{"http://[::1]", "::1", "1080", "[::1]:1080", true},
         }) {
        BOOST_TEST_CONTEXT(c.url)
        {
            const auto proxy = parse_ok(c.url);
            BOOST_TEST(proxy.host == c.host);
            BOOST_TEST(proxy.port == c.port);
            BOOST_TEST(proxy.display_name == c.display_name);
            BOOST_TEST(proxy.host_is_ip == c.is_ip);
            BOOST_TEST(proxy.user.empty());
            BOOST_TEST(proxy.password.empty());
            BOOST_TEST(proxy.authorization.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(user_info_is_percent_decoded_then_base64_encoded)
{
    const auto proxy = parse_ok("http://user:p%40ss:w0rd@proxy.corp:3128");
    BOOST_TEST(proxy.user == "user");
    BOOST_TEST(proxy.password == "p@ss:w0rd");                       // a password may hold ':', the user name not
    BOOST_TEST(proxy.authorization == "Basic dXNlcjpwQHNzOncwcmQ="); // base64("user:p@ss:w0rd")
    BOOST_TEST(proxy.display_name == "proxy.corp:3128");

    const auto spaced = parse_ok("http://jane%20doe:s%2Fcr%25t@proxy.corp:3128");
    BOOST_TEST(spaced.user == "jane doe");
    BOOST_TEST(spaced.password == "s/cr%t");
    BOOST_TEST(spaced.authorization == "Basic amFuZSBkb2U6cy9jciV0");

    // No '+' as a space in user info: that is a query's convention.
    BOOST_TEST(parse_ok("http://a+b:c@proxy.corp").user == "a+b");
}

BOOST_AUTO_TEST_CASE(base64_pads_as_rfc_4648_says)
{
    BOOST_TEST(parse_ok("http://user@proxy.corp").authorization == "Basic dXNlcjo="); // "user:", no password
    BOOST_TEST(parse_ok("http://a:@proxy.corp").authorization == "Basic YTo=");
    BOOST_TEST(parse_ok("http://ab:@proxy.corp").authorization == "Basic YWI6");
    BOOST_TEST(parse_ok("http://abc:@proxy.corp").authorization == "Basic YWJjOg==");
    BOOST_TEST(parse_ok("http://:pw@proxy.corp").authorization == "Basic OnB3");
    BOOST_TEST(parse_ok("http://@proxy.corp").authorization.empty()); // empty user info: no credentials
}

namespace {
// Each URL is an invalid_argument whose message starts with `message_start` and
// holds nothing of the user info.
void expect_invalid(std::initializer_list<const char*> urls, std::string_view message_start)
{
    for (const char* url : urls) {
        BOOST_TEST_CONTEXT(url)
        {
            cd::http_proxy proxy;
            proxy.host = "untouched";
            cartesia::diagnostics diag;
            BOOST_TEST(cd::parse_proxy(url, proxy, diag) == error::invalid_argument);
            const std::string message(diag.client_message());
            BOOST_TEST(message.starts_with(message_start), message);
            BOOST_TEST(message.find("s3cr3t") == std::string::npos, message);
            BOOST_TEST(proxy.host == "untouched");
        }
    }
}
} // namespace

BOOST_AUTO_TEST_CASE(https_proxies_are_refused_saying_so)
{
    expect_invalid({"https://proxy.corp:3128", "HTTPS://user:s3cr3t@proxy.corp"},
                   "client_config::proxy: https:// proxies (TLS to the proxy) are not supported");
}

BOOST_AUTO_TEST_CASE(other_schemes_are_refused)
{
    expect_invalid({"socks5://proxy.corp:1080", "socks5h://user:s3cr3t@proxy.corp", "ftp://proxy.corp"},
                   "client_config::proxy must be an http:// URL");
}

BOOST_AUTO_TEST_CASE(bad_ports_are_refused)
{
    expect_invalid({"http://proxy.corp:0", "http://proxy.corp:65536", "http://proxy.corp:100443",
                    "http://user:s3cr3t@proxy.corp:", "http://proxy.corp:0000"},
                   "client_config::proxy has an invalid port");
    // Boost.URL 1.81 reads these as a port and a path: refused all the same.
    expect_invalid({"http://proxy.corp:8x", "http://user:s3cr3t@proxy.corp:31x28"},
                   "client_config::proxy has an invalid host or port");
}

BOOST_AUTO_TEST_CASE(a_host_is_required)
{
    expect_invalid({"http://", "http://:3128", "http://user:s3cr3t@:3128", "http:///"},
                   "client_config::proxy must name a host");
    expect_invalid({"http://a!b:3128", "http://a~b.corp"}, "client_config::proxy has an invalid host name");
}

BOOST_AUTO_TEST_CASE(paths_queries_and_fragments_are_refused)
{
    expect_invalid({"http://proxy.corp:3128/path", "http://proxy.corp:3128?x=1", "http://proxy.corp:3128#f",
                    "http://user:s3cr3t@proxy.corp/p"},
                   "client_config::proxy must not carry a path, a query or a fragment");
}

BOOST_AUTO_TEST_CASE(malformed_urls_are_refused_without_quoting_them)
{
    expect_invalid({"http://user:s3cr3t@pro xy.corp", "http://us er:s3cr3t@proxy.corp",
                    "http://user:s3cr3t%zz@proxy.corp", "http://[::1:3128", "http://user:s3cr3t@[::1"},
                   "client_config::proxy is not a valid URL");
    // Boost.URL ends the authority at the second '@' and finds a path that is not one.
    expect_invalid({"http://user:s3cr3t@@proxy.corp", "http://user:s3cr3t@proxy.corp@other"},
                   "client_config::proxy has an invalid host or port");
}

BOOST_AUTO_TEST_CASE(user_names_with_colons_and_control_characters_are_refused)
{
    expect_invalid({"http://us%3Aer:s3cr3t@proxy.corp"}, "client_config::proxy's user name must not contain ':'");
    expect_invalid({"http://user:s3cr3t%0D%0AX-Injected:%201@proxy.corp", "http://us%00er:s3cr3t@proxy.corp"},
                   "client_config::proxy's user name and password must not contain control characters");
}

BOOST_AUTO_TEST_CASE(redaction_hides_the_credentials_of_any_string)
{
    const auto r = [](std::string_view url) { return cd::redact_url_credentials(url); };
    BOOST_TEST(r("") == "");
    BOOST_TEST(r("http://proxy.corp:3128") == "http://proxy.corp:3128");
    BOOST_TEST(r("http://proxy.corp:3128/") == "http://proxy.corp:3128/");
    BOOST_TEST(r("http://[::1]:3128") == "http://[::1]:3128");
    BOOST_TEST(r("http://[::1]") == "http://[::1]");
    BOOST_TEST(r("https://api.cartesia.ai/v1") == "https://api.cartesia.ai/v1");
    BOOST_TEST(r("http://TOKEN@proxy.corp:3128") == "http://…@proxy.corp:3128"); // a token as the user name
    BOOST_TEST(r("http://user:p%40ss@proxy.corp:3128") == "http://…@proxy.corp:3128");
    BOOST_TEST(r("http://:pw@proxy.corp") == "http://…@proxy.corp");
    BOOST_TEST(r("user:pw@proxy.corp:3128") == "…@proxy.corp:3128");
    // Invalid URLs, which validation refuses, are printed too: the secret still goes.
    BOOST_TEST(r("http://user:p@ss@proxy.corp") == "http://…@proxy.corp");
    BOOST_TEST(r("http://user:pa/ss@proxy.corp") == "http://…@proxy.corp");
    BOOST_TEST(r("user:pa://ss@proxy.corp") == "…@proxy.corp");
    BOOST_TEST(r("socks5://u:pw:more@h") == "socks5://…@h");
    BOOST_TEST(r("http://user:secret") == "http://user:…"); // the host forgotten
    BOOST_TEST(r("user:se/cret") == "user:…");
    BOOST_TEST(r("https://user:pw@api.cartesia.ai") == "https://…@api.cartesia.ai");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(network_validation)

BOOST_AUTO_TEST_CASE(defaults_connect_directly)
{
    const auto result = validate(valid_config());
    BOOST_TEST(!result.ec, result.message);
    BOOST_TEST(!result.where.network.proxy.has_value());
    BOOST_TEST(result.where.network.resolve.empty());
    BOOST_TEST(result.where.network.connect_timeout.count() == 10000);
    BOOST_TEST(result.where.network.connection_attempt_delay.count() == 250);
}

BOOST_AUTO_TEST_CASE(the_timings_are_checked_and_copied)
{
    auto config = valid_config();
    config.connect_timeout = 0ms;
    BOOST_TEST(validate(config).ec == error::invalid_argument);
    BOOST_TEST(validate(config).message == "client_config::connect_timeout must be positive");
    config.connect_timeout = -5ms;
    BOOST_TEST(validate(config).message == "client_config::connect_timeout must be positive");

    config.connect_timeout = 1500ms;
    config.connection_attempt_delay = -1ms;
    BOOST_TEST(validate(config).ec == error::invalid_argument);
    BOOST_TEST(validate(config).message == "client_config::connection_attempt_delay must not be negative");

    config.connection_attempt_delay = 0ms; // no head start: every address at once
    const auto result = validate(config);
    BOOST_TEST(!result.ec, result.message);
    BOOST_TEST(result.where.network.connect_timeout.count() == 1500);
    BOOST_TEST(result.where.network.connection_attempt_delay.count() == 0);
}

BOOST_AUTO_TEST_CASE(a_proxy_is_used_unless_no_proxy_names_the_api_host)
{
    auto config = valid_config();
    config.proxy = "http://user:p%40ss@proxy.corp:3128";
    auto result = validate(config);
    BOOST_TEST(!result.ec, result.message);
    BOOST_REQUIRE(result.where.network.proxy.has_value());
    BOOST_TEST(result.where.network.proxy->display_name == "proxy.corp:3128");
    BOOST_TEST(result.where.network.proxy->authorization == "Basic dXNlcjpwQHNz");

    for (const char* bypass : {"cartesia.ai", ".cartesia.ai", "api.cartesia.ai", "*", "localhost, API.cartesia.ai"}) {
        BOOST_TEST_CONTEXT(bypass)
        {
            config.no_proxy = bypass;
            result = validate(config);
            BOOST_TEST(!result.ec, result.message);
            BOOST_TEST(!result.where.network.proxy.has_value());
        }
    }
    config.no_proxy = "localhost,127.0.0.1,badcartesia.ai";
    BOOST_TEST(validate(config).where.network.proxy.has_value());

    config.base_url = "https://127.0.0.1:9000";
    config.no_proxy = "127.0.0.0/8";
    BOOST_TEST(!validate(config).where.network.proxy.has_value());
    config.base_url = "https://[::1]:9000";
    config.no_proxy = "::1";
    BOOST_TEST(!validate(config).where.network.proxy.has_value());
}

BOOST_AUTO_TEST_CASE(a_bad_proxy_is_refused_even_when_bypassed)
{
    auto config = valid_config();
    config.proxy = "https://proxy.corp:3128";
    config.no_proxy = "*";
    BOOST_TEST(validate(config).ec == error::invalid_argument);
}

BOOST_AUTO_TEST_CASE(the_network_fields_are_checked_after_the_others)
{
    auto config = valid_config();
    config.proxy = "ftp://proxy.corp";
    config.resolve = {"bad"};
    config.connect_timeout = 0ms;
    config.base_url = "http://api.cartesia.ai";
    BOOST_TEST(validate(config).message == "client_config::base_url must use https");
    config.base_url = "https://api.cartesia.ai";
    BOOST_TEST(validate(config).message == "client_config::connect_timeout must be positive");
    config.connect_timeout = 1000ms;
    BOOST_TEST(validate(config).message == "client_config::proxy must be an http:// URL");
    config.proxy.clear();
    BOOST_TEST(validate(config).message.starts_with("client_config::resolve[0] "));
}

// Whatever is wrong, neither the proxy's password nor the API key reaches the message.
BOOST_AUTO_TEST_CASE(messages_never_hold_the_password_or_the_key)
{
    const std::string password = "Sup3rS3cret";
    for (const std::string& proxy :
         {"https://user:" + password + "@proxy.corp", "socks5://user:" + password + "@proxy.corp",
          "http://user:" + password + "@proxy.corp:0", "http://user:" + password + "@proxy.corp:3128/x",
          "http://user:" + password + "@:3128", "http://user:" + password + "@@proxy.corp",
          "http://us%3Aer:" + password + "@proxy.corp", "http://user:" + password + "%0A@proxy.corp",
          "http://user:" + password + "@bad!host", "user:" + password + "@proxy.corp:8x",
          "http://user:" + password + "@proxy.corp"}) {
        BOOST_TEST_CONTEXT(proxy)
        {
            auto config = valid_config();
            config.proxy = proxy;
            config.resolve = {"api.cartesia.ai:443:" + std::string(api_key)};
            cd::endpoint where;
            cartesia::diagnostics diag;
            BOOST_TEST(cd::validate(config, {}, where, diag) == error::invalid_argument);
            const std::string text = cartesia::describe(error::invalid_argument, diag);
            BOOST_TEST(text.find(password) == std::string::npos, text);
            BOOST_TEST(text.find(api_key) == std::string::npos, text);
            BOOST_TEST(text.find("0123456789") == std::string::npos, text);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
