// The local Cartesia-compatible HTTPS server described in test_server.hpp.
#include "support/test_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <cstdlib> // mkdtemp

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>

namespace cartesia::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
using request_type = http::request<http::string_body>;
using ending = canned_response::ending;

// Asynchronous operations report errors as a value, so that a misbehaving client is an
// ordinary outcome rather than an exception.
constexpr auto use_nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t header_limit = std::size_t{16} * 1024;
constexpr std::size_t body_limit = std::size_t{1024} * 1024;
constexpr std::int64_t default_expires_in = 300;
constexpr std::int64_t max_expires_in = 3600;
constexpr std::array<std::string_view, 5> supported_versions{"2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01",
                                                             "2026-08-14"};
constexpr std::string_view injected_message = "Fault injected by the test server";

// While the server answers, it reads what the client sends, to notice at once a client that
// leaves. Data is kept for the next request, up to what one request may hold; a client that
// sends more before reading the answer is flooding us and is hung up on.
constexpr std::size_t read_ahead_limit = header_limit + body_limit;
constexpr std::size_t read_ahead_step = std::size_t{4} * 1024;
// How long a graceful close waits for the client's close_notify.
constexpr std::chrono::seconds shutdown_timeout{5};

constexpr std::chrono::milliseconds default_drip_interval{50};
// Streamed bodies go out a block at a time and are never held whole.
constexpr std::size_t stream_block_size = std::size_t{16} * 1024;
// The socket of a stream holds little: once the client stops reading, the stream stalls soon,
// rather than encrypting megabytes into kernel buffers that nobody will read (a CPU cost that
// slows every other connection of the server's single thread).
constexpr std::size_t stream_send_buffer_size = std::size_t{4} * stream_block_size;
constexpr std::size_t huge_body_size = std::size_t{200} * 1024 * 1024;
// About 64 KiB of header block, beyond the limits clients usually set.
constexpr std::size_t filler_header_count = 64;
constexpr std::size_t filler_header_size = 1000;
// close-mid-body and reset-mid-body promise this much body and send only the first part.
constexpr std::size_t promised_body_size = 100;
constexpr std::size_t sent_body_size = 20;
constexpr std::string_view continue_interim = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view last_chunk = "0\r\n\r\n";

std::string random_uuid()
{
    return boost::uuids::to_string(boost::uuids::random_generator()());
}

std::string reason_phrase(unsigned status)
{
    const http::status known = http::int_to_status(status);
    return known == http::status::unknown ? "Unknown Status" : std::string(http::obsolete_reason(known));
}

// The error body of Cartesia-Version 2026-03-01; an empty error_code is sent as null.
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

// The fault named by "/fault/<name>/access-token": "" for a plain "/access-token" and
// nullopt for any other path. A query string is ignored, as the API does.
std::optional<std::string_view> fault_of(std::string_view target)
{
    constexpr std::string_view endpoint = "/access-token";
    constexpr std::string_view fault_prefix = "/fault/";
    target = target.substr(0, target.find('?'));
    if (target == endpoint)
        return "";
    if (target.size() <= fault_prefix.size() + endpoint.size() || !target.starts_with(fault_prefix) ||
        !target.ends_with(endpoint)) {
        return std::nullopt;
    }
    const std::string_view name =
        target.substr(fault_prefix.size(), target.size() - fault_prefix.size() - endpoint.size());
    if (name.find('/') != std::string_view::npos)
        return std::nullopt;
    return name;
}

// The number in a fault name such as "status-503" after `prefix`, or nullopt.
std::optional<unsigned> number_after(std::string_view name, std::string_view prefix)
{
    if (!name.starts_with(prefix))
        return std::nullopt;
    name.remove_prefix(prefix.size());
    unsigned number = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (error != std::errc{} || end != name.data() + name.size())
        return std::nullopt;
    return number;
}

bool is_final_status(std::optional<unsigned> status)
{
    return status && *status >= 200 && *status <= 599;
}

// The final status (200-599) in a fault name such as "once-503" after `prefix`, or nullopt.
std::optional<unsigned> final_status_after(std::string_view name, std::string_view prefix)
{
    const auto status = number_after(name, prefix);
    return is_final_status(status) ? status : std::nullopt;
}

