#pragma once
// A caching device memory pool: freed blocks are kept by size class and handed out again, because
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, far too much per decode step.
// The pool is device-agnostic: the device side is a RawDeviceMemory (runtime/device/cuda/ provides the
// CUDA one), so the caching logic is tested without a GPU. Thread-safe.
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tessera::runtime {

struct DeviceMemoryInfo {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};

// What the pool needs from a device.
class RawDeviceMemory {
 public:
  virtual ~RawDeviceMemory() = default;
  virtual void* allocate(size_t bytes) = 0;  // nullptr when the device is out of memory; throws otherwise
  virtual void release(void* ptr) noexcept = 0;
  virtual DeviceMemoryInfo memory_info() = 0;
  virtual std::string device_name() const = 0;  // "cuda:0", for messages
};

struct PoolStats {
  size_t in_use_bytes = 0;       // handed out (size-class bytes)
  size_t cached_bytes = 0;       // freed, kept for reuse
  size_t peak_in_use_bytes = 0;
  size_t requests = 0;
  size_t cache_hits = 0;
  size_t device_allocations = 0;
  size_t cache_flushes = 0;  // times the cache was emptied to satisfy a request
  size_t reserved_bytes() const { return in_use_bytes + cached_bytes; }
};

// Requests are rounded up to a size class: 512 B, 1 KiB, ... up to 1 MiB by powers of two (small blocks:
// few classes, many reuses), above that to a multiple of 2 MiB (large blocks: at most 2 MiB waste).
size_t pool_size_class(size_t bytes);

// The out-of-memory message: requested bytes, the device's free/total bytes and the pool's usage.
std::string describe_out_of_memory(const std::string& device, size_t requested, const DeviceMemoryInfo& info,
                                   const PoolStats& stats);

class CachingDevicePool {
 public:
  explicit CachingDevicePool(std::unique_ptr<RawDeviceMemory> raw);
  ~CachingDevicePool();  // returns every block, cached or not, to the device
  CachingDevicePool(const CachingDevicePool&) = delete;
  CachingDevicePool& operator=(const CachingDevicePool&) = delete;

  // nullptr for 0 bytes. When the device is out of memory the cache is returned to it and the request
  // retried once; then throws tessera::Error (describe_out_of_memory).
  void* allocate(size_t bytes);
  // nullptr is ignored; throws for a pointer this pool did not hand out.
  void deallocate(void* ptr);
  void release_cached();
  PoolStats stats() const;

 private:
  void release_cached_locked();

  std::unique_ptr<RawDeviceMemory> raw_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> cached_;         // size class -> free block
  std::unordered_map<void*, size_t> in_use_;    // block -> size class
  PoolStats stats_;
};

// A block from a pool, returned on destruction.
class PooledBlock {
 public:
  PooledBlock() = default;
  PooledBlock(CachingDevicePool& pool, size_t bytes) : pool_(&pool), data_(pool.allocate(bytes)), bytes_(bytes) {}
  ~PooledBlock() { reset(); }
  PooledBlock(PooledBlock&& other) noexcept { *this = std::move(other); }
  PooledBlock& operator=(PooledBlock&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = other.pool_;
      data_ = other.data_;
      bytes_ = other.bytes_;
      other.pool_ = nullptr;
      other.data_ = nullptr;
      other.bytes_ = 0;
    }
    return *this;
  }
  void* get() const { return data_; }
  size_t bytes() const { return bytes_; }
  void reset() noexcept {
    if (pool_ != nullptr && data_ != nullptr) {
      try {
        pool_->deallocate(data_);
      } catch (...) {
        // Cannot happen for a block the pool handed out; destructors do not throw.
      }
    }
    data_ = nullptr;
    bytes_ = 0;
  }

 private:
  CachingDevicePool* pool_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace tessera::runtime
