#include "session_cache.hpp"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace cartesia::detail {
namespace {

struct session_deleter {
    void operator()(SSL_SESSION* session) const noexcept { SSL_SESSION_free(session); }
};

struct session_cache {
    // A handful of hosts at most (an application talks to one API), newest last:
    // a vector searched linearly beats a map here.
    static constexpr std::size_t max_hosts = 8;
    std::vector<std::pair<std::string, std::unique_ptr<SSL_SESSION, session_deleter>>> entries;
};

// One lock for every context's cache: the cache is touched twice per one-shot
// operation, which costs a TLS handshake; creating a context's cache must be
// guarded too.
std::mutex& cache_mutex()
{
    static std::mutex m;
    return m;
}

void free_cache(void*, void* cache, CRYPTO_EX_DATA*, int, long, void*) noexcept
{
    delete static_cast<session_cache*>(cache); // NOLINT(cppcoreguidelines-owning-memory): OpenSSL's ex_data owns it
}

int cache_index() noexcept
{
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_cache);
    return index;
}

session_cache* cache_of(SSL_CTX* ctx, bool create)
{
    const int index = cache_index();
    if (index < 0)
        return nullptr;
    auto* cache = static_cast<session_cache*>(SSL_CTX_get_ex_data(ctx, index));
    if (cache == nullptr && create) {
        auto fresh = std::make_unique<session_cache>();
        if (SSL_CTX_set_ex_data(ctx, index, fresh.get()) != 1)
            return nullptr;
        cache = fresh.release();
    }
    return cache;
}

} // namespace

void offer_cached_session(SSL_CTX* ctx, std::string_view host, SSL* ssl) noexcept
{
    try {
        const std::lock_guard lock(cache_mutex());
        session_cache* cache = cache_of(ctx, /*create=*/false);
        if (cache == nullptr)
            return;
        const auto found = std::find_if(cache->entries.begin(), cache->entries.end(),
                                        [&](const auto& entry) { return entry.first == host; });
        if (found != cache->entries.end())
            SSL_set_session(ssl, found->second.get()); // a failure only means a full handshake
    } catch (...) {                                    // the lock failed: a missed resumption at worst
    }
}

void cache_session(SSL_CTX* ctx, std::string_view host, SSL* ssl) noexcept
{
    std::unique_ptr<SSL_SESSION, session_deleter> session(SSL_get1_session(ssl));
    if (!session || SSL_SESSION_is_resumable(session.get()) != 1)
        return;
    try {
        const std::lock_guard lock(cache_mutex());
        session_cache* cache = cache_of(ctx, /*create=*/true);
        if (cache == nullptr)
            return;
        auto& entries = cache->entries;
        const auto found =
            std::find_if(entries.begin(), entries.end(), [&](const auto& entry) { return entry.first == host; });
        if (found != entries.end()) {
            found->second = std::move(session);
            return;
        }
        if (entries.size() == session_cache::max_hosts)
            entries.erase(entries.begin()); // the oldest host
        entries.emplace_back(std::string(host), std::move(session));
    } catch (...) { // out of memory: the next connection makes a full handshake
    }
}

} // namespace cartesia::detail
