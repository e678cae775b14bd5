import Contracts

/// Manifests, tags, listings and referrers: metadata only, except that a pushed image may be
/// queued for the layer scan.
extension RegistryService {
    package func manifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord? {
        let record = try await self.cachedManifest(reference, in: repository)
        if let record { self.pulls?.note(record.digest, in: repository) }
        return record
    }

    /// From the cache when it holds the answer and is fresh; else from the metadata, kept for the
    /// next lookup (by the reference asked and by digest). `latest` is always asked: it may name
    /// the newest tag, which a push changes without a log entry.
    private func cachedManifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord? {
        guard let cache = self.cache, reference.description != "latest" else {
            return try await self.metadata.manifest(reference, in: repository)
        }
        if let record = cache.manifest(reference, in: repository) { return record }
        let ticket = cache.ticket(repository)
        // Every node of a rollout resolves the same tag at once, and after every push or move of
        // the tag each of them would miss and ask: they share one call (`shared`).
        let key = CachedLookup(repository: repository, item: "manifest " + reference.description, ticket: ticket)
        return try await self.shared(self.manifestLookups, key, cache: cache) {
            try await self.lookUpManifest(reference, in: repository, cache: cache, ticket: ticket)
        }
    }

    private func lookUpManifest(
        _ reference: Reference, in repository: RepositoryName, cache: MetadataCache, ticket: MetadataCache.Ticket
    ) async throws -> ManifestRecord? {
        guard let record = try await self.metadata.manifest(reference, in: repository) else { return nil }
        cache.store(record, as: reference, in: repository, ticket: ticket)
        if case .tag = reference {
            cache.store(record, as: .digest(record.digest), in: repository, ticket: ticket)
        }
        return record
    }

    /// Stores a manifest and its tags; without a source from the pusher, queues the image for
    /// the layer scan (counted against `client`), which runs after the answer.
    package func putManifest(_ put: ManifestPut, client: String) async throws {
        // Tags may have moved: this process's lookups see them at once, others' through the log.
        // No blob is unlinked: the links the layers' pushes stored stay for the pulls that follow.
        defer { self.cache?.invalidateManifests(put.repository) }
        try await self.metadata.putManifest(put)
        if put.scmSource == nil {
            self.scanner?.enqueue(put.repository, manifest: put.digest, document: put.document, client: client)
        }
    }

    package func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws {
        defer { self.cache?.invalidateManifests(repository) }
        try await self.metadata.deleteTag(tag, in: repository)
    }

    package func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws {
        defer { self.cache?.invalidateManifests(repository) }
        try await self.metadata.deleteManifest(digest, in: repository)
    }

    /// Unlinks a blob from a repository; its bytes stay while other repositories use them.
    package func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws {
        defer { self.cache?.invalidate(repository) }
        try await self.metadata.unlinkBlob(digest, from: repository)
    }

    package func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        try await self.metadata.tags(in: repository, page: page)
    }

    package func repositories(page: PageRequest) async throws -> Page<String> {
        try await self.metadata.repositories(page: page)
    }
}

extension RegistryService {
    package func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor> {
        try await self.metadata.referrers(of: subject, in: repository, artifactType: artifactType, page: page)
    }
}
