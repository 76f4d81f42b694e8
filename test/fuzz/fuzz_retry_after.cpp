// parse_retry_after: the retry-after-ms and Retry-After header values, untrusted.
//
// Input: retry-after-ms as a FuzzedDataProvider string (ended by a backslash and
// one other byte), then Retry-After (the rest).
//
// What parse_retry_after promises (src/protocol.cpp): retry-after-ms wins when it
// is a non-negative decimal below 1e9, truncated to whole milliseconds; otherwise
// Retry-After as non-negative delta seconds below 1e9, or as an IMF-fixdate relative
// to `now` (negative when past); otherwise nullopt. Whatever it returns,
// retry_delay must keep the wait within [0, 60 s].
#include "fuzz_support.hpp"

#include "retry_policy.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace cd = cartesia::detail;
using cartesia::fuzz::require;
using namespace std::chrono_literals;

// Digits only, short enough to be exact: the cases whose value is known.
std::optional<long long> plain_integer(std::string_view text)
{
    if (text.empty() || text.size() > 8 || text.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    return std::stoll(std::string(text));
}

bool looks_like_http_date(std::string_view text)
{
    return text.size() == 29 && text.ends_with(" GMT");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider input(data, size);
    const std::string retry_after_ms = input.ConsumeRandomLengthString(64);
    const std::string retry_after = input.ConsumeRemainingBytesAsString();
    // Any instant will do; a fixed one keeps crashes reproducible.
    const auto now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 12h + 345ms;

    const auto delay = cd::parse_retry_after(retry_after_ms, retry_after, now);
    const std::string both = retry_after_ms + " | " + retry_after;

    if (retry_after_ms.empty() && retry_after.empty())
        require(!delay, "no header, no delay", both);
    if (auto ms = plain_integer(retry_after_ms))
        require(delay && delay->count() == *ms, "retry-after-ms in whole milliseconds is taken as is", both);
    else if (auto seconds = plain_integer(retry_after); seconds && retry_after_ms.empty())
        require(delay && delay->count() == *seconds * 1000, "Retry-After in whole seconds is taken as is", both);
    if (delay && delay->count() < 0)
        require(looks_like_http_date(retry_after), "only a past date gives a negative delay", both);
    if (delay && !looks_like_http_date(retry_after))
        require(delay->count() < 1'000'000'000'000LL, "a number gives less than 1e9 s", both);

    // The server's word decides the wait only within [0, 60 s]; otherwise the backoff.
    for (unsigned retry : {0u, 3u, 10u}) {
        const auto wait = cd::retry_delay(retry, 0.999, delay);
        require(wait >= 0ms && wait <= 60s, "the wait before a retry is within [0, 60 s]", both);
        if (delay && *delay >= 0ms && *delay <= 60s)
            require(wait == *delay, "a server delay within [0, 60 s] wins", both);
    }
    return 0;
}
