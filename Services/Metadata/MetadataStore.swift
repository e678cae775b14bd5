import Contracts

/// Blob records and their links into repositories.
protocol BlobLinkStore: Sendable {
    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord?
    /// Returns the blob as recorded (the first location stored for the digest).
    @discardableResult
    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord
    /// Links the blob into `repository` if one of `sources` (nil: any repository) links it, in one
    /// transaction; nil when none does.
    func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
}

/// The garbage collector's review queue (`MetadataAPI.collectGarbage`).
protocol GarbageStore: Sendable {
    func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep
    func purgeCollected(_ locations: [String]) async throws
    func garbageCandidates(limit: Int) async throws -> GarbageCandidates
    func explain(_ digest: Digest) async throws -> GarbageExplanation
    func unknownLocations(_ locations: [String]) async throws -> [String]
    func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool
}

/// Manifests and the tags that name them.
protocol ManifestStore: Sendable {
    /// In one transaction: checks references, stores the manifest, and creates or moves each tag
    /// as `rules.move` decides.
    func putManifest(_ put: ManifestPut, rules: TagRules) async throws
    func manifest(_ digest: Digest, in repository: RepositoryName) async throws -> ManifestRecord?
    func manifestDigest(tagged tag: Tag, in repository: RepositoryName) async throws -> Digest?
    /// The manifest `tag` names, in one read where the store can (a pull's first request).
    func manifest(tagged tag: Tag, in repository: RepositoryName) async throws -> ManifestRecord?
    /// The digest of the most recently created tag (Pier One's `latest`).
    func newestTagDigest(in repository: RepositoryName) async throws -> Digest?
}

extension ManifestStore {
    func manifest(tagged tag: Tag, in repository: RepositoryName) async throws -> ManifestRecord? {
        guard let digest = try await self.manifestDigest(tagged: tag, in: repository) else { return nil }
        return try await self.manifest(digest, in: repository)
    }
}

/// Removal of tags, manifests and blob links, each in one transaction.
protocol DeletionStore: Sendable {
    /// Deletes the tag; false when it does not exist. Throws when `rules.delete` refuses.
    func deleteTag(_ tag: Tag, in repository: RepositoryName, rules: TagRules) async throws -> Bool
    /// Deletes the manifest and its tags; false when it does not exist. Throws when
    /// `rules.deleteManifest` refuses or another manifest of the repository references it.
    func deleteManifest(_ digest: Digest, in repository: RepositoryName, rules: TagRules) async throws -> Bool
    /// Unlinks the blob; false when it was not linked. Throws while a manifest references it.
    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws -> Bool
}

/// Retention's deletions (`MetadataAPI.expireTag` and the rest), each in one transaction.
protocol RetentionStore: Sendable {
    /// Deletes the tag if it names `digest` (as `rules.delete` allows), and its manifest when
    /// nothing keeps it; the event carries `reason`.
    func expireTag(_ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, rules: TagRules)
        async throws -> Bool
    func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest) async throws
        -> Page<UntaggedManifest>
    func recordPulls(_ pulls: [PullRecord]) async throws
}

/// Listings.
protocol CatalogStore: Sendable {
    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>?
    func repositories(page: PageRequest) async throws -> Page<String>
    func referrers(of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest)
        async throws -> Page<Descriptor>
}

/// Everything a metadata backend (SQLite, PostgreSQL) implements. The Pier One queries are the
/// service's own (`PierOneQueries`), except that a store's `tagDetails` leaves `immutable` false:
/// the service applies the tag policy.
protocol MetadataStore: BlobLinkStore, ManifestStore, DeletionStore, CatalogStore, GarbageStore, RetentionStore,
    PierOneQueries, NotificationOutbox
{
    /// Succeeds when the database answers (readiness).
    func ping() async throws
}

/// A notification waiting in the outbox for one sink.
struct OutboxEntry: Sendable, Equatable {
    var id: Int64
    var sink: String
    var payload: String
    /// Delivery attempts so far, this one included.
    var attempts: Int
}

/// The durable notification outbox: rows are written with the tag change they announce (same
/// transaction) and removed once their sink took them.
protocol NotificationOutbox: Sendable {
    /// Up to `limit` due entries of `sink`, oldest first, leased for `lease`: nobody else claims
    /// them until the lease ends (a process that dies mid-delivery leaves them to the next claim).
    func claimNotifications(sink: String, limit: Int, lease: Duration) async throws -> [OutboxEntry]
    /// The sink took the entry.
    func completeNotification(id: Int64) async throws
    /// The sink refused the entry; it is due again after `delay`.
    func postponeNotification(id: Int64, delay: Duration, error: String) async throws
    /// Entries waiting, per sink.
    func notificationBacklog() async throws -> [String: Int]
}
