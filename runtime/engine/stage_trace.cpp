#include "runtime/engine/stage_trace.h"

#include <chrono>
#include <cstdlib>

#include "kernels/base/error.h"

namespace tessera::runtime {

StageTrace StageTrace::from_environment(const parallel::Topology& topology) {
  StageTrace trace;
  const char* prefix = std::getenv("TESSERA_STAGE_TRACE");
  if (prefix == nullptr || *prefix == '\0') return trace;
  const std::string path = concat(prefix, ".rank", topology.rank(), ".jsonl");
  trace.file_.reset(std::fopen(path.c_str(), "w"));
  TESSERA_CHECK(trace.file_ != nullptr, "TESSERA_STAGE_TRACE: cannot write ", path);
  trace.rank_ = topology.rank();
  trace.stage_ = topology.stage();
  return trace;
}

int64_t StageTrace::now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void StageTrace::record(const parallel::StepPlan& plan, int64_t rows, int64_t begin_us, int64_t end_us) {
  if (!file_) return;
  std::fprintf(file_.get(),
               "{\"rank\":%d,\"stage\":%d,\"step\":%llu,\"micro_batch\":%d,\"sequences\":%zu,\"rows\":%lld,"
               "\"begin_us\":%lld,\"end_us\":%lld}\n",
               rank_, stage_, static_cast<unsigned long long>(plan.step_index), int{plan.micro_batch},
               plan.sequences.size(), static_cast<long long>(rows), static_cast<long long>(begin_us),
               static_cast<long long>(end_us));
  std::fflush(file_.get());
}

}  // namespace tessera::runtime
