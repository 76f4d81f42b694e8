// For the state-machine tests, built with BOOST_ENABLE_ASSERT_HANDLER: a failed
// BOOST_ASSERT throws, so that a test can expect a refused transition, in any
// build type.
#include <boost/assert.hpp>

#include <stdexcept>
#include <string>

namespace boost {

void assertion_failed(const char* expr, const char* /*function*/, const char* file, long line)
{
    throw std::logic_error(std::string("assertion failed: ") + expr + " at " + file + ":" + std::to_string(line));
}

void assertion_failed_msg(const char* expr, const char* /*msg*/, const char* function, const char* file, long line)
{
    assertion_failed(expr, function, file, line);
}

} // namespace boost
