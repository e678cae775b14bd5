import AsyncHTTPClient
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
    let tagSettings = TagSettings(policy: configuration.tagPolicy, latestIsAlias: configuration.latestIsAlias)
    let metadata: MetadataService
    var services: [any Service] = []
    var beforeStart: (@Sendable () async throws -> Void)?
    if let postgres = configuration.postgres {
        let database = try MetadataService.postgres(settings: postgres, tags: tagSettings, logger: logger)
        metadata = database.service
        services.append(database.client)
        beforeStart = database.migrate
        logger.info(
            "metadata in PostgreSQL",
            metadata: ["host": "\(postgres.host):\(postgres.port)", "database": "\(postgres.database)", "sslmode": "\(postgres.sslMode.rawValue)"]
        )
    } else {
        let database = try await MetadataService.sqlite(path: directory + "/metadata.sqlite", settings: tagSettings, logger: logger)
        metadata = database.service
        services.append(ShutdownHook(name: "metadata store", action: database.close))
        logger.info("metadata in SQLite", metadata: ["file": "\(directory)/metadata.sqlite"])
    }
    let blobs = try await BlobService.filesystem(directory: directory, logger: logger)
    let authenticator = await configuration.auth.authenticator(http: HTTPClient.shared)
    let router = Gateway.router(metadata: metadata, blobs: blobs, authenticator: authenticator)

    if authenticator == nil {
        logger.warning(
            "SECURITY IS OFF: HTTP_TOKENINFO_URL is not set, so anyone who can reach this port may push, pull and delete",
            metadata: ["address": "\(configuration.bindAddress):\(configuration.port)"]
        )
    } else {
        if configuration.auth.teamServiceURL == nil {
            logger.warning("HTTP_TEAM_SERVICE_URL is not set: only tokens with scope application.write_all can push")
        }
        logger.info(
            "authentication with OAuth2 tokeninfo",
            metadata: ["publicRead": "\(configuration.auth.publicRead)", "tokenFlow": "\(!configuration.auth.tokenKeys.isEmpty)"]
        )
    }
    logger.info("storage", metadata: ["directory": "\(directory)"])

    services.append(UploadExpiry(blobs: blobs, maximumAge: Double(configuration.uploadMaximumAge), logger: logger))
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.port), serverName: nil),
        services: services,
        logger: logger
    )
    if let beforeStart {
        // Migrations need the database client running, so they run once the services have started.
        app.beforeServerStarts(perform: beforeStart)
    }
    return app
}
