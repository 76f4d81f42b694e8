// expires_at_of and jwt_expiry: the token the server minted, untrusted.
//
// Input: one control byte, two bytes of lifetime, then the token.
//   bit 0     0: the rest is the token as it is; 1: the rest is a JWT payload,
//             wrapped as header.base64url(rest).signature
//   bit 1     when wrapping, pad the base64url with '='
//   bit 2     the request was sent an hour before system_clock's end (the sum saturates)
//   bytes 1-2 expires_in, big-endian, modulo 3601; 0 leaves it unset
//
// What token_expiry.hpp promises: a result is the JWT's exp (whole seconds, from 0
// to the end of year 9999), else sent_at + expires_in when that was asked for, else
// nothing; and, for a wrapped payload, an exp found is the one Boost.JSON's own
// parser reads there.
#include "fuzz_support.hpp"

#include "token_expiry.hpp"

#include <support/base64url.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace cd = cartesia::detail;
using cartesia::fuzz::require;
using cartesia::test::base64url;
using std::chrono::system_clock;
using namespace std::chrono_literals;

// The exp that a DOM parse of `payload` reads (the last one, when duplicated), as
// jwt_expiry converts it; nullopt when it is not there or not a number.
std::optional<std::int64_t> dom_exp(std::string_view payload)
{
    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(payload, ec);
    if (ec || !parsed.is_object())
        return std::nullopt;
    const auto* exp = parsed.get_object().if_contains("exp");
    if (!exp)
        return std::nullopt;
    if (exp->is_int64())
        return exp->get_int64();
    if (exp->is_uint64())
        return std::nullopt; // above INT64_MAX: never in range
    if (exp->is_double() && std::isfinite(exp->get_double()) && exp->get_double() >= 0.0 && exp->get_double() < 9.2e18)
        return static_cast<std::int64_t>(exp->get_double());
    return std::nullopt;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 3)
        return 0;
    const std::uint8_t control = data[0];
    const unsigned lifetime = ((unsigned{data[1]} << 8U) | data[2]) % 3601U;
    const std::optional<std::chrono::seconds> expires_in =
        lifetime == 0 ? std::nullopt : std::optional(std::chrono::seconds(lifetime));
    const system_clock::time_point sent_at =
        (control & 4U) != 0 ? system_clock::time_point::max() - 1h : system_clock::time_point(1'800'000'000s);
    const std::string_view rest = cartesia::fuzz::as_text(data + 3, size - 3);
    const bool wrapped = (control & 1U) != 0;
    const std::string token =
        wrapped ? "eyJhbGciOiJIUzI1NiJ9." + base64url(rest, (control & 2U) != 0) + ".c2ln" : std::string(rest);

    const auto claim = cd::jwt_expiry(token);
    const auto result = cd::expires_at_of(token, sent_at, expires_in);
    if (claim) {
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(claim->time_since_epoch());
        require(system_clock::time_point(seconds) == *claim, "exp is whole seconds");
        require(seconds.count() >= 0 && seconds.count() <= 253'402'300'799, "exp is between 1970 and 9999");
        require(result == claim, "the exp claim wins");
        if (wrapped) {
            require(rest.size() <= cd::max_jwt_payload_bytes, "an oversized payload is not read");
            require(dom_exp(rest) == seconds.count(), "the exp read is Boost.JSON's", rest);
        }
    } else if (expires_in) {
        const auto expected = sent_at > system_clock::time_point::max() - *expires_in ? system_clock::time_point::max()
                                                                                      : sent_at + *expires_in;
        require(result == expected, "no exp: sent_at + expires_in");
    } else {
        require(!result, "no exp, no expires_in: nothing");
    }
    return 0;
}
