// The point-wise halves of an LSTM and a GRU time step (the GEMMs are separate calls), for
// the CPU backend. Row-major [n, G*h] gate blocks in PyTorch's order; keep[row] is 1 inside
// a sample's length and 0 past it (state carried, output 0); keep == NULL means all 1.
// The same arithmetic as the reference backend's Swift (SequenceKernels.swift).
#include "sprout_kernels.h"
#include <math.h>

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

void sprout_lstm_cell_forward(const float *xg, const float *hg, const float *c_prev, const float *h_prev,
                              const float *keep, int n, int h, float *h_out, float *c_out, float *y_out,
                              float *act, float *cand) {
    for (int row = 0; row < n; row++) {
        const float m = keep ? keep[row] : 1.0f;
        const size_t g = (size_t)row * 4 * h, s = (size_t)row * h;
        for (int j = 0; j < h; j++) {
            const float i = sigm(xg[g + j] + hg[g + j]);
            const float f = sigm(xg[g + h + j] + hg[g + h + j]);
            const float gg = tanhf(xg[g + 2 * h + j] + hg[g + 2 * h + j]);
            const float o = sigm(xg[g + 3 * h + j] + hg[g + 3 * h + j]);
            const float cc = f * c_prev[s + j] + i * gg;
            const float hc = o * tanhf(cc);
            act[g + j] = i; act[g + h + j] = f; act[g + 2 * h + j] = gg; act[g + 3 * h + j] = o;
            cand[s + j] = cc;
            c_out[s + j] = m * cc + (1 - m) * c_prev[s + j];
            h_out[s + j] = m * hc + (1 - m) * h_prev[s + j];
            y_out[s + j] = m * hc;
        }
    }
}

void sprout_lstm_cell_backward(const float *dy, const float *dh, const float *dc, const float *act, const float *cand,
                               const float *c_prev, const float *keep, int n, int h,
                               float *d_gates, float *dc_prev, float *dh_prev) {
    for (int row = 0; row < n; row++) {
        const float m = keep ? keep[row] : 1.0f;
        const size_t g = (size_t)row * 4 * h, s = (size_t)row * h;
        for (int j = 0; j < h; j++) {
            const float i = act[g + j], f = act[g + h + j], gg = act[g + 2 * h + j], o = act[g + 3 * h + j];
            const float dhc = m * ((dy ? dy[s + j] : 0.0f) + dh[s + j]);
            const float tc = tanhf(cand[s + j]);
            const float dcc = m * dc[s + j] + dhc * o * (1 - tc * tc);
            d_gates[g + j] = dcc * gg * i * (1 - i);
            d_gates[g + h + j] = dcc * c_prev[s + j] * f * (1 - f);
            d_gates[g + 2 * h + j] = dcc * i * (1 - gg * gg);
            d_gates[g + 3 * h + j] = dhc * tc * o * (1 - o);
            dc_prev[s + j] = dcc * f + (1 - m) * dc[s + j];
            dh_prev[s + j] = (1 - m) * dh[s + j];
        }
    }
}

void sprout_gru_cell_forward(const float *xg, const float *hg, const float *h_prev, const float *keep, int n, int h,
                             float *h_out, float *y_out, float *act) {
    for (int row = 0; row < n; row++) {
        const float m = keep ? keep[row] : 1.0f;
        const size_t g = (size_t)row * 3 * h, a = (size_t)row * 4 * h, s = (size_t)row * h;
        for (int j = 0; j < h; j++) {
            const float r = sigm(xg[g + j] + hg[g + j]);
            const float z = sigm(xg[g + h + j] + hg[g + h + j]);
            const float hn = hg[g + 2 * h + j];
            const float nn = tanhf(xg[g + 2 * h + j] + r * hn);
            const float hc = (1 - z) * nn + z * h_prev[s + j];
            act[a + j] = r; act[a + h + j] = z; act[a + 2 * h + j] = nn; act[a + 3 * h + j] = hn;
            h_out[s + j] = m * hc + (1 - m) * h_prev[s + j];
            y_out[s + j] = m * hc;
        }
    }
}

void sprout_gru_cell_backward(const float *dy, const float *dh, const float *act, const float *h_prev, const float *keep,
                              int n, int h, float *dx, float *dhg, float *dh_prev) {
    for (int row = 0; row < n; row++) {
        const float m = keep ? keep[row] : 1.0f;
        const size_t g = (size_t)row * 3 * h, a = (size_t)row * 4 * h, s = (size_t)row * h;
        for (int j = 0; j < h; j++) {
            const float r = act[a + j], z = act[a + h + j], nn = act[a + 2 * h + j], hn = act[a + 3 * h + j];
            const float dhc = m * ((dy ? dy[s + j] : 0.0f) + dh[s + j]);
            const float dn_pre = dhc * (1 - z) * (1 - nn * nn);
            const float dz_pre = dhc * (h_prev[s + j] - nn) * z * (1 - z);
            const float dr_pre = dn_pre * hn * r * (1 - r);
            dx[g + j] = dr_pre; dx[g + h + j] = dz_pre; dx[g + 2 * h + j] = dn_pre;
            dhg[g + j] = dr_pre; dhg[g + h + j] = dz_pre; dhg[g + 2 * h + j] = dn_pre * r;
            dh_prev[s + j] = (1 - m) * dh[s + j] + dhc * z;
        }
    }
}
