import Contracts

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
protocol MetadataStore: BlobLinkStore, ManifestStore, DeletionStore, CatalogStore {
    /// Succeeds when the database answers (readiness).
    func ping() async throws
}
