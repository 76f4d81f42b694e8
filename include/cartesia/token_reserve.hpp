// cartesia::token_reserve: tokens minted ahead, so that taking one costs no round trip.
#ifndef CARTESIA_TOKEN_RESERVE_HPP
#define CARTESIA_TOKEN_RESERVE_HPP

#include <cartesia/client.hpp>

#include <boost/assert.hpp>

#include <chrono>
#include <cstddef>
#include <memory>

namespace cartesia {

/// How many tokens a token_reserve keeps, and for how long.
struct token_reserve_options {
    std::size_t size = 4;             ///< Tokens kept ready, 1 to 1024.
    std::chrono::seconds max_age{60}; ///< A token older than this is discarded, never handed out. 1 to 3600 s.
};

namespace detail {
class reserve_impl;
const boost::asio::any_io_executor& reserve_executor(const reserve_impl& impl) noexcept;
void start_take(const std::shared_ptr<reserve_impl>& impl, token_handler handler, bool handler_has_own_executor);
} // namespace detail

/// Freshly minted tokens, each handed out once: a backend that hands a token to
/// each browser session takes one from here in microseconds instead of waiting a
/// round trip to the API.
///
/// The reserve fills itself up to `size` in the background through its client
/// (at most `size` mints in flight) and refills as tokens are taken. A token is
/// discarded when it reaches `max_age`, or 10 s before its `expires_at` (a
/// quarter of its life before, for a short-lived one), and is
/// replaced only if a token was taken during its life: idle, the reserve mints
/// `size` tokens once after its last take, then none, so an unused reserve costs
/// `size` API calls per idle period, not a stream of them. Busy, it costs a call
/// per token taken plus at most `size` per usable life of a token (the shorter of
/// `max_age` and the life it has on arrival less that margin). A token that arrives
/// usable for less than a second (a local clock ahead of the API's) is not kept and
/// stops the minting ahead: each take then waits for a mint of its own until a
/// token arrives with time left, and the take after that brings it back.
///
/// A failed mint's error goes to the longest-waiting taker, as its token would
/// have, and the reserve backs off (0.5 s doubling to 8 s), starting no mint:
/// meanwhile a taker that finds no ready token waits only for a mint still under
/// way that no earlier taker waits for; the others fail at once with that error.
/// Then one mint at a time probes the API until one succeeds, and the reserve
/// fills up again. Idle, facing a failing API, it stops after `size` failed
/// mints (`size + 1` when the first failed after a take); the next take starts
/// the probing again.
///
/// Tokens held by the reserve are erased from memory (overwritten) when they are
/// discarded and when the reserve is closed: by close(), or by the destructor,
/// which posts it (the tokens go once the executor runs it). A take gets the ready
/// token nearest its end. A token minted for a
/// take that was waiting goes to it at once, however short its life.
///
/// The reserve keeps its executor busy while it holds tokens or backs off (a timer
/// for the next token's end), as the client does with `min_connections`: close it
/// for `io_context::run()` to return. It closes itself when it finds its client
/// closed or destroyed: at its next mint, which fails with `operation_aborted`
/// (its ready tokens are handed out until then; the take of one starts that mint).
///
/// @par Thread safety
/// All member functions may be called concurrently from any thread; the
/// reserve's state lives on a strand of the client's executor. A moved-from
/// reserve may only be destroyed.
class token_reserve {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Starts filling (posted: no I/O in the constructor). The reserve shares the
    /// client's state, so the client may be moved, closed or destroyed first (the
    /// reserve then closes; `c` must not be a moved-from client). The client's
    /// `ssl::context` must outlive the reserve's mints too. `request` is what
    /// every token is minted with; a bad one, or bad `options`, fails every take
    /// with `error::invalid_argument`.
    token_reserve(client& c, token_request request, token_reserve_options options = {});

    /// Closes the reserve (see close()).
    ~token_reserve(); // NOLINT(bugprone-exception-escape): only bad_alloc, as ~client

    token_reserve(token_reserve&&) noexcept = default;
    token_reserve& operator=(token_reserve&&) = delete;
    token_reserve(const token_reserve&) = delete;
    token_reserve& operator=(const token_reserve&) = delete;

    /// Takes a token.
    ///
    /// @par Completion
    /// `void(boost::system::error_code, token_response)`, never inside this call,
    /// on the handler's associated executor (default: the client's): at once with
    /// a ready token, or with the next token minted (first come, first served).
    ///
    /// @par Errors
    /// Those of the client's `async_generate_token` when minting fails (or failed
    /// last, while the reserve backs off); `errc::not_enough_memory` when a mint
    /// could not be started for want of memory; `error::invalid_argument`, for
    /// every take and with no mint made, when the reserve's `request` or `options`
    /// are invalid; `operation_aborted` when the reserve, or its client, is closed
    /// first, or the take was cancelled.
    ///
    /// @par Cancellation
    /// `terminal`, `partial` and `total` (a waiting take has nothing to undo),
    /// also when emitted before the take reached the reserve's strand: a waiting
    /// take leaves the queue and completes with `operation_aborted`; the mint it
    /// waited for goes to the next taker or into the reserve. A take cancelled
    /// before it reached the strand is not served even when a token is ready, nor
    /// is one whose cancellation is on its way to the strand when a mint ends. A
    /// take already served is not affected.
    template <BOOST_ASIO_COMPLETION_TOKEN_FOR(token_signature) CompletionToken = boost::asio::deferred_t>
    auto async_take(CompletionToken&& token = CompletionToken())
    {
        return boost::asio::async_initiate<CompletionToken, token_signature>(initiation{impl_}, token);
    }

    /// Tokens ready now. Any thread.
    std::size_t ready() const noexcept;

    /// Completes waiting takes with `operation_aborted`, erases the ready tokens
    /// and cancels the mints in flight; later takes complete with
    /// `operation_aborted`. Posted to the reserve's strand: it takes effect once
    /// the executor runs it. Idempotent; any thread.
    void close();

    executor_type get_executor() const noexcept;

private:
    struct initiation {
        std::shared_ptr<detail::reserve_impl> impl;
        template <class Handler> void operator()(Handler&& handler) const
        {
            BOOST_ASSERT(impl); // not a moved-from reserve
            const bool own_executor = detail::has_own_executor(handler, detail::reserve_executor(*impl));
            detail::start_take(impl, detail::token_handler(std::forward<Handler>(handler)), own_executor);
        }
    };

    std::shared_ptr<detail::reserve_impl> impl_;
};

} // namespace cartesia

#endif
