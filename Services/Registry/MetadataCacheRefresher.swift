import Contracts
import Logging
import ServiceLifecycle

/// Keeps a `MetadataCache` in step with the metadata: every `interval` it asks for the changes
/// since its last position (`MetadataAPI.changes`), drops the repositories that changed (all of
/// them when the log cannot tell) and then confirms the cache as fresh as the answer proves:
/// as of when the question was sent, less the staleness the replica reported.
///
/// Asking in process is a lock and a slice of a ring; over the internal API, one small HTTP/2
/// call. A call that fails or answers late confirms nothing, and the cache stops answering once
/// its bound has passed.
package struct MetadataCacheRefresher: Service, CustomStringConvertible {
    package var description: String { "MetadataCacheRefresher" }

    let cache: MetadataCache
    let changes: @Sendable (ChangeCursors) async throws -> ChangeBatch
    let interval: Duration
    let logger: Logger

    package init(cache: MetadataCache, metadata: any MetadataAPI, interval: Duration = .milliseconds(100), logger: Logger) {
        self.init(cache: cache, changes: { try await metadata.changes(after: $0) }, interval: interval, logger: logger)
    }

    /// Follows `changes` (a stand-in for `MetadataAPI.changes`, in tests).
    package init(
        cache: MetadataCache, changes: @escaping @Sendable (ChangeCursors) async throws -> ChangeBatch,
        interval: Duration = .milliseconds(100), logger: Logger
    ) {
        self.cache = cache
        self.changes = changes
        self.interval = interval
        self.logger = logger
    }

    package func run() async {
        await cancelWhenGracefulShutdown {
            var cursors = ChangeCursors()
            var order: [String] = []  // logs by when they were last asked, oldest first
            var failing = false
            while !Task.isCancelled {
                let asked = ContinuousClock.now
                do {
                    let batch = try await self.changes(cursors)
                    self.apply(batch, asked: asked, cursors: &cursors, order: &order)
                    if failing {
                        failing = false
                        self.logger.info("metadata change log reachable again")
                    }
                } catch is CancellationError {
                    break
                } catch {
                    if !failing {
                        failing = true
                        self.logger.warning(
                            "metadata change log not reachable: the cache answers nothing until it is",
                            metadata: ["error": "\(error)"]
                        )
                    }
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// Applies one answer: drops what changed, remembers the position, confirms freshness.
    package func apply(_ batch: ChangeBatch, asked: ContinuousClock.Instant, cursors: inout ChangeCursors, order: inout [String]) {
        if let repositories = batch.repositories {
            self.cache.invalidate(repositories)
        } else {
            self.cache.flush()
        }
        guard !batch.epoch.isEmpty else { return }
        cursors.positions[batch.epoch] = batch.position
        order.removeAll { $0 == batch.epoch }
        order.append(batch.epoch)
        while order.count > ChangeCursors.limit {
            cursors.positions[order.removeFirst()] = nil
        }
        // A staleness no clock could produce (negative, or more than a day) proves nothing.
        guard let staleness = batch.staleness, (0...86_400_000).contains(staleness) else { return }
        self.cache.confirm(freshAsOf: asked - .milliseconds(staleness))
    }
}
