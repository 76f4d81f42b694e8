// The faults a request selects with the path /fault/<name>/access-token, listed by
// fault_names() and applied by fault_dispatcher from the same table. Private to the test server.
#ifndef CARTESIA_TEST_SUPPORT_FAULTS_HPP
#define CARTESIA_TEST_SUPPORT_FAULTS_HPP

#include "support/fake_api.hpp"
#include "support/http_format.hpp"
#include "support/server_connection.hpp"
#include "support/test_server.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace cartesia::test::detail {

// The fault named by "/fault/<name>/access-token": "" for a plain "/access-token" and
// nullopt for any other path. A query string is ignored, as the API does.
std::optional<std::string_view> fault_of(std::string_view target);

// Applies faults for one server, which needs one of these: it remembers which once-<code>
// faults have answered with their error. Only the server's thread uses it.
class fault_dispatcher {
public:
    // The answer of the fault `name` to `request`, received on `c` (which the coroutine uses
    // until it completes), or nullopt when no fault has that name.
    boost::asio::awaitable<std::optional<canned_response>> answer(std::string_view name, connection& c,
                                                                  const request_type& request, const fake_api& api);

private:
    std::set<std::string, std::less<>> spent_once_faults_;
};

} // namespace cartesia::test::detail

#endif
