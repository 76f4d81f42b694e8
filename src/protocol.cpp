#include "protocol.hpp"

#include <cartesia/error.hpp>
#include <cartesia/version.hpp>

#include <boost/asio/ssl/error.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace cartesia::detail {
namespace {

using boost::system::error_code;

constexpr std::size_t max_key_length = 512;
constexpr int max_retries_limit = 10;

bool is_printable_ascii(char c) noexcept
{
    return c > 0x20 && c < 0x7f;
}

error_code invalid(diagnostics& diag, std::string message)
{
    diagnostics_access::set_client_message(diag, std::move(message));
    return error::invalid_argument;
}

bool is_iso_date(std::string_view s) noexcept
{
    if (s.size() != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u})
        if (!std::isdigit(static_cast<unsigned char>(s[i])))
            return false;
    const int month = (s[5] - '0') * 10 + (s[6] - '0');
    const int day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

error_code parse_base_url(std::string_view base_url, endpoint& out, diagnostics& diag)
{
    auto parsed = boost::urls::parse_absolute_uri(base_url);
    if (!parsed)
        return invalid(diag, "client_config::base_url is not an absolute URL");
    const auto& url = *parsed;
    if (url.scheme_id() != boost::urls::scheme::https)
        return invalid(diag, "client_config::base_url must use https");
    if (url.has_userinfo())
        return invalid(diag, "client_config::base_url must not carry user info");
    if (url.has_query())
        return invalid(diag, "client_config::base_url must not carry a query");
    if (url.has_fragment())
        return invalid(diag, "client_config::base_url must not carry a fragment");
    // Boost.URL 1.81 accepts some strings that RFC 3986 does not, by ending the
    // authority early: "https://host:8x" as port 8 and path "x", "https://10.0.0.1.nip.io"
    // as host 10.0.0.1 and path ".nip.io". After an authority a path starts with '/',
    // so such a path shows the misreading (which would send the request elsewhere).
    if (!url.encoded_path().empty() && url.encoded_path().front() != '/')
        return invalid(diag, "client_config::base_url has an invalid host or port");

    switch (url.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4:
        out.host = url.encoded_host_address();
        break;
    case boost::urls::host_type::ipv6:
        out.host = url.host_address(); // without the brackets
        break;
    default:
        return invalid(diag, "client_config::base_url must name a host");
    }
    if (out.host.empty())
        return invalid(diag, "client_config::base_url must name a host");
    if (url.host_type() == boost::urls::host_type::name && !std::all_of(out.host.begin(), out.host.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
        }))
        return invalid(diag, "client_config::base_url has an invalid host name");
    out.host_is_ip = url.host_type() != boost::urls::host_type::name;

    if (url.has_port()) {
        // Not port_number(): Boost.URL 1.81 wraps some ports above 65535 ("100443" gives 34907).
        if (parse_port(url.port()) == 0)
            return invalid(diag, "client_config::base_url has an invalid port");
        out.port = url.port();
    } else {
        out.port = "443";
    }
    out.host_header = std::string(url.encoded_host_and_port());

    // The path is a prefix: "https://proxy/v1/" sends to "/v1/access-token".
    std::string_view path = url.encoded_path();
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    out.target.assign(path);
    out.target += "/access-token";
    return {};
}

std::string string_member(const boost::json::object& obj, std::string_view name)
{
    if (auto* v = obj.if_contains(name); v && v->is_string())
        return std::string(v->get_string());
    return {};
}

} // namespace

void replace_all(std::string& text, std::string_view secret, std::string_view replacement)
{
    if (secret.empty())
        return;
    // The search resumes after the replacement: a secret that is the replacement
    // itself (the docs' placeholder key "sk_car_...") would otherwise be found
    // again forever.
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + replacement.size()))
        text.replace(pos, secret.size(), replacement);
}

std::string scrub(std::string text, std::string_view api_key)
{
    if (api_key.size() < 8) // too short to be a real key; scrubbing would maul the text
        return text;
    replace_all(text, api_key, "sk_car_...");
    return text;
}

