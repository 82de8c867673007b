// main() for GoogleTest binaries that run under mpirun: initialises MPI, runs the tests on every rank, and
// prints results from rank 0 only (failures on other ranks are still printed, with their rank).
//
// Every rank exits with the same code, agreed over MPI: Failed when any rank failed, Skipped (CTest's
// SKIP_RETURN_CODE) only when every rank skipped every case it selected, Passed otherwise.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "tests/support/ctest_outcome.h"

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (result.failed()) {
      std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.summary());
    }
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  using tessera::testing::Outcome;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  auto& listeners = testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  const Outcome local = tessera::testing::run_outcome(RUN_ALL_TESTS());
  // Every rank learns whether any rank failed and whether all skipped, so the job's verdict is the same everywhere.
  const int local_failed = local == Outcome::kFailed ? 1 : 0;
  const int local_skipped = local == Outcome::kSkipped ? 1 : 0;
  int any_failed = 0;
  int all_skipped = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&local_skipped, &all_skipped, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  const Outcome job = any_failed ? Outcome::kFailed : all_skipped ? Outcome::kSkipped : Outcome::kPassed;
  if (rank == 0 && job == Outcome::kFailed) std::printf("tessera: failed on at least one rank\n");
  if (rank == 0 && job == Outcome::kSkipped) {
    std::printf("tessera: skipped: every rank skipped every case it selected, none failed\n");
  }
  MPI_Finalize();
  return tessera::testing::exit_code(job);
}
