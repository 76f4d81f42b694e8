#include "network_config.hpp"
#include <cartesia/types.hpp>

#include <cstdlib>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace cartesia {

std::ostream& operator<<(std::ostream& out, const client_config& config)
{
    // Only the public prefix of a key: enough to tell a test key from a live one.
    constexpr std::string_view public_prefix = "sk_car_";
    const std::string_view key = config.api_key;
    const std::string_view shown = key.empty() ? "(empty)" : key.starts_with(public_prefix) ? "sk_car_…" : "…";
    out << "{api_key: " << shown << ", base_url: " << detail::redact_url_credentials(config.base_url)
        << ", api_version: " << config.api_version << ", timeout: " << config.timeout.count()
        << " ms, max_retries: " << config.max_retries << ", user_agent_suffix: " << config.user_agent_suffix
        << ", max_header_bytes: " << config.max_header_bytes << ", max_body_bytes: " << config.max_body_bytes
        << ", max_connections: " << config.max_connections << ", idle_timeout: " << config.idle_timeout.count() << " ms"
        << ", proxy: " << detail::redact_url_credentials(config.proxy) << ", no_proxy: " << config.no_proxy
        << ", resolve: [";
    for (std::size_t i = 0; i < config.resolve.size(); ++i)
        out << (i == 0 ? "" : ", ") << config.resolve[i];
    out << "], connect_timeout: " << config.connect_timeout.count()
        << " ms, connection_attempt_delay: " << config.connection_attempt_delay.count()
        << " ms, min_connections: " << config.min_connections << ", total_timeout: ";
    if (config.total_timeout)
        out << config.total_timeout->count() << " ms";
    else
        out << "none";
    return out << ", retry_budget_ratio: " << config.retry_budget_ratio
               << ", retry_budget_min_per_second: " << config.retry_budget_min_per_second << "}";
}

namespace {

// The value of the first of `names` that is set to something, as curl reads the
// environment: a variable set to the empty string counts as unset.
std::string first_set(std::initializer_list<const char*> names)
{
    for (const char* name : names)
        if (const char* value = std::getenv(name); value && *value)
            return value;
    return {};
}

} // namespace

client_config config_from_environment()
{
    client_config config;
    config.api_key = first_set({"CARTESIA_API_KEY"});
    if (std::string base_url = first_set({"CARTESIA_BASE_URL"}); !base_url.empty())
        config.base_url = std::move(base_url);
    // curl's order for an https:// URL: the lowercase name first, then the uppercase
    // one, then the same for all_proxy.
    config.proxy = first_set({"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
    config.no_proxy = first_set({"no_proxy", "NO_PROXY"});
    return config;
}

} // namespace cartesia
