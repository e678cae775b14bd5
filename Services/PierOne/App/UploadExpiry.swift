import Blob
import Logging
import ServiceLifecycle

/// Periodically removes upload sessions nobody finished, with their bytes.
struct UploadExpiry: Service, CustomStringConvertible {
    /// ServiceLifecycle logs every service with this at debug level: only what is safe to log
    /// (the default reflection would print webhook URLs, signing keys and credentials).
    package var description: String { "UploadExpiry(maximumAge: \(self.maximumAge))" }

    let blobs: BlobService
    let maximumAge: Double
    let logger: Logger

    func run() async throws {
        let interval = Duration.seconds(max(30, min(self.maximumAge / 4, 900)))
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    do {
                        _ = try await self.blobs.expireUploads(olderThan: self.maximumAge)
                    } catch where !Task.isCancelled {
                        self.logger.error("expiring uploads failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
