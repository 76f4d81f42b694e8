// When a minted token expires, as far as the client can tell without verifying
// it: the `exp` claim of a JWT, else the request's own lifetime. Sans-io and
// heap-free, unit tested and fuzzed. Private to src/, the unit tests and the fuzzers.
#ifndef CARTESIA_SRC_TOKEN_EXPIRY_HPP
#define CARTESIA_SRC_TOKEN_EXPIRY_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

namespace cartesia::detail {

// The largest JWT payload read, decoded. Cartesia's are about 200 bytes; a bigger
// one is treated as malformed, which bounds the work and the stack buffer.
inline constexpr std::size_t max_jwt_payload_bytes = std::size_t{8} * 1024;

// The `exp` claim of `token` when it is a JWT (three segments separated by dots,
// the middle one base64url, padded or not, decoding to a JSON object of at most
// max_jwt_payload_bytes whose `exp` is a number of seconds since the epoch: an
// integer, or a finite double, truncated; at least 0, at most the end of year 9999
// or the end of system_clock's range, whichever comes first). nullopt for
// anything else, including a JWT with a duplicated `exp`. The signature is NOT
// checked: the token is the API's to verify, and this only schedules a refresh.
std::optional<std::chrono::system_clock::time_point> jwt_expiry(std::string_view token) noexcept;

// token_response::expires_at: jwt_expiry(token), else `sent_at + *expires_in` when
// the request asked for a lifetime (positive, as validate_request() ensures; the
// sum saturates at the clock's end), else nullopt. A malformed JWT is not an error.
std::optional<std::chrono::system_clock::time_point>
expires_at_of(std::string_view token, std::chrono::system_clock::time_point sent_at,
              std::optional<std::chrono::seconds> expires_in) noexcept;

} // namespace cartesia::detail

#endif
