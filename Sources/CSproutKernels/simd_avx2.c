// simd_body.h compiled for AVX2 + FMA (Haswell and later, Zen). Only called after
// simd.c has checked the CPU and the OS support these instructions.
#include "simd_internal.h"

#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define K(name) name##_avx2
#include "simd_body.h"
#pragma clang attribute pop
const sprout_simd_table *sprout_simd_table_avx2(void) { return &table_avx2; }
#else
const sprout_simd_table *sprout_simd_table_avx2(void) { return 0; }
#endif