// The status that tells a client why its request could not be parsed, or nullopt when the
// connection simply ended and there is nobody left to answer.
std::optional<unsigned> status_for_read_error(const beast::error_code& error)
{
    if (error == http::error::header_limit)
        return 431;
    if (error == http::error::body_limit)
        return 413;
    if (error.category() == beast::error_code(http::error::end_of_stream).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
        return 400;
    }
    return std::nullopt;
}

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

// One chunk of the chunked transfer coding.
std::string chunk_of(std::string_view data)
{
    std::array<char, 2 * sizeof(std::size_t)> size{};
    const auto end = std::to_chars(size.data(), size.data() + size.size(), data.size(), 16).ptr;
    return std::string(size.data(), end) + "\r\n" + std::string(data) + "\r\n";
}

// `answer` in the chunked transfer coding, its body cut into chunks of at most chunk_size bytes.
std::string format_chunked(const canned_response& answer, std::size_t chunk_size, unsigned version, bool keep_alive)
{
    auto response = to_http(answer, version, keep_alive);
    response.chunked(true); // which also removes Content-Length
    std::string bytes = format_head(response);
    for (std::string_view rest = response.body(); !rest.empty();) {
        const std::string_view chunk = rest.substr(0, std::max<std::size_t>(chunk_size, 1));
        bytes += chunk_of(chunk);
        rest.remove_prefix(chunk.size());
    }
    return bytes + std::string(last_chunk);
}

// `answer` with neither Content-Length nor chunking: only the end of the connection ends the body.
std::string format_eof_delimited(const canned_response& answer, unsigned version)
{
    auto response = to_http(answer, version, false);
    response.erase(http::field::content_length);
    return format_head(response) + response.body();
}

// Bytes sent as they are, then the connection ended as `then` says.
canned_response raw_response(std::string bytes, ending then)
{
    canned_response answer;
    answer.raw = std::move(bytes);
    answer.then = then;
    return answer;
}

// Nothing more to send; only the connection's fate is left to decide.
canned_response silence_then(ending then)
{
    return raw_response({}, then);
}

canned_response with_header(canned_response answer, std::string name, std::string value)
{
    answer.headers.emplace_back(std::move(name), std::move(value));
    return answer;
}

// Faults leave error_code null so that clients meet that case too.
canned_response injected_error(unsigned status)
{
    return json_error(status, {}, injected_message);
}

canned_response rate_limited(std::string header, std::string value)
{
    return with_header(json_error(429, {}, "Too many requests; retry later"), std::move(header), std::move(value));
}

// An IMF-fixdate (RFC 9110, 5.6.7) such as "Sun, 06 Nov 1994 08:49:37 GMT". The names are
// spelled out here because strftime's would follow the locale.
std::string http_date(std::chrono::sys_seconds when)
{
    using namespace std::chrono;
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

// Error statuses, with or without advice on retrying; nullopt when `name` is none of them.
std::optional<canned_response> error_status_fault(std::string_view name)
{
    for (const std::string_view alias : {"status-", "always-"}) {
        if (const auto status = final_status_after(name, alias))
            return injected_error(*status);
    }
    if (const auto status = final_status_after(name, "plain-")) {
        return canned_response{
            *status, "text/plain", reason_phrase(*status) + ": " + std::string(injected_message), {}};
    }
    for (const std::string_view should_retry : {"false", "true"}) {
        const std::string prefix = "should-retry-" + std::string(should_retry) + '-';
        if (const auto status = final_status_after(name, prefix))
            return with_header(injected_error(*status), "x-should-retry", std::string(should_retry));
    }
    // The specific prefixes first: "retry-after-" would not parse their numbers, but reads as if it might.
    if (const auto milliseconds = number_after(name, "retry-after-ms-"))
        return rate_limited("retry-after-ms", std::to_string(*milliseconds));
    if (const auto seconds = number_after(name, "retry-after-date-")) {
        // Rounded up, so that the date is never sooner than asked for.
        const auto when =
            std::chrono::ceil<std::chrono::seconds>(std::chrono::system_clock::now()) + std::chrono::seconds(*seconds);
        return rate_limited("Retry-After", http_date(when));
    }
    if (const auto seconds = number_after(name, "retry-after-"))
        return rate_limited("Retry-After", std::to_string(*seconds));
    return std::nullopt;
}

// 200 with a body a client must refuse, or decode with care; nullopt when `name` is none of them.
std::optional<canned_response> odd_body_fault(std::string_view name)
{
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> json_bodies{{
        {"token-null", R"({"token":null})"},
        {"token-number", R"({"token":42})"},
        {"json-array", R"(["token","x"])"},
        {"json-truncated", R"({"token":"abc)"},
        {"no-token", R"({"access_token":"abc"})"},
        // Decoded, the token is a/bé"c\d.
        {"escaped-token", R"({"token":"a\/b\u00e9\"c\\d"})"},
    }};
    if (name == "html") {
        // What a captive portal or a misconfigured proxy might send instead of JSON.
        return canned_response{200,
                               "text/html; charset=utf-8",
                               "<!DOCTYPE html><html><head><title>Sign in</title></head>"
                               "<body><h1>Sign in to continue</h1></body></html>",
                               {}};
    }
    const auto found = std::ranges::find(json_bodies, name, &std::pair<std::string_view, std::string_view>::first);
    if (found == json_bodies.end())
        return std::nullopt;
    return canned_response{200, "application/json", std::string(found->second), {}};
}

