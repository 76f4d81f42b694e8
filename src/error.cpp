#include <cartesia/error.hpp>

#include <string>

namespace cartesia {
namespace {

// One static instance, never deleted through a base pointer: error_category's
// destructor is protected and non-virtual by design.
class category final : public boost::system::error_category { // NOLINT(cppcoreguidelines-virtual-class-destructor)
public:
    const char* name() const noexcept override { return "cartesia"; }

    std::string message(int code) const override
    {
        switch (static_cast<error>(code)) {
        case error::invalid_argument:
            return "invalid argument";
        case error::bad_request:
            return "bad request (HTTP 400)";
        case error::unauthorized:
            return "unauthorized (HTTP 401)";
        case error::forbidden:
            return "forbidden (HTTP 403)";
        case error::not_found:
            return "not found (HTTP 404)";
        case error::conflict:
            return "conflict (HTTP 409)";
        case error::unprocessable_entity:
            return "unprocessable entity (HTTP 422)";
        case error::rate_limited:
            return "rate limited (HTTP 429)";
        case error::server_error:
            return "server error (HTTP 5xx)";
        case error::unexpected_status:
            return "unexpected HTTP status";
        case error::bad_response:
            return "bad response";
        case error::response_too_large:
            return "response too large";
        case error::timeout:
            return "timeout";
        case error::proxy_error:
            return "proxy error";
        case error::proxy_auth_required:
            return "proxy authentication required (HTTP 407)";
        }
        return "unknown cartesia error";
    }
};

} // namespace

const boost::system::error_category& error_category() noexcept
{
    static const category instance;
    return instance;
}

} // namespace cartesia
