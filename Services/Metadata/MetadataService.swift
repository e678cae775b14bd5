import Contracts
import Logging
import Prometheus
import Runtime
import PostgresNIO
import ServiceLifecycle

/// Settings of the metadata service that shape tag semantics.
package struct TagSettings: Sendable {
    /// Which tags are immutable.
    package var policy: TagPolicy
    /// Pier One's `latest`: pushing it is refused and pulling it returns the newest tag.
    package var latestIsAlias: Bool

    package init(policy: TagPolicy = TagPolicy(), latestIsAlias: Bool = true) {
        self.policy = policy
        self.latestIsAlias = latestIsAlias
    }
}

/// The metadata service: tag semantics over a `MetadataStore`.
package struct MetadataService: MetadataAPI {
    static let latest = "latest"

    let store: any MetadataStore
    private let settings: TagSettings
    /// `sqlite` or `postgres`: the label of the database metrics.
    let backend: String

    init(store: any MetadataStore, settings: TagSettings, backend: String = "sqlite") {
        self.store = store
        self.settings = settings
        self.backend = backend
    }

    /// Runs one store operation, recording it in the database metrics (operations in flight —
    /// holding or waiting for a connection — and their time).
    func measured<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let inUse = ServiceMetrics.databaseInUse(backend: self.backend)
        inUse.increment()
        let start = ContinuousClock.now
        defer {
            inUse.decrement()
            ServiceMetrics.databaseDuration(backend: self.backend, operation: operation).record(ContinuousClock.now - start)
        }
        return try await body()
    }

    /// Whether the database answers.
    package func isReady() async -> Bool {
        (try? await self.store.ping()) != nil
    }

    package func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        try await self.measured("blob") { try await self.store.blob(digest, in: repository) }
    }

    @discardableResult
    package func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        try await self.measured("linkBlob") { try await self.store.linkBlob(blob, into: repository) }
    }

    package func putManifest(_ put: ManifestPut) async throws {
        if self.settings.latestIsAlias, put.tags.contains(where: { $0.value == Self.latest }) {
            throw RegistryError(
                .denied,
                "the tag latest cannot be pushed: it always names the newest tag of \(put.repository) "
                    + "(set LATEST_TAG_ALIAS=false to make it an ordinary tag)",
                detail: ["tag": Self.latest], status: 409
            )
        }
        let policy = self.settings.policy
        let repository = put.repository
        try await self.measured("putManifest") {
            try await self.store.putManifest(put) { tag in policy.isImmutable(tag: tag.value, in: repository) }
        }
    }

    package func manifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord? {
        let digest: Digest?
        switch reference {
        case .digest(let value):
            digest = value
        case .tag(let tag) where self.settings.latestIsAlias && tag.value == Self.latest:
            digest = try await self.measured("newestTagDigest") { try await self.store.newestTagDigest(in: repository) }
        case .tag(let tag):
            return try await self.measured("manifest") { try await self.store.manifest(tagged: tag, in: repository) }
        }
        guard let digest else { return nil }
        return try await self.measured("manifest") { try await self.store.manifest(digest, in: repository) }
    }

    package func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        try await self.measured("tags") { try await self.store.tags(in: repository, page: page) }
    }

    package func repositories(page: PageRequest) async throws -> Page<String> {
        try await self.measured("repositories") { try await self.store.repositories(page: page) }
    }

    package func mountableBlob(_ digest: Digest) async throws -> BlobRecord? {
        try await self.measured("linkedBlob") { try await self.store.linkedBlob(digest) }
    }

    package func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws {
        if self.settings.latestIsAlias, tag.value == Self.latest {
            throw RegistryError(
                .unsupported, "latest is an alias of the newest tag of \(repository) and cannot be deleted",
                detail: ["tag": Self.latest], status: 405
            )
        }
        let policy = self.settings.policy
        let deleted = try await self.measured("deleteTag") {
            try await self.store.deleteTag(tag, in: repository, isImmutable: { policy.isImmutable(tag: $0.value, in: repository) })
        }
        guard deleted else {
            throw RegistryError(.manifestUnknown, "tag \(tag) is not in \(repository)")
        }
    }

    package func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws {
        let policy = self.settings.policy
        let deleted = try await self.measured("deleteManifest") {
            try await self.store.deleteManifest(
                digest, in: repository, isImmutable: { policy.isImmutable(tag: $0.value, in: repository) }
            )
        }
        guard deleted else {
            throw RegistryError(.manifestUnknown, "manifest \(digest) is not in \(repository)")
        }
    }

    package func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws {
        guard try await self.measured("unlinkBlob", { try await self.store.unlinkBlob(digest, from: repository) }) else {
            throw RegistryError(.blobUnknown, "blob \(digest) is not in \(repository)", detail: ["digest": digest.description])
        }
    }

    package func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor> {
        try await self.measured("referrers") {
            try await self.store.referrers(of: subject, in: repository, artifactType: artifactType, page: page)
        }
    }
}

