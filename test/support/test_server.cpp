// The local Cartesia-compatible HTTPS server described in test_server.hpp: the listener, its
// thread and the counters. The pieces it puts together:
// - fake_api.hpp: what the API answers, and its error bodies;
// - faults.hpp: the /fault/<name>/access-token catalogue;
// - server_connection.hpp: one client connection, from the handshake to its ending;
// - http_format.hpp: the bytes of an answer, framed as asked.
#include "support/test_server.hpp"

#include "support/fake_api.hpp"
#include "support/faults.hpp"
#include "support/server_connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>

#include <cstdlib> // mkdtemp

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <system_error>
#include <thread>

namespace cartesia::test {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using detail::request_type;
using detail::tcp;

// Completion of a detached coroutine: a failure ends that coroutine only, and is worth a line in the log.
void report_failure(const std::exception_ptr& failure)
{
    if (!failure)
        return;
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        std::cerr << "test_server: " << e.what() << '\n';
    }
}

// A PEM file in a fresh private directory; both are removed on destruction.
class temporary_pem_file {
public:
    explicit temporary_pem_file(const std::string& pem)
    {
        const char* tmpdir = std::getenv("TMPDIR");
        std::string pattern =
            std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/cartesia-test-server-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
        }
        directory_ = pattern;
        path_ = directory_ + "/ca.pem";
        std::ofstream file(path_);
        file << pem;
        file.close();
        if (!file) {
            remove();
            throw std::runtime_error("test_server: cannot write " + path_);
        }
    }
    ~temporary_pem_file() { remove(); }
    temporary_pem_file(const temporary_pem_file&) = delete;
    temporary_pem_file& operator=(const temporary_pem_file&) = delete;

    const std::string& path() const noexcept { return path_; }

private:
    void remove() noexcept
    {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
        std::filesystem::remove(directory_, ignored);
    }

    std::string directory_;
    std::string path_;
};

} // namespace

std::optional<std::string> recorded_request::header(const std::string& lower_case_name) const
{
    const auto found = headers.find(lower_case_name);
    if (found == headers.end())
        return std::nullopt;
    return found->second;
}

struct test_server::impl {
    explicit impl(server_options server_options);
    ~impl();

    asio::awaitable<void> accept_connections();
    // The answer to one request, with how to deliver it and what to do with the connection after.
    asio::awaitable<canned_response> respond(detail::connection& c, const request_type& request);
    recorded_request remember(const detail::connection& c, const request_type& request);

    const server_options options;
    const pki credentials;
    const temporary_pem_file ca_file;
    const detail::fake_api api{options.api_key};
    detail::fault_dispatcher faults; // only the server's thread uses it
    ssl::context tls{ssl::context::tls_server};
    detail::traffic tally;
    // Declared after the TLS context and the tally: destroying the io_context destroys the
    // pending coroutines, and with them the streams that use the context and the connections
    // that count themselves in the tally.
    asio::io_context io;
    tcp::acceptor acceptor{io};
    unsigned short port = 0;
    std::atomic<std::size_t> connections{0};
    mutable std::mutex accepted_mutex; // with `accepted`, lets a test wait for a count
    mutable std::condition_variable accepted;
    std::atomic<std::size_t> requests{0};
    mutable std::mutex records_mutex;
    std::vector<recorded_request> records; // guarded by records_mutex
    std::thread thread;
};

test_server::impl::impl(server_options server_options)
    : options(std::move(server_options)), credentials(make_pki(options.certificate)), ca_file(credentials.ca_cert_pem)
{
    if (SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION) != 1) {
        throw std::runtime_error("test_server: cannot require TLS 1.2");
    }
    tls.use_certificate_chain(asio::buffer(credentials.leaf_cert_pem));
    tls.use_private_key(asio::buffer(credentials.leaf_key_pem), ssl::context::pem);

    // Listening before the thread starts is what lets the constructor return a ready server:
    // clients that connect early wait in the backlog.
    const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), options.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
    port = acceptor.local_endpoint().port();

    asio::co_spawn(io, accept_connections(), report_failure);
    thread = std::thread([this] { io.run(); });
}

test_server::impl::~impl()
{
    // Stopping the io_context abandons every pending operation at once, idle and hanging
    // connections included; destroying it afterwards frees their coroutines and sockets.
    io.stop();
    thread.join();
}

