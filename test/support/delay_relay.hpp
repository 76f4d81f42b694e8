// A TCP relay that puts distance between a client and a server on loopback.
//
// Our users' servers are 20-150 ms from the API, and the test machines have neither netem nor
// iptables: the distance has to come from userspace. The relay listens on 127.0.0.1 (an
// ephemeral port by default), connects each accepted client to a fixed target, and forwards the
// bytes both ways, each direction through a FIFO of timestamped chunks released by one timer:
// bytes read at time t are written at t + one_way_delay, never earlier and never out of order.
// Nothing sleeps; the relay runs on a thread of its own, as test_server does, or on an executor
// the caller runs (cartesia-test-relay does so, next to its signal_set).
//
// What a chunk of n bytes, read at t, waits for (each direction on its own):
//
//     release = max(t + one_way_delay + jitter, previous release) + n / bandwidth
//
// where jitter is uniform in [0, jitter] per chunk, drawn from a generator seeded with `seed`,
// the connection's number and the direction, so that a run can be repeated; the max keeps the
// order, as TCP does whatever the network does. After every stall_every chunks (or bytes), the
// direction is held for stall_for more: the pause that loss recovery costs a real connection.
//
// A kernel completes the TCP handshake before accept(), so the client's connect() returns at
// once; to count the round trip it stands for, the relay (emulate_tcp_handshake) forwards
// nothing from the client before 2 * one_way_delay after the accept, as if the client's bytes
// had only left once its SYN had been answered. A one-shot TLS 1.3 token then costs what it
// costs over a real network: the handshake of TCP, that of TLS, and the request, three round trips.
//
// A read EOF on one side becomes shutdown(send) on the other once the bytes queued before it are
// written; a reset or any other error on one side closes both at once (the other with a reset,
// so that the endpoint sees a failure, not a clean end), dropping what was queued, as an RST does.
// Each direction queues at most max_queued_bytes (plus one read): beyond that the relay stops
// reading from the sender until the queue drains, and the sender's TCP window does the rest.
//
// By hand (bench/README.md, "Distance: the delay relay"):
//
//     cartesia-test-relay --listen 127.0.0.1:0 --target 127.0.0.1:8443 --delay-ms 25
#ifndef CARTESIA_TEST_SUPPORT_DELAY_RELAY_HPP
#define CARTESIA_TEST_SUPPORT_DELAY_RELAY_HPP

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace cartesia::test {

struct relay_options {
    // Where each accepted connection goes: a loopback host name or address, and its port.
    std::string target_host = "127.0.0.1";
    unsigned short target_port = 0;
    // The port to listen on, on 127.0.0.1; 0 picks an ephemeral one (delay_relay::port()).
    unsigned short listen_port = 0;

    // Added to each direction: a round trip through the relay costs twice this.
    std::chrono::milliseconds one_way_delay{0};
    // Each chunk waits a further uniform [0, jitter]; the order is kept all the same.
    std::chrono::milliseconds jitter{0};
    // 0 is unlimited; otherwise a chunk takes size / bandwidth after the one before it.
    std::size_t bandwidth_bytes_per_second = 0;

    // When both are non-zero, the direction is held stall_for after every stall_every chunks
    // (or bytes, as stall_unit says).
    enum class unit { chunks, bytes };
    std::size_t stall_every = 0;
    unit stall_unit = unit::chunks;
    std::chrono::milliseconds stall_for{0};

    // Seeds the jitter, so that runs with the same seed see the same delays.
    std::uint64_t seed = 0;
    // Counts the TCP handshake's round trip (see above); off, the client's first bytes leave
    // as soon as they are read.
    bool emulate_tcp_handshake = true;
    // Back-pressure: a direction stops reading while this much is queued in it. Like a TCP
    // window, it limits a direction to less than max_queued_bytes per one_way_delay: keep it above
    // bandwidth * delay when the bandwidth is what a test measures.
    std::size_t max_queued_bytes = std::size_t{4} * 1024 * 1024;
};

class delay_relay {
public:
    // Listens at once (the port is known when the constructor returns) and forwards on a
    // thread of its own. Throws boost::system::system_error when it cannot listen, or when the
    // target's host does not resolve.
    explicit delay_relay(relay_options options);
    // The same, on `executor`, which the caller runs; it may be multi-threaded (the relay uses
    // a strand of it). Its execution context must outlive the relay.
    delay_relay(const boost::asio::any_io_executor& executor, relay_options options);
    ~delay_relay(); // stop()
    delay_relay(const delay_relay&) = delete;
    delay_relay& operator=(const delay_relay&) = delete;

    // Closes the listener and every connection, dropping what they had queued. On its own
    // thread it returns once that thread has finished; on a given executor, the closing runs
    // there, and the handlers still in flight keep what they use alive. Calling it again does nothing.
    void stop();

    unsigned short port() const noexcept;
    std::string address() const; // "127.0.0.1:<port>"

    // Counters, safe to read from any thread.
    std::size_t connections_accepted() const noexcept;
    // Accepted and not yet closed on both sides.
    std::size_t open_connections() const noexcept;
    // Blocks until open_connections() == n or `timeout` has passed; true when the former happened.
    bool wait_for_open_connections(std::size_t n, std::chrono::milliseconds timeout) const;
    // Bytes written to the target and to the clients so far, all connections together.
    std::size_t bytes_to_target() const noexcept;
    std::size_t bytes_to_client() const noexcept;
    // The most any one direction has held queued at once: max_queued_bytes plus one read, at most.
    std::size_t peak_queued_bytes() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace cartesia::test

#endif
