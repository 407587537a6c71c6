// Element-wise, normalisation and pooling loops, written once and compiled twice:
// simd_avx2.c includes this file under `target("avx2,fma")` (8-wide vectors, FMA),
// simd_generic.c for baseline x86-64 (SSE2). simd.c picks one set at run time.
// K(name) gives each copy its own symbol. Plain C loops: the compiler vectorises them
// for whichever target the including file sets; reductions opt into reassociation.
//
// Layout: NCHW; "planes" are the N·C spatial maps of HW contiguous floats.

#include <math.h>
#include <stddef.h>
#include <stdint.h>

// ---- Element-wise over [0, n) ---------------------------------------------------------

//   y = max(x, 0)
static void K(relu_forward)(const float *restrict x, float *restrict y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

//   dx = dy where x > 0 else 0   (x may be the ReLU's input or its output: same mask)
static void K(relu_backward)(const float *restrict dy, const float *restrict x, float *restrict dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = dy[i];  // load, then select: a load inside the condition does not vectorise
        dx[i] = x[i] > 0.0f ? g : 0.0f;
    }
}

//   y = min(max(x, lo), hi)   (ReLU6 is lo = 0, hi = 6)
static void K(clamp_forward)(const float *restrict x, float *restrict y, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) { float v = x[i] < lo ? lo : x[i]; y[i] = v > hi ? hi : v; }
}

//   dx = dy where lo <= x <= hi, else 0   (torch.clamp's gradient)
static void K(clamp_backward)(const float *restrict dy, const float *restrict x, float *restrict dx, size_t n,
                              float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        float g = dy[i], v = x[i];
        dx[i] = (v >= lo && v <= hi) ? g : 0.0f;
    }
}

static void K(add)(const float *restrict a, const float *restrict b, float *restrict z, size_t n) {
    for (size_t i = 0; i < n; i++) z[i] = a[i] + b[i];
}
static void K(sub)(const float *restrict a, const float *restrict b, float *restrict z, size_t n) {
    for (size_t i = 0; i < n; i++) z[i] = a[i] - b[i];
}
static void K(mul)(const float *restrict a, const float *restrict b, float *restrict z, size_t n) {
    for (size_t i = 0; i < n; i++) z[i] = a[i] * b[i];
}
//   z = a·x + b·y   (scaled sums: accumulation, scalar multiples, SGD steps)
static void K(axpby)(float a, const float *restrict x, float b, const float *restrict y, float *restrict z, size_t n) {
    for (size_t i = 0; i < n; i++) z[i] = a * x[i] + b * y[i];
}

// ---- GELU (exact form, x·Φ(x)) ------------------------------------------------------
// libm's erff and expf are scalar calls; these inline forms vectorise. exp: Cephes' expf
// (range reduction by ln 2, degree-6 polynomial, 2^n from the exponent bits; relative
// error ~1e-7). Φ: Abramowitz & Stegun 7.1.26 for erfc (absolute error < 1.5e-7), the
// form PyTorch's vectorised CPU GELU uses; Φ(x) for x < 0 is computed directly from erfc,
// so small tails keep their relative accuracy instead of cancelling in 1 − (1 − q).

static inline float K(exp_inline)(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t = x * 1.44269504088896341f;
    float n = (float)(int)(t + (t >= 0.0f ? 0.5f : -0.5f));
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

// Φ(x) and the density φ(x) = exp(−x²/2)/√(2π).
static inline void K(normal_cdf_pdf)(float x, float *cdf, float *pdf) {
    float z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.3275911f * z);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float e = K(exp_inline)(-z * z);
    float tail = 0.5f * poly * e;
    *cdf = x < 0.0f ? tail : 1.0f - tail;
    *pdf = e * 0.39894228040143268f;
}

//   y = x·Φ(x)
static void K(gelu_forward)(const float *restrict x, float *restrict y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float c, d;
        K(normal_cdf_pdf)(x[i], &c, &d);
        y[i] = x[i] * c;
    }
}

//   dx = dy·(Φ(x) + x·φ(x))
static void K(gelu_backward)(const float *restrict dy, const float *restrict x, float *restrict dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float c, d;
        K(normal_cdf_pdf)(x[i], &c, &d);
        dx[i] = dy[i] * (c + x[i] * d);
    }
}

// ---- Batch normalisation, channels [c0, c1) of x: [N, C, HW] ------------------------

