#include "parallel/duration_text.h"

#include "kernels/base/error.h"

namespace tessera::parallel {

std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms % 1000 == 0) return concat(ms / 1000, " s");
  if (ms > 1000) return concat(ms / 1000, ".", (ms % 1000) / 100, " s");  // one decimal is enough
  return concat(ms, " ms");
}

}  // namespace tessera::parallel
