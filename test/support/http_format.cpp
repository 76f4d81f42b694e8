// Response bytes made from a canned_response; see http_format.hpp.
#include "support/http_format.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <sstream>
#include <utility>

namespace cartesia::test {
namespace detail {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view last_chunk = "0\r\n\r\n";

http::response<http::string_body> to_http(const canned_response& answer, unsigned version, bool keep_alive)
{
    http::response<http::string_body> response;
    response.version(version);
    response.result(answer.status);
    response.reason(reason_phrase(answer.status)); // Beast would write "<unknown-status>" for e.g. 418
    if (!answer.content_type.empty())
        response.set(http::field::content_type, answer.content_type);
    for (const auto& [name, value] : answer.headers)
        response.insert(name, value);
    // Beast refuses to frame a body for 1xx, 204 and 304, which HTTP forbids to have one.
    if (answer.status >= 200 && answer.status != 204 && answer.status != 304)
        response.body() = answer.body;
    response.keep_alive(keep_alive);
    response.prepare_payload();
    return response;
}

// The status line and header block of `response`, up to and including the empty line.
std::string format_head(const http::response<http::string_body>& response)
{
    std::ostringstream head;
    head << response.base();
    return head.str();
}

} // namespace

std::string reason_phrase(unsigned status)
{
    const http::status known = http::int_to_status(status);
    return known == http::status::unknown ? "Unknown Status" : std::string(http::obsolete_reason(known));
}

std::string chunk_of(std::string_view data)
{
    std::array<char, 2 * sizeof(std::size_t)> size{};
    const auto end = std::to_chars(size.data(), size.data() + size.size(), data.size(), 16).ptr;
    return std::string(size.data(), end) + "\r\n" + std::string(data) + "\r\n";
}

std::string format_chunked(const canned_response& answer, std::size_t chunk_size, unsigned http_version,
                           bool keep_alive)
{
    auto response = to_http(answer, http_version, keep_alive);
    response.chunked(true); // which also removes Content-Length
    std::string bytes = format_head(response);
    for (std::string_view rest = response.body(); !rest.empty();) {
        const std::string_view chunk = rest.substr(0, std::max<std::size_t>(chunk_size, 1));
        bytes += chunk_of(chunk);
        rest.remove_prefix(chunk.size());
    }
    return bytes + std::string(last_chunk);
}

std::string format_eof_delimited(const canned_response& answer, unsigned http_version)
{
    auto response = to_http(answer, http_version, false);
    response.erase(http::field::content_length);
    return format_head(response) + response.body();
}

std::string streamed_head(std::optional<std::size_t> length)
{
    auto response = to_http(canned_response{}, 11, true);
    if (length) {
        response.content_length(*length);
    } else {
        response.chunked(true);
    }
    return format_head(response);
}

std::string http_date(std::chrono::sys_seconds when)
{
    using namespace std::chrono;
    // Spelled out here because strftime's names would follow the locale.
    static constexpr std::array<std::string_view, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const sys_days day = floor<days>(when);
    const year_month_day date(day);
    const hh_mm_ss time(when - day);
    std::array<char, sizeof "Sun, 06 Nov 1994 08:49:37 GMT"> text{};
    std::snprintf(text.data(), text.size(), "%s, %02u %s %04d %02d:%02d:%02d GMT",
                  day_names[weekday(day).c_encoding()].data(), static_cast<unsigned>(date.day()),
                  month_names[static_cast<unsigned>(date.month()) - 1].data(), static_cast<int>(date.year()),
                  static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()));
    return text.data();
}

canned_response raw_response(std::string bytes, ending then)
{
    canned_response answer;
    answer.raw = std::move(bytes);
    answer.then = then;
    return answer;
}

canned_response silence_then(ending then)
{
    return raw_response({}, then);
}

} // namespace detail

std::string format_response(const canned_response& answer, unsigned http_version, bool keep_alive)
{
    std::ostringstream bytes;
    bytes << detail::to_http(answer, http_version, keep_alive);
    return bytes.str();
}

} // namespace cartesia::test
