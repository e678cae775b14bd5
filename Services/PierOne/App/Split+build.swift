import AsyncHTTPClient
import Blob
import Contracts
import Foundation
import Gateway
import InternalClients
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import Metadata
import Registry
import Runtime
import ServiceLifecycle

/// The HTTP server of an internal service: HTTP/2 and HTTP/1.1 by ALPN over mutual TLS, or plain
/// HTTP/1.1 (development only) without `INTERNAL_TLS_*`.
func internalServer(_ configuration: ServeConfiguration, logger: Logger, service: String) throws -> HTTPServerBuilder {
    guard let tls = configuration.internalTLS else {
        logger.warning("INTERNAL_TLS_* not set: the \(service) service accepts unauthenticated plain HTTP")
        return HTTPServerBuilder { responder in LargeReadsChannel(base: HTTP1Channel(responder: responder)) }
    }
    let serverConfiguration = try tls.serverConfiguration()
    return HTTPServerBuilder { responder in
        LargeReadsChannel(base: try HTTP2UpgradeChannel(tlsConfiguration: serverConfiguration, responder: responder))
    }
}

/// `pierone metadata`: the metadata service alone, serving the internal API.
package func buildMetadataApplication(_ configuration: ServeConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    let metadata = try await makeMetadata(configuration, logger: logger)
    let router = Router(context: InternalRequestContext.self)
    router.add(middleware: MetricsMiddleware(service: "metadata"))
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: InternalErrorMiddleware())
    HealthRoutes.register(on: router, ready: { await metadata.service.isReady() })
    ServiceMetrics.register(on: router)
    InternalMetadataRoutes.register(on: router, service: metadata.service)
    // The garbage collector runs here, next to its queue; it deletes bytes through a blob service.
    var services = metadata.services
    var collector: GarbageCollector?
    if let blobURL = configuration.blobURL {
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: try internalClientConfiguration(configuration))
        let blobs = RemoteBlobs(url: blobURL, http: http)
        let writes = metadata.service.clientCalls
        collector = garbageCollector(
            metadata: metadata.service, blobs: blobs, configuration, port: configuration.metadataPort,
            activity: { writes.value }, logger: logger
        )
        // Services stop in reverse order: the collector before the client and the store it uses.
        services += [ShutdownHook(name: "blob client") { try await http.shutdown() }] + (collector.map { [$0] } ?? [])
    } else {
        logger.warning("garbage collection is off: set BLOB_URL so that pierone metadata can delete collected blobs")
    }
    let retention = retentionEnforcer(metadata: metadata.service, configuration, port: configuration.metadataPort, logger: logger)
    services += retention.map { [$0] } ?? []
    let administration = LocalGarbageAdministration(
        metadata: metadata.service, collector: collector, retention: retention, gracePeriod: configuration.gcGracePeriod
    )
    router.on(InternalGarbageCalls.plan) { input, _, _ in
        try await administration.plan(limit: min(max(1, input.limit), 1000), orphans: input.orphans)
    }
    router.on(InternalGarbageCalls.run) { input, _, _ in try await administration.runNow(orphans: input.orphans) }
    router.on(InternalGarbageCalls.why) { input, _, _ in try await administration.why(input.digest) }
    var app = Application(
        router: router, server: try internalServer(configuration, logger: logger, service: "metadata"),
        configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.metadataPort), serverName: nil),
        services: services, logger: logger
    )
    if let migrate = metadata.beforeStart { app.beforeServerStarts(perform: migrate) }
    return app
}

/// `pierone blob`: the blob service alone, serving upload sessions and reads.
package func buildBlobApplication(_ configuration: ServeConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    let blobs = try await makeBlobs(configuration, logger: logger)
    let router = Router(context: InternalRequestContext.self)
    router.add(middleware: MetricsMiddleware(service: "blob"))
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: InternalErrorMiddleware())
    HealthRoutes.register(on: router, ready: { await blobs.isReady() })
    ServiceMetrics.register(on: router)
    InternalBlobRoutes.register(on: router, service: blobs)
    return Application(
        router: router, server: try internalServer(configuration, logger: logger, service: "blob"),
        configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.blobPort), serverName: nil),
        services: [UploadExpiry(maximumAge: Double(configuration.uploadMaximumAge), logger: logger) { try await blobs.expireUploads(olderThan: $0) }],
        logger: logger
    )
}

