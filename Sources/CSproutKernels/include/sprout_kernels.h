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
/// 1 when Sprout's loops can run on OpenMP's pool (oneDNN's), 0 when they fall back to
/// libdispatch (no OpenMP runtime loaded). Whether they do is RuntimeSettings' choice.
int sprout_openmp_pool_available(void);
/// The calling thread's own thread budget (0: none, the process's applies); ExecutionContext's.
void sprout_thread_set_threads(int threads);
int sprout_thread_threads(void);
/// Runs body(context, begin, end) over [0, count) split into `chunks` contiguous parts,
/// on OpenMP's threads (the caller is thread 0). Only when the pool is available.
void sprout_openmp_parallel(long count, long chunks, void (*body)(void *, long, long), void *context);

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
/// Row-major C = op(A)·op(B) + beta·C with oneDNN's GEMM (on its OpenMP pool, shared with
/// the convolutions and Sprout's loops). Returns non-zero when oneDNN is unavailable.
int sprout_dnnl_sgemm(int transpose_a, int transpose_b, long m, long n, long k, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc);
/// oneDNN's version as "major.minor.patch", or "" if unavailable.
const char *sprout_dnnl_version(void);
/// Settings from the Swift layer (RuntimeSettings reads SPROUT_DNNL and SPROUT_CONV_AUTOTUNE):
/// enabled 0 disables oneDNN (the caller's im2col path runs); autotune 1 times both
/// convolution candidates per problem instead of the fixed rule. Defaults: 1, 0.
void sprout_dnnl_configure(int enabled, int autotune);
int sprout_dnnl_enabled(void);
/// 1 when oneDNN's kernels on this CPU use AVX-512 (its effective ISA, after ONEDNN_MAX_CPU_ISA).
int sprout_dnnl_has_avx512(void);

// ---- oneDNN inference graphs (dnnl_infer.c) ---------------------------------------
/// A network's forward pass as oneDNN primitives, activations kept in blocked layouts between
/// them. Built once (value 0 is the input [N, C, H, W]; each call returns a new value id, or
/// -1 with the reason in sprout_infer_graph_error), then compiled per batch size into plans.
typedef struct sprout_infer_graph sprout_infer_graph;
typedef struct sprout_infer_plan sprout_infer_plan;

enum {
    SPROUT_ACT_RELU = 1,       // alpha: negative slope (0 for ReLU)
    SPROUT_ACT_CLIP = 2,       // clamp to [alpha, beta] (ReLU6: 0, 6)
    SPROUT_ACT_GELU_ERF = 3,
    SPROUT_ACT_GELU_TANH = 4,
    SPROUT_ACT_ELU = 5,        // alpha
    SPROUT_ACT_SIGMOID = 6,
    SPROUT_ACT_TANH = 7,
    SPROUT_ACT_LINEAR = 8      // alpha·x + beta
};

sprout_infer_graph *sprout_infer_graph_create(int c, int h, int w);
/// fuse 0: every activation and add a primitive of its own; winograd 0: direct convolutions
/// only (defaults 1 and sprout_infer_configure's). Set before adding nodes.
void sprout_infer_graph_set_options(sprout_infer_graph *g, int fuse, int winograd);
void sprout_infer_graph_destroy(sprout_infer_graph *g);
const char *sprout_infer_graph_error(const sprout_infer_graph *g);
/// weights OIHW ([G·K/G, C/G, R, S] with groups), bias may be NULL; the output size is the
/// caller's (it must agree with the padding).
int sprout_infer_conv(sprout_infer_graph *g, int src, int out_channels, int kh, int kw, int sh, int sw,
                      int pad_top, int pad_left, int pad_bottom, int pad_right, int oh, int ow, int groups,
                      const float *weights, const float *bias);
/// max 1: max pooling; 0: average over the window's unpadded positions.
int sprout_infer_pool(sprout_infer_graph *g, int src, int max, int kh, int kw, int sh, int sw,
                      int pad_top, int pad_left, int pad_bottom, int pad_right, int oh, int ow);
