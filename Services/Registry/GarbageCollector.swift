import Contracts
import Foundation
import Logging
import ServiceLifecycle

/// Online garbage collection (docs/storage.md): a service that reviews the metadata service's
/// queue of what may have become garbage — links no manifest came to reference, the blobs of
/// deleted manifests, unlinked blobs — once each entry has waited `gracePeriod`, and deletes the
/// bytes of every blob whose row the review removed. Rows go first, bytes after: a crash in
/// between leaves an unreferenced object, never a row without bytes.
///
/// Pushes need no pause: each review decides in the transaction that removes what it finds, so a
/// push that links or references a blob meanwhile either keeps it or is refused and uploads it
/// again (a mount becomes a normal upload). Replicas may run it at once (PostgreSQL hands each
/// review different entries).
package final class GarbageCollector: Service, CustomStringConvertible, Sendable {
    /// What one collection did.
    package struct Run: Sendable, Equatable {
        package var reviewed = 0
        package var unlinked = 0
        package var deletedManifests = 0
        package var deletedBlobs = 0
        package var deletedBytes: Int64 = 0
        /// Byte deletions that failed (the objects stay, unreferenced).
        package var errors = 0
        package var duration: Duration = .zero
        /// Whether this is the end of a collection (else the progress of one batch).
        package var finished = false
    }

    let metadata: any MetadataAPI
    let blobs: any BlobAPI
    let gracePeriod: Duration
    let logger: Logger
    /// Called after every collection (the composition root records metrics with it).
    let observe: @Sendable (Run) -> Void
    /// Queue entries per review: one SQLite write transaction holds the single writer for about
    /// 30 ms with 100, so pushes queue behind it briefly; PostgreSQL reviews each entry alone.
    static let batchSize = 100
    /// After each batch the collector waits this many times the batch's own time, so a large
    /// collection takes at most about a third of the machine and of the SQLite writer from pushes
    /// (measured in docs/performance.md: pushes at 0.61× on the filesystem while it runs, 0.25×
    /// without the pause).
    static let pauseFactor = 2

    package init(
        metadata: any MetadataAPI, blobs: any BlobAPI, gracePeriod: Duration, logger: Logger,
        observe: @escaping @Sendable (Run) -> Void = { _ in }
    ) {
        self.metadata = metadata
        self.blobs = blobs
        self.gracePeriod = gracePeriod
        self.logger = logger
        self.observe = observe
    }

    package var description: String { "GarbageCollector(gracePeriod: \(self.gracePeriod))" }

    /// Between collections: a quarter of the grace period, from 1 s to 30 s, so a candidate goes
    /// within about half a minute after its grace period ends.
    var interval: Duration { min(.seconds(30), max(.seconds(1), self.gracePeriod / 4)) }

    package func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                // One interval first: the process's migrations (which create the queue) run at start.
                try await Task.sleep(for: self.interval)
                while true {
                    do {
                        _ = try await self.collect()
                    } catch where !Task.isCancelled {
                        self.logger.error("garbage collection failed", metadata: ["error": "\(error)"])
                        self.observe(Run(errors: 1, finished: true))
                    }
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// One collection: reviews every entry due now, in batches, and deletes the bytes of what the
    /// reviews removed.
    @discardableResult
    package func collect() async throws -> Run {
        let start = ContinuousClock.now
        let graceMillis = self.gracePeriod.components.seconds * 1000 + self.gracePeriod.components.attoseconds / 1_000_000_000_000_000
        let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - graceMillis
        var run = Run()
        while true {
            try Task.checkCancellation()
            let batchStart = ContinuousClock.now
            let sweep = try await self.metadata.collectGarbage(queuedBefore: cutoff, limit: Self.batchSize)
            var seen = Set<String>()
            let removed = sweep.removed.filter { seen.insert($0.location).inserted }
            let deleted = await self.delete(removed)
            // Confirmed only once the bytes are gone: a crash before this hands them out again.
            try await self.metadata.purgeCollected(deleted.map(\.location))
            var batch = Run(
                reviewed: sweep.reviewed, unlinked: sweep.unlinked, deletedManifests: sweep.manifests, deletedBlobs: deleted.count
            )
            batch.deletedBytes = deleted.reduce(0) { $0 + $1.size }
            batch.errors = removed.count - deleted.count
            // Progress is visible in the metrics while a large collection runs.
            self.observe(batch)
            run.reviewed += batch.reviewed
            run.unlinked += batch.unlinked
            run.deletedManifests += batch.deletedManifests
            run.deletedBlobs += batch.deletedBlobs
            run.deletedBytes += batch.deletedBytes
            run.errors += batch.errors
            if sweep.due == 0 || sweep.reviewed == 0 { break }
            try await Task.sleep(for: (ContinuousClock.now - batchStart) * Self.pauseFactor)
        }
        run.duration = ContinuousClock.now - start
        run.finished = true
        if run.reviewed > 0 {
            self.logger.info(
                "garbage collected",
                metadata: [
                    "reviewed": "\(run.reviewed)", "unlinked": "\(run.unlinked)", "manifests": "\(run.deletedManifests)",
                    "blobs": "\(run.deletedBlobs)",
                    "bytes": "\(run.deletedBytes)", "errors": "\(run.errors)", "duration": "\(run.duration)",
                ]
            )
        }
        self.observe(Run(duration: run.duration, finished: true))
        return run
    }

    /// Deletes the bytes of `removed` in one call (S3: `DeleteObjects`, 1,000 keys a request);
    /// returns those it deleted. The others stay in the trash and are handed out again later.
    private func delete(_ removed: [BlobRecord]) async -> [BlobRecord] {
        guard !removed.isEmpty else { return [] }
        do {
            let deleted = Set(try await self.blobs.discard(removed))
            if deleted.count < removed.count {
                self.logger.warning(
                    "could not delete some collected blobs' bytes; retried by a later collection",
                    metadata: ["failed": "\(removed.count - deleted.count)"]
                )
            }
            return removed.filter { deleted.contains($0.location) }
        } catch {
            self.logger.warning(
                "could not delete collected blobs' bytes; retried by a later collection",
                metadata: ["count": "\(removed.count)", "error": "\(error)"]
            )
            return []
        }
    }
}
