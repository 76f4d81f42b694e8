// One JSON object per request on stderr: the token server's access log.
#ifndef TOKEN_SERVER_ACCESS_LOG_HPP
#define TOKEN_SERVER_ACCESS_LOG_HPP

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace token_server {

/// How the upstream call of a POST /api/token went.
struct upstream_outcome {
    boost::system::error_code error; ///< Empty for a token.
    unsigned attempts = 0;
    /// `cartesia::describe()`'s line for a failure: the library's text, scrubbed of the key.
    std::string detail;
    /// Taken from the reserve (--reserve): `attempts` is 0, the mint was made ahead.
    bool from_reserve = false;
};

/// What a line says about one request. Holds nothing secret by construction: the path
/// without its query string, and no header.
struct access_record {
    std::chrono::system_clock::time_point time; ///< When the request began.
    std::string_view remote_address;
    std::string_view method;
    std::string_view path; ///< Without the query string, which may carry a secret.
    unsigned status = 0;
    std::chrono::steady_clock::duration duration{};
    std::size_t bytes_sent = 0;
    std::optional<upstream_outcome> upstream; ///< For a request that reached the upstream.
    /// Why the answer did not reach the caller, or empty.
    std::string_view delivery_error;
};

/// The record as one line of JSON, newline included:
/// {"time":"2026-12-01T23:10:00.123Z","method":"POST","path":"/api/token","status":200,...}
std::string access_log_line(const access_record& record);

/// RFC 3339 in UTC with milliseconds, e.g. "2026-12-01T23:10:00.123Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point time);

} // namespace token_server

#endif
