import Contracts

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Blob records and their links into repositories.
protocol BlobLinkStore: Sendable {
    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord?
    /// Returns the blob as recorded (the first location stored for the digest).
    @discardableResult
    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord
    /// The blob if any repository links it.
    func linkedBlob(_ digest: Digest) async throws -> BlobRecord?
}

/// Manifests and the tags that name them.
protocol ManifestStore: Sendable {
    /// In one transaction: checks references, stores the manifest, and moves each tag unless
    /// `isImmutable(tag)` and the tag already names another manifest.
    func putManifest(_ put: ManifestPut, isImmutable: @escaping @Sendable (Tag) -> Bool) async throws
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
    /// Deletes the tag; false when it does not exist. Throws when `isImmutable(tag)`.
    func deleteTag(_ tag: Tag, in repository: RepositoryName, isImmutable: @escaping @Sendable (Tag) -> Bool) async throws -> Bool
    /// Deletes the manifest and its tags; false when it does not exist. Throws when one of its tags
    /// is immutable or another manifest of the repository references it.
    func deleteManifest(_ digest: Digest, in repository: RepositoryName, isImmutable: @escaping @Sendable (Tag) -> Bool)
        async throws -> Bool
    /// Unlinks the blob; false when it was not linked. Throws while a manifest references it.
    func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws -> Bool
}

/// Listings.
protocol CatalogStore: Sendable {
    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>?
    func repositories(page: PageRequest) async throws -> Page<String>
    func referrers(of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest)
        async throws -> Page<Descriptor>
}

/// Everything a metadata backend (SQLite, PostgreSQL) implements.
protocol MetadataStore: BlobLinkStore, ManifestStore, DeletionStore, CatalogStore, PierOneStore, NotificationOutbox {
    /// Succeeds when the database answers (readiness).
    func ping() async throws
}

/// The Pier One API's reads, and scm-source records.
protocol PierOneStore: Sendable {
    func teams(page: PageRequest) async throws -> Page<String>
    func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String>
    /// Tags oldest first with `immutable` false (the service applies the policy); nil without tags.
    func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>?
    func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource?
    /// Stores the record unless the manifest is gone; a header record replaces a layer record, never
    /// the other way round.
    func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws
    /// `prefix` is normalised (`sha256:` plus lowercase hex).
    func imageTags(idPrefix prefix: String) async throws -> ImageLookup
    func statistics() async throws -> RegistryStatistics
    func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics>
    func teamStatistics(team: String) async throws -> TeamStatistics?
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

/// A tag created, moved or deleted, as written to the outbox.
struct TagEvent: Sendable, Codable, Equatable {
    enum Action: String, Sendable, Codable {
        case created, moved, deleted
    }

    /// Unique per change; the same for every sink, so receivers can drop a repeated delivery.
    var id: String
    var action: Action
    var repository: String
    var team: String
    var artifact: String
    var tag: String
    var digest: String
    var previousDigest: String?
    var pushedBy: String?
    var timeMillis: Int64

    init(action: Action, repository: RepositoryName, tag: String, digest: Digest, previous: String?, pushedBy: String?) {
        self.id = UUID().uuidString.lowercased()
        self.action = action
        self.repository = repository.value
        self.team = repository.team
        self.artifact = repository.artifact
        self.tag = tag
        self.digest = digest.description
        self.previousDigest = previous
        self.pushedBy = pushedBy
        self.timeMillis = Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// A tag removed (by deleting it or the manifest it named); `digest` is what it named.
    init(deleted tag: String, from repository: RepositoryName, digest: Digest) {
        self.init(action: .deleted, repository: repository, tag: tag, digest: digest, previous: nil, pushedBy: nil)
    }

    var json: String {
        String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
