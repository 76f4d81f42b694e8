// The fault catalogue: one table that both lists the faults (fault_names(), for --help) and
// applies them (fault_dispatcher). See faults.hpp.
#include "support/faults.hpp"

#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace cartesia::test::detail {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::string_view injected_message = "Fault injected by the test server";
constexpr std::chrono::milliseconds default_drip_interval{50};
constexpr std::string_view continue_interim = "HTTP/1.1 100 Continue\r\n\r\n";
// About 64 KiB of header block, beyond the limits clients usually set.
constexpr std::size_t filler_header_count = 64;
constexpr std::size_t filler_header_size = 1000;
// close-mid-body and reset-mid-body promise this much body and send only the first part.
constexpr std::size_t promised_body_size = 100;
constexpr std::size_t sent_body_size = 20;
// Streamed bodies go out a block at a time and are never held whole.
constexpr std::size_t stream_block_size = std::size_t{16} * 1024;
// The socket of a stream holds little: once the client stops reading, the stream stalls soon,
// rather than encrypting megabytes into kernel buffers that nobody will read (a CPU cost that
// slows every other connection of the server's single thread).
constexpr std::size_t stream_send_buffer_size = std::size_t{4} * stream_block_size;
constexpr std::size_t huge_body_size = std::size_t{200} * 1024 * 1024;

// The API's own answer to the request a fault answers, computed only if the fault needs it.
using normal_answer = std::function<canned_response()>;

// How a fault is applied, by how much of the normal course it replaces. `argument` is the
// number in the name of a family such as status-<code>, and 0 for any other fault.
//
// An answer in place of the API's, which does not look at the request.
struct canned {
    canned_response (*answer)(unsigned argument);
};
// The API's own answer (authentication and validation apply), altered; `request` gives the
// HTTP version and keep-alive that a new framing must follow.
struct reframed {
    canned_response (*reframe)(const canned_response& answer, const request_type& request, unsigned argument);
};
// Waits or streams on the connection itself; what is left to send comes back as the answer.
struct on_connection {
    asio::awaitable<canned_response> (*run)(connection& c, const normal_answer& normal, unsigned argument);
};
// `first` the first time the server sees the exact name, the API's own answer afterwards.
struct once_only {
    canned_response (*first)(unsigned argument);
};

struct fault_entry {
    // A name, or a family: a prefix, then a placeholder for a number. <code> stands for a final
    // status (200-599), any other placeholder (<ms>, <s>, <n>) for any unsigned number.
    std::string_view name;
    std::string_view effect; // for --help and documentation
    std::variant<canned, reframed, on_connection, once_only> apply;
};

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

canned_response json_200(std::string body)
{
    return {200, "application/json", std::move(body), {}};
}

// A 200 that promises promised_body_size bytes of body and sends only sent_body_size of them.
canned_response cut_short_body(ending then)
{
    const std::string opening = R"({"token":")";
    const std::string closing = R"("})";
    const canned_response promise =
        json_200(opening + std::string(promised_body_size - opening.size() - closing.size(), 'x') + closing);
    canned_response answer = raw_response(format_response(promise), then);
    answer.truncate_after = answer.raw->size() - (promised_body_size - sent_body_size);
    return answer;
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

canned_response in_chunks(const canned_response& answer, std::size_t chunk_size, const request_type& request)
{
    return raw_response(format_chunked(answer, chunk_size, request.version(), request.keep_alive()),
                        ending::keep_alive);
}

canned_response dripped(canned_response answer, std::chrono::milliseconds interval)
{
    answer.byte_interval = interval;
    return answer;
}

// A block of JSON whitespace: a client that parses as it reads learns nothing from it, so only
// its size limit can stop it.
const std::string& filler_block()
{
    static const std::string block(stream_block_size, ' ');
    return block;
}

// Called before streaming; see stream_send_buffer_size.
void keep_send_buffer_small(connection& c)
{
    boost::beast::error_code ignored; // only a lost optimisation, and only if the client is gone already
    boost::beast::get_lowest_layer(c.stream).socket().set_option(
        asio::socket_base::send_buffer_size(stream_send_buffer_size), ignored);
}

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

asio::awaitable<canned_response> hang(connection& c, const normal_answer&, unsigned)
{
    co_await hold_open(c);
    co_return silence_then(ending::drop);
}

asio::awaitable<canned_response> slow(connection& c, const normal_answer& normal, unsigned delay)
{
    // Not `if (!co_await ...) co_return ...;`: g++ 12 miscompiled that here (the coroutine read
    // its promise's fields shifted by a pointer) and the server crashed on slow-<ms>.
    const bool waited = co_await unless_client_leaves(c, pause(std::chrono::milliseconds(delay)));
    co_return waited ? normal() : silence_then(ending::drop);
}

asio::awaitable<canned_response> huge_body(connection& c, const normal_answer&, unsigned)
{
    const bool sent = co_await unless_client_leaves(c, send_huge_body(c));
    co_return silence_then(sent ? ending::keep_alive : ending::drop);
}

