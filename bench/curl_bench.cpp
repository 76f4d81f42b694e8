// curl-bench: the same token request as cartesia-bench, sent with libcurl's multi
// interface (keep-alive, full TLS verification), for bench/compare. It checks the
// status and that the body names a token, no more: libcurl parses no JSON.
// --new-connection 1 opens a new connection for each token (CURLOPT_FRESH_CONNECT and
// CURLOPT_FORBID_REUSE), as a one-shot does; libcurl still resumes TLS sessions, unless
// --session-reuse 0 (CURLOPT_SSL_SESSIONID_CACHE off: a full handshake each time).
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>

namespace {

using clock_type = std::chrono::steady_clock;

double cpu_seconds()
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

size_t append(char* data, size_t size, size_t count, void* body)
{
    static_cast<std::string*>(body)->append(data, size * count);
    return size * count;
}

struct transfer {
    CURL* easy = nullptr;
    std::string body;
    clock_type::time_point started;
};

} // namespace

int main(int argc, char** argv)
{
    std::string url, ca_file, key = "sk_car_test_0123456789abcdef";
    long concurrency = 1;
    double duration_s = 5, warmup_s = 1;
    bool new_connection = false, session_reuse = true;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view arg = argv[i];
        if (arg == "--url")
            url = argv[i + 1];
        else if (arg == "--ca-file")
            ca_file = argv[i + 1];
        else if (arg == "--concurrency")
            concurrency = std::atol(argv[i + 1]);
        else if (arg == "--duration")
            duration_s = std::atof(argv[i + 1]);
        else if (arg == "--warmup")
            warmup_s = std::atof(argv[i + 1]);
        else if (arg == "--new-connection")
            new_connection = std::atol(argv[i + 1]) != 0;
        else if (arg == "--session-reuse")
            session_reuse = std::atol(argv[i + 1]) != 0;
    }
    if (const char* env = std::getenv("CARTESIA_API_KEY"); env && *env)
        key = env;
    if (url.empty() || ca_file.empty() || concurrency < 1) {
        std::fprintf(stderr,
                     "usage: curl-bench --url URL --ca-file PATH [--concurrency C] [--duration S] [--warmup S]\n"
                     "                  [--new-connection 0|1] [--session-reuse 0|1]\n");
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, concurrency);
    const std::string authorization = "Authorization: Bearer " + key;
    curl_slist* headers = nullptr;
    for (const char* h : {authorization.c_str(), "Cartesia-Version: 2026-03-01", "Content-Type: application/json",
                          "Accept: application/json", "Expect:"})
        headers = curl_slist_append(headers, h);
    static const char body[] = R"({"grants":{"tts":true},"expires_in":60})";

    std::vector<transfer> transfers(static_cast<size_t>(concurrency));
    auto start = [&](transfer& t) {
        t.body.clear();
        t.started = clock_type::now();
        curl_multi_add_handle(multi, t.easy);
    };
    for (auto& t : transfers) {
        t.easy = curl_easy_init();
        curl_easy_setopt(t.easy, CURLOPT_URL, url.c_str());
        curl_easy_setopt(t.easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(t.easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(t.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(sizeof body - 1));
        curl_easy_setopt(t.easy, CURLOPT_CAINFO, ca_file.c_str());
        curl_easy_setopt(t.easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(t.easy, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(t.easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(t.easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, append);
        curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t.body);
        curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
        if (new_connection) {
            curl_easy_setopt(t.easy, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(t.easy, CURLOPT_FORBID_REUSE, 1L);
        }
        if (!session_reuse)
            curl_easy_setopt(t.easy, CURLOPT_SSL_SESSIONID_CACHE, 0L);
        start(t);
    }

    const auto begin = clock_type::now();
    const auto window_start =
        begin + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(warmup_s));
    const auto window_end =
        window_start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(duration_s));
    bool measuring = false;
    double cpu_start = 0, cpu_end = 0;
    unsigned long long tokens = 0, errors = 0;
    std::vector<double> latencies_us;
    latencies_us.reserve(1 << 20);
    // Transfers in flight; curl's own running count goes stale as we re-add handles.
    long active = concurrency;
    while (active > 0) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int queued = 0;
        while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
            if (message->msg != CURLMSG_DONE)
                continue;
            transfer* t = nullptr;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &t);
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            const bool ok =
                message->data.result == CURLE_OK && status == 200 && t->body.find("\"token\"") != std::string::npos;
            curl_multi_remove_handle(multi, t->easy);
            --active;
            const auto now = clock_type::now();
            if (!measuring && now >= window_start && now < window_end) {
                measuring = true;
                cpu_start = cpu_seconds();
            }
            if (measuring && now >= window_end) {
                measuring = false;
                cpu_end = cpu_seconds();
            }
            if (measuring) {
                if (ok) {
                    ++tokens;
                    latencies_us.push_back(std::chrono::duration<double, std::micro>(now - t->started).count());
                } else {
                    ++errors;
                }
            }
            if (now < window_end) {
                start(*t);
                ++active;
            }
        }
        if (active > 0)
            curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    if (cpu_end == 0)
        cpu_end = cpu_seconds();

    std::sort(latencies_us.begin(), latencies_us.end());
    auto percentile = [&](double p) {
        return latencies_us.empty()
                   ? 0.0
                   : latencies_us[std::min(latencies_us.size() - 1,
                                           static_cast<size_t>(p * static_cast<double>(latencies_us.size())))] /
                         1000.0;
    };
    const double cpu = cpu_end - cpu_start;
    std::printf("{\"client\":\"%s\",\"concurrency\":%ld,\"tokens\":%llu,\"errors\":%llu,\"seconds\":%.3f,"
                "\"tokens_per_s\":%.1f,\"cpu_s\":%.4f,\"cpu_us_per_token\":%.2f,\"latency_ms\":{\"p50\":%.4f,"
                "\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f}}\n",
                !new_connection ? "libcurl"
                : session_reuse ? "libcurl-new-connection"
                                : "libcurl-new-connection-full-handshake",
                concurrency, tokens, errors, duration_s, static_cast<double>(tokens) / duration_s, cpu,
                tokens ? cpu * 1e6 / static_cast<double>(tokens) : 0.0, percentile(0.5), percentile(0.9),
                percentile(0.99), latencies_us.empty() ? 0.0 : latencies_us.back() / 1000.0);

    for (auto& t : transfers)
        curl_easy_cleanup(t.easy);
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