/// Across channels: x / (k + alpha/size · Σ x²)^beta over `size` channels.
int sprout_infer_lrn(sprout_infer_graph *g, int src, int size, float alpha, float beta, float k);
/// y = x·scale[c] + shift[c] (a batch norm that could not be folded into a convolution).
int sprout_infer_affine(sprout_infer_graph *g, int src, const float *scale, const float *shift);
/// y = x·Wᵀ + b over all of x's non-batch axes (flattened as NCHW); weights [K, C·H·W].
int sprout_infer_linear(sprout_infer_graph *g, int src, int out_features, const float *weights, const float *bias);
/// Fused into the producer (a convolution, linear layer or add nobody has read yet) as a
/// post-op, else a primitive of its own. Fusing makes the producer's earlier id stale.
int sprout_infer_activation(sprout_infer_graph *g, int src, int act, float alpha, float beta);
/// a + b; a convolution or linear output nobody has read yet accumulates the other operand.
int sprout_infer_add(sprout_infer_graph *g, int a, int b);
/// The value the plans return (default: the last one made).
int sprout_infer_set_output(sprout_infer_graph *g, int value);
/// A value's dims with batch 1; returns their count, or -1.
int sprout_infer_value_dims(sprout_infer_graph *g, int value, long dims[4]);
/// The output's dims with batch 1; returns their count, or -1.
int sprout_infer_output_dims(sprout_infer_graph *g, long dims[4]);
/// 1 (default): 3x3 stride-1 convolutions use oneDNN's Winograd kernels where it has them.
void sprout_infer_configure(int winograd);

/// Compiles the graph for `batch` images: NULL on failure with the reason in `error`.
/// A plan serves one thread at a time; plans of one graph share their converted weights.
sprout_infer_plan *sprout_infer_plan_create(sprout_infer_graph *g, int batch, char *error, int error_size);
void sprout_infer_plan_destroy(sprout_infer_plan *p);
/// input: [batch, C, H, W] NCHW; output: the output value, plain (NCHW / NC), `output_count` floats.
int sprout_infer_plan_run(sprout_infer_plan *p, const float *input, float *output);
long sprout_infer_plan_output_count(const sprout_infer_plan *p);
/// Activation buffers and scratchpad, in bytes.
size_t sprout_infer_plan_bytes(const sprout_infer_plan *p);

// ---- Winograd F(4x4, 3x3) convolutions (winograd.c) -------------------------------
/// 1 when the problem is a stride-1, ungrouped 3x3 convolution (padding 0-2) this CPU can
/// run with the AVX2+FMA Winograd kernels.
int sprout_winograd_supported(const sprout_conv_problem *p);
/// The three passes on `threads` threads (OpenMP's pool). 0 on success, non-zero when the
/// problem is not supported or scratch memory could not be had (the caller falls back).
int sprout_winograd_forward(const sprout_conv_problem *p, const float *x, const float *w, const float *bias,
                            float *y, int threads);
int sprout_winograd_backward_data(const sprout_conv_problem *p, const float *dy, const float *w, float *dx,
                                  int threads);
int sprout_winograd_backward_weights(const sprout_conv_problem *p, const float *x, const float *dy, float *dw,
                                     float *dbias, int threads);

/// The convolution glue's state — primitive cache, stream, scratch — for one thread of work.
/// A thread uses the process's default context until it binds one of its own; a context is
/// for one thread at a time. Destroying a bound context unbinds it.
typedef struct sprout_conv_context sprout_conv_context;
sprout_conv_context *sprout_conv_context_create(void);
void sprout_conv_context_destroy(sprout_conv_context *ctx);
/// Binds `ctx` to the calling thread (NULL: back to the default context).
void sprout_conv_context_bind(sprout_conv_context *ctx);
sprout_conv_context *sprout_conv_context_bound(void);

