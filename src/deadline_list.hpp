// Deadlines of one kind in flight, sans-io: a client's attempts', or its
// operations' total deadlines. Every attempt of a client has the same timeout,
// and every operation the same total_timeout, so deadlines of one kind expire in
// the order they started: a FIFO list, of which one timer watches the head. An
// attempt that ends in time just leaves the list: no timer to cancel, no cancelled
// wait to complete. `Tag` tells the lists of one object apart.
#ifndef CARTESIA_SRC_DEADLINE_LIST_HPP
#define CARTESIA_SRC_DEADLINE_LIST_HPP

#include <boost/assert.hpp>
#include <boost/intrusive/list.hpp>

#include <chrono>

namespace cartesia::detail {

template <class Tag>
using deadline_hook = boost::intrusive::list_base_hook<boost::intrusive::tag<Tag>,
                                                       boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

template <class Clock, class Tag = struct deadline_tag> class basic_deadline_list {
    using hook = deadline_hook<Tag>;

public:
    class item : public hook {
    public:
        typename Clock::time_point deadline{};
        bool watched() const noexcept { return hook::is_linked(); }
    };

    // Returns true when `i` is now the first deadline (the timer must be set for it).
    bool watch(item& i, typename Clock::time_point at)
    {
        BOOST_ASSERT(!i.watched());
        BOOST_ASSERT(items_.empty() || items_.back().deadline <= at);
        i.deadline = at;
        items_.push_back(i);
        return &items_.front() == &i;
    }

    static void unwatch(item& i) noexcept { i.hook::unlink(); }

    // The first item whose deadline is at or before `now`, taken off the list; nullptr when none.
    item* pop_expired(typename Clock::time_point now) noexcept
    {
        if (items_.empty() || items_.front().deadline > now)
            return nullptr;
        item& expired = items_.front();
        items_.pop_front();
        return &expired;
    }

    // The first deadline still watched; max() when none.
    typename Clock::time_point next() const noexcept
    {
        return items_.empty() ? Clock::time_point::max() : items_.front().deadline;
    }

    bool empty() const noexcept { return items_.empty(); }

private:
    boost::intrusive::list<item, boost::intrusive::base_hook<hook>, boost::intrusive::constant_time_size<false>> items_;
};

} // namespace cartesia::detail

#endif