// A 200 that promises promised_body_size bytes of body and sends only sent_body_size of them.
canned_response cut_short_body(ending then)
{
    const std::string opening = R"({"token":")";
    const std::string closing = R"("})";
    const canned_response promise{200,
                                  "application/json",
                                  opening + std::string(promised_body_size - opening.size() - closing.size(), 'x') +
                                      closing,
                                  {}};
    canned_response answer = raw_response(format_response(promise), then);
    answer.truncate_after = answer.raw->size() - (promised_body_size - sent_body_size);
    return answer;
}

// A response broken off, or no response at all; nullopt when `name` is none of them.
std::optional<canned_response> broken_connection_fault(std::string_view name)
{
    struct broken_answer {
        std::string_view name;
        std::string_view bytes;
        ending then;
    };
    static constexpr std::array<broken_answer, 5> broken_answers{{
        {"garbage", "this is not HTTP at all\r\n\r\n", ending::close},
        {"status-line-only", "HTTP/1.1 200 OK\r\n", ending::drop},
        {"close-before-headers", "", ending::close},
        {"reset-before-headers", "", ending::reset},
        {"close-mid-headers", "HTTP/1.1 200 OK\r\nContent-Type: appl", ending::drop},
    }};
    if (name == "close-mid-body")
        return cut_short_body(ending::drop);
    if (name == "reset-mid-body")
        return cut_short_body(ending::reset);
    const auto found = std::ranges::find(broken_answers, name, &broken_answer::name);
    if (found == broken_answers.end())
        return std::nullopt;
    return raw_response(std::string(found->bytes), found->then);
}

// The answer of a fault that replaces the API's answer, or nullopt when `name` is not such a fault.
std::optional<canned_response> canned_fault(std::string_view name)
{
    if (auto answer = error_status_fault(name))
        return answer;
    if (auto answer = odd_body_fault(name))
        return answer;
    return broken_connection_fault(name);
}

canned_response with_filler_headers(canned_response answer)
{
    for (std::size_t i = 1; i <= filler_header_count; ++i)
        answer.headers.emplace_back("X-Filler-" + std::to_string(i), std::string(filler_header_size, 'x'));
    return answer;
}

// Adds fields a client does not know, as a later API version might, to a successful answer.
canned_response with_unknown_fields(canned_response answer)
{
    if (answer.status != 200)
        return answer;
    json::object body = json::parse(answer.body).as_object();
    body["expires_at"] = "2030-01-01T00:00:00Z";
    body["extra"] = json::object{{"nested", json::array{1, 2, 3}}};
    answer.body = json::serialize(body);
    return answer;
}

// How a fault alters the API's own answer, which it still computes (authentication and
// validation apply).
using reframing = std::function<canned_response(canned_response)>;

