#include "access_log.hpp"

#include "metrics.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <system_error>
#include <utility>

namespace token_server {

std::string rfc3339_utc(std::chrono::system_clock::time_point time)
{
    const auto seconds = std::chrono::floor<std::chrono::seconds>(time);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(time - seconds).count();
    const std::time_t t = std::chrono::system_clock::to_time_t(seconds);
    std::tm utc{};
    gmtime_r(&t, &utc);
    std::array<char, 32> text{};
    const int length =
        std::snprintf(text.data(), text.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                      utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
    return {text.data(), length > 0 ? static_cast<std::size_t>(length) : 0};
}

namespace {

// Members appended by hand, not through a json::object, for the numbers' sake: Boost.JSON
// 1.81 writes 0.162 as 1.62E-1, valid but hard on a person reading the log.
class json_line {
public:
    json_line& member(std::string_view name, std::string_view value)
    {
        key(name);
        text_ += boost::json::serialize(boost::json::string_view(value.data(), value.size())); // escaped
        return *this;
    }
    json_line& member(std::string_view name, std::uint64_t value)
    {
        key(name);
        text_ += std::to_string(value);
        return *this;
    }
    json_line& member_fixed(std::string_view name, double value, int decimals)
    {
        key(name);
        std::array<char, 32> digits{};
        const auto [end, ec] =
            std::to_chars(digits.data(), digits.data() + digits.size(), value, std::chars_format::fixed, decimals);
        text_.append(digits.data(), ec == std::errc() ? end : digits.data());
        return *this;
    }
    std::string finish() &&
    {
        text_ += "}\n";
        return std::move(text_);
    }

private:
    void key(std::string_view name)
    {
        text_ += text_.empty() ? "{\"" : ",\"";
        text_.append(name).append("\":");
    }
    std::string text_;
};

} // namespace

std::string access_log_line(const access_record& record)
{
    const std::chrono::duration<double, std::milli> duration = record.duration;
    json_line line;
    line.member("time", rfc3339_utc(record.time))
        .member("method", record.method)
        .member("path", record.path)
        .member("status", record.status)
        .member_fixed("duration_ms", duration.count(), 3)
        .member("bytes_sent", record.bytes_sent)
        .member("remote_address", record.remote_address);
    if (record.upstream) {
        const auto& upstream = *record.upstream;
        line.member("upstream", upstream.error ? error_name(upstream.error) : "ok")
            .member("attempts", upstream.attempts)
            .member("token_source", upstream.from_reserve ? "reserve" : "minted");
        if (upstream.error)
            line.member("upstream_kind", upstream_failure_kind(upstream.error))
                .member("upstream_detail", upstream.detail);
    }
    if (!record.delivery_error.empty())
        line.member("delivery_error", record.delivery_error);
    return std::move(line).finish();
}

} // namespace token_server
