#include "runtime/engine/fault_injection.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "kernels/base/error.h"

namespace tessera::runtime {

FaultInjector FaultInjector::from_environment(int world_rank) {
  const char* spec = std::getenv("TESSERA_TEST_FAULT");
  if (!spec || !*spec) return {};
  return parse(spec, world_rank);
}

FaultInjector FaultInjector::parse(const std::string& spec, int world_rank) {
  const auto bad = [&] {
    return Error("TESSERA_TEST_FAULT='" + spec + "': expected <throw|hang>:<rank>:<work step >= 1>");
  };
  const size_t a = spec.find(':');
  const size_t b = a == std::string::npos ? a : spec.find(':', a + 1);
  if (b == std::string::npos) throw bad();
  const std::string kind = spec.substr(0, a);
  int rank = -1;
  long long step = 0;
  try {
    size_t used = 0;
    rank = std::stoi(spec.substr(a + 1, b - a - 1), &used);
    if (used != b - a - 1) throw bad();
    step = std::stoll(spec.substr(b + 1), &used);
    if (used != spec.size() - b - 1) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if ((kind != "throw" && kind != "hang") || rank < 0 || step < 1) throw bad();
  FaultInjector injector;
  if (rank == world_rank) injector.fault_ = Fault{kind == "throw" ? Kind::kThrow : Kind::kHang,
                                                  static_cast<uint64_t>(step)};
  return injector;
}

void FaultInjector::before_execute(const parallel::StepPlan& plan) {
  if (!fault_ || plan.sequences.empty()) return;
  if (++work_steps_ != fault_->work_step) return;
  if (fault_->kind == Kind::kThrow) {
    throw Error(concat("injected fault (TESSERA_TEST_FAULT) in step ", plan.step_index));
  }
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // kHang: the process lives, the step never ends
}

}  // namespace tessera::runtime
