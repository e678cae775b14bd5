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
        /// Entries left in the queue at the end of a collection.
        package var queued: Int?
    }

    let metadata: any MetadataAPI
    let blobs: any BlobAPI
    let gracePeriod: Duration
    /// Between orphan scans (a listing of the whole storage); the first runs one interval after start.
    let orphanScanInterval: Duration
    /// How long the orphan scan waits before it asks the metadata again about what it found: a
    /// commit placed its bytes and its request is about to record them.
    let orphanRecheckDelay: Duration
    let logger: Logger
    /// Called after every collection (the composition root records metrics with it).
    let observe: @Sendable (Run) -> Void
    /// Queue entries per review: one SQLite write transaction holds the single writer for about
    /// 30 ms with 100, so pushes queue behind it briefly; PostgreSQL reviews each entry alone.
    static let batchSize = 100
    /// After each batch the collector waits this many times the batch's own time while clients
    /// are served (`activity` grew during the batch): then it takes at most a twentieth of the machine
    /// and of the SQLite writer (docs/performance.md).
    static let busyPauseFactor = 19
    /// …and this many times while no client is served, so an idle registry collects at about two
    /// thirds of full speed.
    static let pauseFactor = 0.5
    /// The number of calls made for clients so far (`MetadataService.clientCalls`); nil when
    /// unknown (then every batch counts as busy).
    let activity: (@Sendable () -> Int)?

    package init(
        metadata: any MetadataAPI, blobs: any BlobAPI, gracePeriod: Duration, orphanScanInterval: Duration = .seconds(86_400),
        orphanRecheckDelay: Duration = .seconds(120), holder: String = UUID().uuidString,
        activity: (@Sendable () -> Int)? = nil, logger: Logger, observe: @escaping @Sendable (Run) -> Void = { _ in }
    ) {
        self.activity = activity
        self.holder = holder
        self.orphanScanInterval = orphanScanInterval
        self.orphanRecheckDelay = orphanRecheckDelay
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
                var lastScan = ContinuousClock.now
                while true {
                    do {
                        // One replica collects at a time; the others wait for its lease to lapse.
                        if try await self.holdLease() {
                            _ = try await self.collect(renewing: true)
                            if ContinuousClock.now - lastScan >= self.orphanScanInterval {
                                lastScan = ContinuousClock.now
                                _ = try await self.scanOrphans(dryRun: false)
                            }
                        }
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

    /// How many times its own time a batch that began when `activity` read `before` waits.
    func pause(since before: Int?) -> Double {
        guard let before, let now = self.activity?(), now == before else { return Double(Self.busyPauseFactor) }
        return Self.pauseFactor
    }

    /// This process's name in the lease (`MetadataAPI.lease`): the host and port, so a restarted
    /// process takes its own lease back at once.
    let holder: String
    /// The lease lasts this long and is renewed by every batch: a replica that died is taken
    /// over within about a minute.
    static let leaseSeconds = 60

    func holdLease() async throws -> Bool {
        try await self.metadata.lease("garbage-collector", holder: self.holder, seconds: Self.leaseSeconds)
    }

    /// One collection: reviews every entry due now, in batches, and deletes the bytes of what the
    /// reviews removed. With `renewing`, each batch renews the lease and a lost lease ends it.
    @discardableResult
    package func collect(renewing: Bool = false) async throws -> Run {
        let start = ContinuousClock.now
        let graceMillis = self.gracePeriod.components.seconds * 1000 + self.gracePeriod.components.attoseconds / 1_000_000_000_000_000
        let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - graceMillis
        var run = Run()
        while true {
            try Task.checkCancellation()
            let batchStart = ContinuousClock.now
            let writesBefore = self.activity?()
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
            if let queued = sweep.queued { run.queued = queued }
            if sweep.due == 0 || sweep.reviewed == 0 { break }
            if renewing, try await !self.holdLease() { break }
            try await Task.sleep(for: (ContinuousClock.now - batchStart) * self.pause(since: writesBefore))
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
        self.observe(Run(duration: run.duration, finished: true, queued: run.queued))
        return run
    }

    /// The youngest an orphan may be: a blob written since may be a commit whose row is about to
    /// be recorded (a commit and its link are one request apart), so at least an hour, and at
    /// least the grace period.
    var orphanAge: Duration { max(self.gracePeriod, .seconds(3600)) }

    /// Orphans one scan holds for its second look; more wait for the next scan.
    static let orphansPerScan = 100_000
    /// A scan that finds at least this many orphans, and more than half of what it listed,
    /// deletes nothing (`OrphanScan.refused`).
    package static let orphanRefusalMinimum = 100

    /// The orphan scan, for recovery: lists every committed blob in storage, a page of 1,000 at a
    /// time, and deletes (`dryRun`: lists) those no metadata row holds that were written longer
    /// than `orphanAge` ago — bytes a crash left between a commit and its link, a duplicate
    /// upload whose discard failed, tails of stalled S3 requests, files restored without their
    /// rows. Before deleting, it waits `orphanRecheckDelay` and asks the metadata again, so a
    /// commit whose link was on its way keeps its bytes. Paced like a collection.
    package func scanOrphans(dryRun: Bool) async throws -> OrphanScan {
        let start = ContinuousClock.now
        var scan = OrphanScan()
        scan.cutoffMillis = Int64(Date().timeIntervalSince1970 * 1000) - self.orphanAge.components.seconds * 1000
        var candidates: [StoredBlob] = []
        var after: String?
        repeat {
            try Task.checkCancellation()
            let pageStart = ContinuousClock.now
            let page = try await self.blobs.storedBlobs(after: after, limit: 1000)
            scan.listed += page.items.count
            let old = page.items.filter { $0.modifiedMillis < scan.cutoffMillis }
            let unknown = old.isEmpty ? [] : Set(try await self.metadata.unknownLocations(old.map(\.location)))
            candidates += old.filter { unknown.contains($0.location) }.prefix(max(0, Self.orphansPerScan - candidates.count))
            after = page.next
            if after != nil { try await Task.sleep(for: (ContinuousClock.now - pageStart) * Double(Self.busyPauseFactor)) }
        } while after != nil
        // Most of the storage without rows is not a crash's leftovers but the wrong database (an
        // empty one, another registry's bucket): then nothing is deleted.
        if candidates.count >= Self.orphanRefusalMinimum, candidates.count * 2 > scan.listed {
            scan.refused = true
        }
        if !dryRun, scan.refused {
            self.logger.error(
                "orphan scan refused to delete: most blobs in storage have no metadata row — is this the right database (DATABASE_URL) and storage (bucket, prefix, STORAGE_DIRECTORY)?",
                metadata: ["listed": "\(scan.listed)", "without_rows": "\(candidates.count)"]
            )
            candidates = []
        }
        if !dryRun, !candidates.isEmpty {
            try await Task.sleep(for: self.orphanRecheckDelay)
            var confirmed: [StoredBlob] = []
            for chunk in stride(from: 0, to: candidates.count, by: 1000).map({ candidates[$0..<min($0 + 1000, candidates.count)] }) {
                let unknown = Set(try await self.metadata.unknownLocations(chunk.map(\.location)))
                confirmed += chunk.filter { unknown.contains($0.location) }
            }
            candidates = confirmed
        }
        scan.found = candidates.count
        scan.foundBytes = candidates.reduce(0) { $0 + $1.size }
        var deletedBytes: Int64 = 0
        if dryRun {
            scan.orphans = Array(candidates.prefix(1000))
        } else {
            for chunk in stride(from: 0, to: candidates.count, by: 1000).map({ candidates[$0..<min($0 + 1000, candidates.count)] }) {
                let deleted = Set(try await self.blobs.discard(locations: chunk.map(\.location)))
                let gone = chunk.filter { deleted.contains($0.location) }
                scan.deleted += gone.count
                deletedBytes += gone.reduce(0) { $0 + $1.size }
                scan.orphans += gone.prefix(max(0, 1000 - scan.orphans.count))
            }
        }
        if scan.found > 0 || !dryRun {
            self.logger.info(
                dryRun ? "orphan scan (dry run)" : "orphan scan",
                metadata: [
                    "listed": "\(scan.listed)", "orphans": "\(scan.found)", "bytes": "\(scan.foundBytes)",
                    "deleted": "\(scan.deleted)", "duration": "\(ContinuousClock.now - start)",
                ]
            )
        }
        if !dryRun {
            self.observe(Run(deletedBlobs: scan.deleted, deletedBytes: deletedBytes))
        }
        return scan
    }

    /// Deletes the bytes of `removed` in one call (S3: `DeleteObjects`, 1,000 keys a request);
    /// returns those it deleted. The others stay in the trash and are handed out again later.
    private func delete(_ removed: [BlobRecord]) async -> [BlobRecord] {
        guard !removed.isEmpty else { return [] }
        do {
            let deleted = Set(try await self.blobs.discard(locations: removed.map(\.location)))
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