// The reframing a fault name asks for, or an empty function when `name` is none of them.
reframing reframing_of(std::string_view name, unsigned version, bool keep_alive)
{
    const auto dripped = [](std::chrono::milliseconds interval) -> reframing {
        return [interval](canned_response answer) {
            answer.byte_interval = interval;
            return answer;
        };
    };
    if (name == "drop-after-response") {
        return [](canned_response answer) {
            answer.then = ending::drop;
            return answer;
        };
    }
    if (name == "chunked" || name == "tiny-chunks") {
        const bool tiny = name == "tiny-chunks";
        return [=](const canned_response& answer) {
            const std::size_t chunk_size = tiny ? 1 : (answer.body.size() + 1) / 2; // 2 chunks
            return raw_response(format_chunked(answer, chunk_size, version, keep_alive), ending::keep_alive);
        };
    }
    if (name == "eof-delimited") {
        return [=](const canned_response& answer) {
            return raw_response(format_eof_delimited(answer, version), ending::close);
        };
    }
    if (name == "interim-100") {
        return [=](const canned_response& answer) {
            return raw_response(std::string(continue_interim) + format_response(answer, version, keep_alive),
                                ending::keep_alive);
        };
    }
    if (name == "huge-headers")
        return with_filler_headers;
    if (name == "extra-fields")
        return with_unknown_fields;
    if (name == "drip")
        return dripped(default_drip_interval);
    if (const auto interval = number_after(name, "drip-"))
        return dripped(std::chrono::milliseconds(*interval));
    return {};
}

// Client connections currently open, which a test can wait on without polling.
class connection_gauge {
public:
    void opened()
    {
        change([this] { ++value_; });
    }
    void closed()
    {
        change([this] { --value_; });
    }

    std::size_t value() const noexcept { return value_; }

    bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return value_ == n; });
    }

private:
    // Applies `how` under the lock, so that a waiter cannot miss the notification.
    template <typename Change> void change(Change how)
    {
        {
            const std::lock_guard lock(mutex_);
            how();
        }
        changed_.notify_all();
    }

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::atomic<std::size_t> value_{0}; // atomic too, so that value() needs no lock
};

// What the server counts across its connections; tests read it from other threads.
struct traffic {
    std::atomic<std::size_t> bytes_written{0};
    connection_gauge open_connections;
};

// One client connection, counted as open from its construction until its socket is closed.
struct connection {
    connection(tcp::socket socket, ssl::context& tls, traffic& counters)
        : stream(std::move(socket), tls), tally(counters)
    {
        tally.open_connections.opened();
        // What we write goes out at once: Nagle's algorithm would clump a drip, and hold back
        // the bytes that an abortive close (ending::reset) then discards instead of sending.
        beast::error_code ignored; // only a lost optimisation, and only if the client is gone already
        beast::get_lowest_layer(stream).socket().set_option(tcp::no_delay(true), ignored);
    }
    ~connection()
    {
        beast::get_lowest_layer(stream).close(); // before it counts as closed
        tally.open_connections.closed();
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    tls_stream stream;
    beast::flat_buffer buffer; // read from the stream and not parsed yet
    traffic& tally;
};

// Writes `bytes`, counting what went out; false when the connection broke.
asio::awaitable<bool> write(connection& c, std::string_view bytes)
{
    if (bytes.empty())
        co_return true;
    const auto [error, size] = co_await asio::async_write(c.stream, asio::buffer(bytes), use_nothrow_awaitable);
    c.tally.bytes_written += size;
    co_return !error;
}

// Waits `delay` on an asio timer; false when cancelled.
asio::awaitable<bool> pause(std::chrono::milliseconds delay)
{
    asio::steady_timer timer(co_await asio::this_coro::executor, delay);
    const auto [error] = co_await timer.async_wait(use_nothrow_awaitable);
    co_return !error;
}

// Writes `bytes` one at a time, `interval` apart.
asio::awaitable<bool> drip(connection& c, std::string_view bytes, std::chrono::milliseconds interval)
{
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i > 0 && !co_await pause(interval))
            co_return false;
        if (!co_await write(c, bytes.substr(i, 1)))
            co_return false;
    }
    co_return true;
}

// Holds a connection open without answering, discarding whatever the client sends, until
// the client leaves or the server stops.
asio::awaitable<void> hold_open(tls_stream& stream)
{
    std::array<char, 1024> discarded{};
    for (;;) {
        const auto [error, size] = co_await stream.async_read_some(asio::buffer(discarded), use_nothrow_awaitable);
        if (error)
            co_return;
    }
}

// Completes when the client leaves, or floods us (see read_ahead_limit). What it sends
// meanwhile stays in the connection's buffer, where the next request is read from.
asio::awaitable<void> watch_for_departure(connection& c)
{
    while (c.buffer.size() < read_ahead_limit) {
        const auto [error, size] =
            co_await c.stream.async_read_some(c.buffer.prepare(read_ahead_step), use_nothrow_awaitable);
        if (error)
            co_return;
        c.buffer.commit(size);
    }
}

