#include "token_policy.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>

namespace token_server {
namespace {

namespace json = boost::json;
using boost::beast::http::status;

// The API's own bound on a token's lifetime.
constexpr std::chrono::seconds longest_lifetime{3600};

refusal malformed(std::string reason)
{
    return {status::bad_request, std::move(reason)};
}

refusal beyond_policy(std::string reason)
{
    return {status::forbidden, std::move(reason)};
}

std::optional<refusal> read_grants(const json::value& value, const grant_set& allowed, grant_set& grants)
{
    const json::array* names = value.if_array();
    if (names == nullptr || names->empty())
        return malformed("grants must be a non-empty array of grant names");
    grants.clear();
    for (const json::value& name : *names) {
        const json::string* text = name.if_string();
        if (text == nullptr || !is_grant_name(*text))
            return malformed("grants may only name tts, stt and agent");
        if (!allowed.contains(std::string_view(*text)))
            return beyond_policy("grant " + std::string(*text) + " is not allowed");
        grants.emplace(*text);
    }
    return std::nullopt;
}

std::optional<refusal> read_expires_in(const json::value& value, std::chrono::seconds longest_allowed,
                                       std::chrono::seconds& expires_in)
{
    const std::int64_t* seconds = value.if_int64();
    if (seconds == nullptr || *seconds < 1 || *seconds > longest_lifetime.count())
        return malformed("expires_in must be a whole number of seconds from 1 to 3600");
    if (*seconds > longest_allowed.count())
        return beyond_policy("expires_in may be at most " + std::to_string(longest_allowed.count()));
    expires_in = std::chrono::seconds(*seconds);
    return std::nullopt;
}

bool is_blank(std::string_view text)
{
    return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

} // namespace

bool is_grant_name(std::string_view name)
{
    constexpr std::array<std::string_view, 3> names{"tts", "stt", "agent"};
    return std::ranges::find(names, name) != names.end();
}

std::variant<token_order, refusal> read_token_order(std::string_view body, const token_policy& policy)
{
    token_order order{policy.allowed_grants, policy.max_expires_in};
    if (is_blank(body))
        return order;

    boost::system::error_code ec;
    const json::value document = json::parse(body, ec);
    const json::object* members = document.if_object();
    if (ec || members == nullptr)
        return malformed("the body must be a JSON object");
    for (const auto& [key, value] : *members) {
        std::optional<refusal> refused;
        if (key == "grants")
            refused = read_grants(value, policy.allowed_grants, order.grants);
        else if (key == "expires_in")
            refused = read_expires_in(value, policy.max_expires_in, order.expires_in);
        else
            refused = malformed("the body may only hold grants and expires_in");
        if (refused)
            return *std::move(refused);
    }
    return order;
}

cartesia::token_request to_token_request(const token_order& order)
{
    // Every grant is sent, false ones too: what the caller did not ask for must not
    // depend on the API's defaults for grants left out.
    const cartesia::token_grant grants{
        .tts = order.grants.contains("tts"),
        .stt = order.grants.contains("stt"),
        .agent = order.grants.contains("agent"),
    };
    return {.grants = grants, .expires_in = order.expires_in};
}

} // namespace token_server