asio::awaitable<canned_response> endless_chunked(connection& c, const normal_answer&, unsigned)
{
    co_await unless_client_leaves(c, send_endless_chunks(c));
    co_return silence_then(ending::drop);
}

// Every fault, in the order of --help. No name selects two entries, since a family's number
// must make up the rest of the name: "status-line-only" is not status-<code>, nor is
// "retry-after-ms-5" retry-after-<s>.
constexpr auto fault_table = std::to_array<fault_entry>({
    // "The normal answer" is the API's own: authentication and validation apply.
    {"ok", "the normal answer, as without a prefix",
     reframed{[](const canned_response& answer, const request_type&, unsigned) { return answer; }}},
    // Error statuses.
    {"status-<code>", "<code> (200-599) with the JSON error body", canned{injected_error}},
    {"always-<code>", "the same as status-<code>", canned{injected_error}},
    {"once-<code>", "<code> with the JSON error body the first time (per server), then the normal answer",
     once_only{injected_error}},
    {"should-retry-false-<code>", "<code> with the JSON error body and x-should-retry: false",
     canned{[](unsigned status) { return with_header(injected_error(status), "x-should-retry", "false"); }}},
    {"should-retry-true-<code>", "<code> with the JSON error body and x-should-retry: true",
     canned{[](unsigned status) { return with_header(injected_error(status), "x-should-retry", "true"); }}},
    {"plain-<code>", "<code> (200-599) with a text/plain \"<Title>: <message>\" body, as old API versions",
     canned{[](unsigned status) {
         return canned_response{status, "text/plain", reason_phrase(status) + ": " + std::string(injected_message), {}};
     }}},
    {"retry-after-<s>", "429 with Retry-After: <s> and the JSON error body",
     canned{[](unsigned seconds) { return rate_limited("Retry-After", std::to_string(seconds)); }}},
    {"retry-after-ms-<n>", "429 with retry-after-ms: <n> and the JSON error body",
     canned{[](unsigned milliseconds) { return rate_limited("retry-after-ms", std::to_string(milliseconds)); }}},
    {"retry-after-date-<s>", "429 with Retry-After as an HTTP date <s> seconds ahead, and the JSON error body",
     canned{[](unsigned seconds) {
         // Rounded up, so that the date is never sooner than asked for.
         const auto when =
             std::chrono::ceil<std::chrono::seconds>(std::chrono::system_clock::now()) + std::chrono::seconds(seconds);
         return rate_limited("Retry-After", http_date(when));
     }}},
    // Bodies a client must refuse or decode with care.
    {"html", "200 with an HTML page, as a captive portal would", canned{[](unsigned) {
         return canned_response{200,
                                "text/html; charset=utf-8",
                                "<!DOCTYPE html><html><head><title>Sign in</title></head>"
                                "<body><h1>Sign in to continue</h1></body></html>",
                                {}};
     }}},
    {"token-null", "200 {\"token\":null}", canned{[](unsigned) { return json_200(R"({"token":null})"); }}},
    {"token-number", "200 {\"token\":42}", canned{[](unsigned) { return json_200(R"({"token":42})"); }}},
    {"json-array", R"(200 ["token","x"])", canned{[](unsigned) { return json_200(R"(["token","x"])"); }}},
    {"json-truncated", R"(200 {"token":"abc (the message is complete, the JSON is not))",
     canned{[](unsigned) { return json_200(R"({"token":"abc)"); }}},
    {"no-token", R"(200 {"access_token":"abc"})",
     canned{[](unsigned) { return json_200(R"({"access_token":"abc"})"); }}},
    {"escaped-token", "200 {\"token\":\"a\\/b\\u00e9\\\"c\\\\d\"}, whose token decodes to a/b\u00e9\"c\\d",
     canned{[](unsigned) { return json_200(R"({"token":"a\/b\u00e9\"c\\d"})"); }}},
    {"extra-fields", "the normal answer with unknown fields too: expires_at and a nested extra",
     reframed{
         [](const canned_response& answer, const request_type&, unsigned) { return with_unknown_fields(answer); }}},
    // The normal answer, framed or delivered unusually.
    {"chunked", "the normal answer, its body in 2 chunks",
     reframed{[](const canned_response& answer, const request_type& request, unsigned) {
         return in_chunks(answer, (answer.body.size() + 1) / 2, request);
     }}},
    {"tiny-chunks", "the normal answer, its body in 1-byte chunks",
     reframed{[](const canned_response& answer, const request_type& request, unsigned) {
         return in_chunks(answer, 1, request);
     }}},
    {"eof-delimited", "the normal answer without Content-Length or chunking, ended by close_notify and close",
     reframed{[](const canned_response& answer, const request_type& request, unsigned) {
         return raw_response(format_eof_delimited(answer, request.version()), ending::close);
     }}},
    {"interim-100", "100 Continue, then the normal answer",
     reframed{[](const canned_response& answer, const request_type& request, unsigned) {
         return raw_response(std::string(continue_interim) +
                                 format_response(answer, request.version(), request.keep_alive()),
                             ending::keep_alive);
     }}},
    {"huge-headers", "the normal answer behind about 64 KiB of X-Filler-<n> headers",
     reframed{
         [](const canned_response& answer, const request_type&, unsigned) { return with_filler_headers(answer); }}},
    {"drip", "the normal answer, one byte every 50 ms",
     reframed{[](const canned_response& answer, const request_type&, unsigned) {
         return dripped(answer, default_drip_interval);
     }}},
    {"drip-<ms>", "the normal answer, one byte every <ms> milliseconds",
     reframed{[](const canned_response& answer, const request_type&, unsigned milliseconds) {
         return dripped(answer, std::chrono::milliseconds(milliseconds));
     }}},
    {"slow-<ms>", "waits <ms> milliseconds, then answers normally", on_connection{slow}},
    {"drop-after-response", "the normal answer, then closes the TCP connection without close_notify",
     reframed{[](const canned_response& answer, const request_type&, unsigned) {
         canned_response dropped = answer;
         dropped.then = ending::drop;
         return dropped;
     }}},
    // Broken or missing answers. "Drops" is a TCP close without TLS close_notify.
    {"hang", "reads the request and never answers, keeping the connection open", on_connection{hang}},
    {"close", "reads the request and drops the connection without answering",
     canned{[](unsigned) { return silence_then(ending::drop); }}},
    {"garbage", "\"this is not HTTP at all\", then close_notify and close",
     canned{[](unsigned) { return raw_response("this is not HTTP at all\r\n\r\n", ending::close); }}},
    {"status-line-only", "\"HTTP/1.1 200 OK\", then drops",
     canned{[](unsigned) { return raw_response("HTTP/1.1 200 OK\r\n", ending::drop); }}},
    {"close-before-headers", "nothing, then close_notify and close",
     canned{[](unsigned) { return silence_then(ending::close); }}},
    {"reset-before-headers", "nothing, then a TCP reset", canned{[](unsigned) { return silence_then(ending::reset); }}},
    {"close-mid-headers", "a status line and half a header line, then drops",
     canned{[](unsigned) { return raw_response("HTTP/1.1 200 OK\r\nContent-Type: appl", ending::drop); }}},
    {"close-mid-body", "200 promising 100 bytes of body, 20 of them, then drops",
     canned{[](unsigned) { return cut_short_body(ending::drop); }}},
    {"reset-mid-body", "200 promising 100 bytes of body, 20 of them, then a TCP reset",
     canned{[](unsigned) { return cut_short_body(ending::reset); }}},
    {"huge-body", "200 with Content-Length: 209715200, streamed in 16 KiB blocks of spaces", on_connection{huge_body}},
    {"endless-chunked", "200 with 16 KiB chunks of spaces until the client leaves", on_connection{endless_chunked}},
});

// The number `name` gives the placeholder of `fault` (0 when `fault` has none), or nullopt
// when `name` does not select `fault`.
std::optional<unsigned> argument_of(const fault_entry& fault, std::string_view name)
{
    const std::size_t placeholder = fault.name.find('<');
    if (placeholder == std::string_view::npos)
        return name == fault.name ? std::optional<unsigned>(0) : std::nullopt;
    const std::string_view prefix = fault.name.substr(0, placeholder);
    if (!name.starts_with(prefix))
        return std::nullopt;
    name.remove_prefix(prefix.size());
    unsigned number = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (error != std::errc{} || end != name.data() + name.size())
        return std::nullopt;
    if (fault.name.substr(placeholder) == "<code>" && (number < 200 || number > 599))
        return std::nullopt;
    return number;
}

// The entry `name` selects, with the number it gives the entry's placeholder; nullopt when none.
std::optional<std::pair<const fault_entry*, unsigned>> find_fault(std::string_view name)
{
    for (const fault_entry& fault : fault_table) {
        if (const auto argument = argument_of(fault, name))
            return std::pair{&fault, *argument};
    }
    return std::nullopt;
}

} // namespace

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

asio::awaitable<std::optional<canned_response>>
fault_dispatcher::answer(std::string_view name, connection& c, const request_type& request, const fake_api& api)
{
    const auto found = find_fault(name);
    if (!found)
        co_return std::nullopt;
    const fault_entry& fault = *found->first;
    const unsigned argument = found->second;
    const normal_answer normal = [&] { return api.answer(request); };
    if (const auto* how = std::get_if<canned>(&fault.apply))
        co_return how->answer(argument);
    if (const auto* how = std::get_if<reframed>(&fault.apply))
        co_return how->reframe(normal(), request, argument);
    if (const auto* how = std::get_if<on_connection>(&fault.apply))
        co_return co_await how->run(c, normal, argument);
    // What is left is once_only.
    if (spent_once_faults_.emplace(name).second)
        co_return std::get<once_only>(fault.apply).first(argument);
    co_return normal();
}

} // namespace cartesia::test::detail

namespace cartesia::test {

const std::vector<fault_info>& fault_names()
{
    static const std::vector<fault_info> names = [] {
        std::vector<fault_info> listed;
        listed.reserve(detail::fault_table.size());
        for (const auto& fault : detail::fault_table)
            listed.push_back({std::string(fault.name), std::string(fault.effect)});
        return listed;
    }();
    return names;
}

} // namespace cartesia::test
