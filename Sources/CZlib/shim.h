// Debian's zlib1g-dev: deflate for gzip answers, inflate for checking them.
// deflateInit2 and inflateInit2 are macros (they pass the library's version and the stream's
// size); Swift imports functions, so they are wrapped here.
#include <zlib.h>

/// A raw deflate stream (no zlib or gzip wrapper: Needletail writes the gzip header and trailer
/// itself, so that precompressed fragments can be spliced in).
static inline int nt_deflate_init_raw(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}

/// An inflate stream that reads gzip (windowBits 15 + 16).
static inline int nt_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