// ---- Local response normalization (TensorFlow semantics), NCHW -------------
/// y = x / (bias + alpha * sum_{|c'-c|<=radius} x[c']^2)^beta ; also writes the
/// denominators' base (bias + alpha*sum) into `scale` for the backward pass.
void sprout_lrn_forward(const float *x, float *y, float *scale, int n, int c, int hw,
                        int radius, float bias, float alpha, float beta);
void sprout_lrn_backward(const float *x, const float *y, const float *scale, const float *dy,
                         float *dx, int n, int c, int hw, int radius, float alpha, float beta);

// ---- Element-wise, normalisation and pooling loops (simd.c) -----------------
// Each has an AVX2+FMA build and a baseline build; the CPU picks at start-up.
// sprout_simd_configure(1) forces the baseline build (RuntimeSettings: SPROUT_SIMD=generic).
void sprout_simd_configure(int generic);
/// 1 when the AVX2+FMA loops are active, 0 for the baseline (SSE2) loops.
int sprout_simd_level(void);
/// "avx2+fma" or "generic (sse2)".
const char *sprout_simd_name(void);

void sprout_relu_forward(const float *x, float *y, size_t n);
/// dx = dy where x > 0, else 0.
void sprout_relu_backward(const float *dy, const float *x, float *dx, size_t n);
/// y = min(max(x, lo), hi).
void sprout_clamp_forward(const float *x, float *y, size_t n, float lo, float hi);
/// dx = dy where lo <= x <= hi, else 0.
void sprout_clamp_backward(const float *dy, const float *x, float *dx, size_t n, float lo, float hi);
/// Exact GELU, y = x·Φ(x), error below 3e-7·max(1, |x|).
void sprout_gelu_forward(const float *x, float *y, size_t n);
/// dx = dy·(Φ(x) + x·φ(x))
void sprout_gelu_backward(const float *dy, const float *x, float *dx, size_t n);
void sprout_add(const float *a, const float *b, float *z, size_t n);
void sprout_sub(const float *a, const float *b, float *z, size_t n);
void sprout_mul(const float *a, const float *b, float *z, size_t n);
/// z = a·x + b·y
void sprout_axpby(float a, const float *x, float b, const float *y, float *z, size_t n);
/// Batch norm with batch statistics over channels [c0, c1) of x: [n, c, hw]; writes y,
/// mean and biased variance; relu != 0 fuses a ReLU on the output. gamma/beta may be NULL.
void sprout_batchnorm_forward(const float *x, float *y, const float *gamma, const float *beta, float *mean,
                              float *var, int n, int c, size_t hw, int c0, int c1, float eps, int relu);
/// Its backward; y (the fused ReLU's output) masks dy when not NULL. dgamma/dbeta may be NULL.
void sprout_batchnorm_backward(const float *x, const float *dy, const float *y, const float *mean, const float *var,
                               const float *gamma, float *dx, float *dgamma, float *dbeta, int n, int c, size_t hw,
                               int c0, int c1, float eps);
/// Synchronised batch norm's pieces: per-channel Σx or Σ(x − center)² (double), the
/// gradient sums Σg and Σg·(x − μ), and dx from sums over all M values of each channel.
void sprout_channel_sums(const float *x, const float *center, int n, int c, size_t hw, int c0, int c1, double *out);
void sprout_batchnorm_grad_sums(const float *x, const float *dy, const float *y, const float *mean, int n, int c,
                                size_t hw, int c0, int c1, float *sum_g, float *sum_gx);
void sprout_batchnorm_backward_apply(const float *x, const float *dy, const float *y, const float *mean,
                                     const float *var, const float *gamma, const float *sum_g, const float *sum_gx,
                                     float m, float *dx, int n, int c, size_t hw, int c0, int c1, float eps);
/// y = x·scale[c] + shift[c] over planes [p0, p1) of [n·c, hw], optionally through ReLU.
void sprout_channel_affine(const float *x, float *y, const float *scale, const float *shift, int c, size_t hw,
                           size_t p0, size_t p1, int relu);

