// parse_error_body and parse_token_body: the server's body, content type and
// x-request-id, all untrusted, with keys of many shapes.
//
// Input, FuzzedDataProvider strings (each ended by a backslash and one other byte):
//   key spec, content type, x-request-id, then the body (the rest).
// A key spec that starts with '!' gives an arbitrary key of printable characters
// (what validate() accepts): the target then checks only that nothing crashes or
// hangs, since such a key may be a word of our own messages. Any other spec gives a
// key of the form Cartesia issues ("sk_car_" + letters and digits), which no
// diagnostics field may contain, nor any event made from them (where a proxy's
// password, which the dictionary offers, must not appear either).
#include "fuzz_support.hpp"

#include "event_sink.hpp"
#include "protocol.hpp"
#include <cartesia/error.hpp>
#include <cartesia/events.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

namespace cd = cartesia::detail;
using cartesia::fuzz::require;

constexpr std::size_t max_kept = 1024; // parse_error_body's bound on each server field
constexpr std::string_view proxy_password = "fuzz-proxy-pw";

// The events that quote a failure, as request_op makes them: one line each,
// without the key or the proxy's password.
void check_events(const cartesia::diagnostics& diag, const std::string& key, bool realistic)
{
    cartesia::client_config config;
    config.api_key = key;
    config.on_event = [](const cartesia::event&) {};
    cd::endpoint where;
    where.network.proxy.emplace();
    where.network.proxy->password = proxy_password;
    cd::event_sink sink;
    sink.configure(config, where);
    const std::string reason = sink.clean(cartesia::describe(cartesia::error::server_error, diag));
    const std::string request_id = sink.clean(std::string(diag.request_id()));
    cartesia::event retry;
    retry.kind = cartesia::event_kind::retry_scheduled;
    retry.reason = reason;
    cartesia::event response;
    response.kind = cartesia::event_kind::response_received;
    response.request_id = request_id;
    for (const cartesia::event& e : {retry, response}) {
        const std::string line = cartesia::describe(e);
        for (const char c : line)
            require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "an event is one line", line.substr(0, 80));
        require(line.find(proxy_password) == std::string::npos, "no proxy password in an event", line.substr(0, 80));
        if (realistic)
            require(line.find(key) == std::string::npos, "no key in an event", line.substr(0, 80));
    }
}

std::string printable_key(std::string_view source)
{
    std::string key;
    for (char c : source)
        key += static_cast<char>(0x21 + static_cast<unsigned char>(c) % (0x7f - 0x21));
    return key.empty() ? std::string("sk_car_...") : key;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider input(data, size);
    const std::string key_spec = input.ConsumeRandomLengthString(80);
    const std::string content_type = input.ConsumeRandomLengthString(256);
    const std::string request_id = input.ConsumeRandomLengthString(256);
    const std::string body = input.ConsumeRemainingBytesAsString();

    const bool realistic = key_spec.empty() || key_spec.front() != '!';
    const std::string key =
        realistic ? cartesia::fuzz::realistic_key(key_spec) : printable_key(std::string_view(key_spec).substr(1));

    cartesia::diagnostics error_diag;
    cd::parse_error_body(body, request_id, key, error_diag);
    for (std::string_view field : {error_diag.server_title(), error_diag.server_message(),
                                   error_diag.server_error_code(), error_diag.request_id()})
        require(field.size() <= max_kept, "server fields are bounded", field.substr(0, 80));
    require(error_diag.client_message().empty(), "an error body sets only the server fields");

    cartesia::diagnostics token_diag;
    cartesia::token_response response;
    const auto ec = cd::parse_token_body(body, content_type, key, response, token_diag);
    if (ec) {
        require(ec == cartesia::error::bad_response, "an unusable 2xx body is a bad response", ec.message());
        require(!token_diag.client_message().empty() && token_diag.client_message().size() <= 256,
                "a bad response explains itself, briefly", token_diag.client_message());
        require(response.token.empty() && response.raw_json.empty(), "a bad response gives no token");
    } else {
        require(!response.token.empty(), "a usable body has a token");
        require(response.raw_json == body, "raw_json is the body");
    }

    check_events(error_diag, key, realistic);
    if (realistic) {
        cartesia::fuzz::require_key_absent(error_diag, key);
        cartesia::fuzz::require_key_absent(token_diag, key);
    }
    return 0;
}
