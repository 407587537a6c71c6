#ifndef SPROUT_KERNELS_H
#define SPROUT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// ---- CPU features (cpuid) -------------------------------------------------
enum {
    SPROUT_CPU_SSE42 = 1 << 0,
    SPROUT_CPU_AVX = 1 << 1,
    SPROUT_CPU_AVX2 = 1 << 2,
    SPROUT_CPU_FMA = 1 << 3,
    SPROUT_CPU_AVX512F = 1 << 4,
};
/// Bitmask of SPROUT_CPU_* detected on this processor (and enabled by the OS).
uint32_t sprout_cpu_features(void);
/// Processor brand string, e.g. "AMD EPYC 7B13". Writes at most `capacity` bytes.
void sprout_cpu_brand(char *out, size_t capacity);

/// CPUs in this process's affinity mask (falls back to the online count).
int sprout_available_cores(void);

/// Makes stdout line-buffered (progress reaches pipes and CI logs as it happens).
void sprout_line_buffer_stdout(void);

// ---- Threads of the native libraries -------------------------------------
/// Sets OpenMP's thread count (oneDNN's pool) when the OpenMP runtime is loaded.
void sprout_set_omp_threads(int threads);

// ---- oneDNN convolution ---------------------------------------------------
/// One 2-D convolution problem, NCHW activations and OIHW (or GOIHW) weights.
typedef struct {
    int n, c, h, w;      // input
    int k, r, s;         // output channels, kernel height, kernel width
    int oh, ow;          // output spatial size
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int groups;
    int has_bias;
} sprout_conv_problem;

/// Returns 0 on success; non-zero when oneDNN cannot run the problem with a fast
/// (non-reference) implementation, in which case the caller uses its own path.
int sprout_conv_forward(const sprout_conv_problem *p, const float *x, const float *w,
                        const float *bias, float *y);
int sprout_conv_backward_data(const sprout_conv_problem *p, const float *dy, const float *w,
                              float *dx);
/// dbias may be NULL when the problem has no bias.
int sprout_conv_backward_weights(const sprout_conv_problem *p, const float *x, const float *dy,
                                 float *dw, float *dbias);
/// Name of the oneDNN implementation chosen for a pass (0 forward, 1 backward data,
/// 2 backward weights), or "" when none. The string lives as long as the process.
const char *sprout_conv_implementation(const sprout_conv_problem *p, int pass);
/// oneDNN's version as "major.minor.patch", or "" if unavailable.
const char *sprout_dnnl_version(void);
/// Set SPROUT_DNNL=0 in the environment to disable oneDNN (the caller's im2col path runs).
int sprout_dnnl_enabled(void);

// ---- Local response normalization (TensorFlow semantics), NCHW -------------
/// y = x / (bias + alpha * sum_{|c'-c|<=radius} x[c']^2)^beta ; also writes the
/// denominators' base (bias + alpha*sum) into `scale` for the backward pass.
void sprout_lrn_forward(const float *x, float *y, float *scale, int n, int c, int hw,
                        int radius, float bias, float alpha, float beta);
void sprout_lrn_backward(const float *x, const float *y, const float *scale, const float *dy,
                         float *dx, int n, int c, int hw, int radius, float alpha, float beta);

#endif
