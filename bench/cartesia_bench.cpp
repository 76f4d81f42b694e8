// cartesia-bench: token throughput and client cost of cartesia-asio.
//
// C operations are kept in flight on one thread, each starting the next as it
// completes, for the duration (or until --tokens tokens). Only the measured window
// counts: tokens, errors, latency (in a constant-memory histogram), the process's
// CPU time, heap allocations and connections opened. --progress S prints a line to
// stderr every S seconds (and one at the end of the window), for bench/soak.
// Two more modes time one token at a time, as a user feels it, for bench/distance:
// first-token (a new client, --wait-ms, then its first token) and after-idle (one
// client, a token, --wait-ms of idleness, then the timed token), --repeat times each.
// Without --target it starts the local test server as a child process.
#include "counting_malloc.hpp"
#include "latency_histogram.hpp"

#include <cartesia/cartesia.hpp>
#include <cartesia/detail/client_access.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <csignal>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

struct options {
    std::string target;
    std::string ca_file;
    std::string mode = "pooled";
    std::size_t concurrency = 1;
    std::size_t connections = 0; // 0: as many as the concurrency (at most 1024)
    double duration_s = 5;
    double warmup_s = 1;
    std::uint64_t tokens = 0; // 0: no limit but the duration
    double progress_s = 0;    // 0: no progress lines
    bool json = false;
    std::size_t min_connections = 0; // client_config::min_connections (pooled modes)
    std::uint64_t wait_ms = 0;       // first-token, after-idle: the wait before the timed token
    std::uint64_t repeat = 20;       // first-token, after-idle: the timed tokens
    bool exact = false;              // quantiles from every sample, not the histogram's buckets
    std::string events = "off";      // client_config::on_event: off, count, or describe (a log line made per event)
};

// first-token and after-idle: one timed token at a time (class one_at_a_time).
bool one_at_a_time_mode(const std::string& mode)
{
    return mode == "first-token" || mode == "after-idle";
}

[[noreturn]] void usage_error(const std::string& message)
{
    std::cerr << "cartesia-bench: " << message << "\n"
              << "usage: cartesia-bench [--target URL --ca-file PATH] --mode pooled|oneshot --concurrency C\n"
                 "                      [--connections N] --duration S [--warmup S] [--tokens N]\n"
                 "                      [--progress S] [--min-connections N] [--exact-quantiles]\n"
                 "                      [--events off|count|describe] [--json]\n"
                 "       cartesia-bench [--target URL --ca-file PATH] --mode first-token|after-idle\n"
                 "                      --wait-ms W [--repeat R] [--min-connections N] [--exact-quantiles] [--json]\n";
    std::exit(2);
}

template <class T> T parse_number(std::string_view option, std::string_view text)
{
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        usage_error(std::string(option) + " expects a number");
    return value;
}

options parse(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc)
                usage_error(std::string(arg) + " expects a value");
            return argv[++i];
        };
        if (arg == "--target")
            o.target = value();
        else if (arg == "--ca-file")
            o.ca_file = value();
        else if (arg == "--mode")
            o.mode = value();
        else if (arg == "--concurrency")
            o.concurrency = parse_number<std::size_t>(arg, value());
        else if (arg == "--connections")
            o.connections = parse_number<std::size_t>(arg, value());
        else if (arg == "--duration")
            o.duration_s = parse_number<double>(arg, value());
        else if (arg == "--warmup")
            o.warmup_s = parse_number<double>(arg, value());
        else if (arg == "--tokens")
            o.tokens = parse_number<std::uint64_t>(arg, value());
        else if (arg == "--progress")
            o.progress_s = parse_number<double>(arg, value());
        else if (arg == "--min-connections")
            o.min_connections = parse_number<std::size_t>(arg, value());
        else if (arg == "--wait-ms")
            o.wait_ms = parse_number<std::uint64_t>(arg, value());
        else if (arg == "--repeat")
            o.repeat = parse_number<std::uint64_t>(arg, value());
        else if (arg == "--exact-quantiles")
            o.exact = true;
        else if (arg == "--events")
            o.events = value();
        else if (arg == "--json")
            o.json = true;
        else
            usage_error("unknown option " + std::string(arg));
    }
    if (o.mode != "pooled" && o.mode != "oneshot" && !one_at_a_time_mode(o.mode))
        usage_error("--mode is pooled, oneshot, first-token or after-idle");
    if (o.repeat < 1)
        usage_error("--repeat is at least 1");
    if (o.events != "off" && o.events != "count" && o.events != "describe")
        usage_error("--events is off, count or describe");
    if (one_at_a_time_mode(o.mode) && o.concurrency != 1)
        usage_error("--mode " + o.mode + " times one token at a time: --concurrency 1");
    if (o.concurrency < 1 || o.concurrency > 100000)
        usage_error("--concurrency is 1 to 100000");
    if (o.duration_s <= 0 || o.warmup_s < 0 || o.progress_s < 0)
        usage_error("--duration must be positive, --warmup and --progress not negative");
    if (o.target.empty() != o.ca_file.empty())
        usage_error("--target and --ca-file go together");
    if (o.connections == 0)
        o.connections = std::min<std::size_t>(o.concurrency, 1024);
    if (o.min_connections > o.connections)
        usage_error("--min-connections is at most --connections");
    return o;
}

