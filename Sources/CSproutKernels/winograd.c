// Winograd F(4x4, 3x3) convolutions for stride-1 3x3 layers: forward, backward-data and
// backward-weights, AVX2+FMA (run only after the CPU check; oneDNN serves everything else).
//
// One output tile is 4x4 pixels, computed from a 6x6 input patch (tiles step by 4):
//   forward            Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        36 multiplies per 16 outputs, not 144
//   backward-data      the forward pass on dY with each filter flipped and C/K swapped, padding 2 - p
//   backward-weights   dg = Gᵀ [ Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B) ] G
// (Lavin & Gray 2016; points 0, ±1, ±2, ∞.) Across a block of tiles, the element-wise products
// become 36 independent GEMMs (one per position ξ of the 6x6 transform domain), run by one
// 6x16 FMA micro-kernel; the transforms around them are memory-bound.
//
// Work is split into blocks of TILE_BLOCK tiles (tiles of every image are numbered n, ty, tx),
// each block done whole by one thread: transform its inputs into a per-thread scratch, 36
// GEMMs, transform the products out. The per-thread scratch (a few MB) stays in L2/L3.
//
// Layouts (per block of TB tiles):
//   forward:           V[ξ][c][t]   (tiles in SIMD lanes; gathers read the 6x6 patches of 8 tiles)
//                      U[ξ][k/6][c][6]  the transformed filters, packed for the micro-kernel
//                      M[ξ][k][t]   products; the output transform writes 4-pixel rows
//   backward-weights:  V[ξ][t][c]  and  dM[ξ][t][k]  (channels in SIMD lanes), so that the
//                      tile sum dU[ξ][k][c] += Σ_t dM[t][k] V[t][c] is the same micro-kernel
//                      with the tiles as its depth; each thread sums into its own dU.
#include "sprout_kernels.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Tiles per block: the block's transforms (36 x channels x 64 floats) stay in L2. Blocks of
// 16-256 tiles measured within noise of 64 for every pass except 128 and 256 for
// backward-weights, which were 10-30% slower.
enum { TILE_BLOCK = 64, XI = 36 };
// Backward-weights sums the tile blocks in groups of this many, then the groups.
enum { WEIGHT_GROUP = 32 };

// The 36 matrices of a transform are laid one after another with a cache line of slack
// between them: at a whole multiple of 4 KB apart (64 channels x 64 tiles is 16 KB) the
// transforms' 36 stores (and the output transform's 36 loads) all fall in one L1 set.
static long xi_stride(long floats) { return floats + 16; }

static long round_up(long x, long m) { return (x + m - 1) / m * m; }

// The calling thread's scratch, grown as needed and kept (a steady training loop allocates
// nothing); worker threads use slices of it. A thread-specific key frees it when its thread
// ends: threads come and go (test runners, loaders), and a __thread pointer alone leaked each
// one's scratch (LeakSanitizer, make sanitize).
static __thread float *t_scratch;
static __thread size_t t_scratch_floats;
static pthread_key_t scratch_key;
static pthread_once_t scratch_key_once = PTHREAD_ONCE_INIT;

static void make_scratch_key(void) { pthread_key_create(&scratch_key, free); }

static float *scratch(size_t floats) {
    if (floats > t_scratch_floats) {
        pthread_once(&scratch_key_once, make_scratch_key);
        free(t_scratch);
        t_scratch = NULL;
        t_scratch_floats = 0;
        pthread_setspecific(scratch_key, NULL);
        void *p = NULL;
        if (posix_memalign(&p, 64, floats * sizeof(float)) != 0) return NULL;
        t_scratch = p;
        t_scratch_floats = floats;
        pthread_setspecific(scratch_key, p);
    }
    return t_scratch;
}

static void run_parallel(long count, int threads, void (*body)(void *, long, long), void *ctx) {
    if (threads > 1 && count > 1 && sprout_openmp_pool_available())
        sprout_openmp_parallel(count, threads < count ? threads : count, body, ctx);
    else
        body(ctx, 0, count);
}

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#include <dlfcn.h>

static int (*omp_thread_num_fn)(void);
__attribute__((constructor)) static void find_thread_num(void) {
    omp_thread_num_fn = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_thread_num");
}
static int thread_index(void) { return omp_thread_num_fn ? omp_thread_num_fn() : 0; }

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

