// The Cartesia-compatible part of the test server: POST /access-token checked and answered as
// the real API does, and the API's error bodies. Private to the test server.
#ifndef CARTESIA_TEST_SUPPORT_FAKE_API_HPP
#define CARTESIA_TEST_SUPPORT_FAKE_API_HPP

#include "support/http_format.hpp"
#include "support/test_server.hpp"

#include <string>
#include <string_view>

namespace cartesia::test::detail {

// The error body of Cartesia-Version 2026-03-01; an empty error_code is sent as null.
canned_response json_error(unsigned status, std::string_view error_code, std::string_view message);

class fake_api {
public:
    explicit fake_api(std::string api_key);

    // The API's answer to a request for /access-token: a signed token, or why not.
    canned_response answer(const request_type& request) const;

private:
    std::string api_key_;
    std::string jwt_secret_; // random, per server
};

} // namespace cartesia::test::detail

#endif
