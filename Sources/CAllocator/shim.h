#ifndef CALM_CALLOCATOR_SHIM_H
#define CALM_CALLOCATOR_SHIM_H
#include <malloc.h>

/* glibc serves large allocations with fresh mmaps and unmaps them on free, so every large
   temporary tensor costs page faults and kernel zeroing. Keeping freed memory in the heap
   lets later tensors of the same size reuse it. */
static inline void calm_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
}

/* Bytes the heap holds from the kernel (main arena and separate mappings): constant from step
   to step when every step's buffers are served from memory freed by the step before. */
static inline size_t calm_heap_bytes_from_kernel(void) {
    struct mallinfo2 info = mallinfo2();
    return info.arena + info.hblkhd;
}
#endif
