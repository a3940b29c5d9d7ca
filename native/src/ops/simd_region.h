// The SIMD kernels live in an otherwise baseline x86-64 build: every function between
// MS_AVX2_BEGIN and MS_AVX2_END is compiled for AVX2 + FMA + F16C, and every one between
// MS_AVX512_BEGIN and MS_AVX512_END for AVX-512 (F, BW, VL, DQ, VNNI) on top of those (a target pragma,
// the attribute applied to a whole region, so helper templates and the inlined helpers of
// quant_avx2_unpack.h inherit it too). Nothing in a region may run before avx2_available() /
// avx512_available() said the CPU has its features: the registry (quant.cpp) and the kernels that
// call into AVX-512 check once at start-up.
#pragma once

#if defined(__clang__)
#define MS_AVX2_BEGIN _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")
#define MS_AVX512_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c\"))), apply_to = function)")
#define MS_AVX2_END _Pragma("clang attribute pop")
#define MS_AVX512_END _Pragma("clang attribute pop")
#else
#define MS_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define MS_AVX512_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c\")")
#define MS_AVX2_END _Pragma("GCC pop_options")
#define MS_AVX512_END _Pragma("GCC pop_options")
#endif

#if !defined(__clang__) && defined(__GNUC__) && __GNUC__ < 13
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through masked builtins, and its
// uninitialized-value analysis flags them at every inlined use (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
