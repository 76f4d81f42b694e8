#include "squid.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace cartesia::test {
namespace {

constexpr const char* squid_executable = "/usr/sbin/squid";
constexpr std::string_view ready_line = "Accepting HTTP Socket connections";
constexpr std::string_view port_taken_line = "Cannot bind socket";
constexpr auto start_deadline = std::chrono::seconds(20);
constexpr auto stop_grace = std::chrono::seconds(5);
constexpr int start_tries = 5;

using steady = std::chrono::steady_clock;

int milliseconds_until(steady::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000));
}

// squid refuses port 0: the kernel picks a free port for a socket bound to 0,
// which is closed again for squid to take (start() tries another if it lost it).
unsigned short pick_free_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error("squid_proxy: socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    ::close(fd);
    if (!ok)
        throw std::runtime_error("squid_proxy: cannot pick a free port");
    return ntohs(address.sin_port);
}

// An htpasswd line that basic_ncsa_auth accepts: MD5-crypt ("$1$salt$hash").
std::string htpasswd_line(const std::string& user, const std::string& password)
{
    static constexpr std::string_view salt_alphabet =
        "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::random_device random;
    std::string setting = "$1$";
    for (int i = 0; i < 8; ++i)
        setting += salt_alphabet[random() % salt_alphabet.size()];
    setting += '$';
    crypt_data work{};
    const char* hashed = ::crypt_r(password.c_str(), setting.c_str(), &work);
    if (hashed == nullptr || hashed[0] != '$')
        throw std::runtime_error("squid_proxy: crypt() cannot make an MD5-crypt hash");
    return user + ":" + hashed + "\n";
}

void write_file(const std::string& path, const std::string& content)
{
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out.flush())
        throw std::runtime_error("squid_proxy: cannot write " + path);
    std::filesystem::permissions(path, std::filesystem::perms(0644));
}

std::string configuration(const std::string& directory, unsigned short port, bool with_auth)
{
    std::string text = "http_port 127.0.0.1:" + std::to_string(port) + "\n" + //
                       "pid_filename " + directory + "/squid.pid\n" +         //
                       "access_log stdio:" + directory + "/access.log\n" +    //
                       "cache_log " + directory + "/cache.log\n" +            //
                       "hosts_file " + directory + "/hosts\n" +               //
                       "cache deny all\n"                                     //
                       "pinger_enable off\n"                                  //
                       "netdb_filename none\n"                                //
                       "shutdown_lifetime 0 seconds\n"                        //
                       "acl CONNECT method CONNECT\n";
    if (with_auth)
        text += "auth_param basic program /usr/lib/squid/basic_ncsa_auth " + directory + "/htpasswd\n" +
                "acl authed proxy_auth REQUIRED\n"
                "http_access allow CONNECT localhost authed\n";
    else
        text += "http_access allow CONNECT localhost\n";
    text += "http_access deny all\n";
    return text;
}

// Whether a TCP connection to 127.0.0.1:port is accepted (then closed at once).
bool accepts_connections(unsigned short port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return connected;
}

// Reads what is there into `said`; false at the end of the stream (squid exited).
bool drain(int fd, std::string& said)
{
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0)
        said.append(chunk, static_cast<std::size_t>(n));
    return n > 0 || (n < 0 && errno == EINTR);
}

// The readiness probe's connection, which sent no request, ends in a line of its own.
bool is_probe_line(const std::string& line)
{
    return line.find("error:transaction-end-before-headers") != std::string::npos;
}

bool is_connect_line(const std::string& line)
{
    return line.find(" CONNECT ") != std::string::npos;
}

} // namespace

