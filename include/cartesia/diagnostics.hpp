// What went wrong, beyond the error code.
#ifndef CARTESIA_DIAGNOSTICS_HPP
#define CARTESIA_DIAGNOSTICS_HPP

#include <boost/system/error_code.hpp>

#include <string>
#include <string_view>

namespace cartesia {

namespace detail {
struct diagnostics_access;
}

/// Details of a failed operation, filled in by the operations that accept a
/// `diagnostics&`. Like Boost.MySQL's `diagnostics`, it keeps what this library
/// says (`client_message()`, trusted) apart from what the server said (`server_*()`,
/// untrusted text: escape it before showing it in HTML).
///
/// An operation clears it when it starts. Never contains the API key: server text
/// is scrubbed of it as well.
///
/// Thread safety: distinct objects, safe; shared objects, unsafe. Do not read it
/// while an operation that writes it is outstanding.
class diagnostics {
public:
    diagnostics() = default;

    /// The HTTP status of the last attempt's response, known once its headers were
    /// read (even if its body then failed); 0 when no response headers arrived.
    unsigned http_status() const noexcept { return http_status_; }

    /// The `title` of the server's error body (e.g. "Unauthorized"), or empty.
    std::string_view server_title() const noexcept { return server_title_; }

    /// The `message` of the server's error body; for a plain-text error body, that
    /// text. Empty when the server said nothing.
    std::string_view server_message() const noexcept { return server_message_; }

    /// The `error_code` string of the server's error body, or empty.
    std::string_view server_error_code() const noexcept { return server_error_code_; }

    /// The server's request id (the error body's `request_id`, else the
    /// `x-request-id` header), or empty. Quote it to Cartesia's support.
    std::string_view request_id() const noexcept { return request_id_; }

    /// What this library found, for failures it detected itself (an invalid
    /// argument, a malformed response, a TLS verification failure, a timeout).
    std::string_view client_message() const noexcept { return client_message_; }

    /// How many attempts were started: 0 when the input was invalid, 1 or more once
    /// the operation began (even if it was cancelled before its first byte).
    unsigned attempts() const noexcept { return attempts_; }

    /// Resets to the state of a default-constructed object.
    void clear() noexcept { *this = diagnostics(); }

    friend bool operator==(const diagnostics&, const diagnostics&) = default;

private:
    friend struct detail::diagnostics_access;

    unsigned http_status_ = 0;
    unsigned attempts_ = 0;
    std::string server_title_;
    std::string server_message_;
    std::string server_error_code_;
    std::string request_id_;
    std::string client_message_;
};

/// One line describing a failure for a log or a terminal, e.g.
/// `HTTP 401 Unauthorized: Invalid API key (request id 6f1c...)` or
/// `timeout: no complete response within 2000 ms`. Never contains the API key.
std::string describe(const boost::system::error_code& ec, const diagnostics& diag);

} // namespace cartesia

#endif
