#include "network_config.hpp"
#include "protocol.hpp"

#include <cartesia/error.hpp>

#include <boost/assert.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace cartesia::detail {
namespace {

using boost::system::error_code;
namespace ip = boost::asio::ip;

error_code invalid(diagnostics& diag, std::string message)
{
    diagnostics_access::set_client_message(diag, std::move(message));
    return error::invalid_argument;
}

char to_lower_ascii(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowercase(std::string_view text)
{
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), to_lower_ascii);
    return out;
}

bool is_blank(char c) noexcept
{
    return c == ' ' || c == '\t';
}

bool is_control(char c) noexcept
{
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
}

// The host names a proxy or a resolve entry may give: letters, digits, '-', '.' and
// '_'. Unlike the API's host (base_url), which a certificate must match, these are
// only resolved, and container networks name services with underscores.
bool is_host_name(std::string_view name) noexcept
{
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
}

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
bool is_scheme(std::string_view text) noexcept
{
    return !text.empty() && std::isalpha(static_cast<unsigned char>(text.front())) &&
           std::all_of(text.begin(), text.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
           });
}

std::string_view without_brackets(std::string_view host) noexcept
{
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return host.substr(1, host.size() - 2);
    return host;
}

std::optional<ip::address> parse_address(std::string_view text)
{
    if (text.empty())
        return std::nullopt;
    error_code ec;
    const ip::address address = ip::make_address(std::string(text), ec);
    if (ec)
        return std::nullopt;
    return address;
}

// How hosts are compared: lowercase, no brackets, no trailing dot, an IP literal in
// its canonical form (so that "[0:0::1]" is "::1").
std::string normalized_host(std::string_view host)
{
    host = without_brackets(host);
    if (auto address = parse_address(host))
        return address->to_string();
    if (host.ends_with('.'))
        host.remove_suffix(1);
    return lowercase(host);
}

// RFC 4648 base64, with padding, as Basic authentication wants it (RFC 7617).
std::string base64(std::string_view bytes)
{
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    auto byte = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])); };
    auto sextet = [&](std::uint32_t group, int shift) { return alphabet[(group >> shift) & 0x3fU]; };
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t group = byte(i) << 16U | byte(i + 1) << 8U | byte(i + 2);
        out += {sextet(group, 18), sextet(group, 12), sextet(group, 6), sextet(group, 0)};
    }
    if (bytes.size() - i == 1) {
        const std::uint32_t group = byte(i) << 16U;
        out += {sextet(group, 18), sextet(group, 12), '=', '='};
    } else if (bytes.size() - i == 2) {
        const std::uint32_t group = byte(i) << 16U | byte(i + 1) << 8U;
        out += {sextet(group, 18), sextet(group, 12), sextet(group, 6), '='};
    }
    return out;
}

// A CIDR prefix length: 1 to 3 digits, at most `max_bits`.
std::optional<unsigned> parse_prefix_length(std::string_view digits, unsigned max_bits) noexcept
{
    if (digits.empty() || digits.size() > 3)
        return std::nullopt;
    unsigned value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9')
            return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > max_bits)
        return std::nullopt;
    return value;
}

template <std::size_t N>
bool same_prefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b, unsigned bits) noexcept
{
    BOOST_ASSERT(bits <= N * 8);
    const std::size_t whole_bytes = bits / 8;
    if (!std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(whole_bytes), b.begin()))
        return false;
    const unsigned rest = bits % 8;
    if (rest == 0)
        return true;
    const auto mask = static_cast<unsigned char>(0xffU << (8 - rest));
    return ((a[whole_bytes] ^ b[whole_bytes]) & mask) == 0;
}

} // namespace

std::uint16_t parse_port(std::string_view digits) noexcept
{
    unsigned long value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9')
            return 0;
        value = value * 10 + static_cast<unsigned long>(c - '0');
        if (value > 65535)
            return 0;
    }
    return static_cast<std::uint16_t>(value);
}

// ---- the proxy ----------------------------------------------------------------

