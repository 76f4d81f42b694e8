// validate() on client_config::base_url and api_version: configuration that may
// come from an environment variable or a file, so parsed as untrusted.
//
// Input: api_version as a FuzzedDataProvider string (ended by a backslash and one
// other byte), then base_url (the rest).
//
// A valid configuration must give an endpoint that the request and the connection
// can use as they stand (a host, a numeric port in 1..65535, a target ending in
// /access-token, a Host header that matches, nothing that could split a header
// line); an invalid one must give invalid_argument with a message naming the field.
#include "fuzz_support.hpp"

#include "protocol.hpp"
#include <cartesia/error.hpp>

#include <boost/asio/ip/address.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace cd = cartesia::detail;
using cartesia::fuzz::require;

bool is_header_safe(std::string_view text)
{
    return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// The port's value, leading zeros allowed; 0 when not a number or too large.
unsigned long port_value(std::string_view port)
{
    unsigned long value = 0;
    for (char c : port) {
        if (c < '0' || c > '9')
            return 0;
        value = value * 10 + static_cast<unsigned long>(c - '0');
        if (value > 65535)
            return 0;
    }
    return value;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider input(data, size);
    cartesia::client_config config;
    config.api_key = "sk_car_0123456789abcdef";
    config.api_version = input.ConsumeRandomLengthString(16);
    config.base_url = input.ConsumeRemainingBytesAsString();

    cd::endpoint where;
    cartesia::diagnostics diag;
    const auto ec = cd::validate(config, cartesia::token_request{}, where, diag);
    const std::string url = config.api_version + " | " + config.base_url;
    cartesia::fuzz::require_key_absent(diag, config.api_key);

    if (ec) {
        require(ec == cartesia::error::invalid_argument, "a bad configuration is an invalid argument", url);
        require(diag.client_message().starts_with("client_config::"), "the message names the field", url);
        return 0;
    }

    require(config.api_version.size() == 10, "api_version is a date", url);
    require(!where.host.empty(), "a valid URL names a host", url);
    require(port_value(where.port) != 0, "the port is a number in 1..65535", url + " -> " + where.port);
    require(where.target.starts_with("/") && where.target.ends_with("/access-token"),
            "the target is a path ending in /access-token", url + " -> " + where.target);
    require(is_header_safe(where.target) && is_header_safe(where.host_header),
            "target and Host header have no space or control character", url);

    std::string bare_host = where.host; // as the Host header writes it
    if (where.host_is_ip) {
        // resolve_endpoints turns the literal into an address with the throwing overload.
        boost::system::error_code address_ec;
        const auto address = boost::asio::ip::make_address(where.host, address_ec);
        require(!address_ec, "an IP literal host parses as an address", url + " -> " + where.host);
        if (address.is_v6())
            bare_host = "[" + where.host + "]";
    }
    require(where.host_header == bare_host || where.host_header == bare_host + ":" + where.port,
            "the Host header is the host and the port", url + " -> " + where.host_header);
    require(where.host_header != bare_host || where.port == "443", "a Host header without a port means port 443", url);

    // The request head is exactly its eight lines (request line, Host, Authorization,
    // Cartesia-Version, Content-Type, Accept, User-Agent, Content-Length), the last
    // unfinished.
    const std::string head = cd::serialize_request_head(config, where, true);
    std::size_t line_ends = 0;
    for (auto pos = head.find("\r\n"); pos != std::string::npos; pos = head.find("\r\n", pos + 2))
        ++line_ends;
    require(line_ends == 7 &&
                head.find_first_of(std::string_view("\0\r\n", 3), head.rfind("\r\n") + 2) == std::string::npos,
            "the URL cannot add or split a request line", url);
    return 0;
}
