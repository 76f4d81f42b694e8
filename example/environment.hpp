// Shared by the examples: where the key, the API and an extra CA come from.
#ifndef CARTESIA_EXAMPLE_ENVIRONMENT_HPP
#define CARTESIA_EXAMPLE_ENVIRONMENT_HPP

#include <cartesia/cartesia.hpp>

#include <cstdlib>
#include <stdexcept>

// CARTESIA_API_KEY (required), CARTESIA_BASE_URL (optional) and CARTESIA_CA_FILE
// (optional: a CA to trust besides the system's, e.g. the local test server's).
inline cartesia::client_config config_from_environment()
{
    cartesia::client_config config;
    const char* key = std::getenv("CARTESIA_API_KEY");
    if (!key || !*key)
        throw std::runtime_error("set CARTESIA_API_KEY");
    config.api_key = key;
    if (const char* url = std::getenv("CARTESIA_BASE_URL"); url && *url)
        config.base_url = url;
    return config;
}

inline boost::asio::ssl::context tls_from_environment()
{
    const char* ca_file = std::getenv("CARTESIA_CA_FILE");
    return ca_file && *ca_file ? cartesia::make_tls_context(ca_file) : cartesia::make_tls_context();
}

#endif
