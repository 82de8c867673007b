#pragma once
// Host and device memory told apart by type. A buffer handed to a communicator is a BufferSpan<S, T>: a pointer,
// an element count and, in its type, the memory space S the pointer lives in. The host communicators (MPI) take
// host spans only and the device communicators (NCCL, staged) device spans only (parallel/communicator.h), so that
// handing host memory to NCCL, or device memory to MPI, does not compile.
//
// A raw pointer does not say where it points, so a span is made explicitly, where the memory is known:
//   host_span(ptr, n), host_span(vector_or_array)   host memory (any contiguous range that outlives the call)
//   device_span(ptr, n)                              device memory (cudaMalloc, a device pool, NCCL buffers)
// Nothing converts between the spaces. Within one space a span converts implicitly to a span of const elements and
// to a span of (const) bytes: the point-to-point calls move bytes, whatever the elements are.
#include <cstddef>
#include <ranges>
#include <type_traits>

#include "kernels/base/error.h"

namespace tessera::parallel {

enum class MemorySpace { kHost, kDevice };

constexpr const char* memory_space_name(MemorySpace space) { return space == MemorySpace::kHost ? "host" : "device"; }

template <MemorySpace S, class T>
class BufferSpan {
  // Which spans of the same space convert to this one: U -> const U, and any trivially copyable element -> bytes
  // (writable bytes only from writable elements).
  template <class U>
  static constexpr bool kConvertsFrom =
      !std::is_same_v<U, T> &&
      (std::is_same_v<T, const U> ||
       (std::is_same_v<std::remove_const_t<T>, std::byte> && std::is_trivially_copyable_v<U> &&
        (std::is_const_v<T> || !std::is_const_v<U>)));

 public:
  static_assert(!std::is_reference_v<T> && !std::is_void_v<T>, "a BufferSpan holds elements (std::byte for raw bytes)");
  using element_type = T;
  static constexpr MemorySpace kSpace = S;

  constexpr BufferSpan() noexcept = default;  // empty
  // Says that `data` holds `count` elements in memory space S. Prefer host_span / device_span.
  constexpr explicit BufferSpan(T* data, size_t count) noexcept : data_(data), count_(count) {}
  template <class U>
    requires kConvertsFrom<U>
  BufferSpan(BufferSpan<S, U> other) noexcept  // implicit: the same memory space
      : data_(reinterpret_cast<T*>(other.data())), count_(other.size_bytes() / sizeof(T)) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr size_t size() const noexcept { return count_; }
  constexpr size_t size_bytes() const noexcept { return count_ * sizeof(T); }
  constexpr bool empty() const noexcept { return count_ == 0; }

  // Elements [offset, offset + count) (count defaults to the rest); throws tessera::Error beyond the end.
  constexpr BufferSpan subspan(size_t offset, size_t count = static_cast<size_t>(-1)) const {
    TESSERA_CHECK(offset <= count_, "BufferSpan::subspan: offset ", offset, " beyond ", count_, " elements");
    if (count == static_cast<size_t>(-1)) count = count_ - offset;
    TESSERA_CHECK(count <= count_ - offset, "BufferSpan::subspan: ", count, " elements from ", offset, " beyond ",
                  count_);
    return BufferSpan(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

template <class T>
using HostSpan = BufferSpan<MemorySpace::kHost, T>;
template <class T>
using DeviceSpan = BufferSpan<MemorySpace::kDevice, T>;

template <class T>
constexpr HostSpan<T> host_span(T* data, size_t count) noexcept {
  return HostSpan<T>(data, count);
}
// A contiguous host container (std::vector, std::array, std::string, std::span): its elements. Not a temporary.
template <class R>
  requires std::ranges::contiguous_range<R> && std::ranges::sized_range<R> && std::ranges::borrowed_range<R>
constexpr auto host_span(R&& range) noexcept {
  using T = std::remove_reference_t<std::ranges::range_reference_t<R>>;
  return HostSpan<T>(std::ranges::data(range), static_cast<size_t>(std::ranges::size(range)));
}

template <class T>
constexpr DeviceSpan<T> device_span(T* data, size_t count) noexcept {
  return DeviceSpan<T>(data, count);
}

}  // namespace tessera::parallel
