// A real HTTP proxy for tests: Debian's squid (scripts/setup installs it), started in
// the foreground on an ephemeral loopback port with a configuration written into a
// fresh temporary directory, and stopped by its PID. It allows CONNECT from
// localhost only, to any port, and caches nothing.
#ifndef CARTESIA_TEST_SUPPORT_SQUID_HPP
#define CARTESIA_TEST_SUPPORT_SQUID_HPP

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace cartesia::test {

struct squid_options {
    // Non-empty: CONNECT needs Basic credentials, this user with `password`, checked
    // by squid's basic_ncsa_auth against an htpasswd file written by the test.
    std::string user;
    std::string password;
    // Lines of squid's hosts file beyond "127.0.0.1 localhost", e.g.
    // "127.0.0.1 wrong.example": the names squid resolves for CONNECT.
    std::vector<std::string> extra_hosts;
};

class squid_proxy {
public:
    // Returns once squid accepts connections (it said so on stderr); throws
    // std::runtime_error with squid's last words when it does not start.
    explicit squid_proxy(const squid_options& options = {});
    ~squid_proxy(); // SIGTERM, then SIGKILL when it lingers; removes the directory
    squid_proxy(const squid_proxy&) = delete;
    squid_proxy& operator=(const squid_proxy&) = delete;

    unsigned short port() const noexcept { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); } // as messages name it
    std::string url() const { return "http://" + address(); }

    // The access log, a line per finished transaction (but the readiness probe's). squid writes a CONNECT's line
    // when the tunnel closes, not when it opens.
    std::vector<std::string> access_log_lines() const;
    std::size_t connects_logged() const;
    // Blocks until the access log holds at least n CONNECT lines or `timeout` has
    // passed (watching the file, not polling); returns how many it holds.
    std::size_t wait_for_connects_logged(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    enum class start_result { ready, port_taken };
    start_result start(unsigned short port);
    void stop() noexcept;

    std::string directory_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
    int stderr_fd_ = -1;
    std::thread stderr_drain_; // reads squid's stderr after start-up, so that it never blocks on it
};

} // namespace cartesia::test

#endif
