import CAllocator

/// Keeps glibc malloc from returning streaming buffers to the kernel after every chunk.
///
/// Blob bytes pass through 256 KiB read chunks and 1 MiB write buffers. With glibc's defaults an
/// allocation of 128 KiB or more may get its own `mmap(2)`, and freed memory at the top of an arena
/// is handed back with `madvise(MADV_DONTNEED)` once more than 128 KiB is free; the next chunk then
/// page-faults its memory in again, zero-filled. On a pull that was ~10 % of the process's CPU
/// (`perf`: `exc_page_fault`, `unmap_page_range`); with these thresholds the same buffers are reused
/// from the heap. See docs/performance.md.
package enum AllocatorTuning {
    /// Allocations below this come from the heap instead of their own mapping.
    package static let mmapThreshold = 4 << 20
    /// Free memory at the top of an arena is kept up to this much before it is given back.
    package static let trimThreshold = 16 << 20

    /// Environment variables through which an operator tunes glibc malloc directly; when one is
    /// set, it wins and nothing is changed here.
    package static let operatorSettings = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"]

    /// Applies the thresholds unless the environment tunes malloc itself. Returns whether it did.
    @discardableResult
    package static func apply(environment: EnvironmentReader = EnvironmentReader()) -> Bool {
        if self.operatorSettings.contains(where: { environment.string($0) != nil }) { return false }
        return pierone_allocator_set_thresholds(self.mmapThreshold, self.trimThreshold) == 1
    }

    /// Bytes held in separately mapped chunks right now (glibc; 0 elsewhere).
    package static var mappedBytes: Int { Int(pierone_allocator_mmapped_bytes()) }
}
