// Debian's libbrotli-dev: brotli for static assets compressed ahead of time (quality 11 is
// far too slow for answers made per request), and the decoder for checking them.
#include <brotli/encode.h>
#include <brotli/decode.h>
