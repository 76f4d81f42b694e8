// The sans-io half of the access-token exchange: validation, the request bytes and
// the interpretation of a response. No I/O here, so that every rule can be unit
// tested byte for byte. Private to src/, the unit tests and the fuzzers.
#ifndef CARTESIA_SRC_PROTOCOL_HPP
#define CARTESIA_SRC_PROTOCOL_HPP

#include "network_config.hpp"
#include <cartesia/diagnostics.hpp>
#include <cartesia/types.hpp>

#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace cartesia::detail {

// Writes into a diagnostics object; the only code that does.
struct diagnostics_access {
    static void set_client_message(diagnostics& d, std::string message) { d.client_message_ = std::move(message); }
    static void set_http_status(diagnostics& d, unsigned status) { d.http_status_ = status; }
    static void set_attempts(diagnostics& d, unsigned attempts) { d.attempts_ = attempts; }
    static void set_request_id(diagnostics& d, std::string request_id) { d.request_id_ = std::move(request_id); }
    static void set_server_fields(diagnostics& d, std::string title, std::string message, std::string error_code,
                                  std::string request_id)
    {
        d.server_title_ = std::move(title);
        d.server_message_ = std::move(message);
        d.server_error_code_ = std::move(error_code);
        d.request_id_ = std::move(request_id);
    }
};

// Replaces each occurrence of `secret` in `text` (none when it is empty).
void replace_all(std::string& text, std::string_view secret, std::string_view replacement);

// `text` with every occurrence of the key replaced by its public prefix, so that a
// server echoing the key cannot make it reach a log through diagnostics.
std::string scrub(std::string text, std::string_view api_key);

// Where requests go, from client_config::base_url.
struct endpoint {
    std::string host;        // "api.cartesia.ai", "127.0.0.1" or "::1" (no brackets)
    std::string port;        // "443" unless the URL says otherwise
    std::string host_header; // host[:port], as the Host header wants it
    std::string target;      // prefix + "/access-token"
    bool host_is_ip = false; // an IP literal: no SNI, IP-address verification
    network_config network;  // how to reach it: the proxy, resolve overrides, connect timings
};

// Checks the whole configuration and request, and parses the URL and the network
// fields (parse_network_config(), last). On failure
// returns error::invalid_argument with a client message naming the field at
// fault (never its value when that value is the key).
boost::system::error_code validate(const client_config& config, const token_request& request, endpoint& out,
                                   diagnostics& diag);

// The request's own checks, also run by validate(); the pool checks its
// configuration once and each request with this.
boost::system::error_code validate_request(const token_request& request, diagnostics& diag);

// The JSON body: only the fields that are set, in a stable order.
std::string serialize_request_body(const token_request& request);

// The request in two parts, so that a pool builds the head once and each request
// costs no allocation: the head, up to and including "Content-Length: ", is the
// same for every request of a client; the tail holds the length, the blank line
// and the body.
std::string serialize_request_head(const client_config& config, const endpoint& where, bool keep_alive);

struct request_tail {
    // The length (two digits), the blank line and a body of at most 96 bytes: sized
    // to that (checked in protocol.cpp), so that serializing it allocates nothing.
    std::array<char, 104> bytes{};
    std::size_t size = 0;
    std::string_view view() const noexcept { return {bytes.data(), size}; }
};
request_tail serialize_request_tail(const token_request& request);

// The facts of one response that decide the outcome.
struct response_view {
    unsigned status = 0;
    std::string_view content_type;
    std::string_view request_id_header; // x-request-id, may be empty
    std::string_view body;
};

// Maps a complete response to a token or an error, filling diag on failure.
// `api_key` is scrubbed from any server text copied into diag.
boost::system::error_code interpret_response(const response_view& response, std::string_view api_key,
                                             token_response& out, diagnostics& diag);

// The error for a non-2xx status.
boost::system::error_code status_to_error(unsigned status) noexcept;

// Parses a 200 body: a JSON object with a string `token`; other fields are
// tolerated. On failure returns error::bad_response with a client message.
boost::system::error_code parse_token_body(std::string_view body, std::string_view content_type,
                                           std::string_view api_key, token_response& out, diagnostics& diag);

// Fills the server fields of diag from an error body: the 2026-03-01 JSON format,
// or plain text (all of it becomes the message).
void parse_error_body(std::string_view body, std::string_view request_id_header, std::string_view api_key,
                      diagnostics& diag);

// What a response's `Keep-Alive` header says of its connection (RFC 2068,
// 19.7.1.1; nginx, Apache, Prism and many proxies send it): how long the server
// keeps it open idle, and how many requests it still takes, this one included.
struct keep_alive_hint {
    std::optional<std::chrono::seconds> timeout;
    std::optional<std::size_t> max;
};

// Reads "timeout=5, max=100" (parameters in any order and case, others ignored).
// A malformed or absurd value (not digits, beyond a day or a million requests)
// is ignored: a hint is advice, never a reason to fail the response.
keep_alive_hint parse_keep_alive(std::string_view header) noexcept;

} // namespace cartesia::detail

#endif