// MARK: The Pier One API

extension MetadataService {
    package func teams(page: PageRequest) async throws -> Page<String> {
        try await self.measured("teams") { try await self.store.teams(page: page) }
    }

    package func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> {
        try await self.measured("artifacts") { try await self.store.artifacts(ofTeam: team, page: page) }
    }

    package func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? {
        guard var details = try await self.measured("tagDetails", { try await self.store.tagDetails(in: repository, page: page) })
        else { return nil }
        for index in details.items.indices {
            details.items[index].immutable = self.settings.policy.isImmutable(tag: details.items[index].name, in: repository)
        }
        return details
    }

    package func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource? {
        try await self.measured("scmSource") { try await self.store.scmSource(of: tag, in: repository) }
    }

    package func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {
        try await self.measured("recordScmSource") {
            try await self.store.recordScmSource(source, for: manifest, in: repository)
        }
    }

    package func imageTags(idPrefix prefix: String) async throws -> ImageLookup {
        try await self.measured("imageTags") { try await self.store.imageTags(idPrefix: prefix) }
    }

    package func statistics() async throws -> RegistryStatistics {
        try await self.measured("statistics") { try await self.store.statistics() }
    }

    package func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> {
        try await self.measured("teamStatistics") { try await self.store.teamStatistics(page: page) }
    }

    package func teamStatistics(team: String) async throws -> TeamStatistics? {
        try await self.measured("teamStatistics") { try await self.store.teamStatistics(team: team) }
    }
}

extension MetadataService {
    /// The embedded metadata service on an SQLite file, with its store for closing at shutdown.
    package static func sqlite(path: String, settings: TagSettings, outboxSinks: [String] = [], logger: Logger) async throws
        -> (service: MetadataService, close: @Sendable () async throws -> Void)
    {
        let store = try await SQLiteMetadataStore.open(path: path, outboxSinks: outboxSinks, logger: logger)
        ServiceMetrics.databasePoolSize(backend: "sqlite").set(Double(store.connectionCount))
        return (MetadataService(store: store, settings: settings, backend: "sqlite"), { try await store.close() })
    }
}

extension MetadataService {
    /// The production metadata service on PostgreSQL. The returned client must run (it is a
    /// `Service`) before `migrate` and any request.
    package static func postgres(
        settings: PostgresSettings, tags: TagSettings, outboxSinks: [String] = [], logger: Logger
    ) throws -> (service: MetadataService, client: any Service, migrate: @Sendable () async throws -> Void) {
        let client = try PostgresClient.make(settings, logger: logger)
        let store = PostgresMetadataStore(
            client: client, timeout: .seconds(settings.timeout), outboxSinks: outboxSinks, logger: logger
        )
        ServiceMetrics.databasePoolSize(backend: "postgres").set(Double(settings.maximumConnections))
        return (
            MetadataService(store: store, settings: tags, backend: "postgres"), client,
            { try await PostgresMigrator.migrate(client, logger: logger) }
        )
    }
}
