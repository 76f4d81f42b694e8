// bench_driver_styles: the same request algorithm (src/request_fsm.hpp) driven three
// ways, side by side, to answer issue 11's "async_compose or a coroutine: measure
// both, keep the faster".
//
//   loop        a hand-written completion-handler loop, as request_op::run: the state
//               in a shared_ptr, each step's handler holding one shared_ptr to it;
//   compose     asio::async_compose, the fsm inside the composed operation's state;
//   coroutine   asio::co_spawn of an asio::awaitable that loops over resume() and
//               co_awaits each step with asio::deferred (coroutine-ua: the same with
//               asio::use_awaitable, which costs a coroutine frame per step in 1.81).
//
// No network: a fake connection source whose steps (acquire, exchange, release)
// each complete through asio::post on one strand over an io_context, so that each
// step is one handler hop, as a pooled request's steps are in production. What is
// left is what the styles differ in: the driver's own state, its handlers and the
// hops. Each driver receives the caller's handler type-erased, as an
// asio::any_completion_handler, as the library's compiled driver does.
//
// Measured per request: wall time, the thread's CPU time (which the load of other
// processes moves less) and heap allocations, counted twice: calls of the replaced
// global operator new, and every malloc of the process. The second is the one to read: Asio's recycling allocator
// (posted handlers, coroutine frames) calls aligned_alloc directly whenever its
// per-thread cache of two blocks per purpose is empty, so a counting operator new
// alone would miss exactly the allocations in which the styles differ.
#include "counting_malloc.hpp"
#include "request_fsm.hpp"

#include <cartesia/error.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// --- counting allocations ----------------------------------------------------------
// Every malloc of the process is counted by counting_malloc.cpp; the global operator
// new, replaced below, is counted here too (and again there, through malloc).
namespace {
std::atomic<std::uint64_t> new_calls{0}; // global operator new, every form
} // namespace

#ifndef CARTESIA_BENCH_UNDER_SANITIZER
// The global operator new and delete, replaced: a count, then malloc (counted again
// there) and free. The nothrow and array forms of libstdc++ call these.
void* operator new(std::size_t size)
{
    new_calls.fetch_add(1, std::memory_order_relaxed);
    if (void* block = std::malloc(size == 0 ? 1 : size))
        return block;
    throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t alignment)
{
    new_calls.fetch_add(1, std::memory_order_relaxed);
    const auto align = std::max(static_cast<std::size_t>(alignment), sizeof(void*));
    void* block = nullptr;
    if (posix_memalign(&block, align, size == 0 ? 1 : size) == 0)
        return block;
    throw std::bad_alloc();
}
void operator delete(void* block) noexcept
{
    std::free(block);
}
void operator delete(void* block, std::size_t) noexcept
{
    std::free(block);
}
void operator delete(void* block, std::align_val_t) noexcept
{
    std::free(block);
}
void operator delete(void* block, std::size_t, std::align_val_t) noexcept
{
    std::free(block);
}
#endif

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using cartesia::diagnostics;
using namespace cartesia::detail;

// What every driver completes with. The token is short enough for the string's
// small buffer: the figures count the drivers' allocations, not the token's.
using result_handler = asio::any_completion_handler<void(error_code, std::string)>;
constexpr std::string_view minted_token = "tok_bench_0001";

// --- the fake connection source --------------------------------------------------
// Each step completes through asio::post on the strand: never inline, one hop each.
// With `fail_first_attempt`, every request's first exchange answers 503 with
// `retry-after-ms: 0`, so that the fsm retries at once (a backoff of zero, waited
// on a timer, as in production) and the second attempt succeeds.
class fake_source {
public:
    fake_source(asio::any_io_executor strand, bool fail_first_attempt)
        : strand_(std::move(strand)), fail_first_attempt_(fail_first_attempt)
    {
    }

    const asio::any_io_executor& strand() const noexcept { return strand_; }

