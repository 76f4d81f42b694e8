// Where an operation's events go (client_config::on_event), and what their texts
// must never carry. Shared by the requests of one source, like request_context.
// Private to src/.
#ifndef CARTESIA_SRC_EVENT_SINK_HPP
#define CARTESIA_SRC_EVENT_SINK_HPP

#include "protocol.hpp"

#include <cartesia/events.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace cartesia::detail {

class event_sink {
public:
    // No events until configure().
    event_sink() = default;

    // Once the configuration is validated; both must outlive the sink.
    void configure(const client_config& config, const endpoint& where) noexcept;

    // Whether events are wanted at all: when not, none is made, and nothing of
    // what they would say is computed.
    bool enabled() const noexcept { return on_event_ != nullptr; }

    // Calls the user's callback. An exception from it ends the program: it would
    // otherwise escape from a completion handler of the library.
    void emit(const event& e) const noexcept;

    // Server text (or text that may quote it) made fit for an event: the API key,
    // the proxy's password and the base64 of its credentials replaced, control
    // characters as spaces (one line), at most 400 bytes.
    std::string clean(std::string text) const;

    // Through a proxy, the diagnostics of an operation that completes: what a
    // server or the proxy said is cleaned of the proxy's password and credentials,
    // as the key is cleaned from it when it arrives (the server never needs them
    // to be quoted back). A no-op without a proxy. Out of memory, the server's
    // text is dropped rather than kept uncleaned.
    void clean_of_proxy_secrets(diagnostics& diag) const noexcept;

    bool via_proxy() const noexcept { return via_proxy_; }

    // Numbers for operations and connections, unique in the process, from 1.
    static std::uint64_t next_operation_number() noexcept;
    static std::uint64_t next_connection_number() noexcept;

private:
    void clean_fields(diagnostics& diag) const;
    // The proxy's password and the base64 of its credentials, replaced (none
    // without a proxy: both are empty).
    void strip_proxy_secrets(std::string& text) const;

    const std::function<void(const event&)>* on_event_ = nullptr;
    std::string_view api_key_;
    std::string_view proxy_password_;
    std::string_view proxy_authorization_; // the base64 part of Proxy-Authorization
    bool via_proxy_ = false;
};

} // namespace cartesia::detail

#endif
