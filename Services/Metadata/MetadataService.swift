import Contracts
import Logging
import PostgresNIO
import Prometheus
import Runtime
import ServiceLifecycle
import Synchronization

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

/// A count that only grows, read and bumped from any task.
package final class ActivityCounter: Sendable {
    private let count = Atomic<Int>(0)

    package init() {}

    func increment() { self.count.add(1, ordering: .relaxed) }

    package var value: Int { self.count.load(ordering: .relaxed) }
}

/// The metadata service: `MetadataAPI` over a `MetadataStore`, with the tag rules (`TagRules`)
/// that need no data checked before the store is asked, and "not found" turned into errors.
/// Metrics come from the store's decorator (`MeasuredMetadataStore`), not from here.
package struct MetadataService: MetadataAPI {
    let store: any MetadataStore
    let rules: TagRules
    /// Calls made for clients so far (blob and manifest lookups, links, mounts, manifest pushes):
    /// the garbage collector yields while it grows.
    package let clientCalls = ActivityCounter()
    /// The changes caches in front of this service follow (`changes(after:)`).
    package let changeLog: ChangeLog

    /// `store` measured under `backend` (`sqlite` or `postgres`, the label of the database metrics).
    init(store: any MetadataStore, settings: TagSettings, backend: String = "sqlite", changeLog: ChangeLog) {
        self.store = MeasuredMetadataStore(base: store, backend: backend)
        self.rules = TagRules(settings)
        self.changeLog = changeLog
    }

    package func changes(after cursors: ChangeCursors) async throws -> ChangeBatch {
        self.changeLog.changes(after: cursors)
    }

    /// Whether the database answers.
    package func isReady() async -> Bool {
        (try? await self.store.ping()) != nil
    }

    package func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        self.clientCalls.increment()
        return try await self.store.blob(digest, in: repository)
    }

    @discardableResult
    package func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        self.clientCalls.increment()
        return try await self.store.linkBlob(blob, into: repository)
    }

    package func putManifest(_ put: ManifestPut) async throws {
        self.clientCalls.increment()
        try self.rules.checkPush(put.tags, to: put.repository)
        try await self.store.putManifest(put, rules: self.rules)
    }

    package func manifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord? {
        self.clientCalls.increment()
        switch self.rules.lookup(reference) {
        case .digest(let digest):
            return try await self.store.manifest(digest, in: repository)
        case .tag(let tag):
            return try await self.store.manifest(tagged: tag, in: repository)
        case .newest:
            guard let digest = try await self.store.newestTagDigest(in: repository) else { return nil }
            return try await self.store.manifest(digest, in: repository)
        }
    }

    package func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        try await self.store.tags(in: repository, page: page)
    }

    package func repositories(page: PageRequest) async throws -> Page<String> {
        try await self.store.repositories(page: page)
    }

    package func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
    {
        // Bounded here, where internal callers arrive: SQLite binds each source as a variable.
        self.clientCalls.increment()
        return try await self.store.mountBlob(digest, into: repository, from: sources.map { Array($0.prefix(Self.mountSourceLimit)) })
    }

    /// Most source repositories one mount looks in.
    static let mountSourceLimit = 100
    /// Most queue entries one review takes, whatever the caller asks.
    static let reviewLimit = 1000

    package func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep {
        try await self.store.collectGarbage(queuedBefore: cutoff, limit: min(max(0, limit), Self.reviewLimit))
    }

    package func garbageCandidates(limit: Int) async throws -> GarbageCandidates {
        try await self.store.garbageCandidates(limit: min(max(0, limit), Self.reviewLimit))
    }

    package func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool {
        guard name.utf8.count <= 100, holder.utf8.count <= 200, (1...86_400).contains(seconds) else {
            throw RegistryError(.requestInvalid, "a lease has a name of at most 100 bytes, a holder of 200, 1 to 86400 seconds")
        }
        return try await self.store.lease(name, holder: holder, seconds: seconds)
    }

    package func unknownLocations(_ locations: [String]) async throws -> [String] {
        guard locations.count <= 1000 else {
            throw RegistryError(.tooLarge, "at most 1000 locations per call", detail: ["count": "\(locations.count)"])
        }
        return try await self.store.unknownLocations(Array(Set(locations)).sorted())
    }

    package func explain(_ digest: Digest) async throws -> GarbageExplanation {
        try await self.store.explain(digest)
    }

    package func purgeCollected(_ locations: [String]) async throws {
        try await self.store.purgeCollected(Array(locations.prefix(10_000)))
    }

    /// Pulls one call may record; the recorders flush far fewer.
    static let pullLimit = 10_000

    package func expireTag(
        _ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, includingImmutable: Bool
    ) async throws -> Bool {
        let rules = includingImmutable
            ? TagRules(TagSettings(policy: TagPolicy(mutableTags: [Glob("*")]), latestIsAlias: self.rules.settings.latestIsAlias))
            : self.rules
        return try await self.store.expireTag(tag, in: repository, naming: digest, reason: String(reason.prefix(1000)), rules: rules)
    }

    package func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    {
        try await self.store.expireManifest(digest, in: repository, pushedBefore: cutoff, reason: String(reason.prefix(1000)))
    }

    package func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest)
        async throws -> Page<UntaggedManifest>
    {
        try await self.store.untaggedManifests(in: repository, pushedBefore: cutoff, page: page)
    }

    package func recordPulls(_ pulls: [PullRecord]) async throws {
        guard !pulls.isEmpty else { return }
        try await self.store.recordPulls(Array(pulls.prefix(Self.pullLimit)))
    }

    package func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws {
        try self.rules.checkDeletable(tag, in: repository)
        guard try await self.store.deleteTag(tag, in: repository, rules: self.rules) else {
            throw RegistryError(.manifestUnknown, "tag \(tag) is not in \(repository)")
        }
    }

    package func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws {
        guard try await self.store.deleteManifest(digest, in: repository, rules: self.rules) else {
            throw RegistryError(.manifestUnknown, "manifest \(digest) is not in \(repository)")
        }
    }

    package func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws {
        guard try await self.store.unlinkBlob(digest, from: repository) else {
            throw RegistryError(.blobUnknown, "blob \(digest) is not in \(repository)", detail: ["digest": digest.description])
        }
    }

    package func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor> {
        try await self.store.referrers(of: subject, in: repository, artifactType: artifactType, page: page)
    }
}

