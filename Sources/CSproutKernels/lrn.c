// Local response normalization across channels, TensorFlow's tf.nn.lrn semantics:
//   s[c] = bias + alpha * sum_{c' in [c-r, c+r]} x[c']^2 ;  y[c] = x[c] * s[c]^-beta
// Layout NCHW: the channel window is a sum of whole planes, so the inner loops run over
// contiguous spatial positions and vectorize.
#include "sprout_kernels.h"
#include <math.h>

static inline float inv_pow(float s, float beta) {
    // beta = 0.75 (the TF tutorial's value) avoids powf: s^-0.75 = 1 / (sqrt(s) * sqrt(sqrt(s))).
    if (beta == 0.75f) { float q = sqrtf(s); return 1.0f / (q * sqrtf(q)); }
    if (beta == 0.5f) return 1.0f / sqrtf(s);
    return powf(s, -beta);
}

void sprout_lrn_forward(const float *x, float *y, float *scale, int n, int c, int hw,
                        int radius, float bias, float alpha, float beta) {
    for (int b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * c * hw;
        float *yb = y + (size_t)b * c * hw, *sb = scale + (size_t)b * c * hw;
        for (int ch = 0; ch < c; ch++) {
            int lo = ch - radius < 0 ? 0 : ch - radius;
            int hi = ch + radius >= c ? c - 1 : ch + radius;
            float *s = sb + (size_t)ch * hw;
            for (int i = 0; i < hw; i++) s[i] = 0;
            for (int k = lo; k <= hi; k++) {
                const float *xk = xb + (size_t)k * hw;
                for (int i = 0; i < hw; i++) s[i] += xk[i] * xk[i];
            }
            const float *xc = xb + (size_t)ch * hw;
            float *yc = yb + (size_t)ch * hw;
            for (int i = 0; i < hw; i++) {
                s[i] = bias + alpha * s[i];
                yc[i] = xc[i] * inv_pow(s[i], beta);
            }
        }
    }
}

//   dx[j] = dy[j] * s[j]^-beta - 2 alpha beta x[j] * sum_{i in [j-r, j+r]} dy[i] y[i] / s[i]
void sprout_lrn_backward(const float *x, const float *y, const float *scale, const float *dy,
                         float *dx, int n, int c, int hw, int radius, float alpha, float beta) {
    const float k2 = 2.0f * alpha * beta;
    for (int b = 0; b < n; b++) {
        size_t off = (size_t)b * c * hw;
        const float *xb = x + off, *yb = y + off, *sb = scale + off, *dyb = dy + off;
        float *dxb = dx + off;
        for (int ch = 0; ch < c; ch++) {
            float *d = dxb + (size_t)ch * hw;
            const float *sc = sb + (size_t)ch * hw, *dyc = dyb + (size_t)ch * hw;
            for (int i = 0; i < hw; i++) d[i] = dyc[i] * inv_pow(sc[i], beta);
        }
        for (int ch = 0; ch < c; ch++) {
            int lo = ch - radius < 0 ? 0 : ch - radius;
            int hi = ch + radius >= c ? c - 1 : ch + radius;
            float *d = dxb + (size_t)ch * hw;
            const float *xc = xb + (size_t)ch * hw;
            for (int k = lo; k <= hi; k++) {
                const float *yk = yb + (size_t)k * hw, *sk = sb + (size_t)k * hw, *dyk = dyb + (size_t)k * hw;
                for (int i = 0; i < hw; i++) d[i] -= k2 * xc[i] * dyk[i] * yk[i] / sk[i];
            }
        }
    }
}