// ---- The micro-kernel ---------------------------------------------------------------
// c[r][0..15] (+)= Σ_p a[p*as + r] * b[p*bs + 0..15] for r < rows (1..6); c rows stride cs.
#define MICRO(R)                                                                                     \
    static void micro_##R(const float *a, long as, const float *b, long bs, long depth, float *c,    \
                          long cs, int accumulate) {                                                 \
        __m256 acc[R][2];                                                                            \
        for (int r = 0; r < R; r++) {                                                                \
            acc[r][0] = accumulate ? _mm256_loadu_ps(c + r * cs) : _mm256_setzero_ps();              \
            acc[r][1] = accumulate ? _mm256_loadu_ps(c + r * cs + 8) : _mm256_setzero_ps();          \
        }                                                                                            \
        for (long p = 0; p < depth; p++) {                                                           \
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);                             \
            for (int r = 0; r < R; r++) {                                                            \
                __m256 av = _mm256_broadcast_ss(a + r);                                              \
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);                                      \
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);                                      \
            }                                                                                        \
            a += as;                                                                                 \
            b += bs;                                                                                 \
        }                                                                                            \
        for (int r = 0; r < R; r++) {                                                                \
            _mm256_storeu_ps(c + r * cs, acc[r][0]);                                                 \
            _mm256_storeu_ps(c + r * cs + 8, acc[r][1]);                                             \
        }                                                                                            \
    }
MICRO(1)
MICRO(2)
MICRO(3)
MICRO(4)
MICRO(5)
MICRO(6)

static void micro(int rows, const float *a, long as, const float *b, long bs, long depth, float *c, long cs,
                  int accumulate) {
    switch (rows) {
    case 6: micro_6(a, as, b, bs, depth, c, cs, accumulate); break;
    case 5: micro_5(a, as, b, bs, depth, c, cs, accumulate); break;
    case 4: micro_4(a, as, b, bs, depth, c, cs, accumulate); break;
    case 3: micro_3(a, as, b, bs, depth, c, cs, accumulate); break;
    case 2: micro_2(a, as, b, bs, depth, c, cs, accumulate); break;
    default: micro_1(a, as, b, bs, depth, c, cs, accumulate); break;
    }
}

// ---- Transforms, one 6-vector (or 4, or 3) at a time, on 8 lanes ------------------------
// Bᵀ d: the input transform along one axis.
static inline void input_1d(const __m256 d[6], __m256 t[6]) {
    const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), five = _mm256_set1_ps(5);
    __m256 a = _mm256_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
    __m256 b = _mm256_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
    __m256 c = _mm256_sub_ps(d[4], d[2]);           // d4 - d2
    __m256 e = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));  // 2 (d3 - d1)
    t[0] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[2], _mm256_mul_ps(four, d[0])), d[4]);
    t[1] = _mm256_add_ps(a, b);
    t[2] = _mm256_sub_ps(a, b);
    t[3] = _mm256_add_ps(c, e);
    t[4] = _mm256_sub_ps(c, e);
    t[5] = _mm256_add_ps(_mm256_fnmadd_ps(five, d[3], _mm256_mul_ps(four, d[1])), d[5]);
}

// Aᵀ m: the output transform along one axis (6 -> 4).
static inline void output_1d(const __m256 m[6], __m256 o[4]) {
    const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), eight = _mm256_set1_ps(8);
    __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
    __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
    o[1] = _mm256_fmadd_ps(two, d34, d12);
    o[2] = _mm256_fmadd_ps(four, s34, s12);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(eight, d34, d12), m[5]);
}

// A y: the output-gradient transform along one axis (4 -> 6).
static inline void output_grad_1d(const __m256 y[4], __m256 m[6]) {
    const __m256 two = _mm256_set1_ps(2), four = _mm256_set1_ps(4), eight = _mm256_set1_ps(8);
    __m256 e = _mm256_add_ps(y[0], y[2]), o = _mm256_add_ps(y[1], y[3]);
    __m256 e4 = _mm256_fmadd_ps(four, y[2], y[0]), o8 = _mm256_fmadd_ps(eight, y[3], _mm256_mul_ps(two, y[1]));
    m[0] = y[0];
    m[1] = _mm256_add_ps(e, o);
    m[2] = _mm256_sub_ps(e, o);
    m[3] = _mm256_add_ps(e4, o8);
    m[4] = _mm256_sub_ps(e4, o8);
    m[5] = y[3];
}

// ---- Filter transforms (scalar: once per call, K·C filters) ----------------------------
// G g Gᵀ for one 3x3 filter into u[36].
static void filter_transform(const float g[9], float u[36]) {
    float t[6][3];
    for (int j = 0; j < 3; j++) {
        float g0 = g[0 * 3 + j], g1 = g[1 * 3 + j], g2 = g[2 * 3 + j];
        t[0][j] = g0 / 4;
        t[1][j] = -(g0 + g1 + g2) / 6;
        t[2][j] = -(g0 - g1 + g2) / 6;
        t[3][j] = g0 / 24 + g1 / 12 + g2 / 6;
        t[4][j] = g0 / 24 - g1 / 12 + g2 / 6;
        t[5][j] = g2;
    }
    for (int i = 0; i < 6; i++) {
        float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
        u[i * 6 + 0] = g0 / 4;
        u[i * 6 + 1] = -(g0 + g1 + g2) / 6;
        u[i * 6 + 2] = -(g0 - g1 + g2) / 6;
        u[i * 6 + 3] = g0 / 24 + g1 / 12 + g2 / 6;
        u[i * 6 + 4] = g0 / 24 - g1 / 12 + g2 / 6;
        u[i * 6 + 5] = g2;
    }
}

