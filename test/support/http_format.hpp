// Response bytes made from a canned_response: the usual framing and the unusual ones that
// faults ask for. Private to the test server.
#ifndef CARTESIA_TEST_SUPPORT_HTTP_FORMAT_HPP
#define CARTESIA_TEST_SUPPORT_HTTP_FORMAT_HPP

#include "support/test_server.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cartesia::test::detail {

using request_type = boost::beast::http::request<boost::beast::http::string_body>;
using ending = canned_response::ending;

// The reason phrase of `status`, "Unknown Status" for one HTTP does not name.
std::string reason_phrase(unsigned status);

// One chunk of the chunked transfer coding.
std::string chunk_of(std::string_view data);

// `answer` in the chunked transfer coding, its body cut into chunks of at most chunk_size bytes.
std::string format_chunked(const canned_response& answer, std::size_t chunk_size, unsigned http_version,
                           bool keep_alive);

// `answer` with neither Content-Length nor chunking: only the end of the connection ends the body.
std::string format_eof_delimited(const canned_response& answer, unsigned http_version);

// The head of a 200 JSON answer with a streamed body: Content-Length `length`, or chunked without one.
std::string streamed_head(std::optional<std::size_t> length);

// An IMF-fixdate (RFC 9110, 5.6.7) such as "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::sys_seconds when);

// Bytes sent as they are, then the connection ended as `then` says.
canned_response raw_response(std::string bytes, ending then);

// Nothing more to send; only the connection's fate is left to decide.
canned_response silence_then(ending then);

} // namespace cartesia::test::detail

#endif
