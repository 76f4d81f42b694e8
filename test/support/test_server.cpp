// The local Cartesia-compatible HTTPS server described in test_server.hpp.
#include "support/test_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <stdlib.h> // mkdtemp

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>

namespace cartesia::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
using request_type = http::request<http::string_body>;

// Asynchronous operations report errors as a value, so that a misbehaving client is an
// ordinary outcome rather than an exception.
constexpr auto use_nothrow_awaitable = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t header_limit = 16 * 1024;
constexpr std::size_t body_limit = 1024 * 1024;
constexpr std::int64_t default_expires_in = 300;
constexpr std::int64_t max_expires_in = 3600;
constexpr std::array<std::string_view, 5> supported_versions{"2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01",
                                                             "2026-08-14"};
constexpr std::string_view injected_message = "Fault injected by the test server";

std::string random_uuid()
{
    return boost::uuids::to_string(boost::uuids::random_generator()());
}

std::string reason_phrase(unsigned status)
{
    const http::status known = http::int_to_status(status);
    return known == http::status::unknown ? "Unknown Status" : std::string(http::obsolete_reason(known));
}

// The error body of Cartesia-Version 2026-03-01; an empty error_code is sent as null.
canned_response json_error(unsigned status, std::string_view error_code, std::string_view message)
{
    const std::string request_id = random_uuid();
    const json::object body{
        {"error_code", error_code.empty() ? json::value(nullptr) : json::value(error_code)},
        {"title", reason_phrase(status)},
        {"message", message},
        {"request_id", request_id},
    };
    return {status, "application/json", json::serialize(body), {{"x-request-id", request_id}}};
}

std::string base64url(std::string_view bytes)
{
    // EVP_EncodeBlock writes standard, padded base64 and a terminating NUL.
    std::string text(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int length =
        EVP_EncodeBlock(reinterpret_cast<unsigned char *>(text.data()),
                        reinterpret_cast<const unsigned char *>(bytes.data()), static_cast<int>(bytes.size()));
    text.resize(static_cast<std::size_t>(length));
    while (!text.empty() && text.back() == '=')
        text.pop_back();
    std::ranges::replace(text, '+', '-');
    std::ranges::replace(text, '/', '_');
    return text;
}

// An HS256 JWT for `claims`.
std::string sign_token(const json::object &claims, const std::string &secret)
{
    const std::string signing_input =
        base64url(R"({"alg":"HS256","typ":"JWT"})") + '.' + base64url(json::serialize(claims));
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_size = 0;
    if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char *>(signing_input.data()), signing_input.size(), mac.data(),
             &mac_size) == nullptr) {
        throw std::runtime_error("test_server: HMAC-SHA256 failed");
    }
    return signing_input + '.' + base64url({reinterpret_cast<const char *>(mac.data()), mac_size});
}

struct token_request {
    json::object grants; // only the granted scopes, each true
    std::int64_t expires_in = default_expires_in;
};

// Validates a POST /access-token body as the API does; on failure, returns the complaint.
std::variant<token_request, std::string> parse_token_request(std::string_view text)
{
    boost::system::error_code parse_error;
    const json::value body = json::parse(text, parse_error);
    if (parse_error || !body.is_object())
        return "The request body must be a JSON object";

    token_request result;
    for (const auto &[key, value] : body.get_object()) {
        if (key != "grants" && key != "expires_in")
            return "Unknown field '" + std::string(key) + "'";
        if (value.is_null())
            continue; // null means "use the default" for both fields
        if (key == "grants") {
            if (!value.is_object())
                return "grants must be an object";
            for (const auto &[scope, granted] : value.get_object()) {
                if (scope != "tts" && scope != "stt" && scope != "agent") {
                    return "Unknown grant '" + std::string(scope) + "'; use tts, stt or agent";
                }
                if (!granted.is_bool() && !granted.is_null())
                    return "grants." + std::string(scope) + " must be a boolean";
                if (granted.is_bool() && granted.get_bool())
                    result.grants[scope] = true;
            }
        } else {
            if (value.is_uint64() || (value.is_int64() && value.get_int64() > max_expires_in)) {
                return "expires_in must be at most 3600 seconds";
            }
            if (!value.is_int64())
                return "expires_in must be an integer number of seconds";
            if (value.get_int64() < 1)
                return "expires_in must be at least 1 second";
            result.expires_in = value.get_int64();
        }
    }
    return result;
}