// The local test server as a child process; stopped by the destructor.
class child_server {
public:
    child_server()
    {
        int out[2];
        if (::pipe(out) != 0)
            throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            ::close(out[0]);
            ::close(out[1]);
            ::execl(CARTESIA_TEST_SERVER_EXE, CARTESIA_TEST_SERVER_EXE, "--port", "0", nullptr);
            std::_Exit(127);
        }
        ::close(out[1]);
        FILE* lines = ::fdopen(out[0], "r");
        char line[4096];
        while (std::fgets(line, sizeof line, lines)) {
            std::string_view text(line);
            while (!text.empty() && text.back() == '\n')
                text.remove_suffix(1);
            if (text.starts_with("base_url="))
                base_url = text.substr(9);
            else if (text.starts_with("ca_file="))
                ca_file = text.substr(8);
            else if (text == "ready")
                break;
        }
        std::fclose(lines);
        if (base_url.empty() || ca_file.empty())
            throw std::runtime_error("the test server did not start");
    }
    ~child_server()
    {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    child_server(const child_server&) = delete;
    child_server& operator=(const child_server&) = delete;

    std::string base_url, ca_file;

private:
    pid_t pid_ = -1;
};

struct snapshot {
    clock_type::time_point when;
    double cpu_s = 0;
    std::uint64_t allocations = 0;
    std::size_t connections = 0;
};

double cpu_seconds()
{
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kb()
{
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

// The window's completions: what the report is made of. With `exact` (--exact-quantiles)
// it also keeps every latency, 8 bytes a token, and its quantiles are the samples' own: the
// histogram's are within 0.39%, which at 300 ms is a millisecond, the size of a difference
// bench/distance looks for.
struct tally {
    explicit tally(bool keep_samples) : exact(keep_samples) {}

    cartesia_bench::latency_histogram latencies;
    std::uint64_t tokens = 0, errors = 0;
    std::string first_error;
    bool exact;
    std::vector<clock_type::duration::rep> samples;

    // In sorted order, the value of rank floor(q * count), as the histogram defines it.
    double quantile_ms(double q) const
    {
        if (!exact || samples.empty())
            return latencies.quantile_ns(q) / 1e6;
        std::vector<clock_type::duration::rep> sorted = samples;
        const auto rank = std::min(sorted.size() - 1, static_cast<std::size_t>(q * static_cast<double>(sorted.size())));
        std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank), sorted.end());
        return std::chrono::duration<double, std::milli>(clock_type::duration(sorted[rank])).count();
    }

    void record(clock_type::time_point started, boost::system::error_code ec)
    {
        if (ec) {
            ++errors;
            if (first_error.empty())
                first_error = ec.message();
        } else {
            ++tokens;
            const auto latency = clock_type::now() - started;
            latencies.record(latency);
            if (exact)
                samples.push_back(latency.count());
        }
    }
};

