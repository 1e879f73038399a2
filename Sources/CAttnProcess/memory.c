// Process-wide malloc tuning (see cattn_process.h).
#include "cattn_process.h"
// A libc header first: it defines __GLIBC__, which the rest is conditioned on (without it the tuning compiled to
// nothing, unnoticed: medium Q/K took 8% longer with 20 times the page faults).
#include <stdlib.h>

#if defined(__GLIBC__)
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#endif

int cattn_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    // One arena for every thread: a layer read ahead on a pool thread and freed on another goes back to a
    // heap that the next read uses, instead of to a per-thread arena that the next read (on another pool
    // thread) does not, which faulted in fresh pages for about half the layers. Threads allocate once per
    // layer or block, so they do not contend for it.
    mallopt(M_ARENA_MAX, 1);
    // The heap's first 32 MiB in huge pages where the kernel allows them (transparent huge pages in "madvise"
    // or "always" mode): one fault per 2 MiB instead of one per 4 KiB page. A small dump's run allocates its
    // buffers once (rollout's workspaces, Q and K of a layer, score buffers), and their faults took about 1 ms
    // of a 10-20 ms run. The block is allocated from the heap (mmap is off above), advised and freed: it stays
    // in the heap (trimming is off above) for later allocations, and costs no memory until touched.
    size_t size = (size_t)32 << 20, huge = (size_t)2 << 20;
    char *block = malloc(size);
    if (block != NULL) {
        uintptr_t start = ((uintptr_t)block + huge - 1) & ~(uintptr_t)(huge - 1);
        uintptr_t end = ((uintptr_t)block + size) & ~(uintptr_t)(huge - 1);
        if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
        free(block);
    }
    return 1;
#else
    return 0;
#endif
}
