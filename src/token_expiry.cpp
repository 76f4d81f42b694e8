#include "token_expiry.hpp"

#include <boost/assert.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

namespace cartesia::detail {
namespace {

using std::chrono::system_clock;

// 9999-12-31T23:59:59Z; libstdc++'s system_clock counts nanoseconds in 64 bits and
// ends in 2262, before it.
constexpr std::int64_t end_of_year_9999 = 253'402'300'799;
constexpr std::int64_t latest_exp = std::min(
    end_of_year_9999,
    std::chrono::duration_cast<std::chrono::seconds>(system_clock::time_point::max().time_since_epoch()).count());

// The value of each base64url character, -1 for the others.
constexpr std::array<std::int8_t, 256> base64url_values = [] {
    std::array<std::int8_t, 256> values{};
    values.fill(-1);
    constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        values[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return values;
}();

using payload_buffer = std::array<char, max_jwt_payload_bytes>;

// Decodes base64url into `out`; nullopt on a character outside the alphabet, a
// length no encoding has, misplaced padding or a result that does not fit.
std::optional<std::string_view> decode_base64url(std::string_view text, payload_buffer& out) noexcept
{
    if (text.ends_with('=')) {
        // Padding is tolerated, whole: it completes a group of four.
        if (text.size() % 4 != 0)
            return std::nullopt;
        text.remove_suffix(text.ends_with("==") ? 2 : 1);
    }
    if (text.size() % 4 == 1)
        return std::nullopt;
    const std::size_t decoded_size = text.size() / 4 * 3 + (text.size() % 4 == 0 ? 0 : text.size() % 4 - 1);
    if (decoded_size > out.size())
        return std::nullopt;
    std::uint32_t bits = 0;
    int bit_count = 0;
    std::size_t written = 0;
    for (char c : text) {
        const std::int8_t value = base64url_values[static_cast<unsigned char>(c)];
        if (value < 0)
            return std::nullopt;
        bits = (bits << 6U) | static_cast<std::uint32_t>(value);
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            out[written++] = static_cast<char>((bits >> static_cast<unsigned>(bit_count)) & 0xffU);
        }
    }
    BOOST_ASSERT(written == decoded_size);
    return std::string_view(out.data(), written);
}

// Boost.JSON's SAX handler: watches the members of the top-level object for
// `exp`, and keeps nothing else, so that parsing allocates no memory whatever the
// payload holds.
class exp_claim_finder {
public:
    using error_code = boost::system::error_code;
    using string_view = boost::json::string_view;
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    // The claim, when the document is an object with exactly one `exp`, a number in range.
    std::optional<std::int64_t> exp() const noexcept { return top_is_object_ && exp_count_ == 1 ? exp_ : std::nullopt; }

    bool on_document_begin(error_code&) noexcept { return true; }
    bool on_document_end(error_code&) noexcept { return true; }
    bool on_object_begin(error_code&) noexcept
    {
        if (depth_ == 0)
            top_is_object_ = true;
        else
            on_value(std::nullopt);
        ++depth_;
        return true;
    }
    bool on_object_end(std::size_t, error_code&) noexcept { return leave(); }
    bool on_array_begin(error_code&) noexcept
    {
        on_value(std::nullopt);
        ++depth_;
        return true;
    }
    bool on_array_end(std::size_t, error_code&) noexcept { return leave(); }
    bool on_key_part(string_view part, std::size_t size_so_far, error_code&) noexcept
    {
        match_key(part, size_so_far);
        return true;
    }
    bool on_key(string_view part, std::size_t size, error_code&) noexcept
    {
        match_key(part, size);
        value_is_exp_ = depth_ == 1 && key_matches_ && size == claim_name.size();
        key_matches_ = true; // for the next key
        return true;
    }
    bool on_string_part(string_view, std::size_t, error_code&) noexcept { return true; }
    bool on_string(string_view, std::size_t, error_code&) noexcept { return on_value(std::nullopt); }
    bool on_number_part(string_view, error_code&) noexcept { return true; }
    bool on_int64(std::int64_t number, string_view, error_code&) noexcept
    {
        return on_value(number >= 0 && number <= latest_exp ? std::optional(number) : std::nullopt);
    }
    bool on_uint64(std::uint64_t number, string_view, error_code&) noexcept
    {
        // Only numbers above INT64_MAX come here: out of range.
        return on_value(number <= static_cast<std::uint64_t>(latest_exp)
                            ? std::optional(static_cast<std::int64_t>(number))
                            : std::nullopt);
    }
    bool on_double(double number, string_view, error_code&) noexcept
    {
        // Written so that NaN fails too; the bound keeps the truncation at most latest_exp.
        if (!(number >= 0.0 && number < static_cast<double>(latest_exp) + 1.0))
            return on_value(std::nullopt);
        return on_value(static_cast<std::int64_t>(number));
    }
    bool on_bool(bool, error_code&) noexcept { return on_value(std::nullopt); }
    bool on_null(error_code&) noexcept { return on_value(std::nullopt); }
    bool on_comment_part(string_view, error_code&) noexcept { return true; } // comments are not allowed:
    bool on_comment(string_view, error_code&) noexcept { return true; }      // never called

private:
    static constexpr std::string_view claim_name = "exp";

