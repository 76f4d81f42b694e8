// The deadlines of a client's attempts in flight, sans-io. Every attempt of a
// client has the same timeout, so attempts expire in the order they started: a
// FIFO list, of which one timer watches the head. An attempt that ends in time
// just leaves the list: no timer to cancel, no cancelled wait to complete.
#ifndef CARTESIA_SRC_DEADLINE_LIST_HPP
#define CARTESIA_SRC_DEADLINE_LIST_HPP

#include <boost/assert.hpp>
#include <boost/intrusive/list.hpp>

#include <chrono>

namespace cartesia::detail {

using deadline_hook = boost::intrusive::list_base_hook<boost::intrusive::tag<struct deadline_tag>,
                                                       boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

template <class Clock> class basic_deadline_list {
public:
    class item : public deadline_hook {
    public:
        typename Clock::time_point deadline{};
        bool watched() const noexcept { return deadline_hook::is_linked(); }
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

    static void unwatch(item& i) noexcept { i.deadline_hook::unlink(); }

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
    boost::intrusive::list<item, boost::intrusive::base_hook<deadline_hook>,
                           boost::intrusive::constant_time_size<false>>
        items_;
};

} // namespace cartesia::detail

#endif
