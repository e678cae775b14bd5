import Blob
import Contracts
import Foundation
import Gateway
import Hummingbird
import Logging
import Metadata
import Runtime
import ServiceLifecycle

/// Builds the all-in-one registry: gateway, metadata (SQLite) and blob (filesystem) services in
/// one process, calling each other in process through the Contracts protocols.
package func buildApplication(
    _ configuration: ServeConfiguration, logger: Logger
) async throws -> some ApplicationProtocol {
    let directory = URL(fileURLWithPath: configuration.storageDirectory).standardizedFileURL.path
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw ConfigurationError("STORAGE_DIRECTORY", "cannot create \(directory): \(error.localizedDescription)")
    }
    let metadata = try await MetadataService.sqlite(
        path: directory + "/metadata.sqlite",
        settings: TagSettings(policy: configuration.tagPolicy, latestIsAlias: configuration.latestIsAlias),
        logger: logger
    )
    let blobs = try await BlobService.filesystem(directory: directory, logger: logger)
    let router = Gateway.router(metadata: metadata.service, blobs: blobs)

    logger.warning(
        "authentication is off: anyone who can reach this port may push and pull",
        metadata: ["address": "\(configuration.bindAddress):\(configuration.port)"]
    )
    logger.info("storage", metadata: ["directory": "\(directory)"])

    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.port), serverName: nil),
        services: [
            UploadExpiry(blobs: blobs, maximumAge: Double(configuration.uploadMaximumAge), logger: logger),
            ShutdownHook(name: "metadata store", action: metadata.close),
        ],
        logger: logger
    )
}
