// base64url (RFC 4648, section 5) for tests that build JWT-shaped tokens byte by
// byte: header-only and dependency-free, so that the fuzz targets can use it too.
#ifndef CARTESIA_TEST_SUPPORT_BASE64URL_HPP
#define CARTESIA_TEST_SUPPORT_BASE64URL_HPP

#include <cstdint>
#include <string>
#include <string_view>

namespace cartesia::test {

// `bytes` encoded, without padding unless `padded`.
inline std::string base64url(std::string_view bytes, bool padded = false)
{
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t bits = 0;
    int bit_count = 0;
    for (char c : bytes) {
        bits = (bits << 8U) | static_cast<unsigned char>(c);
        bit_count += 8;
        while (bit_count >= 6) {
            bit_count -= 6;
            out += alphabet[(bits >> static_cast<unsigned>(bit_count)) & 63U];
        }
    }
    if (bit_count > 0)
        out += alphabet[(bits << static_cast<unsigned>(6 - bit_count)) & 63U];
    while (padded && out.size() % 4 != 0)
        out += '=';
    return out;
}

} // namespace cartesia::test

#endif
