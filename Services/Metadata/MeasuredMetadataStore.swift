import Contracts
import Prometheus
import Runtime

/// A `MetadataStore` that records every operation in the database metrics (operations in flight —
/// holding or waiting for a connection — and their time, by operation), around any store. The
/// operation label is the store method's name.
struct MeasuredMetadataStore: MetadataStore {
    let base: any MetadataStore
    /// `sqlite` or `postgres`.
    let backend: String

    private func measure<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        let inUse = ServiceMetrics.databaseInUse(backend: self.backend)
        inUse.increment()
        let start = ContinuousClock.now
        defer {
            inUse.decrement()
            ServiceMetrics.databaseDuration(backend: self.backend, operation: operation).record(ContinuousClock.now - start)
        }
        return try await body()
    }

    func ping() async throws {
        try await self.base.ping()
    }

    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        try await self.measure("blob") { try await self.base.blob(digest, in: repository) }
    }

    @discardableResult
    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        try await self.measure("linkBlob") { try await self.base.linkBlob(blob, into: repository) }
    }

    func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
    {
        try await self.measure("mountBlob") { try await self.base.mountBlob(digest, into: repository, from: sources) }
    }

    func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep {
        try await self.measure("collectGarbage") { try await self.base.collectGarbage(queuedBefore: cutoff, limit: limit) }
    }

    func garbageCandidates(limit: Int) async throws -> GarbageCandidates {
        try await self.measure("garbageCandidates") { try await self.base.garbageCandidates(limit: limit) }
    }

    func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool {
        try await self.measure("lease") { try await self.base.lease(name, holder: holder, seconds: seconds) }
    }

    func unknownLocations(_ locations: [String]) async throws -> [String] {
        try await self.measure("unknownLocations") { try await self.base.unknownLocations(locations) }
    }

    func explain(_ digest: Digest) async throws -> GarbageExplanation {
        try await self.measure("explain") { try await self.base.explain(digest) }
    }

    func purgeCollected(_ locations: [String]) async throws {
        try await self.measure("purgeCollected") { try await self.base.purgeCollected(locations) }
    }

    func expireTag(_ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, rules: TagRules)
        async throws -> Bool
    {
        try await self.measure("expireTag") {
            try await self.base.expireTag(tag, in: repository, naming: digest, reason: reason, rules: rules)
        }
    }

    func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    {
        try await self.measure("expireManifest") {
            try await self.base.expireManifest(digest, in: repository, pushedBefore: cutoff, reason: reason)
        }
    }

    func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest) async throws
        -> Page<UntaggedManifest>
    {
        try await self.measure("untaggedManifests") {
            try await self.base.untaggedManifests(in: repository, pushedBefore: cutoff, page: page)
        }
    }

    func recordPulls(_ pulls: [PullRecord]) async throws {
        try await self.measure("recordPulls") { try await self.base.recordPulls(pulls) }
    }

    func putManifest(_ put: ManifestPut, rules: TagRules) async throws {
        try await self.measure("putManifest") { try await self.base.putManifest(put, rules: rules) }
    }

    func manifest(_ digest: Digest, in repository: RepositoryName) async throws -> ManifestRecord? {
        try await self.measure("manifest") { try await self.base.manifest(digest, in: repository) }
    }

    func manifestDigest(tagged tag: Tag, in repository: RepositoryName) async throws -> Digest? {
        try await self.measure("manifestDigest") { try await self.base.manifestDigest(tagged: tag, in: repository) }
    }

    func manifest(tagged tag: Tag, in repository: RepositoryName) async throws -> ManifestRecord? {
        try await self.measure("manifest") { try await self.base.manifest(tagged: tag, in: repository) }
    }

    func newestTagDigest(in repository: RepositoryName) async throws -> Digest? {
        try await self.measure("newestTagDigest") { try await self.base.newestTagDigest(in: repository) }
    }

    func deleteTag(_ tag: Tag, in repository: RepositoryName, rules: TagRules) async throws -> Bool {
        try await self.measure("deleteTag") { try await self.base.deleteTag(tag, in: repository, rules: rules) }
    }

    func deleteManifest(_ digest: Digest, in repository: RepositoryName, rules: TagRules) async throws -> Bool {
        try await self.measure("deleteManifest") { try await self.base.deleteManifest(digest, in: repository, rules: rules) }
    }

    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws -> Bool {
        try await self.measure("unlinkBlob") { try await self.base.unlinkBlob(digest, from: repository) }
    }

    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        try await self.measure("tags") { try await self.base.tags(in: repository, page: page) }
    }

    func repositories(page: PageRequest) async throws -> Page<String> {
        try await self.measure("repositories") { try await self.base.repositories(page: page) }
    }

    func referrers(of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest)
        async throws -> Page<Descriptor>
    {
        try await self.measure("referrers") {
            try await self.base.referrers(of: subject, in: repository, artifactType: artifactType, page: page)
        }
    }

    // MARK: The Pier One queries

    func teams(page: PageRequest) async throws -> Page<String> {
        try await self.measure("teams") { try await self.base.teams(page: page) }
    }

    func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> {
        try await self.measure("artifacts") { try await self.base.artifacts(ofTeam: team, page: page) }
    }

    func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? {
        try await self.measure("tagDetails") { try await self.base.tagDetails(in: repository, page: page) }
    }

    func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource? {
        try await self.measure("scmSource") { try await self.base.scmSource(of: tag, in: repository) }
    }

    func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {
        try await self.measure("recordScmSource") { try await self.base.recordScmSource(source, for: manifest, in: repository) }
    }

    func imageTags(idPrefix prefix: String) async throws -> ImageLookup {
        try await self.measure("imageTags") { try await self.base.imageTags(idPrefix: prefix) }
    }

    func statistics() async throws -> RegistryStatistics {
        try await self.measure("statistics") { try await self.base.statistics() }
    }

    func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> {
        try await self.measure("teamStatistics") { try await self.base.teamStatistics(page: page) }
    }

    func teamStatistics(team: String) async throws -> TeamStatistics? {
        try await self.measure("teamStatistics") { try await self.base.teamStatistics(team: team) }
    }

    func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics> {
        try await self.measure("artifactStatistics") { try await self.base.artifactStatistics(ofTeam: team, page: page) }
    }

    // MARK: The notification outbox

    func claimNotifications(sink: String, limit: Int, lease: Duration) async throws -> [OutboxEntry] {
        try await self.measure("claimNotifications") { try await self.base.claimNotifications(sink: sink, limit: limit, lease: lease) }
    }

    func completeNotification(id: Int64) async throws {
        try await self.measure("completeNotification") { try await self.base.completeNotification(id: id) }
    }

    func postponeNotification(id: Int64, delay: Duration, error: String) async throws {
        try await self.measure("postponeNotification") {
            try await self.base.postponeNotification(id: id, delay: delay, error: error)
        }
    }

    func notificationBacklog() async throws -> [String: Int] {
        try await self.measure("notificationBacklog") { try await self.base.notificationBacklog() }
    }
}
