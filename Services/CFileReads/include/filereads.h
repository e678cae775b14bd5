#ifndef PIERONE_FILEREADS_H
#define PIERONE_FILEREADS_H

#include <stddef.h>
#include <stdint.h>

/// Reads `length` bytes at `offset` of `fd` when their first page is in the page cache (Linux
/// `preadv2` with `RWF_NOWAIT` tells without disk I/O), and returns the bytes read. Returns 0 —
/// nothing read — when that page is not cached, at the end of the file, or where the kernel or
/// file system cannot tell; fewer than `length` when the read stopped early. Errors also return
/// what was read before them: the caller reads the rest as usual, and an error shows there.
///
/// Only one page is asked for without waiting: on a miss the kernel starts reading ahead as
/// much as was asked, and the caller's next read would wait for all of it.
long pierone_pread_if_cached(int fd, void *buffer, size_t length, int64_t offset);

#endif
