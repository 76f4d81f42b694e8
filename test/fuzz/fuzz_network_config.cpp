// validate() on the network fields of client_config (proxy, no_proxy, resolve) and
// the no_proxy matcher and printing on their own: configuration that comes from
// HTTPS_PROXY and NO_PROXY, so parsed as untrusted.
//
// Input: proxy, no_proxy and a host to match, each a FuzzedDataProvider string
// (ended by a backslash and one other byte), then the resolve entries (the rest,
// one per line).
//
// A refused configuration must say so with a fixed message, which therefore cannot
// quote the proxy's password; an accepted proxy must give a host, a port, a name
// for messages without user info, and a Proxy-Authorization that decodes to the
// user and password; printing must never show the password; no_proxy must match
// case-insensitively and match the subdomains of every name it matches.
#include "fuzz_support.hpp"

#include "network_config.hpp"
#include "protocol.hpp"
#include <cartesia/error.hpp>

#include <boost/url/parse.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace cd = cartesia::detail;
using cartesia::fuzz::require;

// Every text validate() may give for these fields; none quotes a value.
bool is_fixed_message(std::string_view message)
{
    static constexpr std::array<std::string_view, 10> proxy_messages{
        "client_config::proxy is not a valid URL: it must be http://[user:password@]host[:port], with '%', ':' and "
        "'@' percent-encoded in the user name and password",
        "client_config::proxy: https:// proxies (TLS to the proxy) are not supported; use an http:// proxy URL (the "
        "connection to the API through it is TLS all the same)",
        "client_config::proxy must be an http:// URL",
        "client_config::proxy has an invalid host or port",
        "client_config::proxy must not carry a path, a query or a fragment",
        "client_config::proxy must name a host",
        "client_config::proxy has an invalid host name",
        "client_config::proxy has an invalid port",
        "client_config::proxy's user name must not contain ':' (even percent-encoded)",
        "client_config::proxy's user name and password must not contain control characters",
    };
    if (std::find(proxy_messages.begin(), proxy_messages.end(), message) != proxy_messages.end())
        return true;
    constexpr std::string_view resolve_prefix = "client_config::resolve[";
    if (!message.starts_with(resolve_prefix))
        return false;
    message.remove_prefix(resolve_prefix.size());
    const auto close = message.find("] ");
    if (close == 0 || close == std::string_view::npos ||
        !std::all_of(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(close),
                     [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    message.remove_prefix(close + 2);
    for (std::string_view problem :
         {"must be host:port:address[,address...], with an IPv6 host in brackets", "has an invalid port",
          "has an invalid host", "has no address", "has an invalid address"})
        if (message == problem)
            return true;
    return false;
}

std::string base64_decode(std::string_view text)
{
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::uint32_t bits = 0;
    int count = 0;
    for (char c : text) {
        if (c == '=')
            break;
        const auto value = alphabet.find(c);
        require(value != std::string_view::npos, "Proxy-Authorization is base64", text);
        bits = bits << 6U | static_cast<std::uint32_t>(value);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out += static_cast<char>((bits >> static_cast<unsigned>(count)) & 0xffU);
        }
    }
    return out;
}

std::string ascii_upper(std::string_view text)
{
    std::string out(text);
    for (char& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}

bool is_ip_literal(std::string_view host)
{
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address(std::string(host), ec);
    return !ec;
}

void check_no_proxy(const std::string& list, const std::string& host)
{
    const cd::no_proxy_list no_proxy(list);
    const bool matched = no_proxy.matches(host);
    require(no_proxy.matches(ascii_upper(host)) == matched, "no_proxy is case-insensitive", list + " | " + host);
    if (list == "*")
        require(host.empty() || matched, "\"*\" matches every host", host);
    if (matched && !host.empty() && !host.starts_with('.') && !host.starts_with('[') && !is_ip_literal(host))
        require(no_proxy.matches("sub." + host), "a name that matches has its subdomains match", list + " | " + host);
}

void check_proxy(const cartesia::client_config& config, const cd::http_proxy& proxy)
{
    const std::string& url = config.proxy;
    require(!proxy.host.empty(), "an accepted proxy names a host", url);
    require(cd::parse_port(proxy.port) != 0, "its port is 1..65535", url + " -> " + proxy.port);
    require(proxy.display_name.ends_with(":" + proxy.port), "its display name ends with the port", proxy.display_name);
    require(proxy.display_name.find('@') == std::string::npos, "its display name holds no user info",
            proxy.display_name);
    if (proxy.authorization.empty()) {
        require(proxy.user.empty() && proxy.password.empty(), "credentials are sent when there are some", url);
    } else {
        require(proxy.authorization.starts_with("Basic "), "Proxy-Authorization is Basic", proxy.authorization);
        require(base64_decode(std::string_view(proxy.authorization).substr(6)) == proxy.user + ':' + proxy.password,
                "Proxy-Authorization decodes to user:password", url);
        require(proxy.user.find(':') == std::string::npos, "the user name holds no colon", url);
    }

    // The password as written in the URL must not survive printing.
    const std::string with_scheme = url.find("://") == std::string::npos ? "http://" + url : url;
    const auto parsed = boost::urls::parse_uri(with_scheme);
    require(parsed.has_value(), "an accepted proxy is a URL", url);
    if (parsed->has_password() && !parsed->encoded_password().empty()) {
        const std::string user_info =
            std::string(parsed->encoded_user()) + ':' + std::string(parsed->encoded_password()) + '@';
        const std::string redacted = cd::redact_url_credentials(url);
        require(redacted.find(user_info) == std::string::npos, "redaction hides the proxy's password", redacted);
        std::ostringstream printed;
        printed << config;
        require(printed.str().find(", proxy: " + redacted + ", no_proxy: ") != std::string::npos,
                "operator<< prints the proxy redacted", printed.str());
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider input(data, size);
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789abcdef";
    config.proxy = input.ConsumeRandomLengthString(256);
    config.no_proxy = input.ConsumeRandomLengthString(256);
    const std::string host = input.ConsumeRandomLengthString(128);
    std::string rest = input.ConsumeRemainingBytesAsString();
    for (std::size_t begin = 0; begin < rest.size() && config.resolve.size() < 8;) {
        const auto end = std::min(rest.find('\n', begin), rest.size());
        config.resolve.push_back(rest.substr(begin, end - begin));
        begin = end + 1;
    }

    check_no_proxy(config.no_proxy, host);

    cd::endpoint where;
    cartesia::diagnostics diag;
    const auto ec = cd::validate(config, cartesia::token_request{}, where, diag);
    cartesia::fuzz::require_key_absent(diag, config.api_key);
    if (ec) {
        require(ec == cartesia::error::invalid_argument, "a bad configuration is an invalid argument", config.proxy);
        require(is_fixed_message(diag.client_message()), "the message is a fixed text", diag.client_message());
        return 0;
    }

    if (!config.proxy.empty()) {
        cd::http_proxy proxy;
        require(!cd::parse_proxy(config.proxy, proxy, diag), "validate() and parse_proxy() agree", config.proxy);
        check_proxy(config, proxy);
        require(where.network.proxy.has_value() != cd::no_proxy_list(config.no_proxy).matches(where.host),
                "the proxy is used unless no_proxy names the API's host", config.no_proxy);
    }
    // Every accepted entry is found again by its host and port.
    for (const std::string& entry : config.resolve) {
        if (entry.starts_with('[') || entry.starts_with('*'))
            continue;
        const auto first = entry.find(':');
        const auto second = entry.find(':', first + 1);
        const std::string entry_host = entry.substr(0, first);
        const auto port = cd::parse_port(std::string_view(entry).substr(first + 1, second - first - 1));
        require(port != 0 && !where.network.resolve.lookup(entry_host, port).empty(),
                "an accepted resolve entry is found by its host and port", entry);
    }
    return 0;
}
