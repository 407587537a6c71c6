// Pixel kernels of the photo pipeline (SproutData): resampling and reduction of decoded
// 8-bit images. Plain C over contiguous buffers; nothing here allocates per pixel.
#pragma once
#include <stdint.h>

// Bilinear resampling of an interleaved image (W × H × C bytes, C = 1 or 3) into planar
// floats in [0, 1] (3 × oh × ow; a grey source fills all three planes). Output pixel (x, y)
// samples the source at (cx, cy) + R(angle) · ((x' + 0.5 − ow/2)·sx, (y + 0.5 − oh/2)·sy),
// x' = ow − 1 − x when `flip`; pixel centres sit at +0.5, samples beyond the image take
// the nearest edge pixel.
void sprout_resample_bilinear(const uint8_t *src, int width, int height, int channels,
                              double cx, double cy, double sx, double sy, double angle, int flip,
                              float *out, int ow, int oh);

// The mean of each k×k block: (W/k) × (H/k) × C bytes at `dst` (a partial last row or
// column of blocks is dropped).
void sprout_box_reduce(const uint8_t *src, int width, int height, int channels, int k, uint8_t *dst);

// Composing lines (DigitLines): the grey `width` × `height` source resampled bilinearly to
// `ow` × `oh`, turned by `angle` radians about its centre (pixel centres at +0.5; samples
// outside the source are 0), and combined by maximum into the `cw` × `ch` float canvas at
// (x0, y0), values / 255; parts outside the canvas are dropped.
void sprout_paste_max_bilinear(const uint8_t *src, int width, int height, int ow, int oh, double angle,
                               float *canvas, int cw, int ch, int x0, int y0);
