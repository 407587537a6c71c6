// The fuzz binary's own copy of stb_image (from libstb-dev's header), compiled with the fuzzer's
// coverage and the address sanitizer: Debian's libstb.so has neither, so libFuzzer would be blind
// inside the PNG, GIF and BMP decoders and an overflow there would go unseen. Symbols defined in
// the executable take precedence over the shared library's, so the decoder calls land here.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