#pragma clang fp reassociate(on)
static float K(plane_sum)(const float *restrict p, size_t hw) {
    float s = 0;
    for (size_t i = 0; i < hw; i++) s += p[i];
    return s;
}
static float K(plane_centered_squares)(const float *restrict p, size_t hw, float mu) {
    float s = 0;
    for (size_t i = 0; i < hw; i++) { float d = p[i] - mu; s += d * d; }
    return s;
}
static void K(plane_grad_sums)(const float *restrict x, const float *restrict dy, const float *restrict y,
                               size_t hw, float mu, float *sum_g, float *sum_gx) {
    float sg = 0, sgx = 0;
    if (y) {
        for (size_t i = 0; i < hw; i++) { float g = dy[i]; g = y[i] > 0.0f ? g : 0.0f; sg += g; sgx += g * (x[i] - mu); }
    } else {
        for (size_t i = 0; i < hw; i++) { sg += dy[i]; sgx += dy[i] * (x[i] - mu); }
    }
    *sum_g = sg;
    *sum_gx = sgx;
}
#pragma clang fp reassociate(off)

// Training-mode forward: batch mean and biased variance per channel (plane sums in float,
// the total over planes in double), then y = x·scale + shift, optionally through ReLU.
static void K(batchnorm_forward)(const float *x, float *y, const float *gamma, const float *beta,
                                 float *mean, float *var, int n, int c, size_t hw, int c0, int c1,
                                 float eps, int relu) {
    double m = (double)n * (double)hw;
    for (int ch = c0; ch < c1; ch++) {
        double s = 0;
        for (int b = 0; b < n; b++) s += K(plane_sum)(x + ((size_t)b * c + ch) * hw, hw);
        float mu = (float)(s / m);
        double ss = 0;
        for (int b = 0; b < n; b++) ss += K(plane_centered_squares)(x + ((size_t)b * c + ch) * hw, hw, mu);
        float v = (float)(ss / m);
        mean[ch] = mu;
        var[ch] = v;
        float scale = (gamma ? gamma[ch] : 1.0f) / sqrtf(v + eps);
        float shift = (beta ? beta[ch] : 0.0f) - mu * scale;
        for (int b = 0; b < n; b++) {
            const float *restrict p = x + ((size_t)b * c + ch) * hw;
            float *restrict q = y + ((size_t)b * c + ch) * hw;
            if (relu) {
                for (size_t i = 0; i < hw; i++) { float t = p[i] * scale + shift; q[i] = t > 0.0f ? t : 0.0f; }
            } else {
                for (size_t i = 0; i < hw; i++) q[i] = p[i] * scale + shift;
            }
        }
    }
}

// Σ g and Σ g·(x − μ) of one channel (g masked by y > 0 when y is given).
static inline void K(grad_sums_of_channel)(const float *x, const float *dy, const float *y, float mu, int n, int c,
                                           size_t hw, int ch, float *sum_g, float *sum_gx) {
    double sg = 0, sgx = 0;
    for (int b = 0; b < n; b++) {
        size_t off = ((size_t)b * c + ch) * hw;
        float a, bb;
        K(plane_grad_sums)(x + off, dy + off, y ? y + off : NULL, hw, mu, &a, &bb);
        sg += a;
        sgx += bb;
    }
    *sum_g = (float)sg;
    *sum_gx = (float)sgx;
}

// dx of one channel from the sums over all M of its values (with synchronised statistics
// they come from every process):  dx = γ/(M·σ) · (M·g − Σg − x̂·Σg·x̂)
static inline void K(backward_of_channel)(const float *x, const float *dy, const float *y, float mu, float var,
                                          float gamma, float sum_g, float sum_gx, float m, float *dx, int n, int c,
                                          size_t hw, int ch, float eps) {
    float inv_std = 1.0f / sqrtf(var + eps);
    float dg = sum_gx * inv_std;
    float k = gamma * inv_std / m;
    // dx = k·(M·g − Σg − (x − μ)·σ⁻¹·dγ) = (k·M)·g + (−k·σ⁻¹·dγ)·x + k·(μ·σ⁻¹·dγ − Σg)
    float cg = k * m, cx = -k * inv_std * dg, c0v = k * (mu * inv_std * dg - sum_g);
    for (int b = 0; b < n; b++) {
        size_t off = ((size_t)b * c + ch) * hw;
        const float *restrict p = x + off, *restrict d = dy + off;
        float *restrict o = dx + off;
        if (y) {
            const float *restrict yy = y + off;
            for (size_t i = 0; i < hw; i++) { float g = d[i]; g = yy[i] > 0.0f ? g : 0.0f; o[i] = cg * g + cx * p[i] + c0v; }
        } else {
            for (size_t i = 0; i < hw; i++) o[i] = cg * d[i] + cx * p[i] + c0v;
        }
    }
}

