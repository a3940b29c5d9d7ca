// The AVX2 kernels live in an otherwise baseline x86-64 build: every function between
// MS_AVX2_BEGIN and MS_AVX2_END is compiled for AVX2 + FMA + F16C (a target pragma, the attribute
// applied to a whole region, so helper templates and the inlined helpers of
// quant_avx2_unpack.h inherit it too). Nothing in a region may run before avx2_available() said
// the CPU has all three: the registry (quant.cpp) picks those kernels at start-up.
#pragma once

#if defined(__clang__)
#define MS_AVX2_BEGIN _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")
#define MS_AVX2_END _Pragma("clang attribute pop")
#else
#define MS_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define MS_AVX2_END _Pragma("GCC pop_options")
#endif