error_code validate(const client_config& config, const token_request& request, endpoint& out, diagnostics& diag)
{
    // The key goes into a header: a control character would let it inject headers.
    if (config.api_key.empty())
        return invalid(diag, "client_config::api_key is empty");
    if (config.api_key.size() > max_key_length)
        return invalid(diag, "client_config::api_key is too long");
    if (!std::all_of(config.api_key.begin(), config.api_key.end(), is_printable_ascii))
        return invalid(diag, "client_config::api_key contains a space or a control character");
    if (!is_iso_date(config.api_version))
        return invalid(diag, "client_config::api_version must be a date, YYYY-MM-DD");
    if (config.timeout <= std::chrono::milliseconds::zero())
        return invalid(diag, "client_config::timeout must be positive");
    if (config.max_retries < 0 || config.max_retries > max_retries_limit)
        return invalid(diag, "client_config::max_retries must be between 0 and 10");
    if (!std::all_of(config.user_agent_suffix.begin(), config.user_agent_suffix.end(),
                     [](char c) { return c == ' ' || is_printable_ascii(c); }))
        return invalid(diag, "client_config::user_agent_suffix must be printable ASCII");
    if (config.max_connections == 0 || config.max_connections > 65536)
        return invalid(diag, "client_config::max_connections must be between 1 and 65536");
    if (config.idle_timeout <= std::chrono::milliseconds::zero())
        return invalid(diag, "client_config::idle_timeout must be positive");
    if (config.min_connections > config.max_connections)
        return invalid(diag, "client_config::min_connections must not exceed max_connections");
    if (config.total_timeout && *config.total_timeout <= std::chrono::milliseconds::zero())
        return invalid(diag, "client_config::total_timeout must be positive when set");
    // Written so that NaN fails too.
    if (!(config.retry_budget_ratio >= 0.0 && config.retry_budget_ratio <= 1.0))
        return invalid(diag, "client_config::retry_budget_ratio must be between 0 and 1");
    if (config.max_header_bytes == 0 || config.max_body_bytes == 0)
        return invalid(diag, "client_config::max_header_bytes and max_body_bytes must be positive");
    if (auto ec = validate_request(request, diag))
        return ec;
    if (auto ec = parse_base_url(config.base_url, out, diag))
        return ec;
    return parse_network_config(config, out.host, out.network, diag);
}

error_code validate_request(const token_request& request, diagnostics& diag)
{
    if (request.expires_in && (request.expires_in->count() < 1 || request.expires_in->count() > 3600))
        return invalid(diag, "token_request::expires_in must be between 1 and 3600 seconds");
    return {};
}

namespace {

// The body is a handful of known members: writing it by hand keeps it exact and
// costs no allocation; the longest is 70 bytes.
using body_buffer = std::array<char, 96>;

std::string_view write_request_body(const token_request& request, body_buffer& buffer)
{
    char* out = buffer.data();
    auto put = [&](std::string_view text) { out = std::copy(text.begin(), text.end(), out); };
    put("{");
    if (request.grants) {
        put("\"grants\":{");
        bool first = true;
        for (auto [name, value] : {std::pair{"tts", request.grants->tts}, std::pair{"stt", request.grants->stt},
                                   std::pair{"agent", request.grants->agent}}) {
            if (!value)
                continue;
            put(first ? "\"" : ",\"");
            put(name);
            put(*value ? "\":true" : "\":false");
            first = false;
        }
        put("}");
    }
    if (request.expires_in) {
        put(request.grants ? ",\"expires_in\":" : "\"expires_in\":");
        out = std::to_chars(out, buffer.data() + buffer.size(), request.expires_in->count()).ptr;
    }
    put("}");
    return {buffer.data(), static_cast<std::size_t>(out - buffer.data())};
}

void append_user_agent(std::string& out, std::string_view suffix)
{
    out += "cartesia-asio/" CARTESIA_ASIO_VERSION_STRING;
    if (!suffix.empty()) {
        out += ' ';
        out += suffix;
    }
}

} // namespace

std::string serialize_request_body(const token_request& request)
{
    body_buffer buffer;
    return std::string(write_request_body(request, buffer));
}

std::string serialize_request_head(const client_config& config, const endpoint& where, bool keep_alive)
{
    std::string out;
    out.reserve(256 + where.target.size() + where.host_header.size() + config.api_key.size() +
                config.api_version.size() + config.user_agent_suffix.size());
    out += "POST ";
    out += where.target;
    out += " HTTP/1.1\r\nHost: ";
    out += where.host_header;
    out += "\r\nAuthorization: Bearer ";
    out += config.api_key;
    out += "\r\nCartesia-Version: ";
    out += config.api_version;
    out += "\r\nContent-Type: application/json\r\nAccept: application/json\r\nUser-Agent: ";
    append_user_agent(out, config.user_agent_suffix);
    if (!keep_alive)
        out += "\r\nConnection: close";
    out += "\r\nContent-Length: ";
    return out;
}

request_tail serialize_request_tail(const token_request& request)
{
    static_assert(std::tuple_size_v<decltype(request_tail::bytes)> >= std::tuple_size_v<body_buffer> + 2 + 4,
                  "request_tail holds the longest body, its length and the blank line");
    body_buffer body_bytes;
    const std::string_view body = write_request_body(request, body_bytes);
    request_tail tail;
    char* out = std::to_chars(tail.bytes.data(), tail.bytes.data() + tail.bytes.size(), body.size()).ptr;
    out = std::copy_n("\r\n\r\n", 4, out);
    out = std::copy(body.begin(), body.end(), out);
    tail.size = static_cast<std::size_t>(out - tail.bytes.data());
    return tail;
}