asio::awaitable<void> test_server::impl::accept_connections()
{
    const detail::request_handler handler = [this](detail::connection& c, const request_type& request) {
        return respond(c, request);
    };
    for (;;) {
        auto [error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (error)
            continue; // e.g. the client reset the connection before we accepted it
        std::size_t number = 0;
        {
            const std::lock_guard lock(accepted_mutex);
            number = ++connections;
        }
        accepted.notify_all();
        asio::co_spawn(io,
                       detail::serve_connection(std::move(socket), tls, tally, handler, number,
                                                detail::keep_alive_policy{options.idle_close_after}),
                       report_failure);
    }
}

asio::awaitable<canned_response> test_server::impl::respond(detail::connection& c, const request_type& request)
{
    const recorded_request record = remember(c, request);
    if (options.responder) {
        if (auto canned = options.responder(record))
            co_return std::move(*canned);
    }
    const auto fault = detail::fault_of(request.target());
    if (!fault)
        co_return detail::json_error(404, "not_found", "No route for " + std::string(request.target()));
    if (fault->empty())
        co_return api.answer(request);
    if (auto answer = co_await faults.answer(*fault, c, request, api))
        co_return std::move(*answer);
    co_return detail::json_error(404, "unknown_fault", "Unknown fault '" + std::string(*fault) + "'");
}

recorded_request test_server::impl::remember(const detail::connection& c, const request_type& request)
{
    recorded_request record{
        .method = std::string(request.method_string()),
        .target = std::string(request.target()),
        .version = std::to_string(request.version() / 10) + '.' + std::to_string(request.version() % 10),
        .headers = {},
        .body = request.body(),
        .connection = c.number,
        .on_connection = c.requests,
        .idle_before =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - c.idle_since),
    };
    for (const auto& field : request) {
        std::string name(field.name_string());
        std::ranges::transform(name, name.begin(),
                               [](unsigned char letter) { return static_cast<char>(std::tolower(letter)); });
        record.headers.emplace(std::move(name), std::string(field.value()));
    }
    {
        const std::lock_guard lock(records_mutex);
        records.push_back(record);
    }
    ++requests; // after the record, so a test that sees the count also sees the request
    return record;
}

test_server::test_server(server_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

test_server::~test_server() = default;

unsigned short test_server::port() const noexcept
{
    return impl_->port;
}

std::string test_server::base_url() const
{
    return "https://localhost:" + std::to_string(impl_->port);
}

const std::string& test_server::api_key() const noexcept
{
    return impl_->options.api_key;
}

const std::string& test_server::ca_cert_pem() const noexcept
{
    return impl_->credentials.ca_cert_pem;
}

const std::string& test_server::ca_file() const noexcept
{
    return impl_->ca_file.path();
}

std::size_t test_server::connections_accepted() const noexcept
{
    return impl_->connections;
}

std::size_t test_server::resumed_handshakes() const noexcept
{
    return impl_->tally.resumed_handshakes;
}

std::size_t test_server::requests_received() const noexcept
{
    return impl_->requests;
}

std::vector<recorded_request> test_server::recorded_requests() const
{
    const std::lock_guard lock(impl_->records_mutex);
    return impl_->records;
}

std::size_t test_server::bytes_written() const noexcept
{
    return impl_->tally.bytes_written;
}

std::size_t test_server::open_connections() const noexcept
{
    return impl_->tally.open_connections.value();
}

bool test_server::wait_for_open_connections(std::size_t n, std::chrono::milliseconds timeout) const
{
    return impl_->tally.open_connections.wait_for(n, timeout);
}

std::size_t test_server::handshakes_completed() const noexcept
{
    return impl_->tally.handshakes.value();
}

bool test_server::wait_for_handshakes(std::size_t n, std::chrono::milliseconds timeout) const
{
    return impl_->tally.handshakes.wait_for(n, timeout);
}

bool test_server::wait_for_connections_accepted(std::size_t n, std::chrono::milliseconds timeout) const
{
    std::unique_lock lock(impl_->accepted_mutex);
    return impl_->accepted.wait_for(lock, timeout, [&] { return impl_->connections >= n; });
}

} // namespace cartesia::test
