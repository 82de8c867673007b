#pragma once
// A page-locked host buffer that grows on demand and is reused: device <-> host copies from pinned memory
// run at full PCIe/NVLink-C2C speed and can be asynchronous, and allocating pinned memory is slow
// (it maps pages for the driver), so a communicator keeps one for its whole life.
#include <cstddef>

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

}  // namespace tessera::parallel
