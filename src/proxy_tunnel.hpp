// The HTTP CONNECT tunnel through client_config::proxy: where the TCP connection
// goes, and the CONNECT exchange over it that comes before the TLS handshake with
// the API. Private to src/.
#ifndef CARTESIA_SRC_PROXY_TUNNEL_HPP
#define CARTESIA_SRC_PROXY_TUNNEL_HPP

#include "exchange.hpp"
#include "protocol.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>
#include <string_view>

namespace cartesia::detail {

// The host and port that the client itself resolves and connects to: the proxy's
// when it tunnels, the API's otherwise. The one place for that rule.
struct connect_target {
    std::string_view host; // no brackets
    std::string_view port;
    bool host_is_ip = false;
    bool is_proxy = false;
};
connect_target connect_target_of(const endpoint& where) noexcept;

// How messages name the connect target: "the proxy 127.0.0.1:3128" or the API's
// host[:port]. Never the proxy's user info.
std::string connect_target_name(const endpoint& where);

// "host:port" as CONNECT's request target and Host header want it ([v6]:port).
std::string tunnel_authority(const endpoint& where);

// The CONNECT request's bytes, with the Proxy-Authorization header when the proxy
// URL has user info. Holds a secret: never log it.
std::string serialize_connect_request(const endpoint& where);

// Reason phrases are the proxy's text: printable ASCII only, at most 64 bytes.
std::string sanitized_reason(std::string_view reason);

// Over `socket`, connected to where.network.proxy: writes CONNECT and reads the
// proxy's answer head. Succeeds on 2xx with nothing after the head, the tunnel then
// open for the TLS handshake with the API. A non-2xx answer gives
// error::proxy_auth_required (407) or error::proxy_error, with diag's http_status
// the proxy's; a transport failure gives the network error; the proxy taking longer
// than connect_timeout gives asio::error::timed_out. Each fills diag's client
// message, naming the proxy. Closing the socket (connection::abort()) makes it
// complete at once with operation_aborted.
asio::awaitable<error_code> open_tunnel(asio::ip::tcp::socket& socket, const endpoint& where, diagnostics& diag);

} // namespace cartesia::detail

#endif
