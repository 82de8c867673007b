#pragma once
// A debug trace of stage work: with TESSERA_STAGE_TRACE=<path prefix> every rank appends one JSON line per step it
// executes to <prefix>.rank<N>.jsonl — its rank, stage, the step, the micro-batch, the rows, and the wall-clock
// interval (microseconds since the Unix epoch, comparable across the ranks of one host) of its compute. This is how
// a test shows that two micro-batches really overlap on different stages. Off (no file, no cost) without the
// variable. Engine thread only.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "parallel/step_plan.h"
#include "parallel/topology.h"

namespace tessera::runtime {

class StageTrace {
 public:
  static StageTrace from_environment(const parallel::Topology& topology);
  bool enabled() const { return file_ != nullptr; }
  // Now, in microseconds since the epoch (only meaningful when enabled).
  static int64_t now_us();
  void record(const parallel::StepPlan& plan, int64_t rows, int64_t begin_us, int64_t end_us);

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Close> file_;
  int rank_ = 0;
  int stage_ = 0;
};

}  // namespace tessera::runtime
