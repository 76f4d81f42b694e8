// Boost.JSON and Boost.URL, compiled into the fuzz targets with their instrumentation
// (see CMakeLists.txt). Each src.hpp is meant for exactly one translation unit.
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
