import Contracts

/// Blob records and their links into repositories.
protocol BlobLinkStore: Sendable {
    func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord?
    func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws
}

/// Manifests and the tags that name them.
protocol ManifestStore: Sendable {
    /// In one transaction: checks references, stores the manifest, and moves each tag unless
    /// `isImmutable(tag)` and the tag already names another manifest.
    func putManifest(_ put: ManifestPut, isImmutable: @Sendable (Tag) -> Bool) async throws
    func manifest(_ digest: Digest, in repository: RepositoryName) async throws -> ManifestRecord?
    func manifestDigest(tagged tag: Tag, in repository: RepositoryName) async throws -> Digest?
    /// The digest of the most recently created tag (Pier One's `latest`).
    func newestTagDigest(in repository: RepositoryName) async throws -> Digest?
}

/// Listings.
protocol CatalogStore: Sendable {
    func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>?
    func repositories(page: PageRequest) async throws -> Page<String>
}

/// Everything a metadata backend (SQLite, PostgreSQL) implements.
protocol MetadataStore: BlobLinkStore, ManifestStore, CatalogStore {}
