// The network half of client_config, parsed: the HTTP proxy, curl's --resolve
// overrides, curl's NO_PROXY list and the connect timings. No I/O here: validate()
// parses and checks these once, before any I/O, and the connect path (Happy
// Eyeballs, the CONNECT tunnel) only reads the result. Private to src/, the unit
// tests and the fuzzers.
#ifndef CARTESIA_SRC_NETWORK_CONFIG_HPP
#define CARTESIA_SRC_NETWORK_CONFIG_HPP

#include <cartesia/diagnostics.hpp>
#include <cartesia/types.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cartesia::detail {

// The value of decimal digits (leading zeros allowed) from 1 to 65535; 0 for
// anything else, so that 0 means "not a port".
std::uint16_t parse_port(std::string_view digits) noexcept;

// client_config::proxy, parsed: an HTTP proxy that the API is reached through with
// CONNECT.
struct http_proxy {
    std::string host;        // a name, or an IP literal without brackets
    std::string port;        // as written in the URL, else "1080" (curl's default)
    bool host_is_ip = false; // an IP literal: nothing to resolve
    // How messages name the proxy: host:port ([v6]:port), never the user info.
    std::string display_name;
    std::string user;     // percent-decoded
    std::string password; // percent-decoded; a secret like the API key, never in a message
    // The value of the Proxy-Authorization header, "Basic <base64(user:password)>";
    // empty when the URL has no user info.
    std::string authorization;
};

// Parses a non-empty client_config::proxy. "[http://][user:password@]host[:port][/]";
// without a scheme, http:// is assumed (as curl does). https:// proxies are refused.
// On failure returns error::invalid_argument with a client message naming the field
// and never quoting the URL (it may hold the password).
boost::system::error_code parse_proxy(std::string_view url, http_proxy& out, diagnostics& diag);

// The URL with its user info (user name and password) replaced by "…", for a
// log: works on any string, valid URL or not, since an invalid one may hold a
// password too ("user:secret" with the host forgotten loses what follows ':').
std::string redact_url_credentials(std::string_view url);

// client_config::resolve, parsed: curl's --resolve entries "host:port:addr[,addr...]"
// (an IPv6 host in brackets, IPv6 addresses with or without), which give the
// addresses of a host and port so that the resolver is not asked. The host "*"
// stands for any host on that port.
class resolve_overrides {
public:
    // On failure returns error::invalid_argument with a client message naming the
    // entry by its index, and leaves `out` as it was.
    static boost::system::error_code parse(const std::vector<std::string>& entries, resolve_overrides& out,
                                           diagnostics& diag);

    // The addresses configured for `host` (a name or an IP literal, IPv6 with or
    // without brackets, case-insensitive, a trailing dot ignored) and `port`, in the
    // order written; empty when none is: resolve the name as usual. An entry for the
    // host itself wins over a "*" entry; of two entries for the same host and port,
    // the later wins (curl's rules).
    std::span<const boost::asio::ip::address> lookup(std::string_view host, std::uint16_t port) const;

    bool empty() const noexcept { return entries_.empty(); }

private:
    struct entry {
        std::string host; // lowercase, no brackets, no trailing dot; an IP literal in canonical form
        std::uint16_t port = 0;
        std::vector<boost::asio::ip::address> addresses; // never empty
    };
    std::vector<entry> entries_;
};

// client_config::no_proxy, parsed with curl's rules: entries separated by commas
// (and blanks, which are otherwise ignored); "*" matches every host; a name matches
// itself and its subdomains, with or without a leading dot ("example.com" and
// ".example.com" both match "www.example.com", never "badexample.com"); an IPv4 or
// IPv6 literal, or a CIDR range ("10.0.0.0/8", "fd00::/8"), matches a host given as
// an IP literal; case-insensitive; a trailing dot ignored. Beyond curl: an IPv6
// entry may be in brackets, a port suffix on an entry (":8080") is ignored, and a
// "*" entry matches all even in a list. Never fails: like curl, an entry that can
// match nothing ("10.0.0.0/33") is dropped.
class no_proxy_list {
public:
    no_proxy_list() = default;
    explicit no_proxy_list(std::string_view list);

    // Whether `host` (a name or an IP literal, IPv6 with or without brackets)
    // bypasses the proxy.
    bool matches(std::string_view host) const;

private:
    struct address_range {
        boost::asio::ip::address network;
        unsigned prefix_length = 0; // 0..32 for IPv4, 0..128 for IPv6
    };
    bool matches_all_ = false;
    std::vector<std::string> names_; // lowercase, without the leading and trailing dots, never empty
    std::vector<address_range> ranges_;
};

// What the connect path needs of client_config beyond the API's address.
struct network_config {
    // The proxy to tunnel through; unset: connect directly, because there is no
    // proxy or because no_proxy names the API's host.
    std::optional<http_proxy> proxy;
    // For the names the client resolves itself: the API's host when connecting
    // directly, the proxy's host when tunnelling (the proxy resolves the API's).
    resolve_overrides resolve;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds connection_attempt_delay{250};
};

// Checks and parses connect_timeout, connection_attempt_delay, proxy, resolve and
// no_proxy, in that order, for requests to `api_host` (as endpoint::host holds it).
// On failure returns error::invalid_argument with a client message naming the field.
boost::system::error_code parse_network_config(const client_config& config, std::string_view api_host,
                                               network_config& out, diagnostics& diag);

} // namespace cartesia::detail

#endif