// The fault named by "/fault/<name>/access-token": "" for a plain "/access-token" and
// nullopt for any other path. A query string is ignored, as the API does.
std::optional<std::string_view> fault_of(std::string_view target)
{
    constexpr std::string_view endpoint = "/access-token";
    constexpr std::string_view fault_prefix = "/fault/";
    target = target.substr(0, target.find('?'));
    if (target == endpoint)
        return "";
    if (target.size() <= fault_prefix.size() + endpoint.size() || !target.starts_with(fault_prefix) ||
        !target.ends_with(endpoint)) {
        return std::nullopt;
    }
    const std::string_view name =
        target.substr(fault_prefix.size(), target.size() - fault_prefix.size() - endpoint.size());
    if (name.find('/') != std::string_view::npos)
        return std::nullopt;
    return name;
}

// The number in a fault name such as "status-503" after `prefix`, or nullopt.
std::optional<unsigned> number_after(std::string_view name, std::string_view prefix)
{
    if (!name.starts_with(prefix))
        return std::nullopt;
    name.remove_prefix(prefix.size());
    unsigned number = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), number);
    if (error != std::errc{} || end != name.data() + name.size())
        return std::nullopt;
    return number;
}

bool is_final_status(std::optional<unsigned> status)
{
    return status && *status >= 200 && *status <= 599;
}

// The answer of a fault that replaces the API's answer, or nullopt when `name` is not such a fault.
std::optional<canned_response> canned_fault(std::string_view name)
{
    if (const auto status = number_after(name, "status-"); is_final_status(status)) {
        // Faults leave error_code null so that clients meet that case too.
        return json_error(*status, {}, injected_message);
    }
    if (const auto status = number_after(name, "plain-"); is_final_status(status)) {
        return canned_response{
            *status, "text/plain", reason_phrase(*status) + ": " + std::string(injected_message), {}};
    }
    if (name == "html") {
        // What a captive portal or a misconfigured proxy might send instead of JSON.
        return canned_response{200,
                               "text/html; charset=utf-8",
                               "<!DOCTYPE html><html><head><title>Sign in</title></head>"
                               "<body><h1>Sign in to continue</h1></body></html>",
                               {}};
    }
    if (const auto seconds = number_after(name, "retry-after-")) {
        canned_response answer = json_error(429, {}, "Too many requests; retry later");
        answer.headers.emplace_back("Retry-After", std::to_string(*seconds));
        return answer;
    }
    return std::nullopt;
}

// The status that tells a client why its request could not be parsed, or nullopt when the
// connection simply ended and there is nobody left to answer.
std::optional<unsigned> status_for_read_error(const beast::error_code &error)
{
    if (error == http::error::header_limit)
        return 431;
    if (error == http::error::body_limit)
        return 413;
    if (error.category() == beast::error_code(http::error::end_of_stream).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message) {
        return 400;
    }
    return std::nullopt;
}

http::response<http::string_body> to_http(const canned_response &answer, unsigned version, bool keep_alive)
{
    http::response<http::string_body> response;
    response.version(version);
    response.result(answer.status);
    response.reason(reason_phrase(answer.status)); // Beast would write "<unknown-status>" for e.g. 418
    if (!answer.content_type.empty())
        response.set(http::field::content_type, answer.content_type);
    for (const auto &[name, value] : answer.headers)
        response.insert(name, value);
    // Beast refuses to frame a body for 1xx, 204 and 304, which HTTP forbids to have one.
    if (answer.status >= 200 && answer.status != 204 && answer.status != 304)
        response.body() = answer.body;
    response.keep_alive(keep_alive);
    response.prepare_payload();
    return response;
}