error_code parse_proxy(std::string_view text, http_proxy& out, diagnostics& diag)
{
    BOOST_ASSERT(!text.empty());
    // curl reads a proxy without a scheme as http://, and environments often say
    // HTTPS_PROXY=proxy.corp:3128.
    std::string with_scheme;
    if (text.find("://") == std::string_view::npos) {
        with_scheme = "http://";
        with_scheme += text;
        text = with_scheme;
    }
    // No message below quotes the URL or any part of it: it may hold the password.
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed)
        return invalid(diag, "client_config::proxy is not a valid URL: it must be http://[user:password@]host[:port], "
                             "with '%', ':' and '@' percent-encoded in the user name and password");
    const auto& url = *parsed;
    if (url.scheme_id() == boost::urls::scheme::https)
        return invalid(diag, "client_config::proxy: https:// proxies (TLS to the proxy) are not supported; use an "
                             "http:// proxy URL (the connection to the API through it is TLS all the same)");
    if (url.scheme_id() != boost::urls::scheme::http)
        return invalid(diag, "client_config::proxy must be an http:// URL");
    // As for base_url: Boost.URL 1.81 may end the authority early ("http://host:8x"
    // as port 8 and path "x"); a path that does not start with '/' shows it.
    const std::string_view path = url.encoded_path();
    if (!path.empty() && path.front() != '/')
        return invalid(diag, "client_config::proxy has an invalid host or port");
    if ((!path.empty() && path != "/") || url.has_query() || url.has_fragment())
        return invalid(diag, "client_config::proxy must not carry a path, a query or a fragment");

    http_proxy proxy;
    switch (url.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4:
        proxy.host = url.encoded_host_address();
        break;
    case boost::urls::host_type::ipv6:
        proxy.host = url.host_address(); // without the brackets
        break;
    default:
        return invalid(diag, "client_config::proxy must name a host");
    }
    if (proxy.host.empty())
        return invalid(diag, "client_config::proxy must name a host");
    if (url.host_type() == boost::urls::host_type::name && !is_host_name(proxy.host))
        return invalid(diag, "client_config::proxy has an invalid host name");
    proxy.host_is_ip = url.host_type() != boost::urls::host_type::name;

    if (url.has_port()) {
        // Not port_number(): Boost.URL 1.81 wraps some ports above 65535.
        if (parse_port(url.port()) == 0)
            return invalid(diag, "client_config::proxy has an invalid port");
        proxy.port = url.port();
    } else {
        proxy.port = "1080"; // curl's default for a proxy
    }
    proxy.display_name = url.host_type() == boost::urls::host_type::ipv6 ? "[" + proxy.host + "]" : proxy.host;
    proxy.display_name += ':';
    proxy.display_name += proxy.port;

    if (url.has_userinfo()) {
        proxy.user = url.user(); // percent-decoded, per RFC 3986
        proxy.password = url.password();
        // RFC 7617: the user-id cannot hold a colon (the first one ends it), and
        // neither part may hold control characters.
        if (proxy.user.find(':') != std::string::npos)
            return invalid(diag, "client_config::proxy's user name must not contain ':' (even percent-encoded)");
        if (std::any_of(proxy.user.begin(), proxy.user.end(), is_control) ||
            std::any_of(proxy.password.begin(), proxy.password.end(), is_control))
            return invalid(diag, "client_config::proxy's user name and password must not contain control characters");
        if (!proxy.user.empty() || url.has_password())
            proxy.authorization = "Basic " + base64(proxy.user + ':' + proxy.password);
    }
    out = std::move(proxy);
    return {};
}

