import AsyncHTTPClient
import Blob
import Contracts
import Foundation
import Gateway
import Hummingbird
import Logging
import Metadata
import Registry
import Runtime
import ServiceLifecycle

/// Builds the all-in-one registry: gateway, metadata (SQLite or PostgreSQL) and blob (filesystem)
/// services in one process, calling each other in process through the Contracts protocols.
package func buildApplication(
    _ configuration: ServeConfiguration, logger: Logger
) async throws -> some ApplicationProtocol {
    // The certificate first: a bad one refuses the start before any store is opened.
    let listener = try publicListener(configuration, logger: logger)
    let metadata = try await makeMetadata(configuration, logger: logger)
    let blobs = try await makeBlobs(configuration, logger: logger)
    let authenticator = await configuration.auth.authenticator(http: HTTPClient.shared)
    let scanner = configuration.scanLayersForScmSource
        ? ScmSourceScanner(metadata: metadata.service, blobs: blobs, logger: logger) : nil
    let writes = metadata.service.clientCalls
    let collector = garbageCollector(
        metadata: metadata.service, blobs: blobs, configuration, port: configuration.port, activity: { writes.value }, logger: logger
    )
    let retention = retentionEnforcer(metadata: metadata.service, configuration, port: configuration.port, logger: logger)
    let pulls = PullRecorder(metadata: metadata.service, interval: configuration.pullRecordInterval, logger: logger)
    let cache = manifestCache(configuration, metadata: metadata.service, logger: logger)
    let router = Gateway.router(
        registry: RegistryService(
            metadata: metadata.service, blobs: blobs, scanner: scanner, pulls: pulls, cache: cache.cache,
            blobCache: blobCache(megabytes: configuration.serveBlobCacheMB, logger: logger)
        ),
        authenticator: authenticator,
        administration: LocalGarbageAdministration(
            metadata: metadata.service, collector: collector, retention: retention, gracePeriod: configuration.gcGracePeriod
        ),
        ready: { await metadata.service.isReady() }, logger: logger
    )
    logSecurity(configuration, authenticated: authenticator != nil, logger: logger)

    var app = Application(
        router: router,
        server: listener.server,
        configuration: .init(address: .hostname(configuration.bindAddress, port: configuration.port), serverName: nil),
        // Services stop in reverse order: the scanner before the metadata store it writes to.
        services: metadata.services
            + [UploadExpiry(maximumAge: Double(configuration.uploadMaximumAge), logger: logger) { try await blobs.expireUploads(olderThan: $0) }]
            + (scanner.map { [$0] } ?? []) + (collector.map { [$0] } ?? []) + [pulls] + (retention.map { [$0] } ?? [])
            + cache.services + listener.services,
        logger: logger
    )
    if let migrate = metadata.beforeStart {
        // Migrations need the database client running, so they run once the services have started.
        app.beforeServerStarts(perform: migrate)
    }
    return app
}

/// The gateway's manifest cache (`MANIFEST_CACHE_MB`, none at 0) with its metrics, and the
/// service that keeps it in step with `metadata`'s change log.
func manifestCache(_ configuration: ServeConfiguration, metadata: any MetadataAPI, logger: Logger)
    -> (cache: MetadataCache?, services: [any Service])
{
    guard configuration.manifestCacheMB > 0 else {
        logger.info("manifest cache off (MANIFEST_CACHE_MB=0): every lookup asks the metadata")
        return (nil, [])
    }
    let cache = MetadataCache(budget: configuration.manifestCacheMB << 20, observer: observer(ServiceMetrics.manifestCache()))
    return (cache, [MetadataCacheRefresher(cache: cache, metadata: metadata, logger: logger)])
}

/// The gateway's copies of small blobs (`BLOB_CACHE_MB`, none at 0) with their metrics.
func blobCache(megabytes: Int, logger: Logger) -> BlobCache? {
    guard megabytes > 0 else { return nil }
    let cache = BlobCache(budget: megabytes << 20, observer: observer(ServiceMetrics.blobCache()))
    logger.info("blob cache", metadata: ["megabytes": "\(megabytes)", "largest_blob": "\(cache.maximumEntry)"])
    return cache
}