// The figures between two snapshots, as JSON (one line) or as text.
void print_report(std::ostream& out, const options& o, bool pooled, const snapshot& start, const snapshot& end,
                  const tally& t)
{
    auto percentile = [&t](double p) { return t.quantile_ms(p); };
    const double max_ms = t.latencies.max_ns() / 1e6;
    const double seconds = std::chrono::duration<double>(end.when - start.when).count();
    const double cpu = end.cpu_s - start.cpu_s;
    const double per_token = t.tokens ? 1.0 / static_cast<double>(t.tokens) : 0.0;
    const double allocations = static_cast<double>(end.allocations - start.allocations) * per_token;
    const std::size_t connections = end.connections - start.connections;
    const bool one_at_a_time = one_at_a_time_mode(o.mode);
    if (o.json) {
        out << R"({"mode":")" << o.mode << R"(","concurrency":)" << o.concurrency
            << ",\"connections\":" << (pooled ? o.connections : o.concurrency)
            << ",\"min_connections\":" << o.min_connections << ",\"exact_quantiles\":" << (o.exact ? "true" : "false");
        if (one_at_a_time)
            out << ",\"wait_ms\":" << o.wait_ms << ",\"repeat\":" << o.repeat;
        out << ",\"tokens\":" << t.tokens << ",\"errors\":" << t.errors << ",\"seconds\":" << seconds
            << ",\"tokens_per_s\":" << static_cast<double>(t.tokens) / seconds << ",\"cpu_s\":" << cpu
            << ",\"cpu_us_per_token\":" << cpu * 1e6 * per_token << R"(,"latency_ms":{"p50":)" << percentile(0.50)
            << ",\"p90\":" << percentile(0.90) << ",\"p99\":" << percentile(0.99) << ",\"max\":" << max_ms
            << "},\"allocations_per_token\":";
        if (cartesia_bench::allocations_counted)
            out << allocations;
        else
            out << "null";
        out << ",\"connections_opened\":" << connections << ",\"peak_rss_kb\":" << peak_rss_kb() << "}\n";
        return;
    }
    std::string how = pooled ? "up to " + std::to_string(o.connections) + " connections, at least " +
                                   std::to_string(o.min_connections)
                             : "a new connection per token";
    if (one_at_a_time)
        how += ", " + std::to_string(o.repeat) + " tokens each after " + std::to_string(o.wait_ms) + " ms";
    char line[512];
    std::snprintf(line, sizeof line,
                  "mode %s, concurrency %zu, %s\n"
                  "  tokens            %llu in %.2f s (%.0f tokens/s), errors %llu\n"
                  "  latency ms        p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n"
                  "  client CPU        %.3f s, %.1f us per token, %.3f s per 1000 tokens\n"
                  "  allocations       %.1f per token\n"
                  "  connections       %zu opened\n"
                  "  peak RSS          %ld KiB\n",
                  o.mode.c_str(), o.concurrency, how.c_str(), static_cast<unsigned long long>(t.tokens), seconds,
                  static_cast<double>(t.tokens) / seconds, static_cast<unsigned long long>(t.errors), percentile(0.50),
                  percentile(0.90), percentile(0.99), max_ms, cpu, cpu * 1e6 * per_token, cpu * 1000 * per_token,
                  allocations, connections, peak_rss_kb());
    out << line;
    if (!t.first_error.empty())
        out << "  first error       " << t.first_error << '\n';
}

class bench {
public:
    bench(const options& o, cartesia::client_config config, asio::ssl::context& tls)
        : options_(o), config_(std::move(config)), tls_(tls), window_timer_(io_), progress_timer_(io_)
    {
        if (o.mode == "pooled") {
            config_.max_connections = o.connections;
            config_.min_connections = o.min_connections;
            pooled_.emplace(io_.get_executor(), tls_, config_);
        }
    }

