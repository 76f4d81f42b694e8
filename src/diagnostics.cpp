#include <cartesia/diagnostics.hpp>
#include <cartesia/error.hpp>

namespace cartesia {
namespace {

bool is_status_error(const boost::system::error_code& ec) noexcept
{
    if (ec.category() != error_category())
        return false;
    const auto e = static_cast<error>(ec.value());
    return e >= error::bad_request && e <= error::unexpected_status;
}

} // namespace

std::string describe(const boost::system::error_code& ec, const diagnostics& diag)
{
    if (!ec)
        return "success";
    std::string line;
    if (is_status_error(ec)) {
        // "HTTP 401 Unauthorized: Invalid API key": what the server said, first.
        line = "HTTP " + std::to_string(diag.http_status());
        if (!diag.server_title().empty()) {
            line += ' ';
            line += diag.server_title();
        }
        if (!diag.server_message().empty()) {
            line += ": ";
            line += diag.server_message();
        }
    } else {
        line = ec.message();
        if (!diag.client_message().empty()) {
            line += ": ";
            line += diag.client_message();
        }
        if (diag.http_status() != 0)
            line += " (HTTP " + std::to_string(diag.http_status()) + ")";
    }
    if (!diag.request_id().empty()) {
        line += " (request id ";
        line += diag.request_id();
        line += ')';
    }
    if (diag.attempts() > 1)
        line += " after " + std::to_string(diag.attempts()) + " attempts";
    // Server text may hold anything. One line for a log means no line breaks, and no
    // other control character either (an ANSI escape could rewrite a terminal).
    for (char& c : line)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = ' ';
    return line;
}

} // namespace cartesia
