// Error codes of cartesia-asio.
#ifndef CARTESIA_ERROR_HPP
#define CARTESIA_ERROR_HPP

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace cartesia {

/// The errors this library reports itself. Network and TLS failures are not
/// translated: they surface as the underlying Asio (`boost::asio::error::*`) and
/// SSL (`boost::asio::ssl::error::*`, OpenSSL) codes, so that existing handling of
/// those codes keeps working.
///
/// Errors carrying an HTTP status come with the server's title, message and request
/// id in `cartesia::diagnostics`.
enum class error {
    /// The configuration or the request is invalid; found before any I/O.
    /// `diagnostics::client_message()` names the field at fault.
    invalid_argument = 1,
    bad_request,          ///< HTTP 400.
    unauthorized,         ///< HTTP 401: the API key is missing, malformed or revoked.
    forbidden,            ///< HTTP 403.
    not_found,            ///< HTTP 404: usually a wrong `base_url` path prefix.
    conflict,             ///< HTTP 409.
    unprocessable_entity, ///< HTTP 422.
    rate_limited,         ///< HTTP 429.
    server_error,         ///< HTTP 500 and above.
    unexpected_status,    ///< Any other status that is not 2xx.
    /// The server's answer is not a usable token response: not HTTP, not JSON, not a
    /// JSON object, or without a string `token`.
    bad_response,
    /// The response's headers or body exceed the configured limits.
    response_too_large,
    /// An attempt did not complete within `client_config::timeout`, or the whole
    /// operation within `client_config::total_timeout`.
    timeout,
    /// The HTTP proxy (`client_config::proxy`) refused to open a tunnel to the API:
    /// its answer to CONNECT was not 2xx (other than 407), or not HTTP.
    proxy_error,
    /// HTTP 407 from the proxy: it wants credentials, or other ones than the
    /// user info of `client_config::proxy`.
    proxy_auth_required,
};

/// The category of `cartesia::error`; its name is "cartesia".
const boost::system::error_category& error_category() noexcept;

/// Makes an error_code of the "cartesia" category (found by ADL, so that
/// `boost::system::error_code ec = cartesia::error::timeout;` works).
inline boost::system::error_code make_error_code(error e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

} // namespace cartesia

template <> struct boost::system::is_error_code_enum<cartesia::error> : std::true_type {
};

#endif
