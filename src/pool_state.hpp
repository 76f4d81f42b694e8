// The connection pool's bookkeeping, sans-io: which connections exist and in what
// status, the idle stack, the FIFO of waiting requests, and the rule for opening
// connections. No I/O and no clock: times are passed in. client.cpp's client_impl
// carries out its answers (opens, closes, wakes requests); test/unit tests it alone.
//
// A connection's life (connection_status):
//
//   opening --opened--> in_use (handed to a waiter) <--acquire/hand-over-- idle
//      |                  |  ^-------------------------------------------'  ^
//      | failed           |  release: reusable, nobody waiting -------------'
//      v                  v  release: not reusable, or the pool closed
//   (removed)          closing --> (removed)
//
// The pool opens connections itself, one task per connection (Boost.MySQL's
// node): a request only ever acquires, releases and leaves the queue. It opens a
// connection when a waiter has none coming: while there is room, the number of
// connections opening for the queue never exceeds the number of waiters.
//
// The warm minimum: while fewer than `min_connections` are open or opening, the
// pool opens more for nobody in particular (open_for_minimum()), and the idle
// timeout closes only the connections above the minimum. When openings fail, the
// minimum is restored after a backoff, and by one probe at a time until one
// succeeds: a down API sees a trickle of connection attempts, not a storm.
//
// The server's Keep-Alive hints (`timeout=N, max=M`) bound each connection: it
// carries no more requests than the server will take, and is retired before the
// server would close it idle (exchanged(), retire_at).
#ifndef CARTESIA_SRC_POOL_STATE_HPP
#define CARTESIA_SRC_POOL_STATE_HPP

#include "protocol.hpp"
#include "retry_policy.hpp"

#include <boost/asio/error.hpp>
#include <boost/assert.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <limits>
#include <list>
#include <new>
#include <optional>
#include <vector>

