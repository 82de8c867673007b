// The hand-over from HTTP threads to the engine thread: bounded, closable, wakes the waiting engine thread.
#include <gtest/gtest.h>

#include <thread>

#include "runtime/engine/request_queue.h"

namespace tessera::runtime {
namespace {

GenerationRequest one() {
  GenerationRequest r;
  r.prompt = {1, 2};
  return r;
}

TEST(RequestQueue, BoundedByWhatWaitsHereAndInTheScheduler) {
  RequestQueue q(2);
  q.submit(one());
  q.submit(one());
  EXPECT_THROW(q.submit(one()), QueueFull);
  auto work = q.take();
  EXPECT_EQ(work.submitted.size(), 2u);
  EXPECT_EQ(q.waiting(), 2u);  // taken, not yet admitted
  EXPECT_THROW(q.submit(one()), QueueFull);
  q.report_engine_waiting(0);  // the scheduler admitted them
  EXPECT_NO_THROW(q.submit(one()));
}

TEST(RequestQueue, ClosedRefusesAndWakes) {
  RequestQueue q(4);
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    q.close();
  });
  const auto start = std::chrono::steady_clock::now();
  q.wait_for_work(std::chrono::seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  closer.join();
  EXPECT_TRUE(q.closed());
  EXPECT_THROW(q.submit(one()), QueueClosed);
}

TEST(RequestQueue, SubmitAndCancelFromManyThreads) {
  RequestQueue q(100000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) q.cancel(q.submit(one()));
    });
  }
  size_t submitted = 0, cancelled = 0;
  while (submitted < 8000 || cancelled < 8000) {
    q.wait_for_work(std::chrono::milliseconds(100));
    auto w = q.take();
    submitted += w.submitted.size();
    cancelled += w.cancelled.size();
    q.report_engine_waiting(0);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(submitted, 8000u);
  EXPECT_EQ(cancelled, 8000u);
}

}  // namespace
}  // namespace tessera::runtime
