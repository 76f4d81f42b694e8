// What the fuzz targets share: invariant checks that stop the run with a message
// (libFuzzer then keeps the input as a crash artifact), and the key checks.
#ifndef CARTESIA_TEST_FUZZ_SUPPORT_HPP
#define CARTESIA_TEST_FUZZ_SUPPORT_HPP

#include <cartesia/diagnostics.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace cartesia::fuzz {

// Not assert(): it must hold in the RelWithDebInfo build, where NDEBUG is set.
inline void require(bool condition, const char* invariant, std::string_view detail = {})
{
    if (condition)
        return;
    std::fprintf(stderr, "invariant violated: %s\n  %.*s\n", invariant, static_cast<int>(detail.size()), detail.data());
    std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

// The key must reach no diagnostics field: a server that echoes it (or a URL or a
// content type that carries it) must not put it in a log.
inline void require_key_absent(const diagnostics& diag, std::string_view api_key)
{
    for (std::string_view field : {diag.client_message(), diag.server_title(), diag.server_message(),
                                   diag.server_error_code(), diag.request_id()})
        require(field.find(api_key) == std::string_view::npos, "the API key appears in diagnostics", field);
}

// A key of the form Cartesia issues ("sk_car_" and letters and digits), its
// suffix taken from fuzz input; a fixed one when the input gives none.
inline std::string realistic_key(std::string_view suffix_source)
{
    static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string key = "sk_car_";
    for (char c : suffix_source) // letters and digits as they are, the rest mapped to one
        key +=
            alphabet.find(c) != std::string_view::npos ? c : alphabet[static_cast<unsigned char>(c) % alphabet.size()];
    if (key.size() == 7)
        key += "0123456789abcdef";
    return key;
}

} // namespace cartesia::fuzz

#endif