/// A cache's counts, into its metrics.
func observer(_ metrics: ServiceMetrics.CacheMetrics) -> CacheObserver {
    var observer = CacheObserver()
    observer.hit = { metrics.hit() }
    observer.miss = { metrics.miss() }
    observer.evicted = { metrics.evicted($0) }
    observer.size = { metrics.size(bytes: $0, entries: $1) }
    observer.refused = { metrics.refused() }
    observer.collecting = { metrics.collecting($0) }
    observer.shared = { metrics.shared() }
    return observer
}

/// The name this process holds the collector's and retention's leases under: its host and port.
func leaseHolder(_ port: Int) -> String {
    ProcessInfo.processInfo.hostName + ":" + String(port)
}

func retentionEnforcer(metadata: any MetadataAPI, _ configuration: ServeConfiguration, port: Int, logger: Logger)
    -> RetentionEnforcer?
{
    guard let policy = configuration.retention else { return nil }
    logger.info(
        "retention", metadata: ["rules": "\(policy.rules.count)", "interval": "\(configuration.retentionInterval)"]
    )
    return RetentionEnforcer(
        metadata: metadata, policy: policy, interval: configuration.retentionInterval, holder: leaseHolder(port),
        dryRun: configuration.retentionDryRun, logger: logger
    ) { report in
        ServiceMetrics.recordRetention(
            deletedTags: report.deletions.count { $0.tag != nil }, deletedManifests: report.deletions.count { $0.tag == nil }
        )
    }
}

/// The garbage collector over `metadata` and `blobs`, recording its runs in the metrics; none
/// with `GC_ENABLED=false`.
func garbageCollector(
    metadata: any MetadataAPI, blobs: any BlobAPI, _ configuration: ServeConfiguration, port: Int,
    activity: (@Sendable () -> Int)? = nil, logger: Logger
) -> GarbageCollector? {
    guard configuration.gcEnabled else {
        logger.warning("garbage collection is off (GC_ENABLED=false): candidates are queued, nothing is deleted")
        return nil
    }
    logger.info("garbage collection", metadata: ["grace_period": "\(configuration.gcGracePeriod)"])
    return GarbageCollector(
        metadata: metadata, blobs: blobs, gracePeriod: configuration.gcGracePeriod,
        orphanScanInterval: configuration.gcOrphanScanInterval, orphanRecheckDelay: configuration.gcOrphanRecheckDelay,
        holder: leaseHolder(port), activity: activity, logger: logger
    ) { run in
        ServiceMetrics.recordGarbageCollection(
            reviewed: run.reviewed, unlinked: run.unlinked, deletedManifests: run.deletedManifests, deletedBlobs: run.deletedBlobs,
            deletedBytes: run.deletedBytes, errors: run.errors, finished: run.finished ? run.duration : nil, queued: run.queued
        )
    }
}