// Gᵀ u G for one 6x6 gradient into g[9].
static void filter_gradient_transform(const float u[36], float g[9]) {
    float t[3][6];
    for (int j = 0; j < 6; j++) {
        float u0 = u[0 * 6 + j], u1 = u[1 * 6 + j], u2 = u[2 * 6 + j], u3 = u[3 * 6 + j], u4 = u[4 * 6 + j],
              u5 = u[5 * 6 + j];
        t[0][j] = u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24;
        t[1][j] = (u2 - u1) / 6 + (u3 - u4) / 12;
        t[2][j] = (u3 + u4 - u1 - u2) / 6 + u5;
    }
    for (int i = 0; i < 3; i++) {
        float u0 = t[i][0], u1 = t[i][1], u2 = t[i][2], u3 = t[i][3], u4 = t[i][4], u5 = t[i][5];
        g[i * 3 + 0] = u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24;
        g[i * 3 + 1] = (u2 - u1) / 6 + (u3 - u4) / 12;
        g[i * 3 + 2] = (u3 + u4 - u1 - u2) / 6 + u5;
    }
}

// ---- Tiled convolution (forward; backward-data is this on dY) ---------------------------
typedef struct {
    const float *x;   // [n][c][h][w]
    float *y;         // [n][k][oh][ow]
    const float *u;   // [36][kp/6][c][6]
    const float *bias;
    int n, c, h, w, k, kp, oh, ow, pt, pl, th, tw;
    long tiles, blocks;
    float *scratch;
    size_t per_thread;  // floats of scratch per thread
} conv_job;

typedef struct {
    // Row r of lane l's 6x6 patch starts at in_offset[r][l] (n*c*h*w + iy*w + ix); its six
    // pixels load as 4 + 2 under in_mask4/in_mask2 (lanes off outside the image or past the
    // last tile), so padding costs no branch and no gather.
    int in_offset[6][8];
    __m128i in_mask4[6][8], in_mask2[6][8];
    int out_offset[8];      // n*k*oh*ow + oy*ow + ox of each lane's tile, -1 past the last tile
    int out_rows[8], out_cols[8];
    __m128i out_mask[8];    // the lane's columns inside the map
} tile_group;

static void plan_group(const conv_job *j, long t0, tile_group *g) {
    long per_image = (long)j->th * j->tw;
    for (int l = 0; l < 8; l++) {
        long t = t0 + l;
        int valid = t < j->tiles;
        if (!valid) t = j->tiles - 1;
        int n = (int)(t / per_image), rest = (int)(t % per_image), ty = rest / j->tw, tx = rest % j->tw;
        int y0 = 4 * ty - j->pt, x0 = 4 * tx - j->pl, plane = n * j->c * j->h * j->w;
        for (int r = 0; r < 6; r++) {
            int iy = y0 + r, row_ok = valid && iy >= 0 && iy < j->h;
            int m[6];
            for (int s = 0; s < 6; s++) m[s] = row_ok && x0 + s >= 0 && x0 + s < j->w ? -1 : 0;
            g->in_offset[r][l] = row_ok ? plane + iy * j->w + x0 : 0;
            g->in_mask4[r][l] = _mm_setr_epi32(m[0], m[1], m[2], m[3]);
            g->in_mask2[r][l] = _mm_setr_epi32(m[4], m[5], 0, 0);
        }
        g->out_offset[l] = valid ? n * j->k * j->oh * j->ow + 4 * ty * j->ow + 4 * tx : -1;
        g->out_rows[l] = j->oh - 4 * ty < 4 ? j->oh - 4 * ty : 4;
        g->out_cols[l] = j->ow - 4 * tx < 4 ? j->ow - 4 * tx : 4;
        int c = g->out_cols[l];
        g->out_mask[l] = _mm_setr_epi32(c > 0 ? -1 : 0, c > 1 ? -1 : 0, c > 2 ? -1 : 0, c > 3 ? -1 : 0);
    }
}