// Runs `work` (a wait, or writes the client may not be reading) until it is done or the client
// leaves: a write would notice a departed client late, and a wait never. True when `work`
// finished and succeeded; when the client left first, `work` is cancelled.
asio::awaitable<bool> unless_client_leaves(connection& c, asio::awaitable<bool> work)
{
    using namespace asio::experimental::awaitable_operators;
    const auto outcome = co_await (std::move(work) || watch_for_departure(c));
    co_return outcome.index() == 0 && std::get<0>(outcome);
}

// Writes `answer` as its delivery fields say; false when the connection broke or the client left.
asio::awaitable<bool> deliver(connection& c, const canned_response& answer, unsigned version, bool keep_alive)
{
    const std::string bytes = answer.raw ? *answer.raw : format_response(answer, version, keep_alive);
    const std::string_view sent = std::string_view(bytes).substr(0, answer.truncate_after);
    if (answer.byte_interval == std::chrono::milliseconds::zero())
        co_return co_await write(c, sent);
    co_return co_await unless_client_leaves(c, drip(c, sent, answer.byte_interval));
}

// Ends the connection as `how` says; keep_alive means a request that asked to close, and closes politely.
asio::awaitable<void> end_connection(connection& c, ending how)
{
    auto& transport = beast::get_lowest_layer(c.stream);
    switch (how) {
    case ending::keep_alive:
    case ending::close:
        // Say goodbye properly, but don't let a client that never answers our close_notify keep us.
        transport.expires_after(shutdown_timeout);
        co_await c.stream.async_shutdown(use_nothrow_awaitable);
        break;
    case ending::reset: {
        // A zero linger time makes close() send RST instead of FIN.
        beast::error_code ignored; // the client may be gone already, which is as good
        transport.socket().set_option(tcp::socket::linger(true, 0), ignored);
        break;
    }
    case ending::drop:
        break;
    }
    transport.close();
}

// A block of JSON whitespace: a client that parses as it reads learns nothing from it, so only
// its size limit can stop it.
const std::string& filler_block()
{
    static const std::string block(stream_block_size, ' ');
    return block;
}

// The head of a 200 JSON answer with a streamed body: Content-Length `length`, or chunked without one.
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

// Called before streaming; see stream_send_buffer_size.
void keep_send_buffer_small(connection& c)
{
    beast::error_code ignored; // only a lost optimisation, and only if the client is gone already
    beast::get_lowest_layer(c.stream).socket().set_option(asio::socket_base::send_buffer_size(stream_send_buffer_size),
                                                          ignored);
}

// huge-body: a 200 MB body, sent block by block.
asio::awaitable<bool> send_huge_body(connection& c)
{
    keep_send_buffer_small(c);
    if (!co_await write(c, streamed_head(huge_body_size)))
        co_return false;
    const std::string_view block = filler_block();
    for (std::size_t left = huge_body_size; left > 0;) {
        const std::string_view part = block.substr(0, left);
        if (!co_await write(c, part))
            co_return false;
        left -= part.size();
    }
    co_return true;
}

// endless-chunked: chunks until the client leaves.
asio::awaitable<bool> send_endless_chunks(connection& c)
{
    keep_send_buffer_small(c);
    if (!co_await write(c, streamed_head(std::nullopt)))
        co_return false;
    const std::string chunk = chunk_of(filler_block());
    for (;;) {
        if (!co_await write(c, chunk))
            co_return false;
    }
}

// Completion of a detached coroutine: a failure ends that coroutine only, and is worth a line in the log.
void report_failure(const std::exception_ptr& failure)
{
    if (!failure)
        return;
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        std::cerr << "test_server: " << e.what() << '\n';
    }
}

// A PEM file in a fresh private directory; both are removed on destruction.
class temporary_pem_file {
public:
    explicit temporary_pem_file(const std::string& pem)
    {
        const char* tmpdir = std::getenv("TMPDIR");
        std::string pattern =
            std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/cartesia-test-server-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
        }
        directory_ = pattern;
        path_ = directory_ + "/ca.pem";
        std::ofstream file(path_);
        file << pem;
        file.close();
        if (!file) {
            remove();
            throw std::runtime_error("test_server: cannot write " + path_);
        }
    }
    ~temporary_pem_file() { remove(); }
    temporary_pem_file(const temporary_pem_file&) = delete;
    temporary_pem_file& operator=(const temporary_pem_file&) = delete;

    const std::string& path() const noexcept { return path_; }

