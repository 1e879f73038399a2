#ifndef CATTN_ZLIB_SHIM_H
#define CATTN_ZLIB_SHIM_H
#include <zlib.h>

/// `inflateInit2` is a macro; this wraps it for raw deflate streams (zip members).
static inline int cattn_inflate_init_raw(z_stream *stream) {
    return inflateInit2(stream, -MAX_WBITS);
}
#endif