static void K(batchnorm_grad_sums)(const float *x, const float *dy, const float *y, const float *mean,
                                   int n, int c, size_t hw, int c0, int c1, float *sum_g, float *sum_gx) {
    for (int ch = c0; ch < c1; ch++) K(grad_sums_of_channel)(x, dy, y, mean[ch], n, c, hw, ch, &sum_g[ch], &sum_gx[ch]);
}

static void K(batchnorm_backward_apply)(const float *x, const float *dy, const float *y, const float *mean,
                                        const float *var, const float *gamma, const float *sum_g,
                                        const float *sum_gx, float m, float *dx, int n, int c, size_t hw,
                                        int c0, int c1, float eps) {
    for (int ch = c0; ch < c1; ch++)
        K(backward_of_channel)(x, dy, y, mean[ch], var[ch], gamma ? gamma[ch] : 1.0f, sum_g[ch], sum_gx[ch], m, dx,
                               n, c, hw, ch, eps);
}

// Training-mode backward. With `y` (the fused ReLU's output) the incoming gradient is
// masked by y > 0 first. Per channel over the M = N·HW values:
//   dβ = Σ g,  dγ = Σ g·x̂,  dx = γ/(M·σ) · (M·g − dβ − x̂·dγ)
static void K(batchnorm_backward)(const float *x, const float *dy, const float *y, const float *mean,
                                  const float *var, const float *gamma, float *dx, float *dgamma, float *dbeta,
                                  int n, int c, size_t hw, int c0, int c1, float eps) {
    float m = (float)((double)n * (double)hw);
    for (int ch = c0; ch < c1; ch++) {
        float sum_g, sum_gx;
        K(grad_sums_of_channel)(x, dy, y, mean[ch], n, c, hw, ch, &sum_g, &sum_gx);
        if (dgamma) dgamma[ch] = sum_gx / sqrtf(var[ch] + eps);
        if (dbeta) dbeta[ch] = sum_g;
        K(backward_of_channel)(x, dy, y, mean[ch], var[ch], gamma ? gamma[ch] : 1.0f, sum_g, sum_gx, m, dx, n, c, hw,
                               ch, eps);
    }
}

// Per-channel Σx (center NULL) or Σ(x − center[c])² over channels [c0, c1), plane sums in
// float, totals in double (synchronised batch norm adds them up across processes).
static void K(channel_sums)(const float *x, const float *center, int n, int c, size_t hw, int c0, int c1, double *out) {
    for (int ch = c0; ch < c1; ch++) {
        double s = 0;
        for (int b = 0; b < n; b++) {
            const float *p = x + ((size_t)b * c + ch) * hw;
            s += center ? K(plane_centered_squares)(p, hw, center[ch]) : K(plane_sum)(p, hw);
        }
        out[ch] = s;
    }
}

// y = x·scale[c] + shift[c] for planes [p0, p1) (evaluation-mode batch norm).
static void K(channel_affine)(const float *x, float *y, const float *scale, const float *shift,
                              int c, size_t hw, size_t p0, size_t p1, int relu) {
    for (size_t p = p0; p < p1; p++) {
        float s = scale[p % (size_t)c], t = shift[p % (size_t)c];
        const float *restrict a = x + p * hw;
        float *restrict o = y + p * hw;
        if (relu) {
            for (size_t i = 0; i < hw; i++) { float v = a[i] * s + t; o[i] = v > 0.0f ? v : 0.0f; }
        } else {
            for (size_t i = 0; i < hw; i++) o[i] = a[i] * s + t;
        }
    }
}

// ---- Pooling over planes [p0, p1) -----------------------------------------------------

// Input positions [lo, hi) covered by output position o, clipped to the image.
static inline void window_span(int o, int stride, int pad, int kernel, int size, int *lo, int *hi) {
    int a = o * stride - pad, b = a + kernel;
    *lo = a < 0 ? 0 : a;
    *hi = b > size ? size : b;
}