// Holds a connection open without answering, discarding whatever the client sends, until
// the client leaves or the server stops.
asio::awaitable<void> hold_open(tls_stream &stream)
{
    std::array<char, 1024> discarded;
    for (;;) {
        const auto [error, size] = co_await stream.async_read_some(asio::buffer(discarded), use_nothrow_awaitable);
        if (error)
            co_return;
    }
}

// Completion of a detached coroutine: a failure ends that coroutine only, and is worth a line in the log.
void report_failure(std::exception_ptr failure)
{
    if (!failure)
        return;
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception &e) {
        std::cerr << "test_server: " << e.what() << '\n';
    }
}

// A PEM file in a fresh private directory; both are removed on destruction.
class temporary_pem_file {
public:
    explicit temporary_pem_file(const std::string &pem)
    {
        const char *tmpdir = std::getenv("TMPDIR");
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
    temporary_pem_file(const temporary_pem_file &) = delete;
    temporary_pem_file &operator=(const temporary_pem_file &) = delete;

    const std::string &path() const noexcept { return path_; }

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

std::string random_secret()
{
    std::string secret(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char *>(secret.data()), static_cast<int>(secret.size())) != 1) {
        throw std::runtime_error("test_server: RAND_bytes failed");
    }
    return secret;
}

} // namespace

const std::vector<fault_info> &fault_names()
{
    static const std::vector<fault_info> faults{
        {"ok", "the normal answer, as without a prefix"},
        {"status-<code>", "<code> (200-599) with the JSON error body"},
        {"plain-<code>", "<code> (200-599) with a text/plain \"<Title>: <message>\" body, as old API versions"},
        {"html", "200 with an HTML page, as a captive portal would"},
        {"retry-after-<s>", "429 with Retry-After: <s> and the JSON error body"},
        {"slow-<ms>", "waits <ms> milliseconds, then answers normally"},
        {"hang", "reads the request and never answers, keeping the connection open"},
        {"close", "reads the request and closes the connection without answering"},
    };
    return faults;
}

std::optional<std::string> recorded_request::header(const std::string &lower_case_name) const
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
    asio::awaitable<void> serve(tcp::socket socket);
    // The answer to one request, or nullopt when a fault says to drop the connection instead.
    asio::awaitable<std::optional<canned_response>> respond(tls_stream &stream, const request_type &request,
                                                            const recorded_request &record) const;
    canned_response answer_api(const request_type &request) const;
    recorded_request remember(const request_type &request);

    const server_options options;
    const pki credentials;
    const temporary_pem_file ca_file;
    const std::string jwt_secret = random_secret();
    ssl::context tls{ssl::context::tls_server};
    // Declared after the TLS context: destroying the io_context destroys the pending
    // coroutines, and with them the streams that use the context.
    asio::io_context io;
    tcp::acceptor acceptor{io};
    unsigned short port = 0;
    std::atomic<std::size_t> connections{0};
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
    for (;;) {
        auto [error, socket] = co_await acceptor.async_accept(use_nothrow_awaitable);
        if (error)
            continue; // e.g. the client reset the connection before we accepted it
        ++connections;
        asio::co_spawn(io, serve(std::move(socket)), report_failure);
    }
}

asio::awaitable<void> test_server::impl::serve(tcp::socket socket)
{
    tls_stream stream(std::move(socket), tls);
    if (const auto [error] = co_await stream.async_handshake(ssl::stream_base::server, use_nothrow_awaitable); error) {
        co_return; // e.g. a client that does not trust our CA
    }

    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        if (const auto [error, size] = co_await http::async_read(stream, buffer, parser, use_nothrow_awaitable);
            error) {
            if (const auto status = status_for_read_error(error)) {
                auto response = to_http(json_error(*status, "malformed_request", error.message()), 11, false);
                co_await http::async_write(stream, response, use_nothrow_awaitable);
            }
            break;
        }

        const request_type &request = parser.get();
        const recorded_request record = remember(request);
        const auto answer = co_await respond(stream, request, record);
        if (!answer) {
            beast::get_lowest_layer(stream).close(); // no answer and no TLS goodbye
            co_return;
        }
        auto response = to_http(*answer, request.version(), request.keep_alive());
        const auto [error, size] = co_await http::async_write(stream, response, use_nothrow_awaitable);
        if (error || response.need_eof())
            break;
    }

    // Say goodbye properly, but don't let a client that never answers our close_notify keep us.
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(use_nothrow_awaitable);
}