private:
    void remove() noexcept
    {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
        std::filesystem::remove(directory_, ignored);
    }

    std::string directory_;
    std::string path_;
};

std::string random_secret()
{
    std::string secret(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size())) != 1) {
        throw std::runtime_error("test_server: RAND_bytes failed");
    }
    return secret;
}

} // namespace

const std::vector<fault_info>& fault_names()
{
    // "The normal answer" is the API's own: authentication and validation apply.
    static const std::vector<fault_info> faults{
        {"ok", "the normal answer, as without a prefix"},
        // Error statuses.
        {"status-<code>", "<code> (200-599) with the JSON error body"},
        {"always-<code>", "the same as status-<code>"},
        {"once-<code>", "<code> with the JSON error body the first time (per server), then the normal answer"},
        {"should-retry-false-<code>", "<code> with the JSON error body and x-should-retry: false"},
        {"should-retry-true-<code>", "<code> with the JSON error body and x-should-retry: true"},
        {"plain-<code>", "<code> (200-599) with a text/plain \"<Title>: <message>\" body, as old API versions"},
        {"retry-after-<s>", "429 with Retry-After: <s> and the JSON error body"},
        {"retry-after-ms-<n>", "429 with retry-after-ms: <n> and the JSON error body"},
        {"retry-after-date-<s>", "429 with Retry-After as an HTTP date <s> seconds ahead, and the JSON error body"},
        // Bodies a client must refuse or decode with care.
        {"html", "200 with an HTML page, as a captive portal would"},
        {"token-null", "200 {\"token\":null}"},
        {"token-number", "200 {\"token\":42}"},
        {"json-array", R"(200 ["token","x"])"},
        {"json-truncated", R"(200 {"token":"abc (the message is complete, the JSON is not))"},
        {"no-token", R"(200 {"access_token":"abc"})"},
        {"escaped-token", "200 {\"token\":\"a\\/b\\u00e9\\\"c\\\\d\"}, whose token decodes to a/b\u00e9\"c\\d"},
        {"extra-fields", "the normal answer with unknown fields too: expires_at and a nested extra"},
        // The normal answer, framed or delivered unusually.
        {"chunked", "the normal answer, its body in 2 chunks"},
        {"tiny-chunks", "the normal answer, its body in 1-byte chunks"},
        {"eof-delimited", "the normal answer without Content-Length or chunking, ended by close_notify and close"},
        {"interim-100", "100 Continue, then the normal answer"},
        {"huge-headers", "the normal answer behind about 64 KiB of X-Filler-<n> headers"},
        {"drip", "the normal answer, one byte every 50 ms"},
        {"drip-<ms>", "the normal answer, one byte every <ms> milliseconds"},
        {"slow-<ms>", "waits <ms> milliseconds, then answers normally"},
        {"drop-after-response", "the normal answer, then closes the TCP connection without close_notify"},
        // Broken or missing answers. "Drops" is a TCP close without TLS close_notify.
        {"hang", "reads the request and never answers, keeping the connection open"},
        {"close", "reads the request and drops the connection without answering"},
        {"garbage", "\"this is not HTTP at all\", then close_notify and close"},
        {"status-line-only", "\"HTTP/1.1 200 OK\", then drops"},
        {"close-before-headers", "nothing, then close_notify and close"},
        {"reset-before-headers", "nothing, then a TCP reset"},
        {"close-mid-headers", "a status line and half a header line, then drops"},
        {"close-mid-body", "200 promising 100 bytes of body, 20 of them, then drops"},
        {"reset-mid-body", "200 promising 100 bytes of body, 20 of them, then a TCP reset"},
        {"huge-body", "200 with Content-Length: 209715200, streamed in 16 KiB blocks of spaces"},
        {"endless-chunked", "200 with 16 KiB chunks of spaces until the client leaves"},
    };
    return faults;
}

std::string format_response(const canned_response& answer, unsigned http_version, bool keep_alive)
{
    std::ostringstream bytes;
    bytes << to_http(answer, http_version, keep_alive);
    return bytes.str();
}

std::optional<std::string> recorded_request::header(const std::string& lower_case_name) const
{
    const auto found = headers.find(lower_case_name);
    if (found == headers.end())
        return std::nullopt;
    return found->second;
}

