// The events' names, their one-line descriptions, and the sink that hands them to
// client_config::on_event.
#include "event_sink.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <cstdio>
#include <exception>
#include <new>

namespace cartesia {
namespace {

// "41.2 ms": a tenth of a millisecond is what a person reading a log can use.
std::string milliseconds_text(std::chrono::microseconds d)
{
    std::array<char, 32> text{};
    const int n = std::snprintf(text.data(), text.size(), "%.1f ms", static_cast<double>(d.count()) / 1000.0);
    return {text.data(), static_cast<std::size_t>(n > 0 ? n : 0)};
}

// Appends each part: spares the temporaries of operator+ (and GCC 12's false
// -Wrestrict on them).
template <class... Parts> void append(std::string& line, const Parts&... parts)
{
    (line.append(std::string_view(parts)), ...);
}

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& peer)
{
    const auto address = peer.address();
    std::string text;
    if (address.is_v6())
        append(text, "[", address.to_string(), "]");
    else
        text = address.to_string();
    append(text, ":", std::to_string(peer.port()));
    return text;
}

// "op 7 attempt 2", "conn 3": who the line is about.
std::string subject(const event& e)
{
    std::string line;
    if (e.operation != 0)
        append(line, "op ", std::to_string(e.operation));
    if (e.attempt != 0 && e.kind != event_kind::completed && e.kind != event_kind::connection_closed)
        append(line, " attempt ", std::to_string(e.attempt));
    return line;
}

} // namespace

std::string_view to_string(event_kind kind) noexcept
{
    switch (kind) {
    case event_kind::attempt_started:
        return "attempt_started";
    case event_kind::connected:
        return "connected";
    case event_kind::response_received:
        return "response_received";
    case event_kind::retry_scheduled:
        return "retry_scheduled";
    case event_kind::connection_closed:
        return "connection_closed";
    case event_kind::completed:
        return "completed";
    }
    return "unknown";
}

std::string describe(const event& e)
{
    std::string line = subject(e);
    const auto since_start = [&] { append(line, " (+", milliseconds_text(e.elapsed), ")"); };
    switch (e.kind) {
    case event_kind::attempt_started:
        append(line, " started");
        since_start();
        break;
    case event_kind::connected:
        append(line, " connected: conn ", std::to_string(e.connection));
        if (e.reused) {
            append(line, " reused");
        } else {
            append(line, " to ", endpoint_text(e.peer), e.via_proxy ? " (proxy) " : " ", e.tls_version,
                   e.session_resumed ? " resumed" : " full handshake", ", opened in ",
                   milliseconds_text(e.connect_time));
        }
        since_start();
        break;
    case event_kind::response_received:
        append(line, " response: HTTP ", std::to_string(e.http_status));
        if (!e.request_id.empty())
            append(line, " (request id ", e.request_id, ")");
        append(line, " on conn ", std::to_string(e.connection));
        since_start();
        break;
    case event_kind::retry_scheduled:
        append(line, " failed, retry in ", std::to_string(e.retry_delay.count()), " ms: ", e.reason);
        break;
    case event_kind::connection_closed:
        append(line, line.empty() ? "" : ": ", "conn ", std::to_string(e.connection), " closed (", e.reason, ") after ",
               std::to_string(e.exchanges), e.exchanges == 1 ? " exchange" : " exchanges", ", open ",
               milliseconds_text(e.elapsed));
        if (e.error)
            append(line, ": ", e.error.message());
        break;
    case event_kind::completed:
        append(line, e.error ? " failed after " : " completed: token after ", std::to_string(e.attempt),
               e.attempt == 1 ? " attempt in " : " attempts in ", milliseconds_text(e.elapsed));
        if (e.error)
            append(line, ": ", e.reason);
        break;
    }
    return line;
}

namespace detail {

void event_sink::configure(const client_config& config, const endpoint& where) noexcept
{
    on_event_ = config.on_event ? &config.on_event : nullptr;
    api_key_ = config.api_key;
    via_proxy_ = where.network.proxy.has_value();
    if (via_proxy_) {
        proxy_password_ = where.network.proxy->password;
        // The base64 of "user:password", which a proxy may quote without its scheme.
        std::string_view credentials = where.network.proxy->authorization;
        if (const auto space = credentials.find(' '); space != std::string_view::npos)
            credentials.remove_prefix(space + 1);
        proxy_authorization_ = credentials;
    }
}

void event_sink::emit(const event& e) const noexcept
{
    BOOST_ASSERT(on_event_ != nullptr);
    (*on_event_)(e);
}

std::string event_sink::clean(std::string text) const
{
    text = scrub(std::move(text), api_key_);
    strip_proxy_secrets(text);
    for (char& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = ' ';
    constexpr std::size_t longest = 400;
    if (text.size() > longest) {
        text.resize(longest);
        text += "…";
    }
    return text;
}

void event_sink::clean_of_proxy_secrets(diagnostics& diag) const noexcept
{
    if (!via_proxy_)
        return;
    try {
        clean_fields(diag);
    } catch (const std::bad_alloc&) {
        diagnostics_access::set_server_fields(diag, {}, {}, {}, {});
        diagnostics_access::set_client_message(diag, {});
    }
}

void event_sink::strip_proxy_secrets(std::string& text) const
{
    replace_all(text, proxy_authorization_, "…");
    replace_all(text, proxy_password_, "…");
}

void event_sink::clean_fields(diagnostics& diag) const
{
    const auto cleaned = [this](std::string_view field) {
        std::string text(field);
        strip_proxy_secrets(text);
        return text;
    };
    diagnostics_access::set_server_fields(diag, cleaned(diag.server_title()), cleaned(diag.server_message()),
                                          cleaned(diag.server_error_code()), cleaned(diag.request_id()));
    diagnostics_access::set_client_message(diag, cleaned(diag.client_message()));
}

std::uint64_t event_sink::next_operation_number() noexcept
{
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

std::uint64_t event_sink::next_connection_number() noexcept
{
    static std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

} // namespace detail
} // namespace cartesia
