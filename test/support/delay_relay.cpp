// The delay relay described in delay_relay.hpp: the listener, and one relayed connection with
// its two directions. Everything of a relay runs on one strand, so that none of it needs a lock
// but the counters, which tests read from other threads.
#include "support/delay_relay.hpp"

#include "support/server_connection.hpp" // connection_gauge

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace cartesia::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using strand_type = asio::strand<asio::any_io_executor>;

// What one read may take: a chunk is at most this, and a direction queues at most
// max_queued_bytes plus this.
constexpr std::size_t read_size = std::size_t{64} * 1024;

struct relay_counters {
    std::atomic<std::size_t> accepted{0};
    std::atomic<std::size_t> to_target{0};
    std::atomic<std::size_t> to_client{0};
    std::atomic<std::size_t> peak_queued{0}; // written on the strand only
    detail::connection_gauge open;
};

class relayed_connection;

// The acceptor and the connections it made, shared with the handlers in flight.
class relay_listener : public std::enable_shared_from_this<relay_listener> {
public:
    relay_listener(const asio::any_io_executor& executor, relay_options relay_options);

    void accept();
    // On the strand: the listener and every connection close.
    void close_all();
    // On the strand: a connection that closed leaves the list close_all() goes through.
    void forget(std::uint64_t number) { live_.erase(number); }

    const relay_options options;
    strand_type strand;
    relay_counters tally;
    unsigned short port = 0;

private:
    tcp::acceptor acceptor_;
    tcp::resolver::results_type target_;
    // The strand's only: the connections still open, and the number of the next one.
    std::map<std::uint64_t, std::weak_ptr<relayed_connection>> live_;
    std::uint64_t next_number_ = 0;
    bool stopped_ = false;
};

// One client, its connection to the target, and the bytes in flight each way.
class relayed_connection : public std::enable_shared_from_this<relayed_connection> {
public:
    relayed_connection(tcp::socket client, std::shared_ptr<relay_listener> owner, std::uint64_t number);
    ~relayed_connection()
    {
        if (!closed_) // its io_context went away with it still open
            owner_->tally.open.closed();
    }
    relayed_connection(const relayed_connection&) = delete;
    relayed_connection& operator=(const relayed_connection&) = delete;

    void start(const tcp::resolver::results_type& target);
    // Closes both sockets at once, dropping what was queued; `abortive` resets them, so that
    // the endpoints see the failure that caused it rather than a clean end.
    void close(bool abortive);

private:
    struct chunk {
        std::vector<char> bytes;
        clock_type::time_point release;
    };

    // One way through the relay: read from `from`, queued, written to `to` when due.
    struct direction {
        direction(tcp::socket& source, tcp::socket& sink, std::atomic<std::size_t>& forwarded_bytes,
                  std::seed_seq&& seeds, const strand_type& strand)
            : from(source), to(sink), forwarded(forwarded_bytes), random(seeds), release_timer(strand)
        {
        }

        tcp::socket& from;
        tcp::socket& to;
        std::atomic<std::size_t>& forwarded;
        std::mt19937_64 random; // the jitter's
        asio::steady_timer release_timer;
        std::deque<chunk> queue;
        std::size_t queued_bytes = 0;
        std::unique_ptr<std::array<char, read_size>> buffer = std::make_unique<std::array<char, read_size>>();
        // Nothing read is sent as if it had been read before this (the TCP handshake's round trip).
        clock_type::time_point earliest_departure{};
        clock_type::time_point previous_release{};
        std::size_t since_stall = 0; // chunks or bytes, as options.stall_unit says
        bool reading = false;
        bool writing = false; // a write or a wait for the front chunk's release is pending
        bool may_write = true;
        bool read_eof = false;
        bool shut_down = false; // the EOF was forwarded
    };

    void read(direction& way);
    void on_read(direction& way, error_code ec, std::size_t n);
    void write(direction& way);
    void forward_eof(direction& way);
    clock_type::time_point release_time(direction& way, std::size_t n);

    const std::shared_ptr<relay_listener> owner_;
    const relay_options& options_;
    const std::uint64_t number_;
    tcp::socket client_;
    tcp::socket server_;
    direction upstream_;   // client to target
    direction downstream_; // target to client
    bool closed_ = false;
};

std::seed_seq direction_seeds(std::uint64_t seed, std::uint64_t connection, unsigned direction)
{
    constexpr unsigned half = 32;
    return std::seed_seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> half),
                         static_cast<std::uint32_t>(connection), static_cast<std::uint32_t>(connection >> half),
                         direction};
}

