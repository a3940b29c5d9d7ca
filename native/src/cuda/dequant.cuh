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

// Byte k of v (a value below 256) minus `off`, exactly, as a float. On the device a byte permute into
// the mantissa of 2^23 and one subtraction: an int-to-float conversion runs at a quarter of the FMA
// rate and capped the K-quant GEMVs near a fifth of the memory bandwidth.
__host__ __device__ __forceinline__ float byte_f(uint32_t v, int k, float off) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(__byte_perm(v, 0x4B000000u, 0x7440u | k)) - (8388608.f + off);
#else
  return (float)((v >> (8 * k)) & 0xFF) - off;
#endif
}
__host__ __device__ __forceinline__ uint32_t ld32(const uint8_t* p) {  // p 4-byte aligned
#ifdef __CUDA_ARCH__
  return *(const uint32_t*)p;
#else
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
#endif
}

struct ChunkQ4_K;
struct ChunkQ6_K;

// ggml's get_scale_min_k4 (see quant_blocks.h).
__host__ __device__ __forceinline__ void scale_min_k4(int j, const uint8_t* q, float& sc, float& m) {
  uint8_t a, b;
  if (j < 4) { a = q[j] & 63; b = q[j + 4] & 63; }
  else { a = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); b = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
  sc = a; m = b;
}

// Chunk: the type's decoder for the decode GEMV (mmv_chunk), where it has one; void: mmv_out.
struct DecF32 {
  using Chunk = void;
  static constexpr int kType = 0, kBlock = 1;
  __host__ __device__ __forceinline__ static void unit(const uint8_t* row, int64_t u, float w[8]) {
    const float4* p = (const float4*)(row + u * 32);
    float4 a = p[0], b = p[1];
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w; w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
  }
  __host__ __device__ __forceinline__ static float elem(const uint8_t* row, int64_t i) { return ((const float*)row)[i]; }
};