/// The HTTP client settings for calls of the internal API (the gateway's, and the metadata
/// service's garbage collector deleting bytes through the blob service).
func internalClientConfiguration(_ configuration: ServeConfiguration) throws -> HTTPClient.Configuration {
    var clientConfiguration = HTTPClient.Configuration()
    if let tls = configuration.internalTLS {
        clientConfiguration.tlsConfiguration = try tls.clientConfiguration()
    }
    clientConfiguration.timeout.connect = .seconds(5)
    // A refused connection fails the call at once (503) instead of being retried until the
    // request's deadline, which is async-http-client's default.
    clientConfiguration.connectionPool.retryConnectionEstablishment = false
    clientConfiguration.httpVersion = .automatic
    return clientConfiguration
}

/// `pierone gateway`: the public API, calling metadata and blob over HTTP.
///
/// JSON calls go through a client that negotiates HTTP/2; blob byte streams through one held to
/// HTTP/1.1 on the same listener, which measured faster and flatter (docs/performance.md).
package func buildGatewayApplication(_ configuration: ServeConfiguration, logger: Logger) async throws
    -> some ApplicationProtocol
{
    guard let metadataURL = configuration.metadataURL else {
        throw ConfigurationError("METADATA_URL", "is required by pierone gateway, e.g. https://metadata:8081")
    }
    guard let blobURL = configuration.blobURL else {
        throw ConfigurationError("BLOB_URL", "is required by pierone gateway, e.g. https://blob:8082")
    }
    let listener = try publicListener(configuration, logger: logger)
    var clientConfiguration = try internalClientConfiguration(configuration)
    let jsonClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    clientConfiguration.httpVersion = configuration.blobStreamsOverHTTP2 ? .automatic : .http1Only
    let streamClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    let metadata = RemoteMetadata(url: metadataURL, http: jsonClient)
    let blobs = RemoteBlobs(
        url: blobURL, http: streamClient,
        streams: configuration.blobStreamsOverHTTP2
            ? nil : try BlobStreamClient(base: blobURL, tls: try configuration.internalTLS?.clientConfiguration())
    )
    let authenticator = await configuration.auth.authenticator(http: HTTPClient.shared)
    logSecurity(configuration, authenticated: authenticator != nil, logger: logger)
    let scanner = configuration.scanLayersForScmSource ? ScmSourceScanner(metadata: metadata, blobs: blobs, logger: logger) : nil
    let pulls = PullRecorder(metadata: metadata, interval: configuration.pullRecordInterval, logger: logger)
    let cache = manifestCache(configuration, metadata: metadata, logger: logger)
    let router = Gateway.router(
        registry: RegistryService(
            metadata: metadata, blobs: blobs, scanner: scanner, pulls: pulls, cache: cache.cache,
            blobCache: blobCache(megabytes: configuration.blobCacheMB ?? 32, logger: logger)
        ),
        authenticator: authenticator,
        administration: RemoteGarbageAdministration(url: metadataURL, http: jsonClient),
        ready: {
            let metadataReady = await metadata.isReady()
            let blobsReady = await blobs.isReady()
            return metadataReady && blobsReady
        },
        logger: logger
    )
    return Application(
        router: router,
        server: listener.server,
        configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.port), serverName: nil),
        // Services stop in reverse order: the scanner before the internal clients it calls through.
        services: [
            ShutdownHook(name: "internal clients") {
                try await jsonClient.shutdown()
                try await streamClient.shutdown()
            }
        ] + (scanner.map { [$0] } ?? []) + [pulls] + cache.services + listener.services,
        logger: logger
    )
}