std::string redact_url_credentials(std::string_view url)
{
    // The user info starts after "scheme://", when what precedes "://" is a scheme
    // (a password may hold "://" too), and ends at the last '@' (a password may hold
    // an unencoded '@' or '/'). All of it goes: some proxies take a token as the
    // user name. Redacting too much is harmless.
    std::size_t authority = 0;
    if (const auto separator = url.find("://");
        separator != std::string_view::npos && is_scheme(url.substr(0, separator)))
        authority = separator + 3;
    if (const auto at = url.rfind('@'); at != std::string_view::npos && at >= authority)
        return std::string(url.substr(0, authority)) + "…" + std::string(url.substr(at));
    // No '@': a "port" that is no number is most likely a password whose host was
    // forgotten ("user:secret"); it goes, and all after it.
    const std::string_view rest = url.substr(authority);
    const auto colon = rest.substr(0, rest.find('/')).rfind(':');
    if (colon == std::string_view::npos || rest.find(']', colon) != std::string_view::npos)
        return std::string(url); // no port, or a colon of an IPv6 literal
    const std::string_view port = rest.substr(colon + 1, rest.find('/', colon) - colon - 1);
    if (std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::string(url);
    return std::string(url.substr(0, authority + colon + 1)) + "…";
}

// ---- resolve overrides -----------------------------------------------------------

error_code resolve_overrides::parse(const std::vector<std::string>& entries, resolve_overrides& out, diagnostics& diag)
{
    std::vector<entry> parsed;
    parsed.reserve(entries.size());
    for (std::size_t index = 0; index < entries.size(); ++index) {
        const std::string field = "client_config::resolve[" + std::to_string(index) + "]";
        auto fail = [&](std::string_view problem) { return invalid(diag, field + ' ' + std::string(problem)); };
        constexpr std::string_view shape = "must be host:port:address[,address...], with an IPv6 host in brackets";

        std::string_view rest = entries[index];
        std::string_view host;
        bool bracketed = false;
        if (rest.starts_with('[')) {
            const auto close = rest.find(']');
            if (close == std::string_view::npos || rest.substr(close + 1, 1) != ":")
                return fail(shape);
            host = rest.substr(1, close - 1);
            rest.remove_prefix(close + 2);
            bracketed = true;
        } else {
            const auto colon = rest.find(':');
            if (colon == std::string_view::npos)
                return fail(shape);
            host = rest.substr(0, colon);
            rest.remove_prefix(colon + 1);
        }
        const auto colon = rest.find(':');
        if (colon == std::string_view::npos)
            return fail(shape);
        entry parsed_entry;
        parsed_entry.port = parse_port(rest.substr(0, colon));
        if (parsed_entry.port == 0)
            return fail("has an invalid port");
        rest.remove_prefix(colon + 1);

        if (auto literal = parse_address(host); literal && (bracketed ? literal->is_v6() : literal->is_v4()))
            parsed_entry.host = literal->to_string();
        else if (!bracketed && host == "*")
            parsed_entry.host = "*";
        else if (!bracketed && is_host_name(host))
            parsed_entry.host = normalized_host(host);
        if (parsed_entry.host.empty())
            return fail("has an invalid host");

        if (rest.empty())
            return fail("has no address");
        while (true) {
            const auto comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            while (!item.empty() && is_blank(item.front()))
                item.remove_prefix(1);
            while (!item.empty() && is_blank(item.back()))
                item.remove_suffix(1);
            auto address = parse_address(without_brackets(item));
            if (!address)
                return fail("has an invalid address");
            parsed_entry.addresses.push_back(*address);
            if (comma == std::string_view::npos)
                break;
            rest.remove_prefix(comma + 1);
        }
        BOOST_ASSERT(!parsed_entry.addresses.empty());
        parsed.push_back(std::move(parsed_entry));
    }
    out.entries_ = std::move(parsed);
    return {};
}

std::span<const ip::address> resolve_overrides::lookup(std::string_view host, std::uint16_t port) const
{
    if (entries_.empty() || port == 0)
        return {};
    const std::string key = normalized_host(host);
    // From the back: the later of two entries for the same host and port wins.
    auto latest = [&](std::string_view wanted) -> const entry* {
        const auto found = std::find_if(entries_.rbegin(), entries_.rend(), [&](const entry& candidate) {
            return candidate.port == port && candidate.host == wanted;
        });
        return found == entries_.rend() ? nullptr : &*found;
    };
    const entry* match = latest(key);
    if (!match)
        match = latest("*");
    if (!match)
        return {};
    return match->addresses;
}

// ---- no_proxy ------------------------------------------------------------------

no_proxy_list::no_proxy_list(std::string_view list)
{
    std::size_t position = 0;
    while (position < list.size()) {
        auto end = list.find_first_of(", \t", position);
        if (end == std::string_view::npos)
            end = list.size();
        std::string_view token = list.substr(position, end - position);
        position = end + 1;
        if (token.empty())
            continue;
        if (token == "*") {
            // curl honours "*" only as the whole list; in a list it could only mean
            // the same, since no host is named "*".
            matches_all_ = true;
            continue;
        }

        std::string_view address_text;
        std::optional<std::string_view> prefix_text;
        if (token.front() == '[') {
            // "[v6]", "[v6]/bits", "[v6]:port" or "[v6]/bits:port".
            const auto close = token.find(']');
            if (close == std::string_view::npos)
                continue;
            address_text = token.substr(1, close - 1);
            std::string_view after = token.substr(close + 1);
            if (after.starts_with('/')) {
                after.remove_prefix(1);
                prefix_text = after.substr(0, after.find(':'));
            } else if (!after.empty() && !after.starts_with(':')) {
                continue;
            }
            if (!parse_address(address_text))
                continue;
        } else {
            // One colon ends a name or an IPv4 literal before a port; an IPv6
            // literal (without brackets, as curl wants it) has two or more.
            if (std::count(token.begin(), token.end(), ':') == 1)
                token = token.substr(0, token.find(':'));
            const auto slash = token.find('/');
            address_text = token.substr(0, slash);
            if (slash != std::string_view::npos)
                prefix_text = token.substr(slash + 1);
        }

        if (auto address = parse_address(address_text)) {
            const unsigned max_bits = address->is_v4() ? 32 : 128;
            // A prefix of 0 matches every address of the family, as CIDR says
            // (curl 8 reads "/0" as a single address).
            const auto bits = prefix_text ? parse_prefix_length(*prefix_text, max_bits) : max_bits;
            if (bits)
                ranges_.push_back({*address, *bits});
            continue;
        }
        if (prefix_text)
            continue; // "name/8" can match nothing
        // curl ignores one leading and one trailing dot: ".example.com" is "example.com".
        std::string_view name = address_text;
        if (name.starts_with('.'))
            name.remove_prefix(1);
        if (name.ends_with('.'))
            name.remove_suffix(1);
        if (!name.empty())
            names_.push_back(lowercase(name));
    }
}

bool no_proxy_list::matches(std::string_view host) const
{
    if (host.empty())
        return false;
    if (matches_all_)
        return true;
    host = without_brackets(host);
    if (auto address = parse_address(host)) {
        // An IP literal is matched against the address entries only, as curl does.
        return std::any_of(ranges_.begin(), ranges_.end(), [&](const address_range& range) {
            if (address->is_v4() && range.network.is_v4())
                return same_prefix(address->to_v4().to_bytes(), range.network.to_v4().to_bytes(), range.prefix_length);
            if (address->is_v6() && range.network.is_v6())
                return same_prefix(address->to_v6().to_bytes(), range.network.to_v6().to_bytes(), range.prefix_length);
            return false;
        });
    }
    std::string name = lowercase(host);
    if (name.ends_with('.'))
        name.pop_back();
    return std::any_of(names_.begin(), names_.end(), [&](const std::string& entry) {
        // The entry itself, or a subdomain: the match must start at a label.
        return name == entry ||
               (name.size() > entry.size() && name.ends_with(entry) && name[name.size() - entry.size() - 1] == '.');
    });
}

// ---- the whole -----------------------------------------------------------------

error_code parse_network_config(const client_config& config, std::string_view api_host, network_config& out,
                                diagnostics& diag)
{
    if (config.connect_timeout <= std::chrono::milliseconds::zero())
        return invalid(diag, "client_config::connect_timeout must be positive");
    if (config.connection_attempt_delay < std::chrono::milliseconds::zero())
        return invalid(diag, "client_config::connection_attempt_delay must not be negative");
    network_config parsed;
    parsed.connect_timeout = config.connect_timeout;
    parsed.connection_attempt_delay = config.connection_attempt_delay;
    if (!config.proxy.empty()) {
        // Checked even when no_proxy bypasses it: a bad URL is a bad configuration.
        http_proxy proxy;
        if (auto ec = parse_proxy(config.proxy, proxy, diag))
            return ec;
        if (!no_proxy_list(config.no_proxy).matches(api_host))
            parsed.proxy = std::move(proxy);
    }
    if (auto ec = resolve_overrides::parse(config.resolve, parsed.resolve, diag))
        return ec;
    out = std::move(parsed);
    return {};
}

} // namespace cartesia::detail