struct DecF16 {
  using Chunk = void;
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
  using Chunk = void;
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
  using Chunk = void;
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
  using Chunk = void;
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
  using Chunk = ChunkQ4_K;
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

// The decode GEMV's share of a Q4_K super-block for one of its 8 threads: chunk c holds qs bytes
// 32j + 16h .. +16 (j = c / 2, h = c % 2), the low nibbles of elements 64j + 16h + i of sub-block
// 2j and the high nibbles of elements 64j + 32 + 16h + i of sub-block 2j + 1; xb is x at the block.
// Returns sum_i w_i x_i with w = d*sc*q - dmin*m, factored per sub-block (d*sc * sum q x - dmin*m *
// sum x): the CPU's weights, summed in another order.
struct ChunkQ4_K {
  static constexpr int kBlock = 256, kBytes = 144;
  __host__ __device__ __forceinline__ static float dot(const uint8_t* b, int c, const float* xb) {
    const int j = c >> 1, h = c & 1;
    float sc0, m0, sc1, m1;
    scale_min_k4(2 * j, b + 4, sc0, m0);
    scale_min_k4(2 * j + 1, b + 4, sc1, m1);
    const float d = h2f(ld16(b)), dmin = h2f(ld16(b + 2));
    const uint8_t* q = b + 16 + 32 * j + 16 * h;
    const float* xl = xb + 64 * j + 16 * h;
    uint32_t v[4];
#ifdef __CUDA_ARCH__
    const uint4 v4 = *(const uint4*)q;  // 16-byte aligned: 144-byte blocks in rows checked at upload
    v[0] = v4.x; v[1] = v4.y; v[2] = v4.z; v[3] = v4.w;
#else
    memcpy(v, q, 16);
#endif
    float sl = 0.f, sh = 0.f, xsl = 0.f, xsh = 0.f;
#pragma unroll
    for (int w = 0; w < 4; w++) {
      const float4 a = ((const float4*)xl)[w], e = ((const float4*)(xl + 32))[w];
      const uint32_t lo = v[w] & 0x0F0F0F0Fu, hi = (v[w] >> 4) & 0x0F0F0F0Fu;
      sl += byte_f(lo, 0, 0.f) * a.x + byte_f(lo, 1, 0.f) * a.y + byte_f(lo, 2, 0.f) * a.z + byte_f(lo, 3, 0.f) * a.w;
      sh += byte_f(hi, 0, 0.f) * e.x + byte_f(hi, 1, 0.f) * e.y + byte_f(hi, 2, 0.f) * e.z + byte_f(hi, 3, 0.f) * e.w;
      xsl += (a.x + a.y) + (a.z + a.w);
      xsh += (e.x + e.y) + (e.z + e.w);
    }
    return (d * sc0) * sl - (dmin * m0) * xsl + ((d * sc1) * sh - (dmin * m1) * xsh);
  }
};

// Q5_K: 176-byte super-blocks: d, dmin, scales[12], qh[32] (fifth bits), qs[128] (as Q4_K).
struct DecQ5_K {
  using Chunk = void;
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
  using Chunk = ChunkQ6_K;
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

// The decode GEMV's share of a Q6_K super-block for one of its 8 threads: chunk c takes half
// n = c / 4 and l = l0 .. l0+8 (l0 = 8 (c % 4)) of ggml's loop, that is ql bytes l and 32 + l, qh
// bytes l, and elements 128n + l + {0, 32, 64, 96} (scales is, is+2, is+4, is+6; is = l0 / 16).
// 210-byte blocks are only 2-byte aligned: 16-bit loads. Returns sum w x with w = d*sc*q, factored
// per scale (d*sc * sum q x).
struct ChunkQ6_K {
  static constexpr int kBlock = 256, kBytes = 210;
  __host__ __device__ __forceinline__ static uint32_t ld32_2(const uint8_t* p) {  // p 2-byte aligned
#ifdef __CUDA_ARCH__
    return (uint32_t)((const uint16_t*)p)[0] | ((uint32_t)((const uint16_t*)p)[1] << 16);
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
  }
  __host__ __device__ __forceinline__ static float dot(const uint8_t* b, int c, const float* xb) {
    const int n = c >> 2, l0 = (c & 3) * 8, is = l0 / 16;
    const uint8_t* ql = b + 64 * n + l0;
    const uint8_t* qh = b + 128 + 32 * n + l0;
    const int8_t* sc = (const int8_t*)(b + 192 + 8 * n);
    const float* x1 = xb + 128 * n + l0;
    float s1 = 0.f, s2 = 0.f, s3 = 0.f, s4 = 0.f;
#pragma unroll
    for (int w = 0; w < 2; w++) {
      const uint32_t a = ld32_2(ql + 4 * w), bb = ld32_2(ql + 32 + 4 * w), hh = ld32_2(qh + 4 * w);
      const uint32_t v1 = (a & 0x0F0F0F0Fu) | ((hh & 0x03030303u) << 4);
      const uint32_t v2 = (bb & 0x0F0F0F0Fu) | (((hh >> 2) & 0x03030303u) << 4);
      const uint32_t v3 = ((a >> 4) & 0x0F0F0F0Fu) | (((hh >> 4) & 0x03030303u) << 4);
      const uint32_t v4 = ((bb >> 4) & 0x0F0F0F0Fu) | (((hh >> 6) & 0x03030303u) << 4);
      const float4 y1 = ((const float4*)x1)[w], y2 = ((const float4*)(x1 + 32))[w], y3 = ((const float4*)(x1 + 64))[w],
                   y4 = ((const float4*)(x1 + 96))[w];
      s1 += byte_f(v1, 0, 32.f) * y1.x + byte_f(v1, 1, 32.f) * y1.y + byte_f(v1, 2, 32.f) * y1.z + byte_f(v1, 3, 32.f) * y1.w;
      s2 += byte_f(v2, 0, 32.f) * y2.x + byte_f(v2, 1, 32.f) * y2.y + byte_f(v2, 2, 32.f) * y2.z + byte_f(v2, 3, 32.f) * y2.w;
      s3 += byte_f(v3, 0, 32.f) * y3.x + byte_f(v3, 1, 32.f) * y3.y + byte_f(v3, 2, 32.f) * y3.z + byte_f(v3, 3, 32.f) * y3.w;
      s4 += byte_f(v4, 0, 32.f) * y4.x + byte_f(v4, 1, 32.f) * y4.y + byte_f(v4, 2, 32.f) * y4.z + byte_f(v4, 3, 32.f) * y4.w;
    }
    const float d = h2f(ld16(b + 208));
    return ((d * sc[is]) * s1 + (d * sc[is + 2]) * s2) + ((d * sc[is + 4]) * s3 + (d * sc[is + 6]) * s4);
  }
};

}  // namespace moescope::cuda
