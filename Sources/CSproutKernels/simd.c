// Run-time choice of the loop set: AVX2+FMA when the CPU and OS have it, else the
// baseline build. sprout_simd_configure(1) (SPROUT_SIMD=generic) forces the baseline.
#include "simd_internal.h"
#include <stdlib.h>
#include <string.h>

static const sprout_simd_table *active;
static int active_level;

static void choose(int level) {
    const sprout_simd_table *avx2 = level >= 1 ? sprout_simd_loops(1) : 0;
    active = avx2 ? avx2 : sprout_simd_loops(0);
    active_level = avx2 ? 1 : 0;
}

// The best set the CPU has, until RuntimeSettings (SPROUT_SIMD) says otherwise.
__attribute__((constructor)) static void choose_best(void) { choose(1); }

void sprout_simd_configure(int generic) { choose(generic ? 0 : 1); }

int sprout_simd_level(void) { return active_level; }
const char *sprout_simd_name(void) { return active_level == 1 ? "avx2+fma" : "generic (sse2)"; }

void sprout_relu_forward(const float *x, float *y, size_t n) { active->relu_forward(x, y, n); }
void sprout_relu_backward(const float *dy, const float *x, float *dx, size_t n) { active->relu_backward(dy, x, dx, n); }
void sprout_clamp_forward(const float *x, float *y, size_t n, float lo, float hi) { active->clamp_forward(x, y, n, lo, hi); }
void sprout_clamp_backward(const float *dy, const float *x, float *dx, size_t n, float lo, float hi) {
    active->clamp_backward(dy, x, dx, n, lo, hi);
}
void sprout_gelu_forward(const float *x, float *y, size_t n) { active->gelu_forward(x, y, n); }
void sprout_gelu_backward(const float *dy, const float *x, float *dx, size_t n) { active->gelu_backward(dy, x, dx, n); }
void sprout_add(const float *a, const float *b, float *z, size_t n) { active->add(a, b, z, n); }
void sprout_sub(const float *a, const float *b, float *z, size_t n) { active->sub(a, b, z, n); }
void sprout_mul(const float *a, const float *b, float *z, size_t n) { active->mul(a, b, z, n); }
void sprout_axpby(float a, const float *x, float b, const float *y, float *z, size_t n) { active->axpby(a, x, b, y, z, n); }
void sprout_batchnorm_forward(const float *x, float *y, const float *gamma, const float *beta, float *mean,
                              float *var, int n, int c, size_t hw, int c0, int c1, float eps, int relu) {
    active->batchnorm_forward(x, y, gamma, beta, mean, var, n, c, hw, c0, c1, eps, relu);
}
void sprout_batchnorm_backward(const float *x, const float *dy, const float *y, const float *mean, const float *var,
                               const float *gamma, float *dx, float *dgamma, float *dbeta, int n, int c, size_t hw,
                               int c0, int c1, float eps) {
    active->batchnorm_backward(x, dy, y, mean, var, gamma, dx, dgamma, dbeta, n, c, hw, c0, c1, eps);
}
void sprout_channel_sums(const float *x, const float *center, int n, int c, size_t hw, int c0, int c1, double *out) {
    active->channel_sums(x, center, n, c, hw, c0, c1, out);
}
void sprout_batchnorm_grad_sums(const float *x, const float *dy, const float *y, const float *mean, int n, int c,
                                size_t hw, int c0, int c1, float *sum_g, float *sum_gx) {
    active->batchnorm_grad_sums(x, dy, y, mean, n, c, hw, c0, c1, sum_g, sum_gx);
}
void sprout_batchnorm_backward_apply(const float *x, const float *dy, const float *y, const float *mean,
                                     const float *var, const float *gamma, const float *sum_g, const float *sum_gx,
                                     float m, float *dx, int n, int c, size_t hw, int c0, int c1, float eps) {
    active->batchnorm_backward_apply(x, dy, y, mean, var, gamma, sum_g, sum_gx, m, dx, n, c, hw, c0, c1, eps);
}
void sprout_channel_affine(const float *x, float *y, const float *scale, const float *shift, int c, size_t hw,
                           size_t p0, size_t p1, int relu) {
    active->channel_affine(x, y, scale, shift, c, hw, p0, p1, relu);
}
void sprout_maxpool_forward(const float *x, float *y, int32_t *arg, const sprout_pool_geometry *g, size_t p0,
                            size_t p1) {
    active->maxpool_forward(x, y, arg, g, p0, p1);
}
void sprout_maxpool_backward(const float *dy, const int32_t *arg, float *dx, const sprout_pool_geometry *g,
                             size_t p0, size_t p1) {
    active->maxpool_backward(dy, arg, dx, g, p0, p1);
}
void sprout_avgpool_forward(const float *x, float *y, const sprout_pool_geometry *g, int include_pad, size_t p0,
                            size_t p1) {
    active->avgpool_forward(x, y, g, include_pad, p0, p1);
}
void sprout_avgpool_backward(const float *dy, float *dx, const sprout_pool_geometry *g, int include_pad, size_t p0,
                             size_t p1) {
    active->avgpool_backward(dy, dx, g, include_pad, p0, p1);
}

const sprout_simd_table *sprout_simd_loops(int level) {
    if (level == 0) return sprout_simd_table_generic();
    uint32_t f = sprout_cpu_features();
    const sprout_simd_table *avx2 = sprout_simd_table_avx2();
    return avx2 && (f & SPROUT_CPU_AVX2) && (f & SPROUT_CPU_FMA) ? avx2 : 0;
}