error_code status_to_error(unsigned status) noexcept
{
    switch (status) {
    case 400:
        return error::bad_request;
    case 401:
        return error::unauthorized;
    case 403:
        return error::forbidden;
    case 404:
        return error::not_found;
    case 409:
        return error::conflict;
    case 422:
        return error::unprocessable_entity;
    case 429:
        return error::rate_limited;
    default:
        return status >= 500 ? error::server_error : error::unexpected_status;
    }
}

error_code parse_token_body(std::string_view body, std::string_view content_type, std::string_view api_key,
                            token_response& out, diagnostics& diag)
{
    auto fail = [&](std::string what) {
        if (!content_type.empty())
            // Server text in a client message: scrubbed of the key, then bounded.
            what += " (content-type " + scrub(std::string(content_type), api_key).substr(0, 64) + ")";
        diagnostics_access::set_client_message(diag, std::move(what));
        return error_code(error::bad_response);
    };
    // A token response is small: parse it in stack memory, no heap allocation.
    unsigned char arena[2048];
    boost::json::monotonic_resource resource(arena, sizeof arena);
    boost::system::error_code json_ec;
    const boost::json::value parsed = boost::json::parse(body, json_ec, &resource);
    if (json_ec)
        return fail("the 2xx response body is not valid JSON: " + json_ec.message());
    const auto* obj = parsed.if_object();
    if (!obj)
        return fail("the 2xx response body is not a JSON object");
    const auto* token = obj->if_contains("token");
    if (!token)
        return fail("the 2xx response has no \"token\" member");
    if (!token->is_string())
        return fail("the 2xx response's \"token\" is not a string");
    if (token->get_string().empty())
        return fail("the 2xx response's \"token\" is empty");
    out.token.assign(token->get_string().data(), token->get_string().size());
    out.raw_json.assign(body);
    return {};
}

void parse_error_body(std::string_view body, std::string_view request_id_header, std::string_view api_key,
                      diagnostics& diag)
{
    // Server text is untrusted: bound what we keep of it.
    constexpr std::size_t max_kept = 1024;
    std::string title, message, code, request_id;
    boost::system::error_code json_ec;
    boost::json::value parsed = boost::json::parse(body, json_ec);
    if (!json_ec && parsed.is_object()) {
        const auto& obj = parsed.get_object();
        title = string_member(obj, "title");
        message = string_member(obj, "message");
        code = string_member(obj, "error_code");
        request_id = string_member(obj, "request_id");
    } else {
        message.assign(body);
        while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back())))
            message.pop_back();
    }
    if (request_id.empty())
        request_id.assign(request_id_header);
    // Scrub before truncating: a key cut in two by the limit would no longer match.
    for (std::string* field : {&title, &message, &code, &request_id}) {
        *field = scrub(std::move(*field), api_key);
        if (field->size() > max_kept)
            field->resize(max_kept);
    }
    diagnostics_access::set_server_fields(diag, std::move(title), std::move(message), std::move(code),
                                          std::move(request_id));
}

error_code interpret_response(const response_view& response, std::string_view api_key, token_response& out,
                              diagnostics& diag)
{
    diagnostics_access::set_http_status(diag, response.status);
    if (response.status >= 200 && response.status < 300) {
        return parse_token_body(response.body, response.content_type, api_key, out, diag);
    }
    parse_error_body(response.body, response.request_id_header, api_key, diag);
    return status_to_error(response.status);
}

namespace {

std::string_view trim(std::string_view text) noexcept
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// Digits only, at most `limit`.
std::optional<std::size_t> bounded_number(std::string_view digits, std::size_t limit) noexcept
{
    if (digits.size() >= 2 && digits.front() == '"' && digits.back() == '"') // a quoted-string is allowed
        digits = digits.substr(1, digits.size() - 2);
    if (digits.empty() || digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    std::size_t value = 0;
    for (char c : digits)
        value = value * 10 + static_cast<std::size_t>(c - '0');
    if (value > limit)
        return std::nullopt;
    return value;
}

} // namespace

keep_alive_hint parse_keep_alive(std::string_view header) noexcept
{
    constexpr std::size_t a_day = std::size_t{24} * 3600;
    constexpr std::size_t a_million = 1000000;
    keep_alive_hint hint;
    while (!header.empty()) {
        const std::size_t comma = header.find(',');
        const std::string_view parameter = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        const std::size_t equals = parameter.find('=');
        if (equals == std::string_view::npos)
            continue;
        const std::string_view name = trim(parameter.substr(0, equals));
        const std::string_view value = trim(parameter.substr(equals + 1));
        if (equals_ignoring_case(name, "timeout") && !hint.timeout) {
            if (auto seconds = bounded_number(value, a_day))
                hint.timeout = std::chrono::seconds(static_cast<long long>(*seconds));
        } else if (equals_ignoring_case(name, "max") && !hint.max) {
            hint.max = bounded_number(value, a_million);
        }
    }
    return hint;
}

} // namespace cartesia::detail
