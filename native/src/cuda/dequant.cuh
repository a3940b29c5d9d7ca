// Device decoders of ggml's weight formats, bit-exact with native/src/ops/quant.cpp (the CPU's
// to_float, same float operations in the same order). Every type is cut into "units" of 8
// consecutive elements so one kernel shape serves all: lane u of a warp decodes unit u of a row.
// Every decoder is __host__ __device__ so native/tools/cuda-decode-check.cu can compare it bit for bit
// with the CPU's to_float on a machine without a GPU.
// Alignment: rows start at 16-byte multiples (cudaMalloc + strides checked at upload), so the F32/
// F16/BF16/Q4_K/Q5_K units use vector loads; Q8_0/Q4_0/Q6_K blocks (34/18/210 bytes) use narrow loads.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

namespace moescope::cuda {

__host__ __device__ __forceinline__ float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__host__ __device__ __forceinline__ float bf2f(uint16_t h) {
#ifdef __CUDA_ARCH__
  return __uint_as_float((uint32_t)h << 16);
#else
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}
__host__ __device__ __forceinline__ uint16_t ld16(const uint8_t* p) { return (uint16_t)p[0] | ((uint16_t)p[1] << 8); }

// ggml's get_scale_min_k4 (see quant_blocks.h).
__host__ __device__ __forceinline__ void scale_min_k4(int j, const uint8_t* q, float& sc, float& m) {
  uint8_t a, b;
  if (j < 4) { a = q[j] & 63; b = q[j + 4] & 63; }
  else { a = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); b = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
  sc = a; m = b;
}

struct DecF32 {
  static constexpr int kType = 0, kBlock = 1;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const float4* p = (const float4*)(row + u * 32);
    float4 a = p[0], b = p[1];
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w; w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
  }
  __host__ __device__ __forceinline__ static float elem(const uint8_t* row, int64_t i) { return ((const float*)row)[i]; }
};

struct DecF16 {
  static constexpr int kType = 1, kBlock = 1;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    union { uint4 v; uint16_t h[8]; } p;  // a union, not a cast: no aliasing of uint4 through uint16_t
    p.v = *(const uint4*)(row + u * 16);
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = h2f(p.h[i]);
  }
  __host__ __device__ __forceinline__ static float elem(const uint8_t* row, int64_t i) { return h2f(((const uint16_t*)row)[i]); }
};

struct DecBF16 {
  static constexpr int kType = 30, kBlock = 1;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    union { uint4 v; uint16_t h[8]; } p;
    p.v = *(const uint4*)(row + u * 16);
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = bf2f(p.h[i]);
  }
  __host__ __device__ __forceinline__ static float elem(const uint8_t* row, int64_t i) { return bf2f(((const uint16_t*)row)[i]); }
};

// Q8_0: 34-byte blocks of 32 (f16 d, 32 x int8); 4 units per block.
struct DecQ8_0 {
  static constexpr int kType = 8, kBlock = 32;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const uint8_t* b = row + (u >> 2) * 34;
    const float d = h2f(ld16(b));
    const int8_t* q = (const int8_t*)(b + 2 + (u & 3) * 8);
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = q[i] * d;
  }
};

// Q4_0: 18-byte blocks (f16 d, 16 bytes: low nibble element j, high nibble j + 16); (q - 8) * d.
struct DecQ4_0 {
  static constexpr int kType = 2, kBlock = 32;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const uint8_t* b = row + (u >> 2) * 18;
    const float d = h2f(ld16(b));
    const int s = (int)(u & 3);
    const uint8_t* q = b + 2 + (s & 1) * 8;
    const int shift = (s >> 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = (((q[i] >> shift) & 0xF) - 8) * d;
  }
};

// Q4_K: 144-byte super-blocks of 256: d, dmin, 12 bytes of 6-bit (scale, min), 128 bytes of nibbles
// (each 32 bytes hold 64 elements: low nibbles first, then high).
struct DecQ4_K {
  static constexpr int kType = 12, kBlock = 256;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const uint8_t* b = row + (u >> 5) * 144;
    const int k = (int)(u & 31), j = k >> 3, o = (k & 7) * 8;
    const int hi = o >= 32;
    float sc, m;
    scale_min_k4(2 * j + hi, b + 4, sc, m);
    const float d1 = h2f(ld16(b)) * sc, m1 = h2f(ld16(b + 2)) * m;
    uint2 v = *(const uint2*)(b + 16 + j * 32 + (o & 31));
    const uint8_t* q = (const uint8_t*)&v;
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = d1 * (hi ? (q[i] >> 4) : (q[i] & 0xF)) - m1;
  }
};

// Q5_K: 176-byte super-blocks: d, dmin, scales[12], qh[32] (fifth bits), qs[128] (as Q4_K).
struct DecQ5_K {
  static constexpr int kType = 13, kBlock = 256;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const uint8_t* b = row + (u >> 5) * 176;
    const int k = (int)(u & 31), j = k >> 3, o = (k & 7) * 8;
    const int hi = o >= 32, l0 = o & 31;
    float sc, m;
    scale_min_k4(2 * j + hi, b + 4, sc, m);
    const float d1 = h2f(ld16(b)) * sc, m1 = h2f(ld16(b + 2)) * m;
    const uint8_t bit = (uint8_t)(1u << (2 * j + hi));
    uint2 vq = *(const uint2*)(b + 48 + j * 32 + l0);
    uint2 vh = *(const uint2*)(b + 16 + l0);
    const uint8_t* q = (const uint8_t*)&vq;
    const uint8_t* h = (const uint8_t*)&vh;
#pragma unroll
    for (int i = 0; i < 8; i++) w[i] = d1 * ((hi ? (q[i] >> 4) : (q[i] & 0xF)) + (h[i] & bit ? 16 : 0)) - m1;
  }
};

// Q6_K: 210-byte super-blocks: ql[128], qh[64], int8 scales[16], d. Two halves of 128 elements, each
// four quarters of 32 (ql low/high nibble x two 32-byte ql runs, qh bit pairs 0..3).
struct DecQ6_K {
  static constexpr int kType = 14, kBlock = 256;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const uint8_t* b = row + (u >> 5) * 210;
    const int k = (int)(u & 31), n = k >> 4, e0 = (k & 15) * 8, qq = e0 >> 5, l0 = e0 & 31;
    const uint8_t* ql = b + n * 64 + (qq & 1) * 32 + l0;
    const uint8_t* qh = b + 128 + n * 32 + l0;
    const int8_t* sc = (const int8_t*)(b + 192 + n * 8);
    const float d = h2f(ld16(b + 208));
    const int lshift = (qq >> 1) * 4, hshift = qq * 2;
#pragma unroll
    for (int i = 0; i < 8; i++) {
      const int l = l0 + i;
      const int8_t q = (int8_t)(((ql[i] >> lshift) & 0xF) | (((qh[i] >> hshift) & 3) << 4)) - 32;
      w[i] = d * sc[l / 16 + 2 * qq] * q;
    }
  }
};

}  // namespace moescope::cuda
