#include "runtime/model/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define TESSERA_SHA256_X86 1
#else
#define TESSERA_SHA256_X86 0
#endif

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

alignas(16) constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void compress_portable(uint32_t* state, const uint8_t* block, size_t count) {
  for (; count > 0; --count, block += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) |
             (uint32_t{block[4 * i + 2]} << 8) | uint32_t{block[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#if TESSERA_SHA256_X86
bool cpu_has_sha_ni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool ssse3 = (ecx & (1u << 9)) != 0;
  const bool sse41 = (ecx & (1u << 19)) != 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool sha = (ebx & (1u << 29)) != 0;
  return ssse3 && sse41 && sha;
}

// The SHA-NI rounds: the state is kept as ABEF / CDGH, each sha256rnds2 does two rounds, and the message schedule
// of four words at a time comes from sha256msg1 / sha256msg2 (Intel's "SHA extensions" white paper layout).
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(uint32_t* state, const uint8_t* data,
                                                                  size_t count) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));      // DCBA
  __m128i state1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));  // HGFE
  tmp = _mm_shuffle_epi32(tmp, 0xB1);             // CDAB
  state1 = _mm_shuffle_epi32(state1, 0x1B);       // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);    // CDGH

  for (; count > 0; --count, data += 64) {
    const __m128i abef_save = state0;
    const __m128i cdgh_save = state1;
    __m128i w[4];
    for (int i = 0; i < 16; ++i) {
      __m128i& current = w[i & 3];
      if (i < 4) {
        current = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i)), byte_swap);
      } else {
        // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four words at a time; `current` holds W(i-4).
        const __m128i prev1 = w[(i - 1) & 3];
        const __m128i prev2 = w[(i - 2) & 3];
        __m128i next = _mm_sha256msg1_epu32(current, w[(i - 3) & 3]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(prev1, prev2, 4));
        current = _mm_sha256msg2_epu32(next, prev1);
      }
      __m128i message = _mm_add_epi32(current, _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * i)));
      state1 = _mm_sha256rnds2_epu32(state1, state0, message);
      message = _mm_shuffle_epi32(message, 0x0E);
      state0 = _mm_sha256rnds2_epu32(state0, state1, message);
    }
    state0 = _mm_add_epi32(state0, abef_save);
    state1 = _mm_add_epi32(state1, cdgh_save);
  }

  tmp = _mm_shuffle_epi32(state0, 0x1B);          // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);       // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);    // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);       // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), state1);
}
#endif

}  // namespace

bool sha256_sha_ni_supported() {
#if TESSERA_SHA256_X86
  static const bool supported = cpu_has_sha_ni();
  return supported;
#else
  return false;
#endif
}

Sha256Backend sha256_best_backend() {
  return sha256_sha_ni_supported() ? Sha256Backend::kShaNi : Sha256Backend::kPortable;
}

const char* sha256_backend_name(Sha256Backend backend) {
  return backend == Sha256Backend::kShaNi ? "sha-ni" : "portable";
}

Sha256::Sha256(Sha256Backend backend) : backend_(backend) {
  TESSERA_CHECK(backend != Sha256Backend::kShaNi || sha256_sha_ni_supported(),
                "SHA-256: this CPU has no SHA extensions (sha_ni)");
}

void Sha256::compress(const uint8_t* blocks, size_t count) {
#if TESSERA_SHA256_X86
  if (backend_ == Sha256Backend::kShaNi) {
    compress_sha_ni(state_.data(), blocks, count);
    return;
  }
#endif
  compress_portable(state_.data(), blocks, count);
}

void Sha256::update(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  total_ += size;
  if (used_ > 0) {
    const size_t take = std::min(size, sizeof(buffer_) - used_);
    std::memcpy(buffer_ + used_, p, take);
    used_ += take;
    p += take;
    size -= take;
    if (used_ < sizeof(buffer_)) return;
    compress(buffer_, 1);
    used_ = 0;
  }
  // Whole blocks straight from the input, the rest into the buffer.
  const size_t blocks = size / 64;
  if (blocks > 0) compress(p, blocks);
  p += blocks * 64;
  size -= blocks * 64;
  std::memcpy(buffer_, p, size);
  used_ = size;
}

std::string Sha256::hex_digest() {
  const uint64_t bits = total_ * 8;
  uint8_t tail[128] = {};
  std::memcpy(tail, buffer_, used_);
  tail[used_] = 0x80;
  const size_t length = used_ < 56 ? 64 : 128;
  for (int i = 0; i < 8; ++i) tail[length - 8 + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  compress(tail, length / 64);
  used_ = 0;
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint32_t word : state_) {
    for (int shift = 28; shift >= 0; shift -= 4) out += digits[(word >> shift) & 0xF];
  }
  return out;
}

std::string sha256_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TESSERA_CHECK(fd >= 0, "cannot open ", path.string(), " to hash it: ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
#ifdef POSIX_FADV_SEQUENTIAL
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  Sha256 hash;
  constexpr size_t kChunk = size_t{4} << 20;
  const std::unique_ptr<uint8_t[]> chunk(new uint8_t[kChunk]);
  for (;;) {
    const ssize_t got = ::read(fd, chunk.get(), kChunk);
    if (got < 0 && errno == EINTR) continue;
    TESSERA_CHECK(got >= 0, "reading ", path.string(), " failed before its end: ", std::strerror(errno));
    if (got == 0) break;
    hash.update(chunk.get(), static_cast<size_t>(got));
  }
  return hash.hex_digest();
}

}  // namespace tessera::runtime
