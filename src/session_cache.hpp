// The TLS sessions that one-shot operations leave for the next one to the same
// host through the same ssl::context: a connection per token then costs a resumed
// handshake, as curl's connections do when they share sessions. The cache lives in
// the SSL_CTX (its ex_data), so that it lives and dies with the caller's context,
// and a mutex guards it: one context may serve operations on many threads.
// Private to src/.
#ifndef CARTESIA_SRC_SESSION_CACHE_HPP
#define CARTESIA_SRC_SESSION_CACHE_HPP

#include <openssl/ssl.h>

#include <string_view>

namespace cartesia::detail {

// Offers `ssl`, before its handshake, the session last kept for `host` in `ctx`, if any.
void offer_cached_session(SSL_CTX* ctx, std::string_view host, SSL* ssl) noexcept;

// After an exchange over `ssl`: keeps its session for the next connection to
// `host`, when it is resumable (with TLS 1.3, the ticket comes after the
// handshake, so only now is there one). At most a few hosts are kept per context.
void cache_session(SSL_CTX* ctx, std::string_view host, SSL* ssl) noexcept;

} // namespace cartesia::detail

#endif