    void run()
    {
        began_ = clock_type::now();
        for (std::size_t i = 0; i < options_.concurrency; ++i)
            issue();
        window_timer_.expires_after(seconds(options_.warmup_s));
        window_timer_.async_wait([this](boost::system::error_code ec) {
            if (ec)
                return;
            start_ = take_snapshot();
            measuring_ = true;
            window_timer_.expires_after(seconds(options_.duration_s));
            window_timer_.async_wait([this](boost::system::error_code cancelled) {
                if (!cancelled && !stopping_)
                    end_window();
            });
        });
        if (options_.progress_s > 0)
            schedule_progress();
        io_.run();
    }

    void report(std::ostream& out) const { print_report(out, options_, pooled_.has_value(), start_, end_, tally_); }

private:
    static clock_type::duration seconds(double s)
    {
        return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
    }

    void end_window()
    {
        end_ = take_snapshot();
        measuring_ = false;
        stopping_ = true;
        window_timer_.cancel();
        progress_timer_.cancel();
        if (options_.progress_s > 0)
            print_progress();
    }

    void schedule_progress()
    {
        progress_timer_.expires_after(seconds(options_.progress_s));
        progress_timer_.async_wait([this](boost::system::error_code ec) {
            if (ec || stopping_)
                return;
            print_progress();
            schedule_progress();
        });
    }

    // Seconds since the start (warm-up included), then the window's figures so far.
    void print_progress() const
    {
        std::fprintf(stderr,
                     "progress %.1f s: %llu tokens, %llu errors, latency ms p50 %.3f p90 %.3f p99 %.3f "
                     "p99.9 %.3f max %.3f\n",
                     std::chrono::duration<double>(clock_type::now() - began_).count(),
                     static_cast<unsigned long long>(tally_.tokens), static_cast<unsigned long long>(tally_.errors),
                     tally_.latencies.quantile_ns(0.50) / 1e6, tally_.latencies.quantile_ns(0.90) / 1e6,
                     tally_.latencies.quantile_ns(0.99) / 1e6, tally_.latencies.quantile_ns(0.999) / 1e6,
                     tally_.latencies.max_ns() / 1e6);
    }

    void issue()
    {
        const auto started = clock_type::now();
        auto done = [this, started](boost::system::error_code ec, const cartesia::token_response&) {
            complete(started, ec);
        };
        if (pooled_)
            pooled_->async_generate_token(request_, done);
        else
            cartesia::async_generate_token(io_, tls_, config_, request_, done);
        ++in_flight_;
    }

    void complete(clock_type::time_point started, boost::system::error_code ec)
    {
        --in_flight_;
        ++finished_;
        if (measuring_) {
            tally_.record(started, ec);
            if (!ec && tally_.tokens == options_.tokens)
                end_window();
        }
        if (!stopping_)
            issue();
        else if (in_flight_ == 0 && pooled_)
            pooled_->close(); // its idle connections would keep run() going
    }

    snapshot take_snapshot() const
    {
        return {clock_type::now(), cpu_seconds(), cartesia_bench::allocation_count(),
                pooled_ ? cartesia::detail::client_access::connections_opened(*pooled_) : finished_};
    }

    const options& options_;
    cartesia::client_config config_;
    asio::ssl::context& tls_;
    asio::io_context io_{1};
    std::optional<cartesia::client> pooled_;
    cartesia::token_request request_{cartesia::token_grant{.tts = true}, std::chrono::seconds(60)};
    asio::steady_timer window_timer_, progress_timer_;
    clock_type::time_point began_;
    snapshot start_, end_;
    tally tally_{options_.exact};
    std::size_t in_flight_ = 0, finished_ = 0;
    bool measuring_ = false, stopping_ = false;
};

// first-token and after-idle: one token at a time, timed from its call to its handler, as a
// user feels it, each after a wait, on one thread. first-token: `repeat` times, a new client
// (and a new TLS context, as a new process would have: no session to resume), --wait-ms, then
// its first token. after-idle: one client, an untimed token, then `repeat` times --wait-ms of
// idleness and a timed token. The window spans the whole run, waits included.
class one_at_a_time {
public:
    one_at_a_time(const options& o, cartesia::client_config config, std::string ca_file)
        : options_(o), config_(std::move(config)), ca_file_(std::move(ca_file))
    {
        config_.max_connections = o.connections;
        config_.min_connections = o.min_connections;
    }