// Row r of the 8 lanes' patches as 6 vectors (pixel s of every lane): 16 masked loads and
// two 4x4 transposes per 128-bit half.
static inline void load_patch_row(const float *plane, const tile_group *g, int r, __m256 d[6]) {
    __m256 p[4], q[4];
    for (int l = 0; l < 4; l++) {
        const float *lo = plane + g->in_offset[r][l], *hi = plane + g->in_offset[r][l + 4];
        p[l] = _mm256_set_m128(_mm_maskload_ps(hi, g->in_mask4[r][l + 4]), _mm_maskload_ps(lo, g->in_mask4[r][l]));
        q[l] = _mm256_set_m128(_mm_maskload_ps(hi + 4, g->in_mask2[r][l + 4]),
                               _mm_maskload_ps(lo + 4, g->in_mask2[r][l]));
    }
    __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]), t1 = _mm256_unpackhi_ps(p[0], p[1]);
    __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]), t3 = _mm256_unpackhi_ps(p[2], p[3]);
    d[0] = _mm256_shuffle_ps(t0, t2, 0x44);
    d[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    d[2] = _mm256_shuffle_ps(t1, t3, 0x44);
    d[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u0 = _mm256_unpacklo_ps(q[0], q[1]), u2 = _mm256_unpacklo_ps(q[2], q[3]);
    d[4] = _mm256_shuffle_ps(u0, u2, 0x44);
    d[5] = _mm256_shuffle_ps(u0, u2, 0xEE);
}

// Bᵀ d B of one channel for the 8 tiles of a group, stored at v[ξ * stride].
static inline void transform_patch(const float *plane, const tile_group *g, float *v, long stride) {
    __m256 t[6][6], row[6], out[6];
    for (int r = 0; r < 6; r++) {  // along each row: t[r][·] = d[r][·] B
        load_patch_row(plane, g, r, row);
        input_1d(row, t[r]);
    }
    for (int s = 0; s < 6; s++) {  // along the columns
        for (int r = 0; r < 6; r++) row[r] = t[r][s];
        input_1d(row, out);
        for (int r = 0; r < 6; r++) _mm256_storeu_ps(v + (r * 6 + s) * stride, out[r]);
    }
}

// Aᵀ m A of one output channel for the 8 tiles of a group, added to by `bias`, written to
// y + channel_offset (row stride ow).
static inline void store_tiles(const float *m, long stride, const tile_group *g, float *y, long channel_offset,
                               int ow, float bias) {
    __m256 t[4][6], o[4][4];
    for (int s = 0; s < 6; s++) {
        __m256 col[6], out[4];
        for (int r = 0; r < 6; r++) col[r] = _mm256_loadu_ps(m + (r * 6 + s) * stride);
        output_1d(col, out);
        for (int i = 0; i < 4; i++) t[i][s] = out[i];
    }
    __m256 b = _mm256_set1_ps(bias);
    for (int i = 0; i < 4; i++) {
        output_1d(t[i], o[i]);
        for (int jx = 0; jx < 4; jx++) o[i][jx] = _mm256_add_ps(o[i][jx], b);
    }
    // Per output row i: transpose the 4 column vectors so each lane's 4 pixels are adjacent.
    for (int i = 0; i < 4; i++) {
        __m256 t0 = _mm256_unpacklo_ps(o[i][0], o[i][1]), t1 = _mm256_unpackhi_ps(o[i][0], o[i][1]);
        __m256 t2 = _mm256_unpacklo_ps(o[i][2], o[i][3]), t3 = _mm256_unpackhi_ps(o[i][2], o[i][3]);
        __m256 r0 = _mm256_shuffle_ps(t0, t2, 0x44), r1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 r2 = _mm256_shuffle_ps(t1, t3, 0x44), r3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m128 lane[8] = {_mm256_castps256_ps128(r0), _mm256_castps256_ps128(r1), _mm256_castps256_ps128(r2),
                          _mm256_castps256_ps128(r3), _mm256_extractf128_ps(r0, 1), _mm256_extractf128_ps(r1, 1),
                          _mm256_extractf128_ps(r2, 1), _mm256_extractf128_ps(r3, 1)};
        for (int l = 0; l < 8; l++) {
            if (g->out_offset[l] < 0 || i >= g->out_rows[l]) continue;
            float *dst = y + channel_offset + g->out_offset[l] + (long)i * ow;
            if (g->out_cols[l] == 4) _mm_storeu_ps(dst, lane[l]);
            else _mm_maskstore_ps(dst, g->out_mask[l], lane[l]);
        }
    }
}

// Floats of per-thread scratch for the tiled convolution.
static size_t conv_scratch_floats(int c, int kp) {
    size_t groups = TILE_BLOCK / 8;
    size_t plan = groups * sizeof(tile_group) / sizeof(float) + 16;
    return (size_t)XI * xi_stride((long)c * TILE_BLOCK) + (size_t)XI * xi_stride((long)kp * TILE_BLOCK) + plan;
}

static void conv_blocks(void *ctx, long b0, long b1) {
    const conv_job *j = ctx;
    float *base = j->scratch + (size_t)thread_index() * j->per_thread;
    float *v = base;                                         // [36][c][TB]
    const long vs = xi_stride((long)j->c * TILE_BLOCK), ms = xi_stride((long)j->kp * TILE_BLOCK);
    float *m = v + (size_t)XI * vs;                          // [36][kp][TB]
    tile_group *groups = (tile_group *)(((uintptr_t)(m + (size_t)XI * ms) + 63) & ~(uintptr_t)63);
    const long plane = (long)j->h * j->w, out_plane = (long)j->oh * j->ow;
    const int group_count = TILE_BLOCK / 8, kblocks = j->kp / 6;
    for (long b = b0; b < b1; b++) {
        long t0 = b * TILE_BLOCK;
        int used = (int)((j->tiles - t0 + 7) / 8);
        if (used > group_count) used = group_count;
        for (int gi = 0; gi < used; gi++) plan_group(j, t0 + gi * 8, &groups[gi]);
        // Input transform: V[ξ][c][t]. Unused groups of a short last block are left as they
        // were; their products are computed and never stored.
        for (int c = 0; c < j->c; c++)
            for (int gi = 0; gi < used; gi++) {
                // The next channel's rows of this group, a plane ahead: the input is read once,
                // from memory, in many short runs the hardware prefetcher does not follow.
                if (c + 1 < j->c) {
                    const char *next = (const char *)(j->x + (c + 1) * plane);
                    for (int r = 0; r < 6; r++)
                        for (int l = 0; l < 8; l += 2) _mm_prefetch(next + 4 * (long)groups[gi].in_offset[r][l], _MM_HINT_T0);
                }
                transform_patch(j->x + c * plane, &groups[gi], v + (long)c * TILE_BLOCK + gi * 8, vs);
            }
        // 36 GEMMs: M[ξ] (kp x TB) = U[ξ] (kp x c) · V[ξ] (c x TB).
        int columns = (used * 8 + 15) / 16;
        for (int xi = 0; xi < XI; xi++) {
            const float *uxi = j->u + (size_t)xi * j->kp * j->c;
            const float *vxi = v + (size_t)xi * vs;
            float *mxi = m + (size_t)xi * ms;
            for (int kb = 0; kb < kblocks; kb++)
                for (int cb = 0; cb < columns; cb++)
                    micro_6(uxi + (size_t)kb * 6 * j->c, 6, vxi + cb * 16, TILE_BLOCK, j->c,
                            mxi + (size_t)kb * 6 * TILE_BLOCK + cb * 16, TILE_BLOCK, 0);
        }
        // Output transform.
        for (int k = 0; k < j->k; k++) {
            float bias = j->bias ? j->bias[k] : 0;
            for (int gi = 0; gi < used; gi++)
                store_tiles(m + (long)k * TILE_BLOCK + gi * 8, ms, &groups[gi], j->y,
                            k * out_plane, j->ow, bias);
        }
    }
}

// Transforms filters w into U[36][kp/6][c_out-side…]: for the forward pass `w` is [k][c][3][3];
// with `flip`, w is [c][k][3][3] (the forward layer's) and the filter for (k, c) is w[c][k]
// rotated by 180° — the backward-data pass as a forward one.
typedef struct {
    const float *w;
    float *u;
    int k, c, kp, flip;
} filter_job;

// One thread's share of k-blocks (6 output channels each): the six filters of a block are
// transformed together so each ξ gets one contiguous store of 6 values.
static void filter_rows(void *ctx, long kb0, long kb1) {
    const filter_job *j = ctx;
    const int kblocks = j->kp / 6;
    for (long kb = kb0; kb < kb1; kb++)
        for (int c = 0; c < j->c; c++) {
            float u[6][36];
            for (int r = 0; r < 6; r++) {
                long k = kb * 6 + r;
                if (k >= j->k) {
                    memset(u[r], 0, sizeof u[r]);
                    continue;
                }
                float g[9];
                const float *src = j->flip ? j->w + ((long)c * j->k + k) * 9 : j->w + (k * j->c + c) * 9;
                for (int i = 0; i < 9; i++) g[i] = j->flip ? src[8 - i] : src[i];
                filter_transform(g, u[r]);
            }
            for (int xi = 0; xi < XI; xi++) {
                float *dst = j->u + (((size_t)xi * kblocks + kb) * j->c + c) * 6;
                for (int r = 0; r < 6; r++) dst[r] = u[r][xi];
            }
        }
}

// y[n][k][oh][ow] = conv3x3(x[n][c][h][w], filters) with padding (pt, pl) at the top-left.
static int winograd_conv(const float *x, int n, int c, int h, int w, const float *weights, int flip,
                         const float *bias, float *y, int k, int oh, int ow, int pt, int pl, int threads) {
    if (threads < 1) threads = 1;
    int kp = (int)round_up(k, 6);
    int th = (oh + 3) / 4, tw = (ow + 3) / 4;
    long tiles = (long)n * th * tw, blocks = (tiles + TILE_BLOCK - 1) / TILE_BLOCK;
    if (threads > blocks) threads = (int)blocks;
    size_t ufloats = (size_t)XI * kp * c;
    size_t per_thread = round_up(conv_scratch_floats(c, kp), 16);
    float *buf = scratch(ufloats + per_thread * threads);
    if (!buf) return 1;
    filter_job fj = {weights, buf, k, c, kp, flip};
    run_parallel(kp / 6, threads, filter_rows, &fj);
    conv_job j = {x, y, buf, bias, n, c, h, w, k, kp, oh, ow, pt, pl, th, tw, tiles, blocks, buf + ufloats, per_thread};
    run_parallel(blocks, threads, conv_blocks, &j);
    return 0;
}

// ---- Backward-weights ---------------------------------------------------------------
typedef struct {
    const float *x, *dy;
    int n, c, h, w, k, oh, ow, pt, pl, th, tw, cp, kp;
    long tiles, blocks;
    float *scratch;       // per thread: dU and a partial sum [36][kp][cp], V [36][TB][cp], dM [36][TB][kp], a staging area, plans
    size_t per_thread;
} weights_job;

// 8x8 transpose: rows[i] (8 floats each, stride `in`) to out rows (stride `os`).
static inline void transpose8_store(const float *in, long is, float *out, long os) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + i * is);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    __m256 q[8];
    for (int i = 0; i < 2; i++) {
        q[4 * i + 0] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
        q[4 * i + 1] = _mm256_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
        q[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        q[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * os, _mm256_permute2f128_ps(q[i], q[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * os, _mm256_permute2f128_ps(q[i], q[i + 4], 0x31));
    }
}

// A dY Aᵀ of one output-gradient channel for the 8 tiles of a group (zero outside the map),
// stored at m[ξ * stride].
static inline void transform_output_grad(const float *plane, const tile_group *g, int ow, float *m, long stride) {
    __m256 y[4][4], t[6][4], col[4], out[6];
    for (int i = 0; i < 4; i++) {  // row i of every lane's tile: masked loads, 4x4 transposes
        __m256 p[4];
        for (int l = 0; l < 4; l++) {
            __m128 lo = _mm_setzero_ps(), hi = _mm_setzero_ps();
            if (g->out_offset[l] >= 0 && i < g->out_rows[l])
                lo = _mm_maskload_ps(plane + g->out_offset[l] + (long)i * ow, g->out_mask[l]);
            if (g->out_offset[l + 4] >= 0 && i < g->out_rows[l + 4])
                hi = _mm_maskload_ps(plane + g->out_offset[l + 4] + (long)i * ow, g->out_mask[l + 4]);
            p[l] = _mm256_set_m128(hi, lo);
        }
        __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]), t1 = _mm256_unpackhi_ps(p[0], p[1]);
        __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]), t3 = _mm256_unpackhi_ps(p[2], p[3]);
        y[i][0] = _mm256_shuffle_ps(t0, t2, 0x44);
        y[i][1] = _mm256_shuffle_ps(t0, t2, 0xEE);
        y[i][2] = _mm256_shuffle_ps(t1, t3, 0x44);
        y[i][3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    }
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < 4; i++) col[i] = y[i][s];
        output_grad_1d(col, out);
        for (int r = 0; r < 6; r++) t[r][s] = out[r];
    }
    for (int r = 0; r < 6; r++) {
        output_grad_1d(t[r], out);
        for (int s = 0; s < 6; s++) _mm256_storeu_ps(m + (r * 6 + s) * stride, out[s]);
    }
}

