#pragma once
// Rotary position embedding on the GPU with the CPU twin's semantics (kernels/cpu/rope.h): the cos/sin
// table is the CPU's RopeTable copied as it is (so linear and llama3 scaling, and the f32 rounding of every
// angle, are the same), and the rotation uses no fused multiply-add, so f32 results match the CPU bit for bit.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/rope.h"

namespace tessera::kernels::cuda {

// The CPU table mirrored in device memory, grown on demand (capacity doubles, like the CPU one).
class DeviceRopeTable {
 public:
  explicit DeviceRopeTable(const cpu::RopeConfig& config, int64_t initial_positions = 0);
  ~DeviceRopeTable();
  DeviceRopeTable(const DeviceRopeTable&) = delete;
  DeviceRopeTable& operator=(const DeviceRopeTable&) = delete;

  // Makes positions [0, positions) available on the device (synchronous upload when it grows).
  void reserve(int64_t positions);

  int64_t positions() const { return device_positions_; }
  int64_t half_dim() const { return host_.half_dim(); }
  int64_t head_dim() const { return host_.config().head_dim; }
  const float* cos() const { return cos_; }  // [positions, half_dim]
  const float* sin() const { return sin_; }

 private:
  cpu::RopeTable host_;
  int64_t device_positions_ = 0;
  float* cos_ = nullptr;
  float* sin_ = nullptr;
};

// Rotates q and k in place, token t by the angle of positions[t] (device array).
//   q: [tokens, q_heads, head_dim], token rows q_token_stride elements apart (a fused QKV row passes its width).
//   k: [tokens, kv_heads, head_dim], rows k_token_stride apart; may be null when kv_heads == 0.
// `max_position` (known to the host that built the batch) must be below table.positions() after the
// reserve this call does; a device position beyond it leaves its token unrotated (a kernel cannot throw).
void apply_rope(float* q, int64_t q_heads, int64_t q_token_stride, float* k, int64_t kv_heads, int64_t k_token_stride,
                const int32_t* positions, int64_t tokens, int64_t max_position, DeviceRopeTable& table,
                cpu::RopeLayout layout, cudaStream_t stream);
void apply_rope(__nv_bfloat16* q, int64_t q_heads, int64_t q_token_stride, __nv_bfloat16* k, int64_t kv_heads,
                int64_t k_token_stride, const int32_t* positions, int64_t tokens, int64_t max_position,
                DeviceRopeTable& table, cpu::RopeLayout layout, cudaStream_t stream);

}  // namespace tessera::kernels::cuda
