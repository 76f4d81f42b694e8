// cartesia-bench's latency histogram: the library's (src/log_histogram.hpp) with
// 128 buckets per power of two (each quantile within 0.39%), up to 2^37 ns (137 s).
#pragma once

#include "log_histogram.hpp"

namespace cartesia_bench {
using latency_histogram = cartesia::detail::log_histogram<7, 37>;
}
