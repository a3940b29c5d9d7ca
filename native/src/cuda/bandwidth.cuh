// Device read-bandwidth probe: the roofline that decode throughput is judged against (perf anchors
// §2). A grid-stride kernel reads a buffer with 16-byte loads and reduces it (so the reads cannot be
// elided); the best of `reps` timed passes is reported, in bytes per second.
#pragma once
#include <cstdint>

namespace moescope::cuda {
double read_bandwidth(uint64_t bytes, int reps);
}
