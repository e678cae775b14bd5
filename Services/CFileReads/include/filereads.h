#ifndef PIERONE_FILEREADS_H
#define PIERONE_FILEREADS_H

#include <stddef.h>
#include <stdint.h>

/// Reads `length` bytes at `offset` of `fd` when their first page is in the page cache (Linux
/// `preadv2` with `RWF_NOWAIT` tells without disk I/O), and returns the bytes read: fewer than
/// `length` when the read stopped early (the end of the file, an error: the caller reads the
/// rest as usual, and an error shows there). Returns 0 when that page is not cached (or at the
/// end of the file), and -1 when the kernel or file system cannot tell (no `RWF_NOWAIT`, another
/// error, not Linux).
///
/// Only one page is asked for without waiting: on a miss the kernel starts reading ahead as
/// much as was asked, and the caller's next read would wait for all of it.
long pierone_pread_if_cached(int fd, void *buffer, size_t length, int64_t offset);

#endif
