// A local Cartesia-compatible HTTPS server for tests, the demo and the benchmark.
//
// It listens on 127.0.0.1 (an ephemeral port by default), runs on a thread of its own,
// makes a fresh CA and a leaf certificate at start-up, and answers POST <prefix>/access-token
// like the real API: it checks the bearer key, the Cartesia-Version header, the content type
// and the JSON body, and answers {"token": "<JWT>"} or the 2026-03-01 error body.
//
// A test chooses a behaviour per request with a path prefix, /fault/<name>/access-token
// (see fault_names(), and faults.cpp), or in-process with server_options::responder, whose
// canned_response can also break the framing, drip the bytes, or end the connection rudely.
#ifndef CARTESIA_TEST_SUPPORT_TEST_SERVER_HPP
#define CARTESIA_TEST_SUPPORT_TEST_SERVER_HPP

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cartesia::test {

// A private PKI: a self-signed CA and a leaf certificate signed by it, all PEM.
struct pki_options {
    // X509v3 subjectAltName entries of the leaf, in OpenSSL's syntax.
    std::vector<std::string> subject_alt_names{"DNS:localhost", "IP:127.0.0.1"};
    // Validity of the leaf relative to now; a negative not_after makes an expired certificate.
    std::chrono::seconds not_before{-3600};
    std::chrono::seconds not_after{24 * 3600};
};

struct pki {
    std::string ca_cert_pem;
    std::string leaf_cert_pem;
    std::string leaf_key_pem;
};

pki make_pki(const pki_options& options = {});

// One request as the server parsed it. Header names are lower-case.
struct recorded_request {
    std::string method;
    std::string target;
    std::string version; // "1.1"
    std::multimap<std::string, std::string> headers;
    std::string body;
    // Where it came: the connection's number (in the order accepted, from 1), the request's
    // number on it (from 1), and how long the connection had been idle before it (since the
    // handshake, or since the previous answer was written).
    std::size_t connection = 0;
    std::size_t on_connection = 0;
    std::chrono::milliseconds idle_before{0};

    // The first value of a header, or nullopt.
    std::optional<std::string> header(const std::string& lower_case_name) const;
};

// An answer chosen by a test.
//
// The last four fields say how it is delivered; their defaults send the whole response at once
// and keep the connection as any HTTP/1.1 server would. Each has a default member initializer,
// so that `{status, type, body, headers}` stays a complete initializer.
struct canned_response {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    // When set, these bytes are written as they are instead of a response made from the fields above.
    std::optional<std::string> raw = std::nullopt;
    // Only the first truncate_after bytes (of raw or of the formatted response) are written.
    std::size_t truncate_after = std::string::npos;
    // When non-zero, the bytes are written one at a time, this far apart.
    std::chrono::milliseconds byte_interval{0};

    // What the server does with the connection once the bytes are written.
    enum class ending {
        keep_alive, // reads the next request, unless the request asked to close (then as `close`)
        close,      // TLS close_notify, then closes the socket
        drop,       // closes the TCP socket without close_notify: a truncation, to TLS
        reset,      // abortive close (SO_LINGER 0): the client sees a connection reset
    };
    ending then = ending::keep_alive;
};

// The bytes of `answer` as an HTTP/1.x response, as the server would send them (the delivery
// fields are ignored); a test can alter them and send them as `raw`. http_version is 11 or 10.
std::string format_response(const canned_response& answer, unsigned http_version = 11, bool keep_alive = true);

// A behaviour a request selects with the path /fault/<name>/access-token.
struct fault_info {
    std::string name;   // e.g. "status-<code>"
    std::string effect; // what the server does, for --help and documentation
};

// Every fault the server understands; any other name is answered with 404.
const std::vector<fault_info>& fault_names();

struct server_options {
    std::string api_key = "sk_car_test_0123456789abcdef";
    pki_options certificate;
    // 0 picks an ephemeral port.
    unsigned short port = 0;
    // When set and it returns a value, that value is the answer (after the request was recorded).
    std::function<std::optional<canned_response>(const recorded_request&)> responder;
    // A keep-alive connection idle this long is closed (TCP, without close_notify), as
    // nginx's keepalive_timeout does. Unset: kept open until the client leaves.
    std::optional<std::chrono::milliseconds> idle_close_after;
};

class test_server {
public:
    explicit test_server(server_options options = {});
    ~test_server(); // stops the server and joins its thread; closes every connection
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;

    unsigned short port() const noexcept;
    // "https://localhost:<port>"; the certificate is valid for localhost and 127.0.0.1.
    std::string base_url() const;
    const std::string& api_key() const noexcept;
    const std::string& ca_cert_pem() const noexcept;
    // The CA written to a PEM file in a temporary directory removed by the destructor.
    const std::string& ca_file() const noexcept;

    // Counters, safe to read from any thread.
    std::size_t connections_accepted() const noexcept;
    // Handshakes that resumed an earlier TLS session (a ticket or a session id).
    std::size_t resumed_handshakes() const noexcept;
    std::size_t requests_received() const noexcept;
    std::vector<recorded_request> recorded_requests() const;
    // Application bytes written on TLS streams so far, all connections together.
    std::size_t bytes_written() const noexcept;
    // Client connections accepted and not yet closed, by either side. A client that leaves is
    // noticed at once, whatever the server is doing on its connection (a hang, a drip, a stream).
    std::size_t open_connections() const noexcept;
    // Blocks until open_connections() == n or `timeout` has passed; true when the former happened.
    bool wait_for_open_connections(std::size_t n, std::chrono::milliseconds timeout) const;
    // Blocks until connections_accepted() >= n or `timeout` has passed; true when the former happened.
    bool wait_for_connections_accepted(std::size_t n, std::chrono::milliseconds timeout) const;
    // TLS handshakes completed so far: the client's side of each is done by then.
    std::size_t handshakes_completed() const noexcept;
    // Blocks until handshakes_completed() == n or `timeout` has passed; true when the former happened.
    bool wait_for_handshakes(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace cartesia::test

#endif
