#include <stddef.h>
/// Number of allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign) made by any thread since the process started.
unsigned long malloc_count_allocations(void);
