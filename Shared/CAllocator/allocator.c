#include "allocator.h"

// Any C library header defines __GLIBC__ on glibc (stddef.h comes from the compiler and does not).
#include <stdlib.h>

#if defined(__GLIBC__)
#include <malloc.h>

int pierone_allocator_set_thresholds(size_t mmap_threshold, size_t trim_threshold) {
    int applied = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
    applied &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
    return applied;
}

size_t pierone_allocator_mmapped_bytes(void) {
    return mallinfo2().hblkhd;
}
#else
int pierone_allocator_set_thresholds(size_t mmap_threshold, size_t trim_threshold) {
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
}

size_t pierone_allocator_mmapped_bytes(void) {
    return 0;
}
#endif
