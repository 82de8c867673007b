// Batch invariance of the native block kernels under the avx512 build (tests/kernels/batch_invariance.h); Skipped by
// CTest on a CPU that cannot run it.
#include "tests/kernels/batch_invariance.h"

namespace tessera::kernels::cpu {
namespace {

TEST(BatchInvariance, NativeRowsAreBitIdenticalAtBatch1_16_64_Avx512) { batch_invariance::run(PackedIsa::kAvx512); }

}  // namespace
}  // namespace tessera::kernels::cpu
