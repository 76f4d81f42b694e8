// token_response::expires_at: the `exp` claim of a JWT, else the request's lifetime.
#include "token_expiry.hpp"
#include <support/base64url.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cd = cartesia::detail;
using cartesia::test::base64url;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

std::string jwt_with_payload(std::string_view payload, bool padded = false)
{
    return base64url(R"({"alg":"HS256","typ":"JWT"})") + '.' + base64url(payload, padded) + ".c2lnbmF0dXJl";
}

// Seconds since the epoch, -1 for none: printable in a failed check.
std::int64_t seconds_of(std::optional<system_clock::time_point> at)
{
    return at ? std::chrono::duration_cast<std::chrono::seconds>(at->time_since_epoch()).count() : -1;
}

const system_clock::time_point sent_at{1'800'000'000s};
constexpr std::int64_t sent_at_seconds = 1'800'000'000;

} // namespace

BOOST_AUTO_TEST_SUITE(token_expiry)

BOOST_AUTO_TEST_CASE(the_exp_claim_of_a_jwt_wins)
{
    const auto token = jwt_with_payload(R"({"grants":{"tts":true},"iat":1799999000,"exp":1800000300,"jti":"x"})");
    BOOST_TEST(seconds_of(cd::jwt_expiry(token)) == 1'800'000'300);
    // Even over a requested lifetime: the server's word is more exact.
    BOOST_TEST(seconds_of(cd::expires_at_of(token, sent_at, 60s)) == 1'800'000'300);
    BOOST_TEST(seconds_of(cd::expires_at_of(token, sent_at, std::nullopt)) == 1'800'000'300);
}

BOOST_AUTO_TEST_CASE(a_double_exp_is_truncated)
{
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(R"({"exp":1800000300.9})"))) == 1'800'000'300);
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(R"({"exp":1.8000003e9})"))) == 1'800'000'300);
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(R"({"exp":0.5})"))) == 0);
}

BOOST_AUTO_TEST_CASE(padding_is_tolerated_and_whitespace_in_the_json)
{
    // 13 bytes: the unpadded encoding ends in a partial group either way.
    for (std::string_view payload : {R"({"exp":12345})", R"({"exp":123456})", R"({"exp":1234567})"}) {
        BOOST_TEST(cd::jwt_expiry(jwt_with_payload(payload, true)).has_value(), payload);
        BOOST_TEST(cd::jwt_expiry(jwt_with_payload(payload, false)).has_value(), payload);
    }
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(" { \"exp\" : 42 } \n"))) == 42);
    // An escaped key is still the key.
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(R"({"e\u0078p":42})"))) == 42);
}

