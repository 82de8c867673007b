// Typed buffers (parallel/memory_space.h): host and device memory do not mix, checked at compile time (the
// static_asserts below: this file does not compile if a host buffer ever becomes acceptable to a device
// communicator, or the reverse), and the spans' sizes and bounds at run time.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/base/error.h"
#include "parallel/communicator.h"
#include "parallel/memory_space.h"

namespace tessera::parallel {
namespace {

// Nothing converts between the spaces, nor from a raw pointer.
static_assert(!std::is_convertible_v<HostSpan<float>, DeviceSpan<float>>);
static_assert(!std::is_constructible_v<DeviceSpan<float>, HostSpan<float>>);
static_assert(!std::is_constructible_v<HostSpan<std::byte>, DeviceSpan<float>>);
static_assert(!std::is_convertible_v<float*, HostSpan<float>>);
static_assert(!std::is_convertible_v<float*, DeviceSpan<float>>);
// Within a space: to const, and to bytes (writable bytes only from writable elements); never between element types.
static_assert(std::is_convertible_v<HostSpan<float>, HostSpan<const float>>);
static_assert(std::is_convertible_v<DeviceSpan<float>, DeviceSpan<const std::byte>>);
static_assert(std::is_convertible_v<DeviceSpan<bf16>, DeviceSpan<std::byte>>);
static_assert(!std::is_convertible_v<HostSpan<const float>, HostSpan<float>>);
static_assert(!std::is_convertible_v<HostSpan<const float>, HostSpan<std::byte>>);
static_assert(!std::is_convertible_v<HostSpan<float>, HostSpan<bf16>>);
static_assert(!std::is_convertible_v<HostSpan<std::byte>, HostSpan<float>>);

template <class Comm, class Buffer>
concept CanAllReduce = requires(Comm& comm, Buffer buffer) { comm.all_reduce_sum(buffer); };
template <class Comm, class Buffer>
concept CanSend = requires(Comm& comm, Buffer buffer) { comm.send(buffer, 1, MessageTag::kTest); };
template <class Comm, class Buffer>
concept CanStartRecv = requires(Comm& comm, Buffer buffer) { comm.start_recv(buffer, 1, MessageTag::kTest); };
template <class Comm, class Buffer>
concept CanStartBroadcast = requires(Comm& comm, Buffer buffer) { comm.start_broadcast(buffer, 0); };
template <class Comm, class Send, class Recv>
concept CanAllGather = requires(Comm& comm, Send send, Recv recv) { comm.all_gather(send, recv); };

// A host buffer handed to a device communicator does not compile, nor a device buffer to a host one, nor a raw
// pointer to either.
static_assert(CanAllReduce<DeviceCommunicator, DeviceSpan<float>>);
static_assert(CanAllReduce<DeviceCommunicator, DeviceSpan<bf16>>);
static_assert(!CanAllReduce<DeviceCommunicator, HostSpan<float>>);
static_assert(!CanAllReduce<DeviceCommunicator, float*>);
static_assert(CanAllReduce<HostCommunicator, HostSpan<float>>);
static_assert(!CanAllReduce<HostCommunicator, DeviceSpan<float>>);
static_assert(CanSend<DeviceCommunicator, DeviceSpan<const float>>);
static_assert(!CanSend<DeviceCommunicator, HostSpan<const float>>);
static_assert(!CanSend<HostCommunicator, DeviceSpan<float>>);
static_assert(!CanSend<HostCommunicator, const void*>);
static_assert(CanStartRecv<HostCommunicator, HostSpan<int>>);
static_assert(!CanStartRecv<HostCommunicator, HostSpan<const int>>);  // a receive writes its buffer
static_assert(!CanStartRecv<DeviceCommunicator, HostSpan<int>>);
static_assert(CanStartBroadcast<DeviceCommunicator, DeviceSpan<std::byte>>);
static_assert(!CanStartBroadcast<DeviceCommunicator, HostSpan<std::byte>>);
static_assert(CanAllGather<DeviceCommunicator, DeviceSpan<const float>, DeviceSpan<float>>);
static_assert(!CanAllGather<DeviceCommunicator, HostSpan<const float>, DeviceSpan<float>>);
static_assert(!CanAllGather<DeviceCommunicator, DeviceSpan<const float>, HostSpan<float>>);

TEST(MemorySpace, HostSpanOfContainers) {
  std::vector<float> v(5);
  const HostSpan<float> a = host_span(v);
  EXPECT_EQ(a.data(), v.data());
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a.size_bytes(), 20u);
  const std::vector<int> cv(3);
  static_assert(std::is_same_v<decltype(host_span(cv)), HostSpan<const int>>);
  std::array<char, 7> chars{};
  EXPECT_EQ(host_span(chars).size(), 7u);
  std::string text = "abc";
  EXPECT_EQ(host_span(text).size(), 3u);
  double value = 0;
  EXPECT_EQ(host_span(&value, 1).size_bytes(), sizeof(double));
}

TEST(MemorySpace, BytesViewKeepsTheSize) {
  std::vector<float> v(3);
  const HostSpan<const std::byte> bytes = host_span(v);
  EXPECT_EQ(bytes.size(), 12u);
  EXPECT_EQ(static_cast<const void*>(bytes.data()), static_cast<const void*>(v.data()));
  float device_like[4] = {};
  const DeviceSpan<std::byte> device_bytes = device_span(device_like, 4);
  EXPECT_EQ(device_bytes.size(), 16u);
}

TEST(MemorySpace, SubspanIsBoundsChecked) {
  std::vector<int> v(10);
  const HostSpan<int> all = host_span(v);
  EXPECT_EQ(all.subspan(4).size(), 6u);
  EXPECT_EQ(all.subspan(4).data(), v.data() + 4);
  EXPECT_EQ(all.subspan(2, 3).size(), 3u);
  EXPECT_TRUE(all.subspan(10).empty());
  EXPECT_THROW(all.subspan(11), Error);
  EXPECT_THROW(all.subspan(8, 3), Error);
}

}  // namespace
}  // namespace tessera::parallel
