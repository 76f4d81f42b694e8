// Lets Boost.Test print cartesia::error in failed assertions.
#ifndef CARTESIA_TEST_SUPPORT_PRINTING_HPP
#define CARTESIA_TEST_SUPPORT_PRINTING_HPP

#include <cartesia/error.hpp>

#include <ostream>

namespace cartesia {
inline std::ostream& boost_test_print_type(std::ostream& out, error e)
{
    return out << make_error_code(e);
}
} // namespace cartesia

#endif