    // void(error_code, bool reused): a warm pool's idle connection.
    template <class Token> auto async_acquire(Token&& token)
    {
        return asio::async_initiate<Token, void(error_code, bool)>(
            [this](auto handler) { asio::post(strand_, asio::append(std::move(handler), error_code{}, true)); }, token);
    }

    // void(attempt_outcome, std::string token): what the exchange learnt, and the token.
    template <class Token> auto async_exchange(unsigned attempt, Token&& token)
    {
        return asio::async_initiate<Token, void(attempt_outcome, std::string)>(
            [this, attempt](auto handler) {
                attempt_outcome outcome;
                outcome.response_started = true;
                std::string minted;
                if (fail_first_attempt_ && attempt == 1) {
                    outcome.ec = cartesia::error::server_error; // as a real 503 reports it
                    outcome.status = 503;
                    outcome.retry_after = std::chrono::milliseconds{0};
                } else {
                    outcome.status = 200;
                    minted = minted_token;
                }
                asio::post(strand_, asio::append(std::move(handler), outcome, std::move(minted)));
            },
            token);
    }

    // void(): the connection is back in the pool.
    template <class Token> auto async_release(Token&& token)
    {
        return asio::async_initiate<Token, void()>([this](auto handler) { asio::post(strand_, std::move(handler)); },
                                                   token);
    }

private:
    asio::any_io_executor strand_;
    bool fail_first_attempt_;
};

// The deadline changes that actions carry are ignored by every driver: no step here
// can hang, and watching a deadline costs the same whatever drives the fsm. For the
// same reason no action is ever `none` or `abort_pending` (no deadline, no
// cancellation): a driver that gets one has a bug.
[[noreturn]] void unexpected_action()
{
    throw std::logic_error("an action that no step of this benchmark can cause");
}

// --- 1. the hand-written completion-handler loop -----------------------------------
// As request_op: the state has a stable address (deadlines, cancellation and close()
// could reach it while a step is pending), and each step's handler holds one
// shared_ptr to it. request_op::run also feeds back results that are ready at once;
// this source has none, so each resume() here starts one asynchronous step.
class loop_request : public std::enable_shared_from_this<loop_request> {
public:
    loop_request(fake_source& source, const request_settings& settings, diagnostics& diag, result_handler handler)
        : source_(source), fsm_(settings, diag), handler_(std::move(handler))
    {
    }

    // Called on the strand (the chains run there), as request_op::start's dispatch
    // would then run inline.
    static void start(fake_source& source, const request_settings& settings, diagnostics& diag, result_handler handler)
    {
        std::make_shared<loop_request>(source, settings, diag, std::move(handler))
            ->run(events::start(request_clock::now()));
    }

private:
    void run(const request_event& event)
    {
        const request_action action = fsm_.resume(event);
        switch (action.kind) {
        case request_action_kind::acquire:
            source_.async_acquire([self = shared_from_this()](error_code ec, bool reused) {
                self->run(ec ? events::acquire_failed(ec, request_clock::now()) : events::acquired(reused));
            });
            return;
        case request_action_kind::exchange:
            source_.async_exchange(fsm_.attempt(),
                                   [self = shared_from_this()](attempt_outcome outcome, std::string token) {
                                       self->token_ = std::move(token);
                                       self->run(events::exchanged(outcome));
                                   });
            return;
        case request_action_kind::release:
            source_.async_release([self = shared_from_this()] { self->run(events::released(request_clock::now())); });
            return;
        case request_action_kind::backoff:
            if (!backoff_) // most requests never retry: the timer is made when one does
                backoff_ = std::make_unique<asio::steady_timer>(source_.strand());
            backoff_->expires_after(action.delay);
            backoff_->async_wait([self = shared_from_this()](error_code) { self->run(events::backoff_ended()); });
            return;
        case request_action_kind::complete:
            std::move(handler_)(action.error, action.error ? std::string() : std::move(token_));
            return;
        case request_action_kind::none:
        case request_action_kind::abort_pending:
            break;
        }
        unexpected_action();
    }

    fake_source& source_;
    request_fsm fsm_;
    result_handler handler_;
    std::string token_;
    std::unique_ptr<asio::steady_timer> backoff_;
};

