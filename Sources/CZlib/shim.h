// Debian's zlib1g-dev: deflate for gzip answers, inflate for checking them.
// deflateInit2 and inflateInit2 are macros (they pass the library's version and the stream's
// size); Swift imports functions, so they are wrapped here.
#include <zlib.h>

/// A raw deflate stream (no zlib or gzip wrapper: Needletail writes the gzip header and trailer
/// itself, so that precompressed fragments can be spliced in).
/// windowBits 9…15 (the history searched), memLevel 1…9 (the hash table: 2^(memLevel+7)
/// entries, cleared by every reset and full flush).
static inline int nt_deflate_init_raw(z_stream *stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, -windowBits, memLevel, Z_DEFAULT_STRATEGY);
}

/// An inflate stream that reads gzip (windowBits 15 + 16).
static inline int nt_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
