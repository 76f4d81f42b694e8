#define BOOST_TEST_MODULE cartesia_asio
#include <boost/test/unit_test.hpp>