struct loop_style {
    static constexpr std::string_view name = "loop";
    static void start(fake_source& source, const request_settings& settings, diagnostics& diag, result_handler handler)
    {
        loop_request::start(source, settings, diag, std::move(handler));
    }
};

// --- 2. asio::async_compose ---------------------------------------------------------
// The fsm lives in the composed operation's state, which Asio moves into every
// step's handler: nothing outside the operation can hold on to it while a step is
// pending. That works here only because the fsm's one reference, the diagnostics,
// points outside the state, and the timer is on the heap. Each step's handler is
// bound to the strand: the composed operation would otherwise run intermediate
// steps on the caller's handler's associated executor, and an operation's state
// must only be touched on its strand.
struct compose_request {
    fake_source& source;
    request_fsm fsm;
    std::string token;
    std::unique_ptr<asio::steady_timer> backoff;

    // The initiation (phase initial) and the release's completion.
    template <class Self> void operator()(Self& self)
    {
        run(self, fsm.phase() == request_phase::initial ? events::start(request_clock::now())
                                                        : events::released(request_clock::now()));
    }
    template <class Self> void operator()(Self& self, error_code ec, bool reused)
    {
        run(self, ec ? events::acquire_failed(ec, request_clock::now()) : events::acquired(reused));
    }
    template <class Self> void operator()(Self& self, attempt_outcome outcome, std::string minted)
    {
        token = std::move(minted);
        run(self, events::exchanged(outcome));
    }
    template <class Self> void operator()(Self& self, error_code) // the backoff's wait
    {
        run(self, events::backoff_ended());
    }

    template <class Self> void run(Self& self, const request_event& event)
    {
        const request_action action = fsm.resume(event);
        // Everything this needs is read before `self` moves into the next step's
        // handler, taking this object along.
        fake_source& from = source;
        const asio::any_io_executor& strand = source.strand();
        switch (action.kind) {
        case request_action_kind::acquire:
            from.async_acquire(asio::bind_executor(strand, std::move(self)));
            return;
        case request_action_kind::exchange: {
            const unsigned attempt = fsm.attempt();
            from.async_exchange(attempt, asio::bind_executor(strand, std::move(self)));
            return;
        }
        case request_action_kind::release:
            from.async_release(asio::bind_executor(strand, std::move(self)));
            return;
        case request_action_kind::backoff: {
            if (!backoff)
                backoff = std::make_unique<asio::steady_timer>(strand);
            asio::steady_timer& timer = *backoff;
            timer.expires_after(action.delay);
            timer.async_wait(asio::bind_executor(strand, std::move(self)));
            return;
        }
        case request_action_kind::complete:
            self.complete(action.error, action.error ? std::string() : std::move(token));
            return;
        case request_action_kind::none:
        case request_action_kind::abort_pending:
            break;
        }
        unexpected_action();
    }
};

struct compose_style {
    static constexpr std::string_view name = "compose";
    static void start(fake_source& source, const request_settings& settings, diagnostics& diag, result_handler handler)
    {
        asio::async_compose<result_handler, void(error_code, std::string)>(
            compose_request{source, request_fsm(settings, diag), {}, nullptr}, handler, source.strand());
    }
};

// --- 3. a coroutine ------------------------------------------------------------------
// The fsm lives in the coroutine frame, at a stable address. `step` is the token
// each step is awaited with: asio::deferred (awaited directly, no frame of its own)
// or asio::use_awaitable (1.81 runs each initiation in a coroutine of its own).
struct request_result {
    error_code ec;
    std::string token;
};