namespace cartesia::detail {

enum class connection_status {
    opening, // its task connects and handshakes
    idle,    // open, in the idle stack
    in_use,  // lent to a request
    closing, // being closed; removed once its task (if any) has ended
};

using pool_clock = std::chrono::steady_clock;

template <class Connection> struct pool_node {
    // Made by the pool's driver when it is told to open the node: the pool's
    // bookkeeping needs no I/O object, and its tests none at all.
    std::optional<Connection> link;
    connection_status status = connection_status::opening;
    pool_clock::time_point idle_until{}; // while idle: when the idle timeout closes it (above the minimum)
    pool_clock::time_point retire_at{};  // while idle: when it is closed anyway, before the server would
    pool_clock::time_point opened_at{};  // when its opening succeeded
    std::size_t exchanges = 0;           // requests it has carried
    // What the server's Keep-Alive hints allow: requests in all, and time idle.
    std::size_t request_limit = std::numeric_limits<std::size_t>::max();
    pool_clock::duration server_idle_limit = pool_clock::duration::max();
    // The driver's: an operation of its own (a watch while idle) is pending on
    // `link`, so that the node's removal waits for it to end.
    bool watched = false;
    typename std::list<pool_node>::iterator self{};
};

using auto_unlink = boost::intrusive::link_mode<boost::intrusive::auto_unlink>;
using waiter_hook = boost::intrusive::list_base_hook<boost::intrusive::tag<struct waiter_tag>, auto_unlink>;

// A request in the pool's queue. Intrusive: leaving the queue (deadline,
// cancellation) costs O(1) with thousands queued, and auto_unlink lets a waiter
// destroyed while queued leave by itself. The pool counts its waiters (the
// opening rule reads the count, in O(1)), so a waiter should leave() first: the
// pooled request's destructor does, should its io_context be destroyed while it
// waits.
template <class Connection> class pool_waiter : public waiter_hook {
public:
    // Set by the pool when the wait ends: a connection, or why there is none.
    pool_node<Connection>* handed = nullptr;
    boost::system::error_code failure;

    bool queued() const noexcept { return waiter_hook::is_linked(); }
};

template <class Connection> class pool_state {
public:
    using node = pool_node<Connection>;
    using waiter = pool_waiter<Connection>;

    // `jitter` (in [0, 1)) spreads the backoff of the warm minimum's openings, so
    // that many clients do not reconnect in step; null means 0.5.
    explicit pool_state(std::size_t max_connections, std::size_t min_connections = 0,
                        double (*jitter)() noexcept = nullptr) noexcept
        : max_connections_(max_connections), min_connections_(min_connections), jitter_(jitter)
    {
        BOOST_ASSERT(min_connections <= max_connections);
    }

    // --- what a request does -------------------------------------------------

    enum class acquire_kind { use, wait };
    struct acquire_answer {
        acquire_kind kind;
        node* connection = nullptr; // use: lent to the caller (in_use)
        node* open = nullptr;       // wait: when set, a connection to open for the queue
    };

    // An idle connection, the most recently used (its TLS state is warmest), when
    // nobody is queued ahead; else the request joins the queue (at its head when
    // `ahead_of_queue`), and a connection is opened for it if the pool may grow.
    acquire_answer acquire(waiter& w, bool ahead_of_queue = false)
    {
        BOOST_ASSERT(!w.queued() && !closed_);
        w.handed = nullptr;
        w.failure = {};
        if (waiters_.empty() && !idle_.empty()) {
            node* taken = idle_.back();
            idle_.pop_back();
            set_status(*taken, connection_status::in_use);
            return {acquire_kind::use, taken};
        }
        // The node first: should it fail to allocate, nothing has changed.
        node* fresh = opening_due(waiting_ + 1) ? open_one() : nullptr;
        if (ahead_of_queue)
            waiters_.push_front(w);
        else
            waiters_.push_back(w);
        ++waiting_;
        return {acquire_kind::wait, nullptr, fresh};
    }

    // A request stops waiting (deadline, cancellation). Nothing was handed to it.
    void leave(waiter& w)
    {
        BOOST_ASSERT(w.queued() && waiting_ > 0);
        w.waiter_hook::unlink();
        --waiting_;
    }

    enum class release_kind { handed_over, kept_idle, close };
    struct release_answer {
        release_kind kind;
        waiter* to = nullptr; // handed_over: the waiter now holding it
    };

    // A lent connection comes back: to the next waiter, to the idle stack, or to
    // be closed (the caller closes it, then calls remove()).
    release_answer release(node& c, bool reusable, pool_clock::time_point now, std::chrono::milliseconds idle_timeout)
    {
        BOOST_ASSERT(c.status == connection_status::in_use);
        if (closed_ || !reusable || c.exchanges >= c.request_limit) {
            set_status(c, connection_status::closing);
            return {release_kind::close, nullptr};
        }
        if (waiter* next = pop_waiter()) {
            next->handed = &c;
            return {release_kind::handed_over, next};
        }
        if (!make_idle(c, now, idle_timeout)) {
            set_status(c, connection_status::closing);
            return {release_kind::close, nullptr};
        }
        return {release_kind::kept_idle};
    }

    // After an exchange over `c` that ended with a response carrying `hint`: one
    // more request carried, and what the server says of the rest. `max` is read as
    // counting this response's request: Apache means the requests after it (one
    // more than this allows), others the same number on every response; reading
    // it so is the safe side of both, and the smallest bound seen wins.
    void exchanged(node& c, const keep_alive_hint& hint) noexcept
    {
        BOOST_ASSERT(c.status == connection_status::in_use);
        ++c.exchanges;
        young_deaths_ = 0; // connections live long enough to serve
        if (hint.max)
            c.request_limit = std::min(c.request_limit, c.exchanges - 1 + *hint.max);
        if (hint.timeout)
            c.server_idle_limit = retire_before(*hint.timeout);
    }

    // How long a connection may idle when the server closes it after `server_timeout`:
    // a margin of a tenth, at least a second, so that a request never races the
    // server's close across the network. Zero: it may not idle at all.
    static pool_clock::duration retire_before(std::chrono::seconds server_timeout) noexcept
    {
        const pool_clock::duration margin =
            std::max<pool_clock::duration>(std::chrono::seconds(1), server_timeout / 10);
        return server_timeout > margin ? pool_clock::duration(server_timeout - margin) : pool_clock::duration::zero();
    }

    // --- what the connections' tasks report ----------------------------------

    struct opened_answer {
        waiter* to = nullptr;  // handed the connection, or the failure
        bool close_it = false; // the pool closed meanwhile: close the connection
    };

    // A connection's task has opened it (no error) or given up (`failure`). A
    // failure goes to the head of the queue, whose request decides about retrying;
    // the node is then removed by the caller.
    opened_answer opened(node& c, boost::system::error_code failure, pool_clock::time_point now,
                         std::chrono::milliseconds idle_timeout)
    {
        BOOST_ASSERT(c.status == connection_status::opening || c.status == connection_status::closing);
        if (c.status == connection_status::closing || closed_) {
            set_status(c, connection_status::closing);
            return {nullptr, true};
        }
        if (failure) {
            set_status(c, connection_status::closing);
            ++failed_openings_;
            back_off(now);
            opened_answer answer;
            if (waiter* next = pop_waiter()) {
                next->failure = failure;
                answer.to = next;
            }
            return answer;
        }
        failed_openings_ = 0;
        if (young_deaths_ == 0)
            warm_retry_at_ = {};
        c.opened_at = now;
        if (waiter* next = pop_waiter()) {
            set_status(c, connection_status::in_use);
            next->handed = &c;
            return {next, false};
        }
        if (!make_idle(c, now, idle_timeout)) { // its waiter left meanwhile
            set_status(c, connection_status::closing);
            return {nullptr, true};
        }
        return {};
    }

    // A closed (or failed) connection is gone; returns another one to open when
    // requests are still queued, or for the minimum (see open_for_minimum()).
    node* remove(node& c, pool_clock::time_point now)
    {
        BOOST_ASSERT(c.status == connection_status::closing && closing_ > 0);
        nodes_.erase(c.self);
        --closing_;
        if (opening_due(waiting_))
            return open_one();
        return open_for_minimum(now);
    }

    // A connection to open for the warm minimum, or null: when fewer than the
    // minimum are open or opening, there is room, and no backoff is running. After
    // failures, one at a time: the first success lifts the backoff for the rest.
    node* open_for_minimum(pool_clock::time_point now)
    {
        if (closed_ || live_count() >= min_connections_ || nodes_.size() >= max_connections_)
            return nullptr;
        if (backing_off() && (now < warm_retry_at_ || opening_ > 0))
            return nullptr;
        return open_one();
    }

    // An idle connection the server closed (or spoke on, which HTTP/1.1 does not
    // allow): now closing; the caller closes it and calls remove(). One that dies
    // unused soon after it opened counts as a failed opening: a server that
    // completes the handshake and hangs up (a load balancer at capacity) must see
    // the backoff too, not a handshake per round trip.
    void retire(node& c, pool_clock::time_point now)
    {
        BOOST_ASSERT(c.status == connection_status::idle);
        idle_.erase(std::find(idle_.begin(), idle_.end(), &c));
        set_status(c, connection_status::closing);
        if (c.exchanges == 0 && now - c.opened_at < died_young) {
            // Its opening succeeded, so the count of those that failed was reset:
            // these deaths have their own, which only a connection that lives
            // (serves a request, or outlives died_young) resets.
            ++young_deaths_;
            back_off(now);
        } else {
            young_deaths_ = 0;
        }
    }

    // How long a connection must live unused for its end not to count as a failure.
    static constexpr std::chrono::seconds died_young{2};

    // --- time and shutdown ---------------------------------------------------

    // The idle connections to close now, oldest first, now closing: those the
    // server would soon close (retire_at), and those idle longer than the idle
    // timeout while more than the minimum are open. The caller closes each and
    // calls remove(), which opens replacements for the minimum.
    std::vector<node*> expire_idle(pool_clock::time_point now)
    {
        std::vector<node*> expired;
        std::size_t live = live_count();
        auto kept = idle_.begin();
        for (node* c : idle_) {
            const bool surplus = live > min_connections_;
            if (c->retire_at <= now || (surplus && c->idle_until <= now)) {
                set_status(*c, connection_status::closing);
                expired.push_back(c);
                --live;
            } else {
                *kept++ = c;
            }
        }
        idle_.erase(kept, idle_.end());
        return expired;
    }

    // When the pool next has something to do on its own: an idle connection to
    // close (see expire_idle()), or the warm minimum's backoff ending. max() when
    // nothing is due. Linear in the idle connections: called when the upkeep timer
    // fires and after a connection is removed, not per request.
    pool_clock::time_point next_maintenance() const noexcept
    {
        pool_clock::time_point next = pool_clock::time_point::max();
        for (const node* c : idle_)
            next = std::min(next, c->retire_at);
        if (!idle_.empty() && live_count() > min_connections_)
            next = std::min(next, idle_.front()->idle_until); // the oldest is the first surplus to go
        if (backing_off() && live_count() < min_connections_ && opening_ == 0)
            next = std::min(next, warm_retry_at_);
        return next;
    }

    // As next_maintenance(), looking only at what changed when `c` became idle, in
    // constant time: the times of the others were considered when they did.
    pool_clock::time_point next_maintenance_after_idle(const node& c) const noexcept
    {
        BOOST_ASSERT(c.status == connection_status::idle);
        pool_clock::time_point next = c.retire_at;
        if (live_count() > min_connections_)
            next = std::min(next, idle_.front()->idle_until);
        return next;
    }

    struct close_answer {
        std::vector<node*> close_now;     // were idle: close, then remove()
        std::vector<node*> abort_opening; // abort: their tasks end in opened()
        std::vector<waiter*> woken;       // every waiter, with failure operation_aborted
    };

    // No more connections are lent or opened. In-use connections close when released.
    close_answer close()
    {
        close_answer answer;
        closed_ = true;
        for (node& c : nodes_) {
            if (c.status == connection_status::idle)
                answer.close_now.push_back(&c);
            else if (c.status == connection_status::opening)
                answer.abort_opening.push_back(&c);
            else
                continue;
            set_status(c, connection_status::closing);
        }
        idle_.clear();
        while (waiter* next = pop_waiter()) {
            next->failure = boost::asio::error::operation_aborted;
            answer.woken.push_back(next);
        }
        return answer;
    }

    // --- introspection -------------------------------------------------------

    bool closed() const noexcept { return closed_; }
    std::size_t size() const noexcept { return nodes_.size(); }
    std::size_t idle_count() const noexcept { return idle_.size(); }
    std::size_t opening_count() const noexcept { return opening_; }
    std::size_t waiting_count() const noexcept { return waiting_; }
    std::size_t connections_opened() const noexcept { return opened_total_; }
    // Open or opening: every connection but those closing.
    std::size_t live_count() const noexcept { return nodes_.size() - closing_; }
    std::size_t min_connections() const noexcept { return min_connections_; }
    // Openings that failed since the last one that succeeded.
    unsigned failed_openings() const noexcept { return failed_openings_; }
    // Connections that died unused soon after opening, since the last that lived.
    unsigned young_deaths() const noexcept { return young_deaths_; }

private:
    // One place for the rule of opening: a waiter without a connection coming
    // (`waiters` counts the queue as it will be), and room in the pool.
    bool opening_due(std::size_t waiters) const noexcept
    {
        return !closed_ && nodes_.size() < max_connections_ && opening_ < waiters;
    }

    node* open_one()
    {
        node& fresh = nodes_.emplace_back();
        fresh.self = std::prev(nodes_.end());
        ++opening_;
        ++opened_total_;
        return &fresh;
    }

    waiter* pop_waiter() noexcept
    {
        if (waiters_.empty())
            return nullptr;
        waiter& next = waiters_.front();
        waiters_.pop_front();
        --waiting_;
        return &next;
    }

    bool backing_off() const noexcept { return failed_openings_ > 0 || young_deaths_ > 0; }

    // The warm minimum backs off: retry_delay's steps (0.5 s, 1 s, 2 s, ... 8 s,
    // jittered; it caps the exponent), counted in failures in a row of either kind.
    void back_off(pool_clock::time_point now) noexcept
    {
        const double jitter = jitter_ ? jitter_() : 0.5;
        warm_retry_at_ = now + retry_delay(failed_openings_ + young_deaths_ - 1, jitter, std::nullopt);
    }

    // False, and no change, when the idle stack cannot grow for want of memory:
    // the caller closes the connection instead, so that release() never throws.
    bool make_idle(node& c, pool_clock::time_point now, std::chrono::milliseconds idle_timeout)
    {
        if (c.server_idle_limit == pool_clock::duration::zero())
            return false; // the server may close it any moment now
        try {
            idle_.push_back(&c);
        } catch (const std::bad_alloc&) {
            return false;
        }
        set_status(c, connection_status::idle);
        c.idle_until =
            idle_timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(pool_clock::time_point::max() - now)
                ? pool_clock::time_point::max()
                : now + idle_timeout;
        c.retire_at = c.server_idle_limit >= pool_clock::time_point::max() - now ? pool_clock::time_point::max()
                                                                                 : now + c.server_idle_limit;
        return true;
    }

    // Not noexcept: the state-machine tests make BOOST_ASSERT throw.
    void set_status(node& c, connection_status next)
    {
        using cs = connection_status;
        [[maybe_unused]] const cs from = c.status;
        BOOST_ASSERT((next == cs::in_use && (from == cs::opening || from == cs::idle)) ||
                     (next == cs::idle && (from == cs::opening || from == cs::in_use)) || (next == cs::closing));
        if (from == cs::opening && next != cs::opening)
            --opening_;
        if (next == cs::closing && from != cs::closing)
            ++closing_;
        c.status = next;
    }

    const std::size_t max_connections_;
    const std::size_t min_connections_;
    double (*const jitter_)() noexcept;
    std::list<node> nodes_; // stable addresses
    // Idle connections in the order they became idle: requests take the newest,
    // the idle timeout closes the oldest.
    std::vector<node*> idle_;
    boost::intrusive::list<waiter, boost::intrusive::base_hook<waiter_hook>,
                           boost::intrusive::constant_time_size<false>>
        waiters_;
    std::size_t waiting_ = 0; // the queue's length
    std::size_t opening_ = 0;
    std::size_t closing_ = 0;
    std::size_t opened_total_ = 0;
    unsigned failed_openings_ = 0;           // in a row: the warm minimum backs off
    unsigned young_deaths_ = 0;              // in a row, too
    pool_clock::time_point warm_retry_at_{}; // after failures: when the minimum may be opened again
    bool closed_ = false;
};

} // namespace cartesia::detail

#endif