squid_proxy::squid_proxy(const squid_options& options)
{
    if (::access(squid_executable, X_OK) != 0)
        throw std::runtime_error(std::string("squid_proxy: ") + squid_executable +
                                 " is missing: run scripts/setup test (it installs squid)");
    std::string pattern = (std::filesystem::temp_directory_path() / "cartesia-squid-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("squid_proxy: mkdtemp failed");
    directory_ = pattern;
    try {
        // squid started as root drops to the user proxy, which must write its logs here.
        std::filesystem::permissions(directory_, std::filesystem::perms(0777));
        std::string hosts = "127.0.0.1 localhost\n";
        for (const auto& line : options.extra_hosts)
            hosts += line + "\n";
        write_file(directory_ + "/hosts", hosts);
        const bool with_auth = !options.user.empty();
        if (with_auth)
            write_file(directory_ + "/htpasswd", htpasswd_line(options.user, options.password));
        for (int attempt = 1;; ++attempt) {
            const unsigned short port = pick_free_port();
            write_file(directory_ + "/squid.conf", configuration(directory_, port, with_auth));
            if (start(port) == start_result::ready)
                break;
            if (attempt == start_tries)
                throw std::runtime_error("squid_proxy: no free port after " + std::to_string(start_tries) + " tries");
        }
    } catch (...) {
        std::error_code ignored;
        std::filesystem::remove_all(directory_, ignored);
        throw;
    }
}

squid_proxy::start_result squid_proxy::start(unsigned short port)
{
    std::array<int, 2> pipe_fds{};
    if (::pipe2(pipe_fds.data(), O_CLOEXEC) != 0)
        throw std::runtime_error("squid_proxy: pipe2 failed");
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
    // posix_spawn wants mutable strings.
    std::array<std::string, 6> arguments{squid_executable, "-N", "-d", "1", "-f", directory_ + "/squid.conf"};
    std::array<char*, 7> argv{};
    std::transform(arguments.begin(), arguments.end(), argv.begin(), [](std::string& s) { return s.data(); });
    const int spawned = ::posix_spawn(&pid_, squid_executable, &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    if (spawned != 0) {
        ::close(pipe_fds[0]);
        pid_ = -1;
        throw std::runtime_error(std::string("squid_proxy: cannot start squid: ") + std::strerror(spawned));
    }

    // Ready when squid says it accepts connections: no sleep, no probing.
    std::string said;
    const auto deadline = steady::now() + start_deadline;
    bool ready = false;
    while (!ready) {
        pollfd readable{pipe_fds[0], POLLIN, 0};
        const int polled = ::poll(&readable, 1, milliseconds_until(deadline));
        if (polled < 0 && errno == EINTR)
            continue;
        if (polled <= 0)
            break; // the deadline
        char chunk[4096];
        const ssize_t n = ::read(pipe_fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; // squid exited
        said.append(chunk, static_cast<std::size_t>(n));
        ready = said.find(ready_line) != std::string::npos;
    }
    // squid prints that line as it schedules its acceptor, which calls listen() an
    // event-loop turn later: a connection can still be refused. Until one is
    // accepted, each refusal waits a few milliseconds on squid's stderr (which also
    // notices squid exiting), not on a clock.
    while (ready && !accepts_connections(port)) {
        pollfd readable{pipe_fds[0], POLLIN, 0};
        if (steady::now() >= deadline || (::poll(&readable, 1, 5) > 0 && !drain(pipe_fds[0], said)))
            ready = false;
    }
    if (ready) {
        port_ = port;
        stderr_fd_ = pipe_fds[0];
        stderr_drain_ = std::thread([fd = stderr_fd_] {
            char chunk[4096];
            while (true) {
                const ssize_t n = ::read(fd, chunk, sizeof chunk);
                if (n == 0 || (n < 0 && errno != EINTR))
                    return;
            }
        });
        return start_result::ready;
    }
    ::close(pipe_fds[0]);
    stop();
    if (said.find(port_taken_line) != std::string::npos)
        return start_result::port_taken;
    const std::size_t tail = said.size() > 2000 ? said.size() - 2000 : 0;
    throw std::runtime_error("squid_proxy: squid did not start within " + std::to_string(start_deadline.count()) +
                             " s; it said:\n" + said.substr(tail));
}

void squid_proxy::stop() noexcept
{
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGTERM);
    // Waits for the exit on a pidfd, bounded; without one (an old kernel), kills at once.
    bool exited = false;
    if (const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)); pidfd >= 0) {
        pollfd done{pidfd, POLLIN, 0};
        const auto deadline = steady::now() + stop_grace;
        int polled = 0;
        while ((polled = ::poll(&done, 1, milliseconds_until(deadline))) < 0 && errno == EINTR) {
        }
        exited = polled > 0;
        ::close(pidfd);
    }
    if (!exited)
        ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

squid_proxy::~squid_proxy()
{
    stop();
    // Its helpers (basic_ncsa_auth) share the pipe and leave once squid is gone.
    if (stderr_drain_.joinable())
        stderr_drain_.join();
    if (stderr_fd_ >= 0)
        ::close(stderr_fd_);
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
}

std::vector<std::string> squid_proxy::access_log_lines() const
{
    std::vector<std::string> lines;
    std::ifstream in(directory_ + "/access.log");
    for (std::string line; std::getline(in, line);)
        if (!is_probe_line(line))
            lines.push_back(line);
    return lines;
}

std::size_t squid_proxy::connects_logged() const
{
    const auto lines = access_log_lines();
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), is_connect_line));
}

std::size_t squid_proxy::wait_for_connects_logged(std::size_t n, std::chrono::milliseconds timeout) const
{
    const int watcher = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watcher < 0)
        throw std::runtime_error("squid_proxy: inotify_init1 failed");
    // The directory, not the file: the log may not exist yet. Watching starts before
    // the first count, so that no write falls between the two.
    ::inotify_add_watch(watcher, directory_.c_str(), IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE);
    const auto deadline = steady::now() + timeout;
    std::size_t seen = connects_logged();
    while (seen < n) {
        pollfd changed{watcher, POLLIN, 0};
        const int polled = ::poll(&changed, 1, milliseconds_until(deadline));
        if (polled == 0)
            break;
        if (polled > 0) {
            char events[4096];
            while (::read(watcher, events, sizeof events) > 0) {
            }
        }
        seen = connects_logged();
    }
    ::close(watcher);
    return seen;
}

} // namespace cartesia::test
