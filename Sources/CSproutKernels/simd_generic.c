// simd_body.h compiled for the baseline target (SSE2 on x86-64): runs on any CPU.
#include "simd_internal.h"

#define K(name) name##_generic
#include "simd_body.h"
const sprout_simd_table *sprout_simd_table_generic(void) { return &table_generic; }