static void weight_blocks(void *ctx, long b0, long b1) {
    const weights_job *j = ctx;
    const long us = xi_stride((long)j->kp * j->cp), vs = xi_stride((long)TILE_BLOCK * j->cp),
               ms = xi_stride((long)TILE_BLOCK * j->kp);
    float *du = j->scratch + (size_t)thread_index() * j->per_thread;
    float *partial = du + (size_t)XI * us;                 // the current group of blocks' sum, [36][kp][cp]
    float *v = partial + (size_t)XI * us;                  // [36][TB][cp]
    float *dm = v + (size_t)XI * vs;                       // [36][TB][kp]
    float *tmp = dm + (size_t)XI * ms;                     // [36][8 channels][8 tiles], slack-strided
    const long ts = xi_stride(64);
    tile_group *groups = (tile_group *)(((uintptr_t)(tmp + (size_t)XI * ts) + 63) & ~(uintptr_t)63);
    const long plane = (long)j->h * j->w, out_plane = (long)j->oh * j->ow;
    // The forward pass's tile plan: input patches of x, output tiles of dY.
    conv_job shape = {.n = j->n, .c = j->c, .h = j->h, .w = j->w, .k = j->k, .oh = j->oh, .ow = j->ow,
                      .pt = j->pt, .pl = j->pl, .th = j->th, .tw = j->tw, .tiles = j->tiles};
    for (long b = b0; b < b1; b++) {
        long t0 = b * TILE_BLOCK, count = j->tiles - t0 < TILE_BLOCK ? j->tiles - t0 : TILE_BLOCK;
        int used = (int)((count + 7) / 8);
        for (int gi = 0; gi < used; gi++) plan_group(&shape, t0 + gi * 8, &groups[gi]);
        // V[ξ][i][c]: 8 channels x 8 tiles at a time, transformed with tiles in lanes, then
        // transposed so that channels are contiguous (the micro-kernel's columns).
        for (int c0 = 0; c0 < j->cp; c0 += 8)
            for (int gi = 0; gi < used; gi++) {
                for (int cc = 0; cc < 8; cc++) {
                    if (c0 + cc < j->c)
                        transform_patch(j->x + (c0 + cc) * plane, &groups[gi], tmp + cc * 8, ts);
                    else
                        for (int xi = 0; xi < XI; xi++) _mm256_storeu_ps(tmp + xi * ts + cc * 8, _mm256_setzero_ps());
                }
                for (int xi = 0; xi < XI; xi++) transpose8_store(tmp + xi * ts, 8, v + xi * vs + (long)gi * 8 * j->cp + c0, j->cp);
            }
        // dM[ξ][i][k] = A dY Aᵀ, the same way.
        for (int k0 = 0; k0 < j->kp; k0 += 8)
            for (int gi = 0; gi < used; gi++) {
                for (int kk = 0; kk < 8; kk++) {
                    if (k0 + kk < j->k)
                        transform_output_grad(j->dy + (k0 + kk) * out_plane, &groups[gi], j->ow, tmp + kk * 8, ts);
                    else
                        for (int xi = 0; xi < XI; xi++) _mm256_storeu_ps(tmp + xi * ts + kk * 8, _mm256_setzero_ps());
                }
                for (int xi = 0; xi < XI; xi++) transpose8_store(tmp + xi * ts, 8, dm + xi * ms + (long)gi * 8 * j->kp + k0, j->kp);
            }
        // partial[ξ] (kp x cp) += Σ_i dM[ξ][i][k] V[ξ][i][c]: the micro-kernel with the tiles as
        // depth (tiles past the last one are zero in both). The first block of a group writes it.
        long in_group = (b - b0) % WEIGHT_GROUP;
        for (int xi = 0; xi < XI; xi++) {
            const float *dmx = dm + xi * ms, *vx = v + xi * vs;
            float *px = partial + xi * us;
            for (int k0 = 0; k0 < j->k; k0 += 6) {
                int rows = j->k - k0 < 6 ? j->k - k0 : 6;
                for (int c0 = 0; c0 < j->cp; c0 += 16)
                    micro(rows, dmx + k0, j->kp, vx + c0, j->cp, used * 8, px + (size_t)k0 * j->cp + c0, j->cp, in_group > 0);
            }
        }
        // Every WEIGHT_GROUP blocks (and at the end), the group's sum into dU: a sum in two levels,
        // so rounding grows with blocks/WEIGHT_GROUP + WEIGHT_GROUP additions, not with every block
        // (batch 2,000 at 31x31 is 2,000 blocks: one level left 8e-5 of the result's scale).
        if (in_group == WEIGHT_GROUP - 1 || b == b1 - 1) {
            for (int xi = 0; xi < XI; xi++)
                for (long i = 0; i < (long)j->k * j->cp; i += 8) {
                    float *d = du + xi * us + i;
                    _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_loadu_ps(partial + xi * us + i)));
                }
        }
    }
}

