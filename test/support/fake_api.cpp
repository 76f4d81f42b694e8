// POST /access-token as the Cartesia API answers it; see fake_api.hpp.
#include "support/fake_api.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <variant>

namespace cartesia::test::detail {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

constexpr std::int64_t default_expires_in = 300;
constexpr std::int64_t max_expires_in = 3600;
constexpr std::array<std::string_view, 5> supported_versions{"2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01",
                                                             "2026-08-14"};

std::string random_uuid()
{
    return boost::uuids::to_string(boost::uuids::random_generator()());
}

std::string random_secret()
{
    std::string secret(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size())) != 1) {
        throw std::runtime_error("test_server: RAND_bytes failed");
    }
    return secret;
}

std::string base64url(std::string_view bytes)
{
    // EVP_EncodeBlock writes standard, padded base64 and a terminating NUL.
    std::string text(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int length =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                        reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    text.resize(static_cast<std::size_t>(length));
    while (!text.empty() && text.back() == '=')
        text.pop_back();
    std::ranges::replace(text, '+', '-');
    std::ranges::replace(text, '/', '_');
    return text;
}

// An HS256 JWT for `claims`.
std::string sign_token(const json::object& claims, const std::string& secret)
{
    const std::string signing_input =
        base64url(R"({"alg":"HS256","typ":"JWT"})") + '.' + base64url(json::serialize(claims));
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_size = 0;
    if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac.data(),
             &mac_size) == nullptr) {
        throw std::runtime_error("test_server: HMAC-SHA256 failed");
    }
    return signing_input + '.' + base64url({reinterpret_cast<const char*>(mac.data()), mac_size});
}

struct token_request {
    json::object grants; // only the granted scopes, each true
    std::int64_t expires_in = default_expires_in;
};

// Validates a POST /access-token body as the API does; on failure, returns the complaint.
std::variant<token_request, std::string> parse_token_request(std::string_view text)
{
    boost::system::error_code parse_error;
    const json::value body = json::parse(text, parse_error);
    if (parse_error || !body.is_object())
        return "The request body must be a JSON object";

    token_request result;
    for (const auto& [key, value] : body.get_object()) {
        if (key != "grants" && key != "expires_in")
            return "Unknown field '" + std::string(key) + "'";
        if (value.is_null())
            continue; // null means "use the default" for both fields
        if (key == "grants") {
            if (!value.is_object())
                return "grants must be an object";
            for (const auto& [scope, granted] : value.get_object()) {
                if (scope != "tts" && scope != "stt" && scope != "agent") {
                    return "Unknown grant '" + std::string(scope) + "'; use tts, stt or agent";
                }
                if (!granted.is_bool() && !granted.is_null())
                    return "grants." + std::string(scope) + " must be a boolean";
                if (granted.is_bool() && granted.get_bool())
                    result.grants[scope] = true;
            }
        } else {
            if (value.is_uint64() || (value.is_int64() && value.get_int64() > max_expires_in)) {
                return "expires_in must be at most 3600 seconds";
            }
            if (!value.is_int64())
                return "expires_in must be an integer number of seconds";
            if (value.get_int64() < 1)
                return "expires_in must be at least 1 second";
            result.expires_in = value.get_int64();
        }
    }
    return result;
}

} // namespace

canned_response json_error(unsigned status, std::string_view error_code, std::string_view message)
{
    const std::string request_id = random_uuid();
    const json::object body{
        {"error_code", error_code.empty() ? json::value(nullptr) : json::value(error_code)},
        {"title", reason_phrase(status)},
        {"message", message},
        {"request_id", request_id},
    };
    return {status, "application/json", json::serialize(body), {{"x-request-id", request_id}}};
}

fake_api::fake_api(std::string api_key) : api_key_(std::move(api_key)), jwt_secret_(random_secret()) {}

canned_response fake_api::answer(const request_type& request) const
{
    if (request.method() != http::verb::post) {
        canned_response answer = json_error(405, "method_not_allowed", "Use POST for /access-token");
        answer.headers.emplace_back("Allow", "POST");
        return answer;
    }

    // The messages never repeat the key that was sent: clients may log them.
    const std::string_view authorization = request[http::field::authorization];
    if (authorization.empty()) {
        return json_error(401, "missing_api_key", "Missing API key: send Authorization: Bearer <key>");
    }
    if (authorization != "Bearer " + api_key_)
        return json_error(401, "invalid_api_key", "Invalid API key");

    const std::string_view version = request["Cartesia-Version"];
    if (version.empty())
        return json_error(400, "missing_version", "Missing Cartesia-Version header");
    if (std::ranges::find(supported_versions, version) == supported_versions.end()) {
        return json_error(400, "unsupported_version", "Unsupported Cartesia-Version '" + std::string(version) + "'");
    }

    constexpr std::string_view json_type = "application/json";
    if (!beast::iequals(request[http::field::content_type].substr(0, json_type.size()), json_type)) {
        return json_error(400, "unsupported_content_type", "Content-Type must be application/json");
    }

    const auto parsed = parse_token_request(request.body());
    if (const auto* complaint = std::get_if<std::string>(&parsed)) {
        return json_error(400, "invalid_request", *complaint);
    }
    const auto& token = std::get<token_request>(parsed);
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const json::object claims{
        {"grants", token.grants},           {"jti", random_uuid()},          {"iat", now},
        {"iss", "https://api.cartesia.ai"}, {"exp", now + token.expires_in},
    };
    return {200, "application/json", json::serialize(json::object{{"token", sign_token(claims, jwt_secret_)}}), {}};
}

} // namespace cartesia::test::detail
