// The loops of simd_body.h, one table per instruction set (simd.c picks one).
#ifndef SPROUT_SIMD_INTERNAL_H
#define SPROUT_SIMD_INTERNAL_H
#include "sprout_kernels.h"



extern const sprout_simd_table *sprout_simd_table_avx2(void);
extern const sprout_simd_table *sprout_simd_table_generic(void);
#endif
