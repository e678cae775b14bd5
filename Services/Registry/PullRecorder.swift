import Contracts
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Remembers which manifests were pulled and hands them to the metadata service in batches
/// (`MetadataAPI.recordPulls`) every `interval`: retention's `notPulledFor` without one database
/// write per pull. Each (repository, manifest) is held once with its latest time, at most
/// `capacity` of them between flushes (further ones wait for the next interval; a manifest pulled
/// all the time is recorded again then). A failed flush is retried with the next one.
package final class PullRecorder: Service, Sendable {
    private struct Key: Hashable {
        var repository: RepositoryName
        var digest: Digest
    }

    private let pending = Mutex<[Key: Int64]>([:])
    /// Full batches being handed over; beyond `handOverLimit` a batch grows past `capacity` (up to
    /// `handOverLimit` times it) instead of starting another call, so a slow metadata service and
    /// many distinct pulls cannot pile up tasks.
    private let handingOver = Atomic<Int>(0)
    static let handOverLimit = 4
    let metadata: any MetadataAPI
    let interval: Duration
    let logger: Logger
    /// Distinct manifests held between flushes.
    package static let capacity = 10_000

    package init(metadata: any MetadataAPI, interval: Duration = .seconds(10), logger: Logger) {
        self.metadata = metadata
        self.interval = interval
        self.logger = logger
    }

    /// Notes a pull of `digest` now; cheap, never waits for the database. A full batch is handed
    /// over at once rather than at the interval (a pull missed could let `notPulledFor` delete a
    /// tag in use), and this pull starts the next batch.
    package func note(_ digest: Digest, in repository: RepositoryName) {
        let millis = Int64(Date().timeIntervalSince1970 * 1000)
        let key = Key(repository: repository, digest: digest)
        let room = self.handingOver.load(ordering: .relaxed) < Self.handOverLimit
        let full: [Key: Int64]? = self.pending.withLock { pending in
            if pending[key] != nil || pending.count < Self.capacity
                || (!room && pending.count < Self.capacity * Self.handOverLimit)
            {
                pending[key] = millis
                return nil
            }
            guard room else { return nil }
            defer { pending = [key: millis] }
            return pending
        }
        if let full {
            self.handingOver.add(1, ordering: .relaxed)
            Task {
                await self.send(full)
                self.handingOver.subtract(1, ordering: .relaxed)
            }
        }
    }

    /// Hands what was noted to the metadata service.
    package func flush() async {
        let batch = self.pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        await self.send(batch)
    }

    private func send(_ batch: [Key: Int64]) async {
        guard !batch.isEmpty else { return }
        do {
            try await self.metadata.recordPulls(
                batch.map { PullRecord(repository: $0.key.repository, digest: $0.key.digest, millis: $0.value) }
            )
        } catch {
            self.logger.warning("could not record pulls; retried with the next batch", metadata: ["error": "\(error)"])
            // Back into the next batch, unless newer pulls took the room.
            self.pending.withLock { pending in
                for (key, millis) in batch where pending[key] == nil && pending.count < Self.capacity {
                    pending[key] = millis
                }
            }
        }
    }

    package func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                await self.flush()
            }
        }
        // What was noted since the last flush, on the way down.
        await self.flush()
    }
}
