// A streaming-read probe: how many bytes per second this machine's cores can read from memory, run
// in the same process and with the same threads as the model, so that decode speed can be stated as
// a fraction of the bandwidth limit.
#pragma once
#include <cstddef>

#include "ops/threadpool.h"

namespace moescope {

// Median GB/s (1e9 bytes/s) of `reps` passes over a `bytes`-sized buffer (make it several times the
// last-level cache).
double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps);

}  // namespace moescope
