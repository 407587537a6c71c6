#include <zlib.h>
// inflateInit2 is a macro, which Swift cannot import: 16 + MAX_WBITS accepts a gzip wrapper.
static inline int sprout_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 16 + MAX_WBITS);
}
// Raw deflate data (zip entries): negative window bits, no header or trailer.
static inline int sprout_inflate_init_raw(z_stream *stream) {
    return inflateInit2(stream, -MAX_WBITS);
}
