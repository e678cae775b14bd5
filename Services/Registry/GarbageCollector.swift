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
        package var deletedBlobs = 0
        package var deletedBytes: Int64 = 0
        /// Byte deletions that failed (the objects stay, unreferenced).
        package var errors = 0
        package var duration: Duration = .zero
    }

    let metadata: any MetadataAPI
    let blobs: any BlobAPI
    let gracePeriod: Duration
    let logger: Logger
    /// Called after every collection (the composition root records metrics with it).
    let observe: @Sendable (Run) -> Void
    /// Queue entries per review transaction.
    static let batchSize = 500
    /// Byte deletions in flight at once.
    static let deletionConcurrency = 16

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
                        self.observe(Run(errors: 1))
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
            let sweep = try await self.metadata.collectGarbage(queuedBefore: cutoff, limit: Self.batchSize)
            run.reviewed += sweep.reviewed
            run.unlinked += sweep.unlinked
            var seen = Set<String>()
            let removed = sweep.removed.filter { seen.insert($0.location).inserted }
            let deleted = await self.delete(removed)
            // Confirmed only once the bytes are gone: a crash before this hands them out again.
            try await self.metadata.purgeCollected(deleted.map(\.location))
            run.errors += removed.count - deleted.count
            run.deletedBlobs += deleted.count
            run.deletedBytes += deleted.reduce(0) { $0 + $1.size }
            if sweep.due == 0 || sweep.reviewed == 0 { break }
        }
        run.duration = ContinuousClock.now - start
        if run.reviewed > 0 {
            self.logger.info(
                "garbage collected",
                metadata: [
                    "reviewed": "\(run.reviewed)", "unlinked": "\(run.unlinked)", "blobs": "\(run.deletedBlobs)",
                    "bytes": "\(run.deletedBytes)", "errors": "\(run.errors)", "duration": "\(run.duration)",
                ]
            )
        }
        self.observe(run)
        return run
    }

    /// Deletes the bytes of `removed`, a bounded number at a time; returns those it deleted.
    private func delete(_ removed: [BlobRecord]) async -> [BlobRecord] {
        guard !removed.isEmpty else { return [] }
        return await withTaskGroup(of: BlobRecord?.self) { group in
            var deleted: [BlobRecord] = []
            var next = removed.startIndex
            func add() {
                guard next < removed.endIndex else { return }
                let blob = removed[next]
                next += 1
                group.addTask {
                    do {
                        try await self.blobs.discard(blob)
                        return blob
                    } catch {
                        self.logger.warning(
                            "could not delete a collected blob's bytes; retried by a later collection",
                            metadata: ["digest": "\(blob.digest)", "error": "\(error)"]
                        )
                        return nil
                    }
                }
            }
            for _ in 0..<Self.deletionConcurrency { add() }
            for await blob in group {
                if let blob { deleted.append(blob) }
                add()
            }
            return deleted
        }
    }
}
