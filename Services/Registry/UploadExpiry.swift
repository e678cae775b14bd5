import Logging
import ServiceLifecycle

/// Removes upload sessions nobody finished, with their bytes, every quarter of `maximumAge`
/// (between 30 s and 15 min). It runs where the blob storage is: in the all-in-one process, or in
/// each blob service of a split deployment (the sessions are the storage's, not the gateway's).
package struct UploadExpiry: Service, CustomStringConvertible {
    /// ServiceLifecycle logs every service with this at debug level: only what is safe to log.
    package var description: String { "UploadExpiry(maximumAge: \(self.maximumAge))" }

    /// Removes the sessions older than the given seconds and returns how many it removed.
    let expire: @Sendable (_ olderThan: Double) async throws -> Int
    let maximumAge: Double
    let logger: Logger

    package init(maximumAge: Double, logger: Logger, expire: @escaping @Sendable (_ olderThan: Double) async throws -> Int) {
        self.expire = expire
        self.maximumAge = maximumAge
        self.logger = logger
    }

    /// How long the service waits between two passes.
    var interval: Duration { .seconds(max(30, min(self.maximumAge / 4, 900))) }

    package func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    do {
                        _ = try await self.expire(self.maximumAge)
                    } catch where !Task.isCancelled {
                        self.logger.error("expiring uploads failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