typedef struct {
    const weights_job *job;
    int threads;
    float *dw;
} weights_finish_job;

// Sums the threads' dU and applies Gᵀ · G, one output channel at a time.
static void weight_finish(void *ctx, long k0, long k1) {
    const weights_finish_job *f = ctx;
    const weights_job *j = f->job;
    const long us = xi_stride((long)j->kp * j->cp);
    for (long k = k0; k < k1; k++)
        for (int c = 0; c < j->c; c++) {
            float u[36], g[9];
            for (int xi = 0; xi < XI; xi++) {
                float sum = 0;
                for (int t = 0; t < f->threads; t++)
                    sum += j->scratch[(size_t)t * j->per_thread + xi * us + k * j->cp + c];
                u[xi] = sum;
            }
            filter_gradient_transform(u, g);
            memcpy(f->dw + (k * j->c + c) * 9, g, sizeof g);
        }
}

static int winograd_weights(const float *x, const float *dy, int n, int c, int h, int w, int k, int oh, int ow,
                            int pt, int pl, float *dw, int threads) {
    if (threads < 1) threads = 1;
    int cp = (int)round_up(c, 16), kp = (int)round_up(k, 8);
    int th = (oh + 3) / 4, tw = (ow + 3) / 4;
    long tiles = (long)n * th * tw, blocks = (tiles + TILE_BLOCK - 1) / TILE_BLOCK;
    if (threads > blocks) threads = (int)blocks;
    size_t dufloats = (size_t)XI * xi_stride((long)kp * cp);
    size_t plan = (TILE_BLOCK / 8) * sizeof(tile_group) / sizeof(float) + 16;
    size_t per_thread = round_up(2 * dufloats + (size_t)XI * (xi_stride((long)TILE_BLOCK * cp) + xi_stride((long)TILE_BLOCK * kp)
                                                         + xi_stride(64)) + plan, 16);
    float *buf = scratch(per_thread * threads);
    if (!buf) return 1;
    for (int t = 0; t < threads; t++) memset(buf + (size_t)t * per_thread, 0, dufloats * sizeof(float));
    // Padded channels of V and dM must read as zero; the gathers write every lane (masked ones as 0).
    weights_job j = {x, dy, n, c, h, w, k, oh, ow, pt, pl, th, tw, cp, kp, tiles, blocks, buf, per_thread};
    // Each thread owns a contiguous range of blocks: thread_index() picks its dU.
    run_parallel(blocks, threads, weight_blocks, &j);
    weights_finish_job f = {&j, threads, dw};
    run_parallel(k, threads, weight_finish, &f);
    return 0;
}