/// Pooling window geometry (padding already resolved).
typedef struct {
    int h, w, oh, ow, kh, kw, sh, sw, pt, pl;
} sprout_pool_geometry;
/// Max pooling over planes [p0, p1); arg receives each winner's index in its plane.
void sprout_maxpool_forward(const float *x, float *y, int32_t *arg, const sprout_pool_geometry *g, size_t p0,
                            size_t p1);
/// Zeroes dx's planes [p0, p1), then routes dy to the winners.
void sprout_maxpool_backward(const float *dy, const int32_t *arg, float *dx, const sprout_pool_geometry *g,
                             size_t p0, size_t p1);
void sprout_avgpool_forward(const float *x, float *y, const sprout_pool_geometry *g, int include_pad, size_t p0,
                            size_t p1);
void sprout_avgpool_backward(const float *dy, float *dx, const sprout_pool_geometry *g, int include_pad, size_t p0,
                             size_t p1);

/// One build of the loops above (same order and arguments).
typedef struct {
    void (*relu_forward)(const float *, float *, size_t);
    void (*relu_backward)(const float *, const float *, float *, size_t);
    void (*clamp_forward)(const float *, float *, size_t, float, float);
    void (*clamp_backward)(const float *, const float *, float *, size_t, float, float);
    void (*gelu_forward)(const float *, float *, size_t);
    void (*gelu_backward)(const float *, const float *, float *, size_t);
    void (*add)(const float *, const float *, float *, size_t);
    void (*sub)(const float *, const float *, float *, size_t);
    void (*mul)(const float *, const float *, float *, size_t);
    void (*axpby)(float, const float *, float, const float *, float *, size_t);
    void (*batchnorm_forward)(const float *, float *, const float *, const float *, float *, float *, int, int,
                              size_t, int, int, float, int);
    void (*batchnorm_backward)(const float *, const float *, const float *, const float *, const float *,
                               const float *, float *, float *, float *, int, int, size_t, int, int, float);
    void (*channel_affine)(const float *, float *, const float *, const float *, int, size_t, size_t, size_t, int);
    void (*batchnorm_grad_sums)(const float *, const float *, const float *, const float *, int, int, size_t, int, int,
                                float *, float *);
    void (*batchnorm_backward_apply)(const float *, const float *, const float *, const float *, const float *,
                                     const float *, const float *, const float *, float, float *, int, int, size_t,
                                     int, int, float);
    void (*channel_sums)(const float *, const float *, int, int, size_t, int, int, double *);
    void (*maxpool_forward)(const float *, float *, int32_t *, const sprout_pool_geometry *, size_t, size_t);
    void (*maxpool_backward)(const float *, const int32_t *, float *, const sprout_pool_geometry *, size_t, size_t);
    void (*avgpool_forward)(const float *, float *, const sprout_pool_geometry *, int, size_t, size_t);
    void (*avgpool_backward)(const float *, float *, const sprout_pool_geometry *, int, size_t, size_t);
} sprout_simd_table;
/// The loop set of a level (0 baseline, 1 AVX2+FMA), or NULL when this CPU or build lacks
/// it. The functions above go through the active one; tests compare the two directly.
const sprout_simd_table *sprout_simd_loops(int level);

// LSTM / GRU time step, point-wise part (recurrent.c). Gate blocks in PyTorch's order.
void sprout_lstm_cell_forward(const float *xg, const float *hg, const float *c_prev, const float *h_prev,
                              const float *keep, int n, int h, float *h_out, float *c_out, float *y_out,
                              float *act, float *cand);
void sprout_lstm_cell_backward(const float *dy, const float *dh, const float *dc, const float *act, const float *cand,
                               const float *c_prev, const float *keep, int n, int h,
                               float *d_gates, float *dc_prev, float *dh_prev);
void sprout_gru_cell_forward(const float *xg, const float *hg, const float *h_prev, const float *keep, int n, int h,
                             float *h_out, float *y_out, float *act);
void sprout_gru_cell_backward(const float *dy, const float *dh, const float *act, const float *h_prev, const float *keep,
                              int n, int h, float *dx, float *dhg, float *dh_prev);

#endif