// Max pooling, TensorFlow SAME semantics (padding never wins), first maximum kept:
//   x: [planes, H, W] → y: [planes, OH, OW], arg: winner's index inside its plane.
static void K(maxpool_forward)(const float *x, float *y, int32_t *arg, const sprout_pool_geometry *g,
                               size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        const float *s = x + p * (size_t)g->h * g->w;
        float *d = y + p * (size_t)g->oh * g->ow;
        int32_t *a = arg + p * (size_t)g->oh * g->ow;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1;
            window_span(oy, g->sh, g->pt, g->kh, g->h, &y0, &y1);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1;
                window_span(ox, g->sw, g->pl, g->kw, g->w, &x0, &x1);
                int at = y0 * g->w + x0;
                float best = s[at];
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float v = s[iy * g->w + ix];
                        if (v > best) { best = v; at = iy * g->w + ix; }
                    }
                d[oy * g->ow + ox] = best;
                a[oy * g->ow + ox] = at;
            }
        }
    }
}

//   dx[winner] += dy   (dx zeroed here, plane by plane)
static void K(maxpool_backward)(const float *dy, const int32_t *arg, float *dx, const sprout_pool_geometry *g,
                                size_t p0, size_t p1) {
    size_t in = (size_t)g->h * g->w, out = (size_t)g->oh * g->ow;
    for (size_t p = p0; p < p1; p++) {
        float *d = dx + p * in;
        const float *gp = dy + p * out;
        const int32_t *a = arg + p * out;
        for (size_t i = 0; i < in; i++) d[i] = 0;
        for (size_t i = 0; i < out; i++) d[a[i]] += gp[i];
    }
}

// Average pooling; the divisor counts only positions inside the image unless include_pad.
static void K(avgpool_forward)(const float *x, float *y, const sprout_pool_geometry *g, int include_pad,
                               size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        const float *s = x + p * (size_t)g->h * g->w;
        float *d = y + p * (size_t)g->oh * g->ow;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1;
            window_span(oy, g->sh, g->pt, g->kh, g->h, &y0, &y1);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1;
                window_span(ox, g->sw, g->pl, g->kw, g->w, &x0, &x1);
                float acc = 0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) acc += s[iy * g->w + ix];
                float div = include_pad ? (float)(g->kh * g->kw) : (float)((y1 - y0) * (x1 - x0));
                d[oy * g->ow + ox] = acc / div;
            }
        }
    }
}

static void K(avgpool_backward)(const float *dy, float *dx, const sprout_pool_geometry *g, int include_pad,
                                size_t p0, size_t p1) {
    size_t in = (size_t)g->h * g->w, out = (size_t)g->oh * g->ow;
    for (size_t p = p0; p < p1; p++) {
        float *d = dx + p * in;
        const float *gp = dy + p * out;
        for (size_t i = 0; i < in; i++) d[i] = 0;
        for (int oy = 0; oy < g->oh; oy++) {
            int y0, y1;
            window_span(oy, g->sh, g->pt, g->kh, g->h, &y0, &y1);
            for (int ox = 0; ox < g->ow; ox++) {
                int x0, x1;
                window_span(ox, g->sw, g->pl, g->kw, g->w, &x0, &x1);
                float div = include_pad ? (float)(g->kh * g->kw) : (float)((y1 - y0) * (x1 - x0));
                float v = gp[oy * g->ow + ox] / div;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) d[iy * g->w + ix] += v;
            }
        }
    }
}

// The table simd.c dispatches through.
static const sprout_simd_table K(table) = {
    .relu_forward = K(relu_forward),
    .relu_backward = K(relu_backward),
    .clamp_forward = K(clamp_forward),
    .clamp_backward = K(clamp_backward),
    .gelu_forward = K(gelu_forward),
    .gelu_backward = K(gelu_backward),
    .add = K(add),
    .sub = K(sub),
    .mul = K(mul),
    .axpby = K(axpby),
    .batchnorm_forward = K(batchnorm_forward),
    .batchnorm_backward = K(batchnorm_backward),
    .batchnorm_grad_sums = K(batchnorm_grad_sums),
    .batchnorm_backward_apply = K(batchnorm_backward_apply),
    .channel_sums = K(channel_sums),
    .channel_affine = K(channel_affine),
    .maxpool_forward = K(maxpool_forward),
    .maxpool_backward = K(maxpool_backward),
    .avgpool_forward = K(avgpool_forward),
    .avgpool_backward = K(avgpool_backward),
};