#pragma clang attribute pop

static int cpu_ok(void) {
    static int ok = -1;
    if (ok < 0) {
        uint32_t f = sprout_cpu_features();
        ok = (f & SPROUT_CPU_AVX2) && (f & SPROUT_CPU_FMA);
    }
    return ok;
}
#else
static int cpu_ok(void) { return 0; }
static int thread_index(void) { return 0; }
#endif

int sprout_winograd_supported(const sprout_conv_problem *p) {
    if (!cpu_ok()) return 0;
    if (p->groups != 1 || p->r != 3 || p->s != 3 || p->stride_h != 1 || p->stride_w != 1) return 0;
    if (p->pad_top < 0 || p->pad_top > 2 || p->pad_left < 0 || p->pad_left > 2) return 0;
    if (p->oh != p->h + p->pad_top + p->pad_bottom - 2 || p->ow != p->w + p->pad_left + p->pad_right - 2) return 0;
    if (p->oh < 1 || p->ow < 1) return 0;
    // Gather offsets are 32-bit.
    long long in = (long long)p->n * p->c * p->h * p->w, out = (long long)p->n * p->k * p->oh * p->ow;
    return in < INT32_MAX && out < INT32_MAX;
}

#if defined(__x86_64__) && defined(__clang__)
int sprout_winograd_forward(const sprout_conv_problem *p, const float *x, const float *w, const float *bias, float *y,
                            int threads) {
    if (!sprout_winograd_supported(p)) return 1;
    return winograd_conv(x, p->n, p->c, p->h, p->w, w, 0, p->has_bias ? bias : NULL, y, p->k, p->oh, p->ow,
                         p->pad_top, p->pad_left, threads);
}