struct test_server::impl {
    explicit impl(server_options server_options);
    ~impl();

    asio::awaitable<void> accept_connections();
    asio::awaitable<void> serve(tcp::socket socket);
    // The answer to one request, with how to deliver it and what to do with the connection after.
    asio::awaitable<canned_response> respond(connection& c, const request_type& request,
                                             const recorded_request& record);
    asio::awaitable<std::optional<canned_response>> connection_fault(connection& c, std::string_view name,
                                                                     const request_type& request);
    std::optional<canned_response> once_fault(std::string_view name, const request_type& request);
    canned_response answer_api(const request_type& request) const;
    recorded_request remember(const request_type& request);

    const server_options options;
    const pki credentials;
    const temporary_pem_file ca_file;
    const std::string jwt_secret = random_secret();
    ssl::context tls{ssl::context::tls_server};
    traffic tally;
    // Declared after the TLS context and the tally: destroying the io_context destroys the
    // pending coroutines, and with them the streams that use the context and the connections
    // that count themselves in the tally.
    asio::io_context io;
    tcp::acceptor acceptor{io};
    unsigned short port = 0;
    std::atomic<std::size_t> connections{0};
    std::atomic<std::size_t> resumed_handshakes{0};
    std::atomic<std::size_t> requests{0};
    mutable std::mutex records_mutex;
    std::vector<recorded_request> records; // guarded by records_mutex
    // The once-<code> faults that have answered with their error. Only the server's thread uses it.
    std::set<std::string, std::less<>> spent_once_faults;
    std::thread thread;
};

test_server::impl::impl(server_options server_options)
    : options(std::move(server_options)), credentials(make_pki(options.certificate)), ca_file(credentials.ca_cert_pem)
{
    if (SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION) != 1) {
        throw std::runtime_error("test_server: cannot require TLS 1.2");
    }
    tls.use_certificate_chain(asio::buffer(credentials.leaf_cert_pem));
    tls.use_private_key(asio::buffer(credentials.leaf_key_pem), ssl::context::pem);

    // Listening before the thread starts is what lets the constructor return a ready server:
    // clients that connect early wait in the backlog.
    const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), options.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    port = acceptor.local_endpoint().port();

    asio::co_spawn(io, accept_connections(), report_failure);
    thread = std::thread([this] { io.run(); });
}

test_server::impl::~impl()
{
    // Stopping the io_context abandons every pending operation at once, idle and hanging
    // connections included; destroying it afterwards frees their coroutines and sockets.
    io.stop();
    thread.join();
}

asio::awaitable<void> test_server::impl::accept_connections()
{
    for (;;) {
        auto [error, socket] = co_await acceptor.async_accept(use_nothrow_awaitable);
        if (error)
            continue; // e.g. the client reset the connection before we accepted it
        ++connections;
        asio::co_spawn(io, serve(std::move(socket)), report_failure);
    }
}

asio::awaitable<void> test_server::impl::serve(tcp::socket socket)
{
    connection c(std::move(socket), tls, tally);
    if (const auto [error] = co_await c.stream.async_handshake(ssl::stream_base::server, use_nothrow_awaitable);
        error) {
        co_return; // e.g. a client that does not trust our CA
    }
    if (SSL_session_reused(c.stream.native_handle()))
        ++resumed_handshakes;

    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        if (const auto [error, size] = co_await http::async_read(c.stream, c.buffer, parser, use_nothrow_awaitable);
            error) {
            if (const auto status = status_for_read_error(error)) {
                co_await write(c,
                               format_response(json_error(*status, "malformed_request", error.message()), 11, false));
            }
            break;
        }

        const request_type& request = parser.get();
        const recorded_request record = remember(request);
        const canned_response answer = co_await respond(c, request, record);
        if (!co_await deliver(c, answer, request.version(), request.keep_alive()))
            co_return; // the connection broke or the client left: there is nobody to say goodbye to
        if (answer.then != ending::keep_alive || !request.keep_alive()) {
            co_await end_connection(c, answer.then);
            co_return;
        }
    }
    co_await end_connection(c, ending::close);
}

