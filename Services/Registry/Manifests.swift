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
        // Every node of a rollout resolves the same tag at once, and each miss would be a metadata
        // call (after every push or move of the tag, all of them miss; its layers' links too, as a
        // manifest push drops the repository's entries). Lookups of one item share one call when
        // nothing changed the repository through this process in between (the ticket is part of
        // the key: a lookup that starts after this process's own delete or tag move never waits
        // for an answer read before it) and the shared call began less than
        // `CachedLookup.sharedFor` ago. Only what was found is shared: a tag pushed through
        // another gateway meanwhile must be found at once (answers that found nothing are not
        // cached either), so a lookup given "not found" asks again.
        let key = CachedLookup(repository: repository, item: "manifest " + reference.description, ticket: ticket)
        return try await self.shared(self.manifestLookups, key, cache: cache) {
            try await self.lookUpManifest(reference, in: repository, cache: cache, ticket: ticket)
        }
    }

    /// Runs `lookUp` for `key`, or waits for the same lookup in flight and takes its answer when
    /// it found something (else looks up itself): see `cachedManifest`.
    func shared<Value: Sendable>(
        _ lookups: SharedFlights<CachedLookup, Value>, _ key: CachedLookup, cache: MetadataCache,
        _ lookUp: () async throws -> Value?
    ) async throws -> Value? {
        switch lookups.join(key, youngerThan: CachedLookup.sharedFor) {
        case .follow(let lookup):
            if let value = try await lookup.value() {
                cache.observer.shared()
                return value
            }
            return try await lookUp()
        case .lead(let lookup):
            let value: Value?
            do {
                value = try await lookUp()
            } catch {
                lookup.finish(nil)
                throw error
            }
            lookup.finish(value)
            return value
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

/// A metadata lookup that concurrent ones of the same item may share (`cachedManifest`).
struct CachedLookup: Hashable, Sendable {
    let repository: RepositoryName
    /// What is looked up: "manifest <reference>" or "blob <digest>".
    let item: String
    let ticket: MetadataCache.Ticket
    /// How long after it began a lookup may still be joined: well within the second in which
    /// other gateways' changes must be seen, and far longer than a lookup takes. (A lookup that
    /// joined waits for the answer however long it takes, as it would for its own call.)
    static let sharedFor = Duration.milliseconds(250)
}
