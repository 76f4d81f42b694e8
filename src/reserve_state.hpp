// The bookkeeping of a token reserve (issue 15's cartesia::token_reserve), sans-io:
// which minted tokens are ready and until when, how many mints are in flight,
// how many takers wait, and the rules for minting more. No I/O and no clock:
// times are passed in. A driver carries out its answers (starts mints, hands
// tokens to waiting takers, wipes discarded tokens, sets one timer).
//
// The rules:
// - The reserve wants `target` tokens, ready or being minted, at most `size`, and
//   never has more than `size` mints in flight. It starts wanting `size`.
// - A take shows demand: the target goes back to `size`, so the token taken is
//   replaced. A token that reaches its end (`usable_until`: its max_age, or
//   shortly before the token itself expires) is discarded, never handed out; it
//   is replaced only if someone took a token since it was minted. Idle, the
//   reserve therefore mints `size` tokens once after its last take, then none.
// - A taker that finds no ready token waits (first come, first served); each
//   waiter counts as wanted on top of the target, and a mint goes to the
//   longest-waiting taker first.
// - A failed mint's error goes to the longest-waiting taker, as its token would
//   have, and starts a backoff (retry_delay's steps), unless it was started
//   before the current backoff began: mints that fail together are one failure,
//   not `size` steps of it. Until the backoff ends, no mint starts, so a taker
//   without a ready token waits only for a mint still under way (one each, in
//   order): the others fail at once with the last error, those waiting already
//   (the latest comers) as those that come. After it, one mint at a time probes
//   the API until one succeeds.
// - A failed mint counts against the idle allowance as a discarded token does:
//   with no take since the previous failure it lowers the target, so an idle
//   reserve facing a failing API stops after `size` failed mints instead of
//   probing for ever; the next take brings the target, and the probing, back.
// - A token that arrives with less than `shortest_keep` of usable life (its
//   expires_at passed, or nearly, by the local clock: a clock ahead of the API's
//   by about a token's life) shows that no token can be kept: the reserve stops
//   minting ahead, and a take waits for a mint of its own, one call per take as
//   without a reserve, not `size` more to be discarded. The first token that
//   arrives with time left, a waiter's included, lets the next take bring the
//   target back.
// - Nothing here allocates after construction, and nothing throws: the ready
//   tokens live in a vector reserved to `size` (ready + in flight never exceed
//   it), and what is discarded is handed to the driver's callback to wipe.
#ifndef CARTESIA_SRC_RESERVE_STATE_HPP
#define CARTESIA_SRC_RESERVE_STATE_HPP

#include "retry_policy.hpp"

#include <boost/asio/error.hpp>
#include <boost/assert.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace cartesia::detail {

using reserve_clock = std::chrono::steady_clock;

// Until when a token minted at `now` may be handed out from the reserve: until
// `max_age`, and while a quarter of its life (at most `expiry_margin`) is left,
// so that its taker has the time to use it. `life` is what the token itself has
// left (from its expires_at), unknown for an opaque token without expires_in.
inline constexpr std::chrono::seconds expiry_margin{10};
// A token usable for less is not kept: it would end before a taker came (the
// shortest max_age is this long too).
inline constexpr std::chrono::seconds shortest_keep{1};

inline reserve_clock::time_point usable_until(reserve_clock::time_point now, reserve_clock::duration max_age,
                                              std::optional<reserve_clock::duration> life) noexcept
{
    auto end = now + max_age;
    if (life) {
        const auto margin = std::min<reserve_clock::duration>(expiry_margin, *life / 4);
        end = std::min(end, now + (*life - margin));
    }
    return end;
}