// MARK: The Pier One API

extension MetadataService {
    package func teams(page: PageRequest) async throws -> Page<String> {
        try await self.store.teams(page: page)
    }

    package func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> {
        try await self.store.artifacts(ofTeam: team, page: page)
    }

    package func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? {
        guard var details = try await self.store.tagDetails(in: repository, page: page) else { return nil }
        for index in details.items.indices {
            details.items[index].immutable = self.rules.isImmutable(details.items[index].name, in: repository)
        }
        return details
    }

    package func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource? {
        try await self.store.scmSource(of: tag, in: repository)
    }

    package func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {
        try await self.store.recordScmSource(source, for: manifest, in: repository)
    }

    package func imageTags(idPrefix prefix: String) async throws -> ImageLookup {
        try await self.store.imageTags(idPrefix: prefix)
    }

    package func statistics() async throws -> RegistryStatistics {
        try await self.store.statistics()
    }

    package func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> {
        try await self.store.teamStatistics(page: page)
    }

    package func teamStatistics(team: String) async throws -> TeamStatistics? {
        try await self.store.teamStatistics(team: team)
    }

    package func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics> {
        try await self.store.artifactStatistics(ofTeam: team, page: page)
    }
}

extension MetadataService {
    /// The embedded metadata service on an SQLite file, with its store for closing at shutdown.
    package static func sqlite(path: String, settings: TagSettings, outboxSinks: [String] = [], logger: Logger) async throws
        -> (service: MetadataService, close: @Sendable () async throws -> Void)
    {
        let changes = ChangeLog(source: .local)
        let store = try await SQLiteMetadataStore.open(path: path, outboxSinks: outboxSinks, changes: changes, logger: logger)
        ServiceMetrics.databasePoolSize(backend: "sqlite").set(Double(store.connectionCount))
        return (MetadataService(store: store, settings: settings, backend: "sqlite", changeLog: changes), { try await store.close() })
    }
}

extension MetadataService {
    /// The production metadata service on PostgreSQL. The returned client must run (it is a
    /// `Service`) before `migrate` and any request; so must `listener`, which feeds the change log.
    package static func postgres(
        settings: PostgresSettings, tags: TagSettings, outboxSinks: [String] = [], logger: Logger
    ) throws -> (service: MetadataService, client: any Service, listener: any Service, migrate: @Sendable () async throws -> Void) {
        let client = try PostgresClient.make(settings, logger: logger)
        let store = PostgresMetadataStore(
            client: client, timeout: .seconds(settings.timeout), outboxSinks: outboxSinks, logger: logger
        )
        ServiceMetrics.databasePoolSize(backend: "postgres").set(Double(settings.maximumConnections))
        let changes = ChangeLog(source: .database)
        return (
            MetadataService(store: store, settings: tags, backend: "postgres", changeLog: changes), client,
            PostgresChangeListener(settings: settings, log: changes, logger: logger),
            { try await PostgresMigrator.migrate(client, logger: logger) }
        )
    }
}
