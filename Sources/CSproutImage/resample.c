// Photo resampling. The axis-aligned case (no rotation: every evaluation view and most
// training crops) is separable, so source columns and weights are computed once per
// output column and rows once per output row; the inner loop is three multiply-adds per
// channel. Rotation falls back to per-pixel coordinates.
#include "sprout_image.h"
#include <math.h>
#include <stdlib.h>

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static void resample_axis_aligned(const uint8_t *src, int W, int H, int C, double cx, double cy, double sx, double sy,
                                  int flip, float *out, int ow, int oh) {
    int *xo = malloc(sizeof(int) * 2 * (size_t)ow);
    float *fx = malloc(sizeof(float) * (size_t)ow);
    if (!xo || !fx) { free(xo); free(fx); return; }
    for (int x = 0; x < ow; x++) {
        int xs = flip ? ow - 1 - x : x;
        float p = clampf((float)(cx + (xs + 0.5 - ow / 2.0) * sx - 0.5), 0, (float)(W - 1));
        int x0 = (int)p, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
        xo[2 * x] = x0 * C;
        xo[2 * x + 1] = x1 * C;
        fx[x] = p - (float)x0;
    }
    const size_t plane = (size_t)ow * oh;
    const float inv = 1.0f / 255.0f;
    for (int y = 0; y < oh; y++) {
        float p = clampf((float)(cy + (y + 0.5 - oh / 2.0) * sy - 0.5), 0, (float)(H - 1));
        int y0 = (int)p, y1 = y0 + 1 < H ? y0 + 1 : H - 1;
        float fy = p - (float)y0;
        const uint8_t *r0 = src + (size_t)y0 * W * C, *r1 = src + (size_t)y1 * W * C;
        float *o = out + (size_t)y * ow;
        if (C == 3) {
            for (int x = 0; x < ow; x++) {
                const uint8_t *a = r0 + xo[2 * x], *b = r0 + xo[2 * x + 1], *c = r1 + xo[2 * x], *d = r1 + xo[2 * x + 1];
                float wx = fx[x];
                for (int ch = 0; ch < 3; ch++) {
                    float top = a[ch] + (b[ch] - a[ch]) * wx, bottom = c[ch] + (d[ch] - c[ch]) * wx;
                    o[ch * plane + x] = (top + (bottom - top) * fy) * inv;
                }
            }
        } else {
            for (int x = 0; x < ow; x++) {
                const uint8_t *a = r0 + xo[2 * x], *b = r0 + xo[2 * x + 1], *c = r1 + xo[2 * x], *d = r1 + xo[2 * x + 1];
                float top = a[0] + (b[0] - a[0]) * fx[x], bottom = c[0] + (d[0] - c[0]) * fx[x];
                float v = (top + (bottom - top) * fy) * inv;
                o[x] = v; o[plane + x] = v; o[2 * plane + x] = v;
            }
        }
    }
    free(xo);
    free(fx);
}

void sprout_resample_bilinear(const uint8_t *src, int W, int H, int C, double cx, double cy, double sx, double sy,
                              double angle, int flip, float *out, int ow, int oh) {
    if (angle == 0) { resample_axis_aligned(src, W, H, C, cx, cy, sx, sy, flip, out, ow, oh); return; }
    const float cs = (float)cos(angle), sn = (float)sin(angle);
    const size_t plane = (size_t)ow * oh;
    const float inv = 1.0f / 255.0f, maxX = (float)(W - 1), maxY = (float)(H - 1);
    for (int y = 0; y < oh; y++) {
        float v = (float)((y + 0.5 - oh / 2.0) * sy);
        for (int x = 0; x < ow; x++) {
            int xs = flip ? ow - 1 - x : x;
            float u = (float)((xs + 0.5 - ow / 2.0) * sx);
            float px = clampf((float)cx + u * cs - v * sn - 0.5f, 0, maxX);
            float py = clampf((float)cy + u * sn + v * cs - 0.5f, 0, maxY);
            int x0 = (int)px, y0 = (int)py;
            int x1 = x0 + 1 < W ? x0 + 1 : W - 1, y1 = y0 + 1 < H ? y0 + 1 : H - 1;
            float wx = px - (float)x0, wy = py - (float)y0;
            const uint8_t *a = src + ((size_t)y0 * W + x0) * C, *b = src + ((size_t)y0 * W + x1) * C;
            const uint8_t *c = src + ((size_t)y1 * W + x0) * C, *d = src + ((size_t)y1 * W + x1) * C;
            size_t o = (size_t)y * ow + x;
            for (int ch = 0; ch < 3; ch++) {
                int k = C == 3 ? ch : 0;
                float top = a[k] + (b[k] - a[k]) * wx, bottom = c[k] + (d[k] - c[k]) * wx;
                out[ch * plane + o] = (top + (bottom - top) * wy) * inv;
            }
        }
    }
}

void sprout_box_reduce(const uint8_t *src, int W, int H, int C, int k, uint8_t *dst) {
    const int w = W / k, h = H / k, n = w * C;
    unsigned *row = calloc((size_t)n, sizeof(unsigned));
    if (!row) return;
    const unsigned count = (unsigned)(k * k), half = count / 2;
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < n; i++) row[i] = 0;
        for (int dy = 0; dy < k; dy++) {
            const uint8_t *line = src + (size_t)(y * k + dy) * W * C;
            for (int x = 0; x < w; x++) {
                const uint8_t *p = line + (size_t)x * k * C;
                for (int dx = 0; dx < k; dx++)
                    for (int ch = 0; ch < C; ch++) row[x * C + ch] += p[dx * C + ch];
            }
        }
        uint8_t *o = dst + (size_t)y * n;
        for (int i = 0; i < n; i++) o[i] = (uint8_t)((row[i] + half) / count);
    }
    free(row);
}

void sprout_paste_max_bilinear(const uint8_t *src, int width, int height, int ow, int oh, double angle,
                               float *canvas, int cw, int ch, int x0, int y0) {
    const float sx = (float)width / ow, sy = (float)height / oh;
    const float c = (float)cos(angle), s = (float)sin(angle);
    const float ocx = ow * 0.5f, ocy = oh * 0.5f, icx = width * 0.5f, icy = height * 0.5f;
    for (int y = 0; y < oh; y++) {
        if (y0 + y < 0 || y0 + y >= ch) continue;
        for (int x = 0; x < ow; x++) {
            if (x0 + x < 0 || x0 + x >= cw) continue;
            // The output pixel's centre, turned back by the angle, in source coordinates.
            const float dx = x + 0.5f - ocx, dy = y + 0.5f - ocy;
            const float fx = (c * dx + s * dy) * sx + icx - 0.5f, fy = (-s * dx + c * dy) * sy + icy - 0.5f;
            if (fx <= -1 || fy <= -1 || fx >= width || fy >= height) continue;
            const int xa = (int)floorf(fx), ya = (int)floorf(fy);
            const float wx = fx - xa, wy = fy - ya;
            float v = 0;
            for (int k = 0; k < 4; k++) {
                const int px = xa + (k & 1), py = ya + (k >> 1);
                if (px < 0 || py < 0 || px >= width || py >= height) continue;
                v += src[py * width + px] * ((k & 1) ? wx : 1 - wx) * ((k >> 1) ? wy : 1 - wy);
            }
            v *= 1.0f / 255;
            float *o = canvas + (size_t)(y0 + y) * cw + x0 + x;
            if (v > *o) *o = v;
        }
    }
}
