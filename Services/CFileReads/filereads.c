#define _GNU_SOURCE
#include "filereads.h"

#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

long pierone_pread_if_cached(int fd, void *buffer, size_t length, int64_t offset) {
#if defined(__linux__) && defined(RWF_NOWAIT)
    size_t probe = length < 4096 ? length : 4096;
    struct iovec vector = {.iov_base = buffer, .iov_len = probe};
    ssize_t first = preadv2(fd, &vector, 1, (off_t)offset, RWF_NOWAIT);
    if (first <= 0) {
        // EAGAIN: not cached. ENOSYS, EOPNOTSUPP, EINVAL: no RWF_NOWAIT for this kernel or file
        // system; any other error shows again on the caller's usual read.
        return first == 0 || errno == EAGAIN ? 0 : -1;
    }
    size_t done = (size_t)first;
    // A short probe (the end of the file, a partly cached page) ends the read here.
    if (done == probe && done < length) {
        ssize_t more = pread(fd, (char *)buffer + done, length - done, (off_t)(offset + (int64_t)done));
        if (more > 0) {
            done += (size_t)more;
        }
    }
    return (long)done;
#else
    (void)fd;
    (void)buffer;
    (void)length;
    (void)offset;
    return -1;
#endif
}
