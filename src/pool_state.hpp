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
// connections opening never exceeds the number of waiters.
#ifndef CARTESIA_SRC_POOL_STATE_HPP
#define CARTESIA_SRC_POOL_STATE_HPP

#include <boost/asio/error.hpp>
#include <boost/assert.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
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
    pool_clock::time_point idle_until{}; // while idle: when it is closed
    std::size_t exchanges = 0;           // requests it has carried
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

    explicit pool_state(std::size_t max_connections) noexcept : max_connections_(max_connections) {}

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
        if (closed_ || !reusable) {
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
            opened_answer answer;
            if (waiter* next = pop_waiter()) {
                next->failure = failure;
                answer.to = next;
            }
            return answer;
        }
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
    // requests are still queued.
    node* remove(node& c)
    {
        BOOST_ASSERT(c.status == connection_status::closing);
        nodes_.erase(c.self);
        return opening_due(waiting_) ? open_one() : nullptr;
    }

    // --- time and shutdown ---------------------------------------------------

    // The idle connections whose idle time is over, oldest first, now closing;
    // the caller closes each and calls remove().
    std::vector<node*> expire_idle(pool_clock::time_point now)
    {
        std::vector<node*> expired;
        auto first_kept = idle_.begin();
        while (first_kept != idle_.end() && (*first_kept)->idle_until <= now)
            ++first_kept;
        for (auto it = idle_.begin(); it != first_kept; ++it) {
            set_status(**it, connection_status::closing);
            expired.push_back(*it);
        }
        idle_.erase(idle_.begin(), first_kept);
        return expired;
    }

    // When the oldest idle connection expires; max() when none is idle.
    pool_clock::time_point next_idle_expiry() const noexcept
    {
        return idle_.empty() ? pool_clock::time_point::max() : idle_.front()->idle_until;
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
    std::size_t connections_opened() const noexcept { return opened_total_; }

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

    // False, and no change, when the idle stack cannot grow for want of memory:
    // the caller closes the connection instead, so that release() never throws.
    bool make_idle(node& c, pool_clock::time_point now, std::chrono::milliseconds idle_timeout)
    {
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
        c.status = next;
    }

    const std::size_t max_connections_;
    std::list<node> nodes_; // stable addresses
    // Idle connections in the order they became idle: requests take the newest,
    // the idle timeout closes the oldest.
    std::vector<node*> idle_;
    boost::intrusive::list<waiter, boost::intrusive::base_hook<waiter_hook>,
                           boost::intrusive::constant_time_size<false>>
        waiters_;
    std::size_t waiting_ = 0; // the queue's length
    std::size_t opening_ = 0;
    std::size_t opened_total_ = 0;
    bool closed_ = false;
};

} // namespace cartesia::detail

#endif