template <class StepToken>
asio::awaitable<request_result> coroutine_request(fake_source& source, const request_settings& settings,
                                                  diagnostics& diag, StepToken step)
{
    request_fsm fsm(settings, diag);
    std::string token;
    std::unique_ptr<asio::steady_timer> backoff;
    request_event event = events::start(request_clock::now());
    for (;;) {
        const request_action action = fsm.resume(event);
        switch (action.kind) {
        case request_action_kind::acquire: {
            auto [ec, reused] = co_await source.async_acquire(asio::as_tuple(step));
            event = ec ? events::acquire_failed(ec, request_clock::now()) : events::acquired(reused);
            break;
        }
        case request_action_kind::exchange: {
            auto [outcome, minted] = co_await source.async_exchange(fsm.attempt(), step);
            token = std::move(minted);
            event = events::exchanged(outcome);
            break;
        }
        case request_action_kind::release:
            co_await source.async_release(step);
            event = events::released(request_clock::now());
            break;
        case request_action_kind::backoff:
            if (!backoff)
                backoff = std::make_unique<asio::steady_timer>(source.strand());
            backoff->expires_after(action.delay);
            co_await backoff->async_wait(asio::as_tuple(step));
            event = events::backoff_ended();
            break;
        case request_action_kind::complete:
            co_return request_result{action.error, action.error ? std::string() : std::move(token)};
        case request_action_kind::none:
        case request_action_kind::abort_pending:
            unexpected_action();
        }
    }
}

template <class StepToken>
void spawn_coroutine_request(fake_source& source, const request_settings& settings, diagnostics& diag,
                             result_handler handler, StepToken step)
{
    // co_spawn completes with (exception_ptr, request_result): adapted to the
    // caller's signature. The coroutine never throws but on a bug, rethrown here.
    asio::co_spawn(source.strand(), coroutine_request(source, settings, diag, step),
                   [handler = std::move(handler)](const std::exception_ptr& failure, request_result result) mutable {
                       if (failure)
                           std::rethrow_exception(failure);
                       std::move(handler)(result.ec, std::move(result.token));
                   });
}

struct coroutine_style {
    static constexpr std::string_view name = "coroutine";
    static void start(fake_source& source, const request_settings& settings, diagnostics& diag, result_handler handler)
    {
        spawn_coroutine_request(source, settings, diag, std::move(handler), asio::deferred);
    }
};

struct coroutine_use_awaitable_style {
    static constexpr std::string_view name = "coroutine-ua";
    static void start(fake_source& source, const request_settings& settings, diagnostics& diag, result_handler handler)
    {
        spawn_coroutine_request(source, settings, diag, std::move(handler), asio::use_awaitable);
    }
};

// --- the workload --------------------------------------------------------------------
// `concurrency` chains, each starting its next request from the previous one's
// completion (as cartesia-bench's pooled mode does), until `requests` have started.
template <class Style> class workload {
public:
    workload(fake_source& source, std::size_t requests, std::size_t concurrency, bool retry)
        : source_(source), to_start_(requests), diags_(concurrency), expected_attempts_(retry ? 2 : 1)
    {
        settings_.timeout = std::chrono::seconds(60);
        settings_.max_attempts = 3;
        settings_.jitter = []() noexcept { return 0.5; };
    }

    // On the strand.
    void start_chains()
    {
        for (std::size_t chain = 0; chain < diags_.size(); ++chain)
            start_next(chain);
    }

    std::size_t completed() const noexcept { return completed_; }
    std::size_t wrong() const noexcept { return wrong_; }

private:
    void start_next(std::size_t chain)
    {
        if (to_start_ == 0)
            return;
        --to_start_;
        Style::start(source_, settings_, diags_[chain], [this, chain](error_code ec, const std::string& token) {
            ++completed_;
            if (ec || token != minted_token || diags_[chain].attempts() != expected_attempts_)
                ++wrong_;
            start_next(chain);
        });
    }

    fake_source& source_;
    request_settings settings_;
    std::size_t to_start_;
    std::vector<diagnostics> diags_; // one per chain: each request's own, outside any driver's state
    unsigned expected_attempts_;
    std::size_t completed_ = 0;
    std::size_t wrong_ = 0;
};

struct run_figures {
    double wall_ns = 0; // per request, all of them
    double cpu_ns = 0;  // this thread's CPU time per request: what other processes' load changes least
    double mallocs = 0; // per request
    double news = 0;    // per request
};

