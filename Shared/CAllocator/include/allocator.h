#ifndef PIERONE_ALLOCATOR_H
#define PIERONE_ALLOCATOR_H

#include <stddef.h>

/// Sets glibc malloc's mmap and trim thresholds (mallopt); returns 1 when applied, 0 where the C
/// library is not glibc.
int pierone_allocator_set_thresholds(size_t mmap_threshold, size_t trim_threshold);

/// Bytes currently held in mmap-ed chunks (glibc mallinfo2().hblkhd); 0 where not glibc.
size_t pierone_allocator_mmapped_bytes(void);

#endif
