#pragma once
// A page-locked host buffer that grows on demand and is reused: device <-> host copies from pinned memory
// run at full PCIe/NVLink-C2C speed and can be asynchronous, and allocating pinned memory is slow
// (it maps pages for the driver), so a communicator keeps one for its whole life.
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace tessera::parallel {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // At least `bytes` bytes; contents are not kept when it grows. Throws tessera::Error when the
  // allocation fails, naming the size.
  void* reserve(size_t bytes);
  size_t capacity() const { return capacity_; }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

// Pinned buffers for operations that each need their own while they are in flight (the staged communicator's
// non-blocking ops): taken for one operation, given back when it is done, and kept for the next one (at most
// `keep` idle buffers; more are freed when given back). Threads: take and give_back lock.
class PinnedBufferPool {
 public:
  explicit PinnedBufferPool(size_t keep = 8) : keep_(keep) {}

  // A buffer of at least `bytes` bytes: an idle one that is large enough, else the largest idle one grown, else a
  // new one. Throws tessera::Error when the allocation fails.
  std::unique_ptr<PinnedBuffer> take(size_t bytes);
  void give_back(std::unique_ptr<PinnedBuffer> buffer) noexcept;
  size_t idle() const;

 private:
  size_t keep_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<PinnedBuffer>> idle_;
};

}  // namespace tessera::parallel
