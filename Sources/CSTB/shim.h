// Debian's libstb: stb_image (PNG, JPEG, BMP, GIF, ... decoding), stb_image_resize and
// stb_image_write, compiled once into libstb.so; only declarations come from here.
#include <stdio.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
