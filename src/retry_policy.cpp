#include "retry_policy.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <algorithm>
#include <array>
#include <random>

namespace cartesia::detail {
namespace {

std::optional<double> parse_non_negative_number(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    if (text.empty() || text.size() > 32)
        return std::nullopt;
    double value = 0;
    double scale = 0; // 0 while in the integer part
    for (char c : text) {
        if (c == '.' && scale == 0) {
            scale = 0.1;
        } else if (c >= '0' && c <= '9') {
            if (scale == 0) {
                value = value * 10 + (c - '0');
            } else {
                value += (c - '0') * scale;
                scale /= 10;
            }
        } else {
            return std::nullopt;
        }
    }
    return value;
}

// IMF-fixdate, the only HTTP date form servers may send: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text)
{
    static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (text.size() != 29 || text[3] != ',' || text.substr(25) != " GMT")
        return std::nullopt;
    auto number = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
        int n = 0;
        for (char c : text.substr(pos, len)) {
            if (c < '0' || c > '9')
                return std::nullopt;
            n = n * 10 + (c - '0');
        }
        return n;
    };
    auto day = number(5, 2), year = number(12, 4), hour = number(17, 2), minute = number(20, 2), second = number(23, 2);
    if (!day || !year || !hour || !minute || !second || text[19] != ':' || text[22] != ':')
        return std::nullopt;
    unsigned month = 0;
    while (month < 12 && months[month] != text.substr(8, 3))
        ++month;
    if (month == 12)
        return std::nullopt;
    const std::chrono::year_month_day date{std::chrono::year{*year}, std::chrono::month{month + 1},
                                           std::chrono::day{static_cast<unsigned>(*day)}};
    if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60)
        return std::nullopt;
    return std::chrono::sys_days{date} + std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
           std::chrono::seconds{*second};
}

bool is_retryable_status(unsigned status) noexcept
{
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

} // namespace

bool is_retryable(const attempt_outcome& outcome) noexcept
{
    if (!outcome.ec)
        return false;
    // A proxy that refused the tunnel (its policy, or credentials) says the same
    // again; docs/errors.md promises these are not retried.
    if (outcome.ec == error::invalid_argument || outcome.ec == error::proxy_error ||
        outcome.ec == error::proxy_auth_required)
        return false;
    if (outcome.should_retry_header)
        return *outcome.should_retry_header;
    if (outcome.status != 0)
        return outcome.status >= 300 && is_retryable_status(outcome.status);
    if (outcome.ec == error::timeout)
        return true;
    if (outcome.ec.category() == error_category())
        return false; // bad_response, response_too_large
    if (outcome.response_started)
        return false;
    // A handshake that failed on its own terms (a certificate, a protocol version)
    // fails the same way again; one cut short by the transport may not.
    if (outcome.ec.category() == boost::asio::error::get_ssl_category())
        return false;
    return true;
}

std::chrono::milliseconds retry_delay(unsigned retry, double jitter,
                                      std::optional<std::chrono::milliseconds> server_delay) noexcept
{
    using namespace std::chrono_literals;
    if (server_delay && *server_delay >= 0ms && *server_delay <= 60s)
        return *server_delay;
    const double base_seconds = std::min(0.5 * static_cast<double>(1u << std::min(retry, 5u)), 8.0);
    const double seconds = base_seconds * (1.0 - 0.25 * std::clamp(jitter, 0.0, 1.0));
    return std::chrono::milliseconds{static_cast<long long>(seconds * 1000)};
}

double random_jitter() noexcept
{
    thread_local std::minstd_rand generator{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after_ms,
                                                           std::string_view retry_after,
                                                           std::chrono::system_clock::time_point now)
{
    using std::chrono::milliseconds;
    if (!retry_after_ms.empty()) {
        if (auto ms = parse_non_negative_number(retry_after_ms); ms && *ms < 1e9)
            return milliseconds{static_cast<long long>(*ms)};
    }
    if (retry_after.empty())
        return std::nullopt;
    if (auto seconds = parse_non_negative_number(retry_after); seconds && *seconds < 1e9)
        return milliseconds{static_cast<long long>(*seconds * 1000)};
    // In milliseconds, not the clock's nanoseconds, which span only 1677 to 2262: a
    // date may name any year from 0000 to 9999. Taking `now` down to the millisecond
    // rounds the wait up, so that it never ends before the date.
    if (auto date = parse_http_date(retry_after))
        return *date - std::chrono::floor<milliseconds>(now);
    return std::nullopt;
}

} // namespace cartesia::detail
