// A local test server and a client configuration that trusts it.
#ifndef CARTESIA_TEST_INTEGRATION_FIXTURE_HPP
#define CARTESIA_TEST_INTEGRATION_FIXTURE_HPP

#include <cartesia/cartesia.hpp>
#include <support/printing.hpp>
#include <support/test_server.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace cartesia::test {

// An io_context run by `threads` threads of its own until this is destroyed, so that
// a test can wait on the server's counts or on futures while operations go on in the
// background.
class running_io {
public:
    explicit running_io(boost::asio::io_context& io, int threads = 1) : work_(boost::asio::make_work_guard(io))
    {
        for (int i = 0; i < threads; ++i)
            threads_.emplace_back([&io] { io.run(); });
    }
    ~running_io()
    {
        work_.reset();
        for (auto& t : threads_)
            t.join();
    }
    running_io(const running_io&) = delete;
    running_io& operator=(const running_io&) = delete;

private:
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::vector<std::thread> threads_;
};

// An allocator that counts what it allocates, to show that a handler's is used.
template <class T> struct counting_allocator {
    using value_type = T;
    std::size_t* count;
    explicit counting_allocator(std::size_t* c) : count(c) {}
    template <class U> counting_allocator(const counting_allocator<U>& other) : count(other.count) {}
    T* allocate(std::size_t n)
    {
        ++*count;
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
    template <class U> bool operator==(const counting_allocator<U>& other) const { return count == other.count; }
};

struct server_fixture {
    explicit server_fixture(server_options options = {}) : server(std::move(options))
    {
        tls.add_certificate_authority(boost::asio::buffer(server.ca_cert_pem()));
        config.api_key = server.api_key();
        config.base_url = server.base_url();
        config.max_retries = 0; // tests that want retries say so
        config.timeout = std::chrono::seconds(20);
    }

    // The same server reached through /fault/<name>.
    client_config config_with_fault(const std::string& fault) const
    {
        auto faulty = config;
        faulty.base_url += "/fault/" + fault;
        return faulty;
    }

    test_server server;
    boost::asio::ssl::context tls = make_tls_context();
    client_config config;
    boost::asio::io_context io;
};

// Server options that run `action` on the client's io_context once the server
// has received `count` requests, then let the request take its normal course
// (e.g. a /fault/hang path): how a test acts while a request is in flight,
// without sleeping.
inline server_options notify_when_requests_reach(std::size_t count, boost::asio::io_context& client_io,
                                                 std::function<void()> action)
{
    server_options options;
    auto seen = std::make_shared<std::atomic<std::size_t>>(0);
    options.responder = [seen, count, &client_io,
                         action = std::move(action)](const recorded_request&) -> std::optional<canned_response> {
        if (++*seen == count)
            boost::asio::post(client_io, action);
        return std::nullopt;
    };
    return options;
}

using clock_type = std::chrono::steady_clock;

inline long long milliseconds_since(clock_type::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
}

// What one operation delivered, and how long it took.
struct outcome {
    boost::system::error_code ec;
    token_response response;
    diagnostics diag;
    long long elapsed_ms = 0;
    int calls = 0;
};

// Runs one operation to completion on f.io with a callback, and checks that the
// handler ran exactly once and that nothing was left pending (io.run() returned).
inline outcome mint(server_fixture& f, const client_config& config, const token_request& request = {})
{
    outcome out;
    const auto start = clock_type::now();
    async_generate_token(f.io, f.tls, config, request, out.diag,
                         [&](boost::system::error_code ec, token_response response) {
                             out.ec = ec;
                             out.response = std::move(response);
                             ++out.calls;
                         });
    f.io.run();
    f.io.restart();
    out.elapsed_ms = milliseconds_since(start);
    BOOST_TEST(out.calls == 1);
    return out;
}

// Mints up to `count` tokens from `pool` one after the other (each is checked, and
// a failure ends the run), then closes it; runs `io` until all is done. Returns the
// tokens minted.
inline int mint_in_sequence(client& pool, boost::asio::io_context& io, int count)
{
    int tokens = 0;
    std::function<void()> next = [&] {
        if (tokens == count) {
            pool.close(); // else io.run() waits for the pool's timers
            return;
        }
        pool.async_generate_token({}, [&](boost::system::error_code ec, const token_response&) {
            BOOST_TEST(!ec, ec.message());
            tokens += !ec;
            if (!ec)
                next();
            else
                pool.close();
        });
    };
    next();
    io.run();
    io.restart();
    return tokens;
}

// The JSON payload of a JWT-shaped token, or null when it is not one.
inline boost::json::value jwt_payload(const std::string& token)
{
    const auto first = token.find('.');
    const auto second = token.find('.', first + 1);
    if (first == std::string::npos || second == std::string::npos || token.find('.', second + 1) != std::string::npos)
        return nullptr;
    std::string segment = token.substr(first + 1, second - first - 1);
    for (char& c : segment)
        c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (segment.size() % 4 != 0)
        segment += '=';
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string decoded;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : segment) {
        if (c == '=')
            break;
        const auto index = alphabet.find(c);
        if (index == std::string_view::npos)
            return nullptr;
        buffer = (buffer << 6) | static_cast<unsigned>(index);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            decoded += static_cast<char>((buffer >> bits) & 0xff);
        }
    }
    boost::system::error_code ec;
    auto payload = boost::json::parse(decoded, ec);
    return ec ? boost::json::value(nullptr) : payload;
}

} // namespace cartesia::test

#endif
