// Debian's libnghttp2-dev: HTTP/2 framing, flow control and HPACK for the native HTTPS
// listener (docs/TLS.md), driven through its memory API (mem_recv/mem_send) on the loop.
#include <nghttp2/nghttp2.h>
