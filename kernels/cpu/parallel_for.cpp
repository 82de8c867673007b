#include "kernels/cpu/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/gemm.h"

namespace tessera::kernels::cpu {
namespace {

thread_local bool inside_pool_task = false;

int default_threads() { return std::max(1, gemm_threads()); }

// Workers 1..size-1 wait for a new generation, run their chunk (if the job has one for them) and count down
// `pending`; the caller is worker 0. Every worker acknowledges every generation, so none can lag behind into the
// next job's state.
class Pool {
 public:
  explicit Pool(int size) : size_(size) {
    for (int w = 1; w < size; ++w) workers_.emplace_back([this, w] { work(w); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int size() const { return size_; }

  void run(int chunks, const std::function<void(int)>& task) {
    std::lock_guard call_lock(call_mutex_);  // one job at a time
    task_ = &task;
    chunks_ = chunks;
    error_ = nullptr;
    pending_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_chunk(0);
    // The other chunks are short (microseconds to milliseconds): spin, yielding so an oversubscribed core
    // still runs the workers.
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_chunk(int chunk) {
    inside_pool_task = true;
    try {
      (*task_)(chunk);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    inside_pool_task = false;
  }

  void work(int w) {
    uint64_t seen = 0;
    for (;;) {
      // Spin briefly (the next kernel usually follows within microseconds during decode), then sleep.
      uint64_t now = generation_.load(std::memory_order_acquire);
      for (int spin = 0; now == seen && spin < 20000; ++spin) {
        if (spin % 64 == 63) std::this_thread::yield();
        now = generation_.load(std::memory_order_acquire);
      }
      if (now == seen) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        now = generation_.load(std::memory_order_acquire);
      }
      seen = now;
      if (stop_) return;
      if (w < chunks_) run_chunk(w);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_, mutex_, error_mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int)>* task_ = nullptr;
  int chunks_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

std::mutex pool_mutex;
int requested_threads = 0;  // 0: follow OpenBLAS
std::unique_ptr<Pool> pool;

Pool& current_pool() {
  std::lock_guard lock(pool_mutex);
  const int want = requested_threads > 0 ? requested_threads : default_threads();
  if (!pool || pool->size() != want) {
    pool.reset();
    pool = std::make_unique<Pool>(want);
  }
  return *pool;
}

}  // namespace

void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& body) {
  TESSERA_CHECK(n >= 0, "parallel_for: negative range ", n);
  if (n == 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (inside_pool_task) {
    body(0, n);
    return;
  }
  Pool& p = current_pool();
  const int64_t chunks = std::min<int64_t>(p.size(), (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1) {
    body(0, n);
    return;
  }
  // Equal chunks, the remainder spread over the first ones.
  const int64_t base = n / chunks, extra = n % chunks;
  const std::function<void(int)> task = [&](int c) {
    const int64_t begin = c * base + std::min<int64_t>(c, extra);
    const int64_t end = begin + base + (c < extra ? 1 : 0);
    body(begin, end);
  };
  p.run(static_cast<int>(chunks), task);
}

void set_kernel_threads(int n) {
  TESSERA_CHECK(n >= 1, "set_kernel_threads: thread count must be >= 1, got ", n);
  std::lock_guard lock(pool_mutex);
  requested_threads = n;
}

int kernel_threads() {
  std::lock_guard lock(pool_mutex);
  return requested_threads > 0 ? requested_threads : default_threads();
}

}  // namespace tessera::kernels::cpu
