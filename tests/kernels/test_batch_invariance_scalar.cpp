// Batch invariance of the native block kernels under the scalar build (tests/kernels/batch_invariance.h); Skipped by
// CTest on a CPU that cannot run it.
#include "tests/kernels/batch_invariance.h"

namespace tessera::kernels::cpu {
namespace {

TEST(BatchInvariance, NativeRowsAreBitIdenticalAtBatch1_16_64_Scalar) { batch_invariance::run(PackedIsa::kScalar); }

}  // namespace
}  // namespace tessera::kernels::cpu