std::chrono::nanoseconds thread_cpu_time() noexcept
{
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// One run: a fresh io_context (one thread, hence concurrency hint 1, as
// cartesia-bench) and strand; the window is io_context::run() alone.
template <class Style> run_figures run_once(std::size_t requests, std::size_t concurrency, bool retry)
{
    asio::io_context io(1);
    fake_source source(asio::make_strand(io.get_executor()), retry);
    workload<Style> load(source, requests, concurrency, retry);
    asio::post(source.strand(), [&load] { load.start_chains(); });

    const std::uint64_t news_before = new_calls.load(std::memory_order_relaxed);
    const std::uint64_t mallocs_before = cartesia_bench::allocation_count();
    const auto cpu_before = thread_cpu_time();
    const auto wall_before = std::chrono::steady_clock::now();
    io.run();
    const auto wall = std::chrono::steady_clock::now() - wall_before;
    const auto cpu = thread_cpu_time() - cpu_before;
    const std::uint64_t news = new_calls.load(std::memory_order_relaxed) - news_before;
    const std::uint64_t mallocs = cartesia_bench::allocation_count() - mallocs_before;

    // Each request's handler exactly once, each with the token: a lost or repeated
    // completion, or a wrong one, is a bug of the driver, and its figures mean nothing.
    if (load.completed() != requests || load.wrong() != 0) {
        const std::string name(Style::name);
        std::fprintf(stderr, "bench_driver_styles: %s completed %zu of %zu requests, %zu wrongly\n", name.c_str(),
                     load.completed(), requests, load.wrong());
        std::exit(1);
    }
    const auto n = static_cast<double>(requests);
    run_figures figures;
    figures.wall_ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count()) / n;
    figures.cpu_ns = static_cast<double>(cpu.count()) / n;
    figures.mallocs = static_cast<double>(mallocs) / n;
    figures.news = static_cast<double>(news) / n;
    return figures;
}

struct style_entry {
    std::string_view name;
    run_figures (*run)(std::size_t requests, std::size_t concurrency, bool retry);
};

constexpr std::array<style_entry, 4> all_styles{{
    {loop_style::name, &run_once<loop_style>},
    {compose_style::name, &run_once<compose_style>},
    {coroutine_style::name, &run_once<coroutine_style>},
    {coroutine_use_awaitable_style::name, &run_once<coroutine_use_awaitable_style>},
}};

// --- the command line and the report -------------------------------------------------

struct options {
    std::size_t requests = 0; // per run; 0: as many as the first style runs in about a second
    std::size_t rounds = 5;
    std::vector<std::size_t> concurrencies{1, 64};
    std::vector<bool> scenarios{false, true}; // retry: every first attempt fails
    std::vector<style_entry> styles{all_styles.begin(), all_styles.end()};
};

[[noreturn]] void usage(const std::string& message)
{
    std::fprintf(stderr,
                 "bench_driver_styles: %s\n"
                 "usage: bench_driver_styles [--requests N (0: about 1 s of the first style)] [--rounds R]\n"
                 "                           [--concurrency C]...\n"
                 "                           [--scenario success|retry|both] [--style NAME]...\n"
                 "styles: loop, compose, coroutine, coroutine-ua (all by default)\n",
                 message.c_str());
    std::exit(2);
}

std::size_t parse_count(std::string_view option, std::string_view text)
{
    std::size_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || (value == 0 && option != "--requests"))
        usage(std::string(option) + " expects a positive number");
    return value;
}

options parse(int argc, char** argv)
{
    options o;
    bool concurrency_given = false;
    bool style_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc)
            usage(std::string(arg) + " expects a value");
        const std::string_view value = argv[++i];
        if (arg == "--requests") {
            o.requests = parse_count(arg, value);
        } else if (arg == "--rounds") {
            o.rounds = parse_count(arg, value);
        } else if (arg == "--concurrency") {
            if (!std::exchange(concurrency_given, true))
                o.concurrencies.clear();
            o.concurrencies.push_back(parse_count(arg, value));
        } else if (arg == "--scenario") {
            if (value == "success")
                o.scenarios = {false};
            else if (value == "retry")
                o.scenarios = {true};
            else if (value == "both")
                o.scenarios = {false, true};
            else
                usage("--scenario is success, retry or both");
        } else if (arg == "--style") {
            const auto* style = std::find_if(all_styles.begin(), all_styles.end(),
                                             [&](const style_entry& e) { return e.name == value; });
            if (style == all_styles.end())
                usage("unknown style " + std::string(value));
            if (!std::exchange(style_given, true))
                o.styles.clear();
            o.styles.push_back(*style);
        } else {
            usage("unknown option " + std::string(arg));
        }
    }
    return o;
}

