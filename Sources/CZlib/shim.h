// zlib, as a Swift module. deflateInit2 is a macro (it passes ZLIB_VERSION and sizeof(z_stream)),
// which Swift cannot call, so it is wrapped here.
#ifndef MCESCAN_CZLIB_SHIM_H
#define MCESCAN_CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 with a gzip wrapper (windowBits 15 + 16), default memory level and strategy.
static inline int mcescan_deflate_init_gzip(z_stream *strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

/// inflateInit2 accepting a gzip wrapper (used by tests to round-trip compressed responses).
static inline int mcescan_inflate_init_gzip(z_stream *strm) {
    return inflateInit2(strm, 15 + 16);
}
#endif