asio::awaitable<std::optional<canned_response>>
test_server::impl::respond(tls_stream &stream, const request_type &request, const recorded_request &record) const
{
    if (options.responder) {
        if (auto canned = options.responder(record))
            co_return canned;
    }
    const auto fault = fault_of(request.target());
    if (!fault)
        co_return json_error(404, "not_found", "No route for " + std::string(request.target()));
    if (*fault == "hang") {
        co_await hold_open(stream);
        co_return std::nullopt;
    }
    if (*fault == "close")
        co_return std::nullopt;
    if (const auto delay = number_after(*fault, "slow-")) {
        asio::steady_timer timer(stream.get_executor(), std::chrono::milliseconds(*delay));
        co_await timer.async_wait(use_nothrow_awaitable);
    } else if (auto canned = canned_fault(*fault)) {
        co_return canned;
    } else if (!fault->empty() && *fault != "ok") {
        co_return json_error(404, "unknown_fault", "Unknown fault '" + std::string(*fault) + "'");
    }
    co_return answer_api(request);
}

canned_response test_server::impl::answer_api(const request_type &request) const
{
    if (request.method() != http::verb::post) {
        canned_response answer = json_error(405, "method_not_allowed", "Use POST for /access-token");
        answer.headers.emplace_back("Allow", "POST");
        return answer;
    }

    // The messages never repeat the key that was sent: clients may log them.
    const std::string_view authorization = request[http::field::authorization];
    if (authorization.empty()) {
        return json_error(401, "missing_api_key", "Missing API key: send Authorization: Bearer <key>");
    }
    if (authorization != "Bearer " + options.api_key)
        return json_error(401, "invalid_api_key", "Invalid API key");

    const std::string_view version = request["Cartesia-Version"];
    if (version.empty())
        return json_error(400, "missing_version", "Missing Cartesia-Version header");
    if (std::ranges::find(supported_versions, version) == supported_versions.end()) {
        return json_error(400, "unsupported_version", "Unsupported Cartesia-Version '" + std::string(version) + "'");
    }

    constexpr std::string_view json_type = "application/json";
    if (!beast::iequals(request[http::field::content_type].substr(0, json_type.size()), json_type)) {
        return json_error(400, "unsupported_content_type", "Content-Type must be application/json");
    }

    const auto parsed = parse_token_request(request.body());
    if (const auto *complaint = std::get_if<std::string>(&parsed)) {
        return json_error(400, "invalid_request", *complaint);
    }
    const auto &token = std::get<token_request>(parsed);
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const json::object claims{
        {"grants", token.grants},           {"jti", random_uuid()},          {"iat", now},
        {"iss", "https://api.cartesia.ai"}, {"exp", now + token.expires_in},
    };
    return {200, "application/json", json::serialize(json::object{{"token", sign_token(claims, jwt_secret)}}), {}};
}

recorded_request test_server::impl::remember(const request_type &request)
{
    recorded_request record{
        .method = std::string(request.method_string()),
        .target = std::string(request.target()),
        .version = std::to_string(request.version() / 10) + '.' + std::to_string(request.version() % 10),
        .headers = {},
        .body = request.body(),
    };
    for (const auto &field : request) {
        std::string name(field.name_string());
        std::ranges::transform(name, name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
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

const std::string &test_server::api_key() const noexcept
{
    return impl_->options.api_key;
}

const std::string &test_server::ca_cert_pem() const noexcept
{
    return impl_->credentials.ca_cert_pem;
}

const std::string &test_server::ca_file() const noexcept
{
    return impl_->ca_file.path();
}

std::size_t test_server::connections_accepted() const noexcept
{
    return impl_->connections;
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

} // namespace cartesia::test
