// What a caller of POST /api/token may ask for, and how its request body is read.
#ifndef TOKEN_SERVER_TOKEN_POLICY_HPP
#define TOKEN_SERVER_TOKEN_POLICY_HPP

#include <cartesia/types.hpp>

#include <boost/beast/http/status.hpp>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <variant>

namespace token_server {

/// Grant names as the API spells them: "tts", "stt", "agent".
using grant_set = std::set<std::string, std::less<>>;

bool is_grant_name(std::string_view name);

/// The most a caller may get: these grants, for this long.
struct token_policy {
    grant_set allowed_grants{"tts"};
    std::chrono::seconds max_expires_in{600};
};

/// What a caller asked for, within the policy.
struct token_order {
    grant_set grants;
    std::chrono::seconds expires_in;
};

/// Why a body was refused: 400 when it is malformed, 403 when it asks for more than the policy allows.
/// The reason is ours, fit to send back to the caller.
struct refusal {
    boost::beast::http::status status;
    std::string reason;
};

/// Reads the optional JSON body `{"grants": ["tts"], "expires_in": 60}`. An empty
/// body, or a member left out, means the most the policy allows.
std::variant<token_order, refusal> read_token_order(std::string_view body, const token_policy& policy);

/// The upstream request for `order`.
cartesia::token_request to_token_request(const token_order& order);

} // namespace token_server

#endif
