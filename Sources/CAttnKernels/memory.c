// Process-wide malloc tuning (see cattn_kernels.h).
#include "cattn_kernels.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void cattn_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    // One arena for every thread: a layer read ahead on a pool thread and freed on another goes back to a
    // heap that the next read uses, instead of to a per-thread arena that the next read (on another pool
    // thread) does not, which faulted in fresh pages for about half the layers. Threads allocate once per
    // layer or block, so they do not contend for it.
    mallopt(M_ARENA_MAX, 1);
#endif
}
