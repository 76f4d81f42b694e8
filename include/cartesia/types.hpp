// The request, the response and the configuration of the access-token API.
#ifndef CARTESIA_TYPES_HPP
#define CARTESIA_TYPES_HPP

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace cartesia {

struct event; // events.hpp

/// The capabilities a token grants. An unset member is not sent, leaving the
/// server's default; `false` is sent as `false`.
struct token_grant {
    std::optional<bool> tts{};   ///< `/tts/bytes`, `/tts/sse`, `/tts/websocket`.
    std::optional<bool> stt{};   ///< `/stt/websocket`, `/stt`, `/audio/transcriptions`.
    std::optional<bool> agent{}; ///< Agent web calls.
};

/// The body of `POST /access-token`. Only the members that are set are sent.
struct token_request {
    std::optional<token_grant> grants{};
    /// Lifetime of the token, 1 to 3600 seconds (checked before any I/O).
    /// Unset leaves the server's default, which is undocumented.
    std::optional<std::chrono::seconds> expires_in{};
};

/// A minted token.
struct token_response {
    /// The access token; hand it to the front end, which sends it as
    /// `Authorization: Bearer <token>` or `?access_token=<token>`.
    std::string token;
    /// The response object exactly as the server sent it (JSON), for fields this
    /// library does not model yet.
    std::string raw_json;
    /// When the token expires, as far as the client can tell without checking it:
    /// - when the token is a JWT, the `exp` claim of its payload (the payload is
    ///   base64url-decoded and parsed; the signature is NOT checked: the token is
    ///   the API's to verify, and this is only for scheduling a refresh);
    /// - otherwise, the time the request was sent plus the requested
    ///   `token_request::expires_in`: a conservative bound, since the server
    ///   starts the token's life later;
    /// - otherwise (an opaque token, no `expires_in` asked for) empty.
    /// A malformed JWT is not an error: it is treated as an opaque token.
    std::optional<std::chrono::system_clock::time_point> expires_at{};
};

/// How to reach the API. Every field is checked before any I/O; a bad value fails
/// the operation with `error::invalid_argument`.
struct client_config {
    /// The API key, `sk_car_...`. Sent only in the Authorization header; never
    /// logged nor copied into a diagnostic.
    std::string api_key;
    /// An `https` URL with a host, an optional port and an optional path prefix:
    /// requests go to prefix + "/access-token". No user info, query or fragment.
    std::string base_url = "https://api.cartesia.ai";
    /// The `Cartesia-Version` header, `YYYY-MM-DD`.
    std::string api_version = "2026-03-01";
    /// The deadline of ONE attempt, from name resolution to the last body byte.
    /// Progress does not extend it.
    std::chrono::milliseconds timeout{60000};
    /// Retries after the first attempt, 0 to 10.
    int max_retries = 2;
    /// Appended to `User-Agent: cartesia-asio/<version>` after a space, e.g.
    /// "my-backend/1.4". Printable ASCII only.
    std::string user_agent_suffix;
    /// Largest response header block accepted; beyond it `error::response_too_large`.
    std::size_t max_header_bytes = std::size_t{16} * 1024;
    /// Largest response body accepted; beyond it `error::response_too_large`, found
    /// as soon as the limit is crossed, without reading the rest.
    std::size_t max_body_bytes = std::size_t{64} * 1024;
    /// `cartesia::client` only: the most connections its pool keeps open at once.
    std::size_t max_connections = 16;
    /// `cartesia::client` only: an idle pooled connection is closed after this long.
    std::chrono::milliseconds idle_timeout{30000};
    /// An HTTP proxy to reach the API through (with CONNECT):
    /// "http://[user:password@]host[:port]", the port 1080 by default; without a
    /// scheme, http:// is assumed. User name and password are percent-decoded and
    /// sent as `Proxy-Authorization: Basic`. Empty: connect directly. https://
    /// proxies are refused.
    std::string proxy;
    /// Hosts that bypass the proxy, in curl's NO_PROXY syntax: a comma-separated
    /// list of names (each matching itself and its subdomains), IP addresses and
    /// CIDR ranges; "*" bypasses it for every host.
    std::string no_proxy;
    /// Addresses to use instead of asking the resolver, as curl's `--resolve`:
    /// "host:port:address[,address...]", an IPv6 host in brackets.
    std::vector<std::string> resolve;
    /// The limit on one address's TCP connect (and on the proxy's answer to CONNECT).
    std::chrono::milliseconds connect_timeout{10000};
    /// RFC 8305 (Happy Eyeballs): how long one connection attempt runs alone
    /// before the next address is tried alongside it. 0 or more.
    std::chrono::milliseconds connection_attempt_delay{250};
    /// `cartesia::client` only: the connections the pool keeps open and ready, 0
    /// to `max_connections`. They are opened in the background from construction
    /// on, and one the server closes, that fails or that reaches a Keep-Alive
    /// limit is replaced, with backoff while opening fails. `idle_timeout` closes
    /// only the connections above this minimum.
    std::size_t min_connections = 0;
    /// The deadline of the whole operation: the wait for a connection, every
    /// attempt and every backoff. Past it, `error::timeout`. Unset: only the
    /// per-attempt `timeout` bounds the operation. Positive when set.
    std::optional<std::chrono::milliseconds> total_timeout{};
    /// `cartesia::client` only: over a sliding window of about 10 s, the retries
    /// may be at most this share of the requests started (0 to 1), plus
    /// `retry_budget_min_per_second`; a retryable failure beyond that budget is
    /// delivered at once, as it is.
    double retry_budget_ratio = 0.2;
    /// `cartesia::client` only: retries always allowed per second, whatever the ratio.
    unsigned retry_budget_min_per_second = 10;
    /// Called with each step of each operation (see events.hpp), for a log or a
    /// trace: on the operation's strand (a client's: its internal strand), never
    /// concurrently for one client or one operation. It must not block, and must
    /// not throw: an exception from it ends the program. It may start operations,
    /// cancel them and call client::close(): cancelling and closing take effect
    /// after it returns. Empty: no event is made,
    /// at no cost. It is copied with the configuration: what it refers to must
    /// outlive every operation and connection made with it.
    std::function<void(const event&)> on_event;
};

/// Prints the configuration for a log, e.g. `{api_key: sk_car_…, base_url: https://api.cartesia.ai, ...}`.
/// The key is redacted: at most its public `sk_car_` prefix is printed. The user
/// info of the proxy and of the base URL is too (`http://…@proxy:3128`).
std::ostream& operator<<(std::ostream& out, const client_config& config);

/// A default configuration with these fields taken from the environment, the only
/// place where the library reads it:
/// - `api_key` from `CARTESIA_API_KEY`;
/// - `base_url` from `CARTESIA_BASE_URL`;
/// - `proxy` from `https_proxy`, else `HTTPS_PROXY`, else `all_proxy`, else
///   `ALL_PROXY`;
/// - `no_proxy` from `no_proxy`, else `NO_PROXY`.
///
/// As curl reads them: the lowercase name wins over the uppercase one, and a
/// variable set to the empty string counts as unset. Nothing is checked here: a
/// missing key or a bad value fails the operations with `error::invalid_argument`.
/// Reads with `std::getenv`: do not call it while another thread changes the
/// environment.
client_config config_from_environment();

} // namespace cartesia

#endif