    // A key may come in parts (when it has escapes): `size_so_far` includes `part`.
    void match_key(string_view part, std::size_t size_so_far) noexcept
    {
        key_matches_ = key_matches_ && size_so_far <= claim_name.size() && size_so_far >= part.size() &&
                       claim_name.substr(size_so_far - part.size(), part.size()) == std::string_view(part);
    }
    // Any value starts here; `seconds` is the claim when the value is one.
    bool on_value(std::optional<std::int64_t> seconds) noexcept
    {
        if (depth_ == 1 && value_is_exp_) {
            ++exp_count_;
            exp_ = seconds;
        }
        value_is_exp_ = false;
        return true;
    }
    bool leave() noexcept
    {
        BOOST_ASSERT(depth_ > 0);
        --depth_;
        return true;
    }

    std::optional<std::int64_t> exp_;
    unsigned exp_count_ = 0;
    unsigned depth_ = 0; // bounded by parse_options::max_depth
    bool top_is_object_ = false;
    bool key_matches_ = true;
    bool value_is_exp_ = false;
};

} // namespace

std::optional<system_clock::time_point> jwt_expiry(std::string_view token) noexcept
{
    const auto first_dot = token.find('.');
    if (first_dot == std::string_view::npos)
        return std::nullopt;
    const auto second_dot = token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos)
        return std::nullopt;
    payload_buffer buffer; // NOLINT(cppcoreguidelines-pro-type-member-init): written before it is read
    const auto payload = decode_base64url(token.substr(first_dot + 1, second_dot - first_dot - 1), buffer);
    if (!payload || payload->empty())
        return std::nullopt;
    boost::json::basic_parser<exp_claim_finder> parser{boost::json::parse_options{}};
    boost::system::error_code ec;
    // The whole payload at once, more = false: the parser never suspends, so it
    // never allocates its resumption stack.
    const std::size_t parsed = parser.write_some(false, payload->data(), payload->size(), ec);
    if (ec || parsed != payload->size() || !parser.done())
        return std::nullopt;
    const auto exp = parser.handler().exp();
    if (!exp)
        return std::nullopt;
    return system_clock::time_point(std::chrono::seconds(*exp));
}

std::optional<system_clock::time_point> expires_at_of(std::string_view token, system_clock::time_point sent_at,
                                                      std::optional<std::chrono::seconds> expires_in) noexcept
{
    if (auto exp = jwt_expiry(token))
        return exp;
    if (!expires_in)
        return std::nullopt;
    BOOST_ASSERT(*expires_in > std::chrono::seconds::zero());
    if (sent_at > system_clock::time_point::max() - *expires_in)
        return system_clock::time_point::max();
    return sent_at + *expires_in;
}

} // namespace cartesia::detail