    void run()
    {
        start_ = take_snapshot();
        if (options_.mode == "first-token") {
            for (std::uint64_t i = 0; i < options_.repeat; ++i) {
                auto tls = cartesia::make_tls_context(ca_file_);
                cartesia::client c(io_.get_executor(), tls, config_);
                wait();
                mint(c, true);
                finish(c);
            }
        } else {
            auto tls = cartesia::make_tls_context(ca_file_);
            cartesia::client c(io_.get_executor(), tls, config_);
            mint(c, false);
            for (std::uint64_t i = 0; i < options_.repeat; ++i) {
                wait();
                mint(c, true);
            }
            finish(c);
        }
        end_ = take_snapshot();
    }

    void report(std::ostream& out) const { print_report(out, options_, true, start_, end_, tally_); }

private:
    // Runs the io_context until `done`: the client's background work runs meanwhile.
    void run_until(const bool& done)
    {
        io_.restart();
        while (!done && io_.run_one() != 0) {
        }
    }

    void wait()
    {
        asio::steady_timer timer(io_, std::chrono::milliseconds(options_.wait_ms));
        bool done = false;
        timer.async_wait([&done](boost::system::error_code) { done = true; });
        run_until(done);
    }

    void mint(cartesia::client& c, bool timed)
    {
        bool done = false;
        const auto started = clock_type::now();
        c.async_generate_token(request_,
                               [&, timed, started](boost::system::error_code ec, const cartesia::token_response&) {
                                   if (timed)
                                       tally_.record(started, ec);
                                   done = true;
                               });
        run_until(done);
    }

    // Counts the client's connections, closes it and lets its handlers finish.
    void finish(cartesia::client& c)
    {
        connections_ += cartesia::detail::client_access::connections_opened(c);
        c.close();
        io_.restart();
        io_.run();
    }

    snapshot take_snapshot() const
    {
        return {clock_type::now(), cpu_seconds(), cartesia_bench::allocation_count(), connections_};
    }

    const options& options_;
    cartesia::client_config config_;
    std::string ca_file_;
    asio::io_context io_{1};
    cartesia::token_request request_{cartesia::token_grant{.tts = true}, std::chrono::seconds(60)};
    snapshot start_, end_;
    tally tally_{options_.exact};
    std::size_t connections_ = 0;
};

} // namespace

// Thousands of operations in flight may mean thousands of sockets (one-shot mode).
void raise_file_limit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

int main(int argc, char** argv)
{
    const options o = parse(argc, argv);
    raise_file_limit();
    try {
        std::optional<child_server> server;
        cartesia::client_config config;
        if (o.target.empty()) {
            server.emplace();
            config.base_url = server->base_url;
        } else {
            config.base_url = o.target;
        }
        const char* key = std::getenv("CARTESIA_API_KEY");
        config.api_key = key && *key ? key : "sk_car_test_0123456789abcdef";
        config.max_retries = 0; // measure the client, not the retry policy
        config.timeout = std::chrono::seconds(30);
        // What observing costs: a callback that only counts, or one that also makes
        // each event's log line (as a logger would, less its I/O).
        static std::atomic<std::uint64_t> events_seen{0}, event_bytes{0};
        if (o.events == "count")
            config.on_event = [](const cartesia::event&) { events_seen.fetch_add(1, std::memory_order_relaxed); };
        else if (o.events == "describe")
            config.on_event = [](const cartesia::event& e) {
                events_seen.fetch_add(1, std::memory_order_relaxed);
                event_bytes.fetch_add(cartesia::describe(e).size(), std::memory_order_relaxed);
            };
        const std::string& ca_file = server ? server->ca_file : o.ca_file;
        if (one_at_a_time_mode(o.mode)) {
            one_at_a_time b(o, config, ca_file);
            b.run();
            b.report(std::cout);
            return 0;
        }
        auto tls = cartesia::make_tls_context(ca_file);
        bench b(o, config, tls);
        b.run();
        b.report(std::cout);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "cartesia-bench: " << e.what() << '\n';
        return 1;
    }
}