template <class Token> class reserve_state {
public:
    struct settings {
        std::size_t size = 4;
        reserve_clock::duration max_age = std::chrono::seconds(60);
    };

    // `jitter` in [0, 1), for the backoff; injected so that tests are exact.
    // Throws bad_alloc (the room for `size` ready tokens).
    reserve_state(const settings& s, double (*jitter)() noexcept) : settings_(s), target_(s.size), jitter_(jitter)
    {
        BOOST_ASSERT(s.size > 0);
        ready_.reserve(s.size);
    }

    // --- takers ------------------------------------------------------------------

    enum class take_kind {
        ready, // `token` is the taker's
        wait,  // no token ready: wait for a mint (served in order)
        fail,  // no token ready and none coming soon: `error`
    };
    struct take_answer {
        take_kind kind = take_kind::wait;
        std::optional<Token> token{};
        boost::system::error_code error{};
    };

    // Call expire(now) first, so that no token past its end is handed out.
    take_answer take(reserve_clock::time_point now) noexcept
    {
        if (closed_)
            return {take_kind::fail, std::nullopt, boost::asio::error::operation_aborted};
        last_take_ = now;
        if (tokens_keep_)
            target_ = settings_.size; // demand: what is taken is replaced
        if (!ready_.empty()) {
            // The one nearest its end: the others stay usable longer. The oldest,
            // unless a token's own expiry comes before an older one's max_age.
            const auto first_to_end =
                std::min_element(ready_.begin(), ready_.end(),
                                 [](const entry& a, const entry& b) { return a.usable_until < b.usable_until; });
            take_answer answer{take_kind::ready, std::move(first_to_end->token), {}};
            ready_.erase(first_to_end);
            check_invariants();
            return answer;
        }
        // Backing off, nothing is coming unless a mint started before the failure
        // is still under way and not owed to an earlier taker: then wait for it (it
        // may well succeed).
        if (backing_off(now) && in_flight_ <= waiting_)
            return {take_kind::fail, std::nullopt, last_error_};
        ++waiting_;
        check_invariants();
        return {};
    }

    // A waiting taker gave up (cancelled): no mint is owed to it any more.
    void leave() noexcept
    {
        BOOST_ASSERT(waiting_ > 0);
        --waiting_;
    }

    // --- minting -----------------------------------------------------------------

    // The backoff period a mint starts in, to be handed back to mint_failed().
    std::uint64_t mint_epoch() const noexcept { return epoch_; }

    // How many mints to start now; each ends in minted() or mint_failed().
    std::size_t mints_due(reserve_clock::time_point now) noexcept
    {
        if (closed_ || backing_off(now))
            return 0;
        const std::size_t wanted = target_ + waiting_;
        const std::size_t have = ready_.size() + in_flight_;
        if (wanted <= have)
            return 0;
        // While the API fails, one probe at a time.
        const std::size_t limit = failures_ > 0 ? 1 : settings_.size;
        const std::size_t room = in_flight_ < limit ? limit - in_flight_ : 0;
        const std::size_t due = std::min(wanted - have, room);
        in_flight_ += due;
        check_invariants();
        return due;
    }

    enum class minted_kind {
        to_waiter, // hand the token to the longest-waiting taker
        kept,      // kept ready until `usable_until`
        discard,   // not wanted (closed, or already past its end): wipe it
    };

    // A mint succeeded at `now`; the token is usable until `usable_until`. For
    // `kept`, the token was moved into the reserve.
    minted_kind minted(Token& token, reserve_clock::time_point now, reserve_clock::time_point usable_until) noexcept
    {
        BOOST_ASSERT(in_flight_ > 0);
        --in_flight_;
        failures_ = 0;
        if (closed_)
            return minted_kind::discard;
        tokens_keep_ = usable_until - now >= shortest_keep;
        if (!tokens_keep_)
            target_ = 0; // none minted ahead would keep either: takes wait for mints of their own
        if (waiting_ > 0) {
            // Minted for this taker, as fresh as a token minted for its request:
            // handed over whatever its end, which is the reserve's margin.
            --waiting_;
            return minted_kind::to_waiter;
        }
        if (!tokens_keep_)
            return minted_kind::discard;
        BOOST_ASSERT(ready_.size() < ready_.capacity()); // ready + in flight <= size: no reallocation
        ready_.push_back(entry{std::move(token), now, usable_until});
        check_invariants();
        return minted_kind::kept;
    }

    // The waiting takers a failed mint fails: the `oldest` (its error is theirs, as
    // its token would have been) and, while backing off, the `youngest` (no mint
    // under way is left for them, and none starts before the backoff ends). Those
    // between wait on.
    struct failed_waiters {
        std::size_t oldest = 0;
        std::size_t youngest = 0;
        std::size_t total() const noexcept { return oldest + youngest; }
    };

    // A mint started in `epoch` (mint_epoch() then) failed at `now` with `ec`:
    // returns the waiting takers to fail with it, and backs off.
    failed_waiters mint_failed(boost::system::error_code ec, reserve_clock::time_point now,
                               std::uint64_t epoch) noexcept
    {
        BOOST_ASSERT(in_flight_ > 0 && ec && epoch <= epoch_);
        --in_flight_;
        if (closed_)
            return {};
        last_error_ = ec;
        if (!last_take_ || (last_failure_ && *last_take_ < *last_failure_))
            spend_idle_allowance(); // nobody took one since the last failure
        last_failure_ = now;
        if (epoch == epoch_) {
            // The first failure of this period: the next step of the backoff. The
            // API's own Retry-After was honoured by the client's retries already.
            const auto delay = retry_delay(failures_, jitter_ ? jitter_() : 0.5, std::nullopt);
            ++failures_;
            ++epoch_;
            backoff_until_ = now + delay;
        }
        failed_waiters failed;
        if (waiting_ > 0) {
            failed.oldest = 1;
            // Not backing off (a mint of an earlier period that failed after its
            // backoff ended), the mints due start at once: the others wait for them.
            const std::size_t others = waiting_ - 1;
            if (backing_off(now) && others > in_flight_)
                failed.youngest = others - in_flight_;
            waiting_ -= failed.total();
        }
        check_invariants();
        return failed;
    }

    // --- time --------------------------------------------------------------------

    // Discards the tokens whose end has come, oldest first: `discard(Token&)`,
    // noexcept, wipes each (the driver's). All of them are looked at: a younger
    // token may end first (its own expiry before an older one's max_age). Returns
    // how many were discarded.
    template <class Discard> std::size_t expire(reserve_clock::time_point now, Discard&& discard) noexcept
    {
        static_assert(noexcept(discard(std::declval<Token&>())));
        std::size_t discarded = 0;
        for (auto it = ready_.begin(); it != ready_.end();) {
            if (it->usable_until > now) {
                ++it;
                continue;
            }
            if (!last_take_ || *last_take_ < it->minted_at)
                spend_idle_allowance(); // nobody took one during its life
            discard(it->token);
            ++discarded;
            it = ready_.erase(it);
        }
        check_invariants();
        return discarded;
    }

    // When the driver's timer should next call expire() and mints_due(): the
    // first end of a ready token, or the end of a backoff that has mints waiting
    // for it. max() when nothing is due.
    reserve_clock::time_point next_wakeup(reserve_clock::time_point now) const noexcept
    {
        auto at = reserve_clock::time_point::max();
        for (const auto& kept : ready_)
            at = std::min(at, kept.usable_until);
        if (!closed_ && backing_off(now) && target_ + waiting_ > ready_.size() + in_flight_)
            at = std::min(at, backoff_until_);
        return at;
    }

    // --- the end -----------------------------------------------------------------

    // Discards every ready token through `discard(Token&)`, noexcept; returns how
    // many waiting takers to fail with operation_aborted. Mints in flight end as
    // discard.
    template <class Discard> std::size_t close(Discard&& discard) noexcept
    {
        static_assert(noexcept(discard(std::declval<Token&>())));
        closed_ = true;
        for (auto& kept : ready_)
            discard(kept.token);
        ready_.clear();
        return std::exchange(waiting_, 0);
    }

    std::size_t ready() const noexcept { return ready_.size(); }
    std::size_t in_flight() const noexcept { return in_flight_; }
    std::size_t waiting() const noexcept { return waiting_; }
    std::size_t target() const noexcept { return target_; }
    bool closed() const noexcept { return closed_; }
    bool backing_off(reserve_clock::time_point now) const noexcept { return failures_ > 0 && now < backoff_until_; }

private:
    // A token discarded, or a mint failed, with no take to show demand: one fewer
    // is wanted, so that an idle reserve stops at `size` of them.
    void spend_idle_allowance() noexcept
    {
        if (target_ > 0)
            --target_;
    }

    void check_invariants() const noexcept
    {
        BOOST_ASSERT(target_ <= settings_.size);
        BOOST_ASSERT(ready_.size() + in_flight_ <= settings_.size);
        BOOST_ASSERT(waiting_ == 0 || ready_.empty()); // a ready token would have gone to a waiter
        BOOST_ASSERT(!closed_ || (ready_.empty() && waiting_ == 0));
    }

    struct entry {
        Token token;
        reserve_clock::time_point minted_at;
        reserve_clock::time_point usable_until;
    };

    const settings settings_;
    std::vector<entry> ready_; // oldest first (not always the first to end); capacity `size`
    std::size_t target_;
    std::size_t in_flight_ = 0;
    std::size_t waiting_ = 0;
    unsigned failures_ = 0; // consecutive failed mints
    boost::system::error_code last_error_{};
    reserve_clock::time_point backoff_until_{};
    std::optional<reserve_clock::time_point> last_take_{};
    std::optional<reserve_clock::time_point> last_failure_{};
    std::uint64_t epoch_ = 0; // backoff periods begun
    bool tokens_keep_ = true; // the last token minted had time left: minting ahead is worth it
    double (*jitter_)() noexcept;
    bool closed_ = false;
};

} // namespace cartesia::detail

#endif
