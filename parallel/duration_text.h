#pragma once
// How durations appear in the messages of the parallel layer's deadlines (the NCCL wait loop, the rank watchdog).
#include <chrono>
#include <string>

namespace tessera::parallel {

// "30 s", "1.5 s", "250 ms".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace tessera::parallel
