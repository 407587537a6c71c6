// Debian's libstb: stb_image (PNG, JPEG, BMP, GIF, ... decoding), stb_image_resize,
// stb_image_write and stb_truetype (glyph rasterising for TextLines), compiled once into libstb.so; only declarations come from here.
#include <stdio.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
#include <stb/stb_truetype.h>