relay_listener::relay_listener(const asio::any_io_executor& executor, relay_options relay_options)
    : options(std::move(relay_options)), strand(asio::make_strand(executor)),
      // Opens, binds (with SO_REUSEADDR) and listens.
      acceptor_(strand, tcp::endpoint(asio::ip::address_v4::loopback(), options.listen_port))
{
    // The target is fixed and on loopback: resolving it once, here, makes a typo an exception
    // of the constructor rather than a connection reset later.
    tcp::resolver resolver(strand);
    target_ = resolver.resolve(options.target_host, std::to_string(options.target_port));
    port = acceptor_.local_endpoint().port();
}

void relay_listener::accept()
{
    acceptor_.async_accept(strand, [self = shared_from_this()](error_code ec, tcp::socket socket) {
        if (self->stopped_ || ec == asio::error::operation_aborted)
            return;
        if (!ec) { // else, e.g., the client reset the connection before we accepted it
            ++self->tally.accepted;
            const std::uint64_t number = self->next_number_++;
            auto connection = std::make_shared<relayed_connection>(std::move(socket), self, number);
            self->live_.emplace(number, connection);
            connection->start(self->target_);
        }
        self->accept();
    });
}

void relay_listener::close_all()
{
    stopped_ = true;
    error_code ignored;
    acceptor_.close(ignored);
    // Each connection forgets itself as it closes: go through a copy of the list.
    const auto connections = std::exchange(live_, {});
    for (const auto& [number, connection] : connections) {
        if (const auto open = connection.lock())
            open->close(false);
    }
}

relayed_connection::relayed_connection(tcp::socket client, std::shared_ptr<relay_listener> owner, std::uint64_t number)
    : owner_(std::move(owner)), options_(owner_->options), number_(number), client_(std::move(client)),
      server_(owner_->strand),
      upstream_(client_, server_, owner_->tally.to_target, direction_seeds(options_.seed, number, 0), owner_->strand),
      downstream_(server_, client_, owner_->tally.to_client, direction_seeds(options_.seed, number, 1), owner_->strand)
{
    owner_->tally.open.opened();
}

void relayed_connection::start(const tcp::resolver::results_type& target)
{
    if (options_.emulate_tcp_handshake)
        upstream_.earliest_departure = clock_type::now() + 2 * options_.one_way_delay;
    // Small writes leave at once: Nagle's algorithm would add delays of its own.
    error_code ignored;
    client_.set_option(tcp::no_delay(true), ignored);
    upstream_.may_write = false; // until the target answers
    read(upstream_);
    asio::async_connect(server_, target, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
        if (self->closed_)
            return;
        if (ec) {
            self->close(true); // the client learns of it as it would of a refused connection
            return;
        }
        error_code no_nagle_ignored;
        self->server_.set_option(tcp::no_delay(true), no_nagle_ignored);
        self->upstream_.may_write = true;
        self->write(self->upstream_);
        self->read(self->downstream_);
    });
}

void relayed_connection::close(bool abortive)
{
    if (closed_)
        return;
    closed_ = true;
    error_code ignored;
    for (tcp::socket* socket : {&client_, &server_}) {
        if (abortive && socket->is_open())
            socket->set_option(asio::socket_base::linger(true, 0), ignored);
        socket->close(ignored);
    }
    upstream_.release_timer.cancel();
    downstream_.release_timer.cancel();
    owner_->tally.open.closed();
    owner_->forget(number_);
}

void relayed_connection::read(direction& way)
{
    // Back-pressure: while the queue is full, the sender's bytes wait in its socket buffers.
    if (closed_ || way.reading || way.read_eof || way.queued_bytes >= options_.max_queued_bytes)
        return;
    way.reading = true;
    way.from.async_read_some(
        asio::buffer(*way.buffer),
        [self = shared_from_this(), &way](error_code ec, std::size_t n) { self->on_read(way, ec, n); });
}

void relayed_connection::on_read(direction& way, error_code ec, std::size_t n)
{
    way.reading = false;
    if (closed_)
        return;
    if (ec == asio::error::eof) {
        way.read_eof = true;
        write(way); // forwards the EOF once the queue is empty
        return;
    }
    if (ec) {
        close(true);
        return;
    }
    const auto read_end = way.buffer->begin() + static_cast<std::ptrdiff_t>(n);
    way.queue.push_back({std::vector<char>(way.buffer->begin(), read_end), release_time(way, n)});
    way.queued_bytes += n;
    if (way.queued_bytes > owner_->tally.peak_queued)
        owner_->tally.peak_queued = way.queued_bytes;
    write(way);
    read(way);
}

