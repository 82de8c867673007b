// The caching device pool's bookkeeping, on a host-memory device with a fixed capacity (the pool's logic
// does not depend on what the memory is; the CUDA device under it is tested on a GPU).
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

#include "kernels/base/error.h"
#include "runtime/device/caching_pool.h"

namespace tessera::runtime {
namespace {

// Host memory with a hard capacity, counting what reaches it.
class HostDevice final : public RawDeviceMemory {
 public:
  explicit HostDevice(size_t capacity, size_t* live_allocations) : capacity_(capacity), live_(live_allocations) {}
  void* allocate(size_t bytes) override {
    if (used_ + bytes > capacity_) return nullptr;
    used_ += bytes;
    ++*live_;
    void* ptr = std::malloc(bytes);
    sizes_[ptr] = bytes;
    return ptr;
  }
  void release(void* ptr) noexcept override {
    used_ -= sizes_[ptr];
    sizes_.erase(ptr);
    --*live_;
    std::free(ptr);
  }
  DeviceMemoryInfo memory_info() override { return {capacity_ - used_, capacity_}; }
  std::string device_name() const override { return "host-test:0"; }

 private:
  size_t capacity_;
  size_t used_ = 0;
  size_t* live_;
  std::map<void*, size_t> sizes_;
};

constexpr size_t kMiB = size_t{1} << 20;

TEST(PoolSizeClass, RoundsUp) {
  EXPECT_EQ(pool_size_class(1), 512u);
  EXPECT_EQ(pool_size_class(512), 512u);
  EXPECT_EQ(pool_size_class(513), 1024u);
  EXPECT_EQ(pool_size_class(kMiB), kMiB);
  EXPECT_EQ(pool_size_class(kMiB + 1), 2 * kMiB);
  EXPECT_EQ(pool_size_class(5 * kMiB), 6 * kMiB);
}

TEST(CachingDevicePool, ReusesFreedBlocksOfTheSameClass) {
  size_t live = 0;
  {
    CachingDevicePool pool(std::make_unique<HostDevice>(64 * kMiB, &live));
    void* a = pool.allocate(1000);
    void* b = pool.allocate(3 * kMiB);
    EXPECT_NE(a, b);
    EXPECT_EQ(pool.stats().in_use_bytes, 1024 + 4 * kMiB);
    pool.deallocate(a);
    pool.deallocate(b);
    EXPECT_EQ(pool.stats().in_use_bytes, 0u);
    EXPECT_EQ(pool.stats().cached_bytes, 1024 + 4 * kMiB);
    EXPECT_EQ(pool.allocate(700), a);          // same class, cached
    EXPECT_EQ(pool.allocate(3 * kMiB + 5), b);  // same class, cached
    const PoolStats stats = pool.stats();
    EXPECT_EQ(stats.requests, 4u);
    EXPECT_EQ(stats.cache_hits, 2u);
    EXPECT_EQ(stats.device_allocations, 2u);
    EXPECT_EQ(stats.cached_bytes, 0u);
    EXPECT_EQ(live, 2u);
  }
  EXPECT_EQ(live, 0u);  // the destructor returns blocks in use too
}

TEST(CachingDevicePool, DoesNotHandOutAMuchLargerBlock) {
  size_t live = 0;
  CachingDevicePool pool(std::make_unique<HostDevice>(64 * kMiB, &live));
  void* big = pool.allocate(16 * kMiB);
  pool.deallocate(big);
  void* small = pool.allocate(4 * kMiB);  // a 16 MiB block for 4 MiB would waste 12
  EXPECT_NE(small, big);
  void* tiny = pool.allocate(100);
  EXPECT_NE(tiny, big);
  EXPECT_EQ(pool.stats().cache_hits, 0u);
}

TEST(CachingDevicePool, FlushesTheCacheBeforeGivingUp) {
  size_t live = 0;
  CachingDevicePool pool(std::make_unique<HostDevice>(10 * kMiB, &live));
  void* a = pool.allocate(8 * kMiB);
  pool.deallocate(a);  // cached: the device is still full
  void* b = pool.allocate(4 * kMiB);  // does not fit beside the cached block: flush and retry
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(pool.stats().cache_flushes, 1u);
  EXPECT_EQ(pool.stats().cached_bytes, 0u);
  EXPECT_EQ(live, 1u);
}

TEST(CachingDevicePool, OutOfMemoryStatesRequestDeviceAndPool) {
  size_t live = 0;
  CachingDevicePool pool(std::make_unique<HostDevice>(8 * kMiB, &live));
  void* a = pool.allocate(6 * kMiB);
  ASSERT_NE(a, nullptr);
  try {
    pool.allocate(3 * kMiB);
    FAIL() << "expected out of memory";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("out of device memory on host-test:0: requested 3145728 bytes (3.0 MiB)"), std::string::npos)
        << message;
    EXPECT_NE(message.find("device has 2.0 MiB free of 8.0 MiB"), std::string::npos) << message;
    EXPECT_NE(message.find("6.0 MiB in use (peak 6.0 MiB) and 0.0 MiB cached"), std::string::npos) << message;
  }
  EXPECT_EQ(pool.stats().in_use_bytes, 6 * kMiB);  // a failed request changes nothing
}

TEST(CachingDevicePool, RejectsForeignAndDoubleFrees) {
  size_t live = 0;
  CachingDevicePool pool(std::make_unique<HostDevice>(8 * kMiB, &live));
  int on_stack = 0;
  EXPECT_THROW(pool.deallocate(&on_stack), Error);
  void* a = pool.allocate(10);
  pool.deallocate(a);
  EXPECT_THROW(pool.deallocate(a), Error);
  pool.deallocate(nullptr);
  EXPECT_EQ(pool.allocate(0), nullptr);
}

TEST(PooledBlock, ReturnsItsBlockOnDestruction) {
  size_t live = 0;
  CachingDevicePool pool(std::make_unique<HostDevice>(8 * kMiB, &live));
  {
    PooledBlock block(pool, 4000);
    EXPECT_EQ(pool.stats().in_use_bytes, 4096u);
    PooledBlock moved = std::move(block);
    EXPECT_EQ(block.get(), nullptr);
    EXPECT_NE(moved.get(), nullptr);
  }
  EXPECT_EQ(pool.stats().in_use_bytes, 0u);
  EXPECT_EQ(pool.stats().cached_bytes, 4096u);
}

}  // namespace
}  // namespace tessera::runtime