/// The metadata service the configuration asks for, the services it needs running, and what
/// must run before requests are served (PostgreSQL migrations).
func makeMetadata(_ configuration: ServeConfiguration, logger: Logger) async throws
    -> (service: MetadataService, services: [any Service], beforeStart: (@Sendable () async throws -> Void)?)
{
    let tagSettings = TagSettings(policy: configuration.tagPolicy, latestIsAlias: configuration.latestIsAlias)
    let notifications = configuration.notifications
    let migrated = Gate()
    func dispatcher(_ service: MetadataService) -> [any Service] {
        guard let dispatcher = NotificationDispatcher(
            service: service, settings: notifications, logger: logger, ready: { await migrated.wait() }
        ) else { return [] }
        logger.info(
            "notifications",
            metadata: ["sinks": "\(notifications.sinkNames.map(Redaction.sink))", "registry": "\(notifications.registry)"]
        )
        return [dispatcher]
    }
    if let postgres = configuration.postgres {
        let database = try MetadataService.postgres(
            settings: postgres, tags: tagSettings, outboxSinks: notifications.sinkNames, logger: logger
        )
        logger.info(
            "metadata in PostgreSQL",
            metadata: [
                "host": "\(postgres.host):\(postgres.port)", "database": "\(postgres.database)",
                "sslmode": "\(postgres.sslMode.rawValue)",
            ]
        )
        // Services stop in reverse order: the dispatcher stops before the database client.
        let migrate = database.migrate
        return (database.service, [database.client, database.listener] + dispatcher(database.service), {
            try await migrate()
            await migrated.open()
        })
    }
    let file = try storageDirectory(configuration) + "/metadata.sqlite"
    let database = try await MetadataService.sqlite(
        path: file, settings: tagSettings, outboxSinks: notifications.sinkNames, logger: logger
    )
    logger.info("metadata in SQLite", metadata: ["file": "\(file)"])
    await migrated.open()
    // Services stop in reverse order: the dispatcher stops before the store closes.
    return (
        database.service, [ShutdownHook(name: "metadata store", action: database.close)] + dispatcher(database.service), nil
    )
}

/// The blob service on S3 when `STORAGE_S3_BUCKET` is set (after checking the bucket answers),
/// else on the filesystem under `STORAGE_DIRECTORY`.
func makeBlobs(_ configuration: ServeConfiguration, logger: Logger) async throws -> BlobService {
    if let s3 = configuration.s3 {
        return try await BlobService.s3(settings: s3, sessionsPerClient: configuration.uploadSessionsPerClient, logger: logger)
    }
    let directory = try storageDirectory(configuration)
    logger.info("blobs on the filesystem", metadata: ["directory": "\(directory)"])
    return try await BlobService.filesystem(
        directory: directory, sessionsPerClient: configuration.uploadSessionsPerClient, logger: logger
    )
}

/// `STORAGE_DIRECTORY`, created when missing.
func storageDirectory(_ configuration: ServeConfiguration) throws -> String {
    let directory = URL(fileURLWithPath: configuration.storageDirectory).standardizedFileURL.path
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw ConfigurationError("STORAGE_DIRECTORY", "cannot create \(directory): \(error.localizedDescription)")
    }
    return directory
}

func logSecurity(_ configuration: ServeConfiguration, authenticated: Bool, logger: Logger) {
    guard authenticated else {
        logger.warning(
            "SECURITY IS OFF: HTTP_TOKENINFO_URL is not set, so anyone who can reach this port may push, pull and delete",
            metadata: ["address": "\(configuration.bindAddress):\(configuration.port)"]
        )
        return
    }
    if configuration.publicTLS == nil, !isLoopback(configuration.bindAddress) {
        logger.warning(
            "authentication is on over plain HTTP on \(configuration.bindAddress): tokens travel in clear text unless a TLS front (ingress, load balancer) ends in front of this port; set HTTP_TLS_CERT and HTTP_TLS_KEY to serve HTTPS here",
            metadata: ["address": "\(configuration.bindAddress):\(configuration.port)"]
        )
    }
    if configuration.auth.teamServiceURL == nil {
        logger.warning("HTTP_TEAM_SERVICE_URL is not set: only tokens with scope application.write_all can push")
    }
    logger.info(
        "authentication with OAuth2 tokeninfo",
        metadata: [
            "publicRead": "\(configuration.auth.publicRead)", "tokenFlow": "\(!configuration.auth.tokenKeys.isEmpty)",
            "instanceIdentity": "\(configuration.auth.instanceCertificates != nil)",
        ]
    )
}

/// Opens once; `wait` returns when it is open (the notification dispatcher waits for migrations).
actor Gate {
    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func open() {
        self.isOpen = true
        for continuation in self.waiting { continuation.resume() }
        self.waiting = []
    }

    func wait() async {
        if self.isOpen { return }
        await withCheckedContinuation { self.waiting.append($0) }
    }
}