clock_type::time_point relayed_connection::release_time(direction& way, std::size_t n)
{
    auto release = std::max(clock_type::now(), way.earliest_departure) + options_.one_way_delay;
    if (options_.jitter.count() > 0) {
        const auto jitter_us = std::chrono::duration_cast<std::chrono::microseconds>(options_.jitter).count();
        release += std::chrono::microseconds(std::uniform_int_distribution<long long>(0, jitter_us)(way.random));
    }
    // After the previous chunk, whatever the jitter drew: TCP keeps the order.
    release = std::max(release, way.previous_release);
    if (options_.bandwidth_bytes_per_second != 0) {
        constexpr std::size_t ns_per_second = 1'000'000'000;
        release += std::chrono::nanoseconds(n * ns_per_second / options_.bandwidth_bytes_per_second);
    }
    way.previous_release = release;

    if (options_.stall_every != 0 && options_.stall_for.count() > 0) {
        way.since_stall += options_.stall_unit == relay_options::unit::bytes ? n : 1;
        if (way.since_stall >= options_.stall_every) {
            way.since_stall %= options_.stall_every;
            way.previous_release += options_.stall_for; // what comes next waits
        }
    }
    return release;
}

void relayed_connection::write(direction& way)
{
    if (closed_ || way.writing || !way.may_write)
        return;
    if (way.queue.empty()) {
        if (way.read_eof)
            forward_eof(way);
        return;
    }
    way.writing = true;
    if (way.queue.front().release > clock_type::now()) {
        // One timer per direction, set for the front chunk: those behind it are due no earlier.
        way.release_timer.expires_at(way.queue.front().release);
        way.release_timer.async_wait([self = shared_from_this(), &way](error_code ec) {
            way.writing = false;
            if (!ec)
                self->write(way);
        });
        return;
    }
    asio::async_write(way.to, asio::buffer(way.queue.front().bytes),
                      [self = shared_from_this(), &way](error_code ec, std::size_t n) {
                          way.writing = false;
                          if (self->closed_)
                              return;
                          if (ec) {
                              self->close(true);
                              return;
                          }
                          way.queue.pop_front();
                          way.queued_bytes -= n;
                          way.forwarded += n;
                          self->write(way);
                          self->read(way); // in case the queue was full
                      });
}

void relayed_connection::forward_eof(direction& way)
{
    if (way.shut_down)
        return;
    way.shut_down = true;
    error_code ignored; // the receiver may have gone; its own direction will say so
    way.to.shutdown(tcp::socket::shutdown_send, ignored);
    if (upstream_.shut_down && downstream_.shut_down)
        close(false);
}

} // namespace

struct delay_relay::impl {
    // Declared first, destroyed last: the listener's sockets and timers belong to it.
    std::unique_ptr<asio::io_context> own_io;
    std::shared_ptr<relay_listener> listener;
    std::thread thread;
    std::atomic<bool> stop_requested{false};

    void start(const asio::any_io_executor& executor, relay_options options)
    {
        listener = std::make_shared<relay_listener>(executor, std::move(options));
        listener->accept();
    }
};

delay_relay::delay_relay(relay_options options) : impl_(std::make_unique<impl>())
{
    impl_->own_io = std::make_unique<asio::io_context>(1);
    impl_->start(impl_->own_io->get_executor(), std::move(options));
    // Listening before the thread starts is what lets the constructor return a ready relay.
    impl_->thread = std::thread([io = impl_->own_io.get()] { io->run(); });
}

delay_relay::delay_relay(const asio::any_io_executor& executor, relay_options options) : impl_(std::make_unique<impl>())
{
    impl_->start(executor, std::move(options));
}

delay_relay::~delay_relay()
{
    try {
        stop();
    } catch (...) { // a failed dispatch or join: the handlers still hold the listener, and end with their context
    }
}

void delay_relay::stop()
{
    if (impl_->stop_requested.exchange(true))
        return;
    asio::dispatch(impl_->listener->strand, [listener = impl_->listener] { listener->close_all(); });
    // With every socket closed and every timer cancelled, the thread's io_context runs out of work.
    if (impl_->thread.joinable())
        impl_->thread.join();
}

unsigned short delay_relay::port() const noexcept
{
    return impl_->listener->port;
}

std::string delay_relay::address() const
{
    return "127.0.0.1:" + std::to_string(port());
}

std::size_t delay_relay::connections_accepted() const noexcept
{
    return impl_->listener->tally.accepted;
}

std::size_t delay_relay::open_connections() const noexcept
{
    return impl_->listener->tally.open.value();
}

bool delay_relay::wait_for_open_connections(std::size_t n, std::chrono::milliseconds timeout) const
{
    return impl_->listener->tally.open.wait_for(n, timeout);
}

std::size_t delay_relay::bytes_to_target() const noexcept
{
    return impl_->listener->tally.to_target;
}

std::size_t delay_relay::bytes_to_client() const noexcept
{
    return impl_->listener->tally.to_client;
}

std::size_t delay_relay::peak_queued_bytes() const noexcept
{
    return impl_->listener->tally.peak_queued;
}

} // namespace cartesia::test