asio::awaitable<canned_response> test_server::impl::respond(connection& c, const request_type& request,
                                                            const recorded_request& record)
{
    if (options.responder) {
        if (auto canned = options.responder(record))
            co_return std::move(*canned);
    }
    const auto fault = fault_of(request.target());
    if (!fault)
        co_return json_error(404, "not_found", "No route for " + std::string(request.target()));
    if (auto answer = co_await connection_fault(c, *fault, request))
        co_return std::move(*answer);
    if (auto answer = canned_fault(*fault))
        co_return std::move(*answer);
    if (auto answer = once_fault(*fault, request))
        co_return std::move(*answer);
    if (const auto reframe = reframing_of(*fault, request.version(), request.keep_alive()))
        co_return reframe(answer_api(request));
    if (!fault->empty() && *fault != "ok")
        co_return json_error(404, "unknown_fault", "Unknown fault '" + std::string(*fault) + "'");
    co_return answer_api(request);
}

// The faults that wait or stream on the connection itself; nullopt for any other name.
asio::awaitable<std::optional<canned_response>>
test_server::impl::connection_fault(connection& c, std::string_view name, const request_type& request)
{
    if (name == "hang") {
        co_await hold_open(c.stream);
        co_return silence_then(ending::drop);
    }
    if (name == "close")
        co_return silence_then(ending::drop); // no answer and no TLS goodbye
    if (name == "huge-body") {
        const bool sent = co_await unless_client_leaves(c, send_huge_body(c));
        co_return silence_then(sent ? ending::keep_alive : ending::drop);
    }
    if (name == "endless-chunked") {
        co_await unless_client_leaves(c, send_endless_chunks(c));
        co_return silence_then(ending::drop);
    }
    if (const auto delay = number_after(name, "slow-")) {
        if (!co_await unless_client_leaves(c, pause(std::chrono::milliseconds(*delay))))
            co_return silence_then(ending::drop);
        co_return answer_api(request);
    }
    co_return std::nullopt;
}

// once-<code>: <code> the first time this server sees that exact name, the normal answer afterwards.
std::optional<canned_response> test_server::impl::once_fault(std::string_view name, const request_type& request)
{
    const auto status = final_status_after(name, "once-");
    if (!status)
        return std::nullopt;
    if (spent_once_faults.emplace(name).second)
        return injected_error(*status);
    return answer_api(request);
}

canned_response test_server::impl::answer_api(const request_type& request) const
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
    if (authorization != "Bearer " + options.api_key)
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
    return {200, "application/json", json::serialize(json::object{{"token", sign_token(claims, jwt_secret)}}), {}};
}

recorded_request test_server::impl::remember(const request_type& request)
{
    recorded_request record{
        .method = std::string(request.method_string()),
        .target = std::string(request.target()),
        .version = std::to_string(request.version() / 10) + '.' + std::to_string(request.version() % 10),
        .headers = {},
        .body = request.body(),
    };
    for (const auto& field : request) {
        std::string name(field.name_string());
        std::ranges::transform(name, name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        record.headers.emplace(std::move(name), std::string(field.value()));
    }
    {
        const std::lock_guard lock(records_mutex);
        records.push_back(record);
    }
    ++requests; // after the record, so a test that sees the count also sees the request
    return record;
}

test_server::test_server(server_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

test_server::~test_server() = default;

unsigned short test_server::port() const noexcept
{
    return impl_->port;
}

std::string test_server::base_url() const
{
    return "https://localhost:" + std::to_string(impl_->port);
}

const std::string& test_server::api_key() const noexcept
{
    return impl_->options.api_key;
}

const std::string& test_server::ca_cert_pem() const noexcept
{
    return impl_->credentials.ca_cert_pem;
}

const std::string& test_server::ca_file() const noexcept
{
    return impl_->ca_file.path();
}

std::size_t test_server::connections_accepted() const noexcept
{
    return impl_->connections;
}

std::size_t test_server::resumed_handshakes() const noexcept
{
    return impl_->resumed_handshakes;
}

std::size_t test_server::requests_received() const noexcept
{
    return impl_->requests;
}

std::vector<recorded_request> test_server::recorded_requests() const
{
    const std::lock_guard lock(impl_->records_mutex);
    return impl_->records;
}

std::size_t test_server::bytes_written() const noexcept
{
    return impl_->tally.bytes_written;
}

std::size_t test_server::open_connections() const noexcept
{
    return impl_->tally.open_connections.value();
}

bool test_server::wait_for_open_connections(std::size_t n, std::chrono::milliseconds timeout) const
{
    return impl_->tally.open_connections.wait_for(n, timeout);
}

} // namespace cartesia::test