BOOST_AUTO_TEST_CASE(an_opaque_token_takes_the_requested_lifetime)
{
    for (std::string_view token : {"tok_0123456789abcdef", "", "a.b", "a.b.c.d"}) {
        BOOST_TEST(seconds_of(cd::expires_at_of(token, sent_at, 300s)) == sent_at_seconds + 300, token);
        BOOST_TEST(!cd::expires_at_of(token, sent_at, std::nullopt).has_value(), token);
    }
    // The sum saturates at the clock's end.
    BOOST_TEST(
        (cd::expires_at_of("opaque", system_clock::time_point::max() - 1s, 3600s) == system_clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(malformed_jwts_fall_back_without_error)
{
    const std::string good_payload = base64url(R"({"exp":1800000300})");
    const std::string header = base64url(R"({"alg":"HS256"})");
    std::vector<std::string> tokens{
        // bad base64url
        header + ".=" + good_payload + ".sig",
        header + "." + good_payload + "=.sig", // padding that completes no group
        header + "." + good_payload + "A.sig", // a length no encoding has (4n + 1)
        header + "..sig",                      // empty payload
        // not JSON, or not only JSON
        jwt_with_payload("exp=1800000300"),
        jwt_with_payload(R"({"exp":1800000300)"),
        jwt_with_payload(R"({"exp":1800000300}{})"),
        jwt_with_payload(R"({"exp":1800000300} x)"),
        jwt_with_payload(R"({"exp":1800000300,})"),
        jwt_with_payload(std::string(R"({"exp":1800000300,"x":")") + '\0' + "\"}"),
        // not an object
        jwt_with_payload("1800000300"),
        jwt_with_payload(R"([{"exp":1800000300}])"),
        jwt_with_payload(R"("exp")"),
        // no exp, or one that is not a number of seconds
        jwt_with_payload(R"({})"),
        jwt_with_payload(R"({"iat":1800000000})"),
        jwt_with_payload(R"({"inner":{"exp":1800000300}})"),
        jwt_with_payload(R"({"Exp":1800000300})"),
        jwt_with_payload(R"({"exp ":1800000300})"),
        jwt_with_payload(R"({"ex":1800000300})"),
        jwt_with_payload(R"({"expi":1800000300})"),
        jwt_with_payload(R"({"exp":"1800000300"})"),
        jwt_with_payload(R"({"exp":null})"),
        jwt_with_payload(R"({"exp":true})"),
        jwt_with_payload(R"({"exp":[1800000300]})"),
        jwt_with_payload(R"({"exp":{"at":1800000300}})"),
        jwt_with_payload(R"({"exp":-1})"),
        jwt_with_payload(R"({"exp":-0.5})"),
        // a duplicated exp is ambiguous
        jwt_with_payload(R"({"exp":1800000300,"exp":1800000300})"),
        jwt_with_payload(R"({"exp":"soon","exp":1800000300})"),
    };
    // A character outside base64url's alphabet, in place of a valid one (standard
    // base64's '+' and '/' included).
    for (char outsider : {'+', '/', ' ', '!', '*', '\0', '\x80'}) {
        std::string payload = good_payload;
        payload[5] = outsider;
        std::string token = header;
        token += '.';
        token += payload;
        token += ".sig";
        tokens.push_back(std::move(token));
    }
    for (const auto& token : tokens) {
        BOOST_TEST(!cd::jwt_expiry(token).has_value(), token);
        BOOST_TEST(seconds_of(cd::expires_at_of(token, sent_at, 300s)) == sent_at_seconds + 300, token);
        BOOST_TEST(!cd::expires_at_of(token, sent_at, std::nullopt).has_value(), token);
    }
}

BOOST_AUTO_TEST_CASE(exp_out_of_range_falls_back)
{
    const std::int64_t clock_end =
        std::chrono::duration_cast<std::chrono::seconds>(system_clock::time_point::max().time_since_epoch()).count();
    const std::int64_t latest = std::min<std::int64_t>(253'402'300'799, clock_end); // 9999-12-31T23:59:59Z at most
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(R"({"exp":)" + std::to_string(latest) + "}"))) == latest);
    BOOST_TEST(seconds_of(cd::jwt_expiry(jwt_with_payload(R"({"exp":0})"))) == 0);
    for (const std::string& exp : {std::to_string(latest + 1), std::string("253402300800"), std::string("1e300"),
                                   std::string("18446744073709551615"), std::string("9223372036854775807"),
                                   std::string("-9223372036854775808"), std::string("1e999")}) {
        const auto token = jwt_with_payload(R"({"exp":)" + exp + "}");
        BOOST_TEST(seconds_of(cd::expires_at_of(token, sent_at, 300s)) == sent_at_seconds + 300, exp);
    }
}

BOOST_AUTO_TEST_CASE(an_oversized_payload_is_malformed)
{
    const std::string prefix = R"({"exp":1800000300,"pad":")";
    const auto sized = [&](std::size_t total) {
        return jwt_with_payload(prefix + std::string(total - prefix.size() - 2, 'x') + "\"}");
    };
    BOOST_TEST(seconds_of(cd::jwt_expiry(sized(cd::max_jwt_payload_bytes))) == 1'800'000'300);
    BOOST_TEST(!cd::jwt_expiry(sized(cd::max_jwt_payload_bytes + 1)).has_value());
    BOOST_TEST(seconds_of(cd::expires_at_of(sized(cd::max_jwt_payload_bytes + 1), sent_at, 60s)) ==
               sent_at_seconds + 60);
    // Deep nesting is refused by the parser's depth limit, not by the stack.
    BOOST_TEST(
        !cd::jwt_expiry(jwt_with_payload(R"({"exp":1,"a":)" + std::string(4000, '[') + std::string(4000, ']') + "}"))
             .has_value());
}

BOOST_AUTO_TEST_SUITE_END()
