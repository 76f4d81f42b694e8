#include <cartesia/types.hpp>

#include <ostream>
#include <string_view>

namespace cartesia {

std::ostream& operator<<(std::ostream& out, const client_config& config)
{
    // Only the public prefix of a key: enough to tell a test key from a live one.
    constexpr std::string_view public_prefix = "sk_car_";
    const std::string_view key = config.api_key;
    const std::string_view shown = key.empty() ? "(empty)" : key.starts_with(public_prefix) ? "sk_car_…" : "…";
    return out << "{api_key: " << shown << ", base_url: " << config.base_url << ", api_version: " << config.api_version
               << ", timeout: " << config.timeout.count() << " ms, max_retries: " << config.max_retries
               << ", user_agent_suffix: " << config.user_agent_suffix
               << ", max_header_bytes: " << config.max_header_bytes << ", max_body_bytes: " << config.max_body_bytes
               << ", max_connections: " << config.max_connections << ", idle_timeout: " << config.idle_timeout.count()
               << " ms" << '}';
}

} // namespace cartesia
