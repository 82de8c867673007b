#include "runtime/device/caching_pool.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

constexpr size_t kMinBlock = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB
constexpr size_t kLargeGranule = size_t{2} << 20;  // 2 MiB

std::string mib(size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

}  // namespace

size_t pool_size_class(size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  if (bytes <= kSmallLimit) return std::bit_ceil(bytes);
  TESSERA_CHECK(bytes <= SIZE_MAX - kLargeGranule, "device allocation of ", bytes, " bytes is impossibly large");
  return (bytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule;
}

std::string describe_out_of_memory(const std::string& device, size_t requested, const DeviceMemoryInfo& info,
                                   const PoolStats& stats) {
  return concat("out of device memory on ", device, ": requested ", requested, " bytes (", mib(requested),
                "); device has ", mib(info.free_bytes), " free of ", mib(info.total_bytes), "; this pool holds ",
                mib(stats.in_use_bytes), " in use (peak ", mib(stats.peak_in_use_bytes), ") and ",
                mib(stats.cached_bytes), " cached. Lower gpu_memory_fraction, the batch size or the context length");
}

CachingDevicePool::CachingDevicePool(std::unique_ptr<RawDeviceMemory> raw) : raw_(std::move(raw)) {
  TESSERA_CHECK(raw_ != nullptr, "CachingDevicePool needs a device");
}

CachingDevicePool::~CachingDevicePool() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
  for (const auto& [ptr, size] : in_use_) raw_->release(ptr);
}

void* CachingDevicePool::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = pool_size_class(bytes);
  std::lock_guard lock(mutex_);
  ++stats_.requests;
  // Large classes may take a cached block up to 1/8 bigger: batch shapes wobble from step to step.
  const size_t largest_fit = size <= kSmallLimit ? size : size + size / 8;
  void* ptr = nullptr;
  size_t block = size;
  if (auto it = cached_.lower_bound(size); it != cached_.end() && it->first <= largest_fit) {
    ptr = it->second;
    block = it->first;
    cached_.erase(it);
    stats_.cached_bytes -= block;
    ++stats_.cache_hits;
  } else {
    ptr = raw_->allocate(size);
    if (ptr == nullptr && !cached_.empty()) {
      release_cached_locked();
      ++stats_.cache_flushes;
      ptr = raw_->allocate(size);
    }
    if (ptr == nullptr) fail(describe_out_of_memory(raw_->device_name(), bytes, raw_->memory_info(), stats_));
    ++stats_.device_allocations;
  }
  in_use_.emplace(ptr, block);
  stats_.in_use_bytes += block;
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  return ptr;
}

void CachingDevicePool::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard lock(mutex_);
  const auto it = in_use_.find(ptr);
  TESSERA_CHECK(it != in_use_.end(), "deallocate on the device pool of ", raw_->device_name(),
                ": pointer was not allocated by this pool (or was freed twice)");
  const size_t block = it->second;
  in_use_.erase(it);
  stats_.in_use_bytes -= block;
  cached_.emplace(block, ptr);
  stats_.cached_bytes += block;
}

void CachingDevicePool::release_cached() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
}

void CachingDevicePool::release_cached_locked() {
  for (const auto& [size, ptr] : cached_) raw_->release(ptr);
  cached_.clear();
  stats_.cached_bytes = 0;
}

PoolStats CachingDevicePool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace tessera::runtime
