// Erasing a token the library holds and no longer needs: a discarded token must
// not linger in freed memory, where a heap dump or a later allocation would find
// it. Private to src/.
#ifndef CARTESIA_SRC_ERASE_TOKEN_HPP
#define CARTESIA_SRC_ERASE_TOKEN_HPP

#include <cartesia/types.hpp>

#include <openssl/crypto.h>

#include <utility>

namespace cartesia::detail {

// Overwrites what `r` holds, then empties it. The whole capacity: a short string
// moved from keeps its old characters in its inline buffer.
inline void erase_token(token_response& r) noexcept
{
    OPENSSL_cleanse(r.token.data(), r.token.capacity());
    OPENSSL_cleanse(r.raw_json.data(), r.raw_json.capacity());
    r = {};
}

// A token on its way to a handler through a posted function: erased if that
// function is destroyed without running (its executor shut down, or the post
// itself failed for want of memory). Moving it out hands it on.
class token_in_transit {
public:
    explicit token_in_transit(token_response&& r) noexcept : value_(std::move(r)) {}
    token_in_transit(token_in_transit&& other) noexcept : value_(std::move(other.value_)) {}
    token_in_transit& operator=(token_in_transit&&) = delete;
    token_in_transit(const token_in_transit&) = delete;
    token_in_transit& operator=(const token_in_transit&) = delete;
    ~token_in_transit() { erase_token(value_); }

    token_response take() noexcept { return std::move(value_); }

private:
    token_response value_;
};

} // namespace cartesia::detail

#endif