double median(std::vector<double> values)
{
    std::sort(values.begin(), values.end());
    const std::size_t mid = values.size() / 2;
    return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// The median of each figure over the rounds, taken figure by figure.
run_figures medians(const std::vector<run_figures>& runs)
{
    auto of = [&](double run_figures::*figure) {
        std::vector<double> values;
        values.reserve(runs.size());
        for (const run_figures& run : runs)
            values.push_back(run.*figure);
        return median(std::move(values));
    };
    return {of(&run_figures::wall_ns), of(&run_figures::cpu_ns), of(&run_figures::mallocs), of(&run_figures::news)};
}

// Requests per run when not given: as many as the first style completes in about a
// second, so that a run is long enough to smooth out the machine's hiccups and the
// cost of setting up a run (a strand, the first growth of the caches) vanishes.
std::size_t calibrated_requests(const style_entry& style, std::size_t concurrency, bool retry)
{
    constexpr std::size_t probe = 20'000;
    const run_figures f = style.run(probe, concurrency, retry);
    return std::clamp(static_cast<std::size_t>(1e9 / f.wall_ns), probe, std::size_t{20'000'000});
}

} // namespace

int main(int argc, char** argv)
{
    const options o = parse(argc, argv);
    const std::string first(o.styles.front().name);
    std::printf("%zu rounds, the styles interleaved in each round; medians. retry: every first attempt fails\n"
                "(503, retry-after-ms: 0). x %s: CPU time over %s's.%s\n",
                o.rounds, first.c_str(), first.c_str(),
                cartesia_bench::allocations_counted ? "" : " (A sanitizer build: allocations are not counted.)");
    std::printf("%-8s %4s %9s  %-13s %12s %11s %8s %12s %8s\n", "scenario", "conc", "req/run", "style", "wall ns/req",
                "CPU ns/req", ("x " + first).c_str(), "mallocs/req", "new/req");

    for (const bool retry : o.scenarios) {
        for (const std::size_t concurrency : o.concurrencies) {
            const std::size_t requests =
                o.requests != 0 ? o.requests : calibrated_requests(o.styles.front(), concurrency, retry);
            // Page faults and the first growth of every cache, out of the measured rounds.
            for (const style_entry& style : o.styles)
                style.run(std::max<std::size_t>(requests / 20, 1), concurrency, retry);
            // A B C A B C ...: a slow spell of the machine hurts every style alike.
            std::vector<std::vector<run_figures>> runs(o.styles.size());
            for (std::size_t round = 0; round < o.rounds; ++round)
                for (std::size_t s = 0; s < o.styles.size(); ++s)
                    runs[s].push_back(o.styles[s].run(requests, concurrency, retry));

            const double reference_cpu = medians(runs.front()).cpu_ns;
            for (std::size_t s = 0; s < o.styles.size(); ++s) {
                const run_figures m = medians(runs[s]);
                const std::string name(o.styles[s].name);
                std::printf("%-8s %4zu %9zu  %-13s %12.1f %11.1f %8.2f", retry ? "retry" : "success", concurrency,
                            requests, name.c_str(), m.wall_ns, m.cpu_ns, m.cpu_ns / reference_cpu);
                if (cartesia_bench::allocations_counted)
                    std::printf(" %12.2f %8.2f\n", m.mallocs, m.news);
                else
                    std::printf(" %12s %8s\n", "-", "-");
            }
            std::fflush(stdout);
        }
    }
    return 0;
}
