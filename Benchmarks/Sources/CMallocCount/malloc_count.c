// Counts heap allocations by interposing the allocation functions of glibc: an executable that
// links this defines malloc & co, so every call in the process (Swift runtime included) comes
// here first and goes on to glibc's implementation.
#include <stdatomic.h>
#include <stdlib.h>
#include <errno.h>
#include "malloc_count.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_ulong allocations;

unsigned long malloc_count_allocations(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }

static inline void bump(void) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); }

void *malloc(size_t n) { bump(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { bump(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { bump(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t align, size_t n) { bump(); return __libc_memalign(align, n); }
void *aligned_alloc(size_t align, size_t n) { bump(); return __libc_memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    bump();
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