int sprout_winograd_backward_data(const sprout_conv_problem *p, const float *dy, const float *w, float *dx,
                                  int threads) {
    if (!sprout_winograd_supported(p)) return 1;
    // dx = conv(dy, w rotated 180° with C and K swapped), padding 2 - p on the top-left.
    return winograd_conv(dy, p->n, p->k, p->oh, p->ow, w, 1, NULL, dx, p->c, p->h, p->w, 2 - p->pad_top,
                         2 - p->pad_left, threads);
}

int sprout_winograd_backward_weights(const sprout_conv_problem *p, const float *x, const float *dy, float *dw,
                                     float *dbias, int threads) {
    if (!sprout_winograd_supported(p)) return 1;
    if (winograd_weights(x, dy, p->n, p->c, p->h, p->w, p->k, p->oh, p->ow, p->pad_top, p->pad_left, dw, threads))
        return 1;
    if (p->has_bias && dbias) {
        long plane = (long)p->oh * p->ow;
        for (int k = 0; k < p->k; k++) {
            double sum = 0;
            for (int n = 0; n < p->n; n++) {
                const float *src = dy + ((long)n * p->k + k) * plane;
                for (long i = 0; i < plane; i++) sum += src[i];
            }
            dbias[k] = (float)sum;
        }
    }
    return 0;
}
#else
int sprout_winograd_forward(const sprout_conv_problem *p, const float *x, const float *w, const float *bias, float *y,
                            int threads) { return 1; }
int sprout_winograd_backward_data(const sprout_conv_problem *p, const float *dy, const float *w, float *dx,
                                  int threads) { return 1; }
int sprout_winograd_backward_weights(const sprout_conv_problem *p, const float *x, const float *dy, float *dw,
                                     float *dbias, int threads) { return 1; }
#endif
