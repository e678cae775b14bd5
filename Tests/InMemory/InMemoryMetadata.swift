import Contracts
import NIOCore
import Synchronization

/// `MetadataAPI` in memory, for tests of the Registry layer and the gateway's handlers without a
/// database or a server. It keeps the contract's shape — blobs linked per repository, manifests
/// that must reference linked blobs, tags, referrers — but has no tag policy (every tag moves)
/// and answers the Pier One queries with empty results. Every call is counted by name.
package final class InMemoryMetadata: MetadataAPI {
    private struct State {
        var blobs: [Digest: BlobRecord] = [:]
        var links: [RepositoryName: Set<Digest>] = [:]
        var manifests: [RepositoryName: [Digest: (record: ManifestRecord, document: ManifestDocument)]] = [:]
        var tags: [RepositoryName: [String: Digest]] = [:]
        var calls: [String: Int] = [:]
        var pulls: [PullRecord] = []
        var lookupsHeld = false
    }

    private let state = Mutex(State())

    package init() {}

    /// How often `operation` (a method's base name) was called.
    package func count(_ operation: String) -> Int { self.state.withLock { $0.calls[operation] ?? 0 } }

    private func called<T>(_ operation: String, _ body: (inout State) throws -> T) rethrows -> T {
        try self.state.withLock { state in
            state.calls[operation, default: 0] += 1
            return try body(&state)
        }
    }

    /// The pulls recorded so far.
    package var recordedPulls: [PullRecord] { self.state.withLock { $0.pulls } }

    package func expireTag(
        _ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, includingImmutable: Bool
    ) async throws -> Bool {
        self.called("expireTag") { state in
            guard state.tags[repository]?[tag.value] == digest else { return false }
            state.tags[repository]?[tag.value] = nil
            return true
        }
    }

    package func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    {
        self.called("expireManifest") { _ in false }
    }

    package func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest)
        async throws -> Page<UntaggedManifest>
    {
        self.called("untaggedManifests") { _ in Page(items: [], hasMore: false) }
    }

    package func garbageCandidates(limit: Int) async throws -> GarbageCandidates {
        self.called("garbageCandidates") { _ in GarbageCandidates(candidates: [], truncated: false) }
    }

    /// Every lease is granted (one process).
    package func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool {
        self.called("lease") { _ in true }
    }

    package func unknownLocations(_ locations: [String]) async throws -> [String] {
        self.called("unknownLocations") { state in
            let known = Set(state.blobs.values.map(\.location))
            return locations.filter { !known.contains($0) }
        }
    }

    package func explain(_ digest: Digest) async throws -> GarbageExplanation {
        self.called("explain") { _ in GarbageExplanation(digest: digest.description) }
    }

    package func recordPulls(_ pulls: [PullRecord]) async throws {
        self.called("recordPulls") { $0.pulls += pulls }
    }

    package func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        let found = self.called("blob") { $0.links[repository]?.contains(digest) == true ? $0.blobs[digest] : nil }
        try await self.waitWhileLookupsHeld()
        return found
    }

    @discardableResult
    package func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        self.called("linkBlob") { state in
            let recorded = state.blobs[blob.digest] ?? blob
            state.blobs[blob.digest] = recorded
            state.links[repository, default: []].insert(blob.digest)
            return recorded
        }
    }

    package func putManifest(_ put: ManifestPut) async throws {
        try self.called("putManifest") { state in
            for blob in put.document.blobs where state.links[put.repository]?.contains(blob) != true {
                throw RegistryError(.manifestBlobUnknown, "blob \(blob) is not in \(put.repository)")
            }
            let record = ManifestRecord(digest: put.digest, mediaType: put.document.mediaType, bytes: put.bytes)
            state.manifests[put.repository, default: [:]][put.digest] = (record, put.document)
            for tag in put.tags { state.tags[put.repository, default: [:]][tag.value] = put.digest }
        }
    }

    package func manifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord? {
        let found = self.called("manifest") { state in
            let digest: Digest? = switch reference {
            case .digest(let digest): digest
            case .tag(let tag): state.tags[repository]?[tag.value]
            }
            return digest.flatMap { state.manifests[repository]?[$0]?.record }
        }
        try await self.waitWhileLookupsHeld()
        return found
    }

    /// Makes every manifest and blob lookup wait, after it has read (and been counted), until this
    /// is switched off again: an answer read before a change arrives after it.
    package func holdLookups(_ hold: Bool) { self.state.withLock { $0.lookupsHeld = hold } }

    private func waitWhileLookupsHeld() async throws {
        while self.state.withLock({ $0.lookupsHeld }) {
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    private static func page(_ names: [String], _ page: PageRequest) -> Page<String> {
        let after = names.sorted().filter { name in page.after.map { name > $0 } ?? true }
        let limit = page.effectiveLimit
        return Page(items: Array(after.prefix(limit)), hasMore: after.count > limit)
    }

    package func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        self.called("tags") { state in
            guard state.links[repository] != nil || state.manifests[repository] != nil else { return nil }
            return Self.page(Array(state.tags[repository, default: [:]].keys), page)
        }
    }

    package func repositories(page: PageRequest) async throws -> Page<String> {
        self.called("repositories") { state in
            Self.page(Set(state.links.keys).union(state.manifests.keys).map(\.value), page)
        }
    }

    package func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
    {
        self.called("mountBlob") { state in
            let linked = state.links.contains { (sources?.contains($0.key) ?? true) && $0.value.contains(digest) }
            guard linked, let blob = state.blobs[digest] else { return nil }
            state.links[repository, default: []].insert(digest)
            return blob
        }
    }

    package func purgeCollected(_ locations: [String]) async throws {
        self.called("purgeCollected") { _ in }
    }

    /// Removes, at once (no grace period, no queue), every link no manifest of its repository
    /// references and every blob no repository links.
    package func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep {
        self.called("collectGarbage") { state in
            var sweep = GarbageSweep()
            for (repository, digests) in state.links {
                let referenced = Set(state.manifests[repository, default: [:]].values.flatMap { $0.document.blobs })
                for digest in digests where !referenced.contains(digest) {
                    state.links[repository]?.remove(digest)
                    sweep.unlinked += 1
                }
            }
            let linked = Set(state.links.values.flatMap { $0 })
            for (digest, blob) in state.blobs where !linked.contains(digest) {
                state.blobs[digest] = nil
                sweep.removed.append(blob)
            }
            return sweep
        }
    }

    package func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws {
        try self.called("deleteTag") { state in
            guard state.tags[repository]?.removeValue(forKey: tag.value) != nil else {
                throw RegistryError(.manifestUnknown, "tag \(tag) is not in \(repository)")
            }
        }
    }

    package func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws {
        try self.called("deleteManifest") { state in
            guard state.manifests[repository]?.removeValue(forKey: digest) != nil else {
                throw RegistryError(.manifestUnknown, "manifest \(digest) is not in \(repository)")
            }
            state.tags[repository] = state.tags[repository]?.filter { $0.value != digest }
        }
    }

    package func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws {
        try self.called("unlinkBlob") { state in
            guard state.links[repository]?.remove(digest) != nil else {
                throw RegistryError(.blobUnknown, "blob \(digest) is not in \(repository)")
            }
        }
    }

    package func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor> {
        self.called("referrers") { state in
            let found = state.manifests[repository, default: [:]].values
                .filter { $0.document.subject == subject && (artifactType == nil || $0.document.artifactType == artifactType) }
                .map { Descriptor(mediaType: $0.record.mediaType, digest: $0.record.digest, size: Int64($0.record.bytes.readableBytes), artifactType: $0.document.artifactType) }
                .sorted { $0.digest.description < $1.digest.description }
            return Page(items: Array(found.prefix(page.effectiveLimit)), hasMore: found.count > page.effectiveLimit)
        }
    }

    // MARK: The Pier One queries: empty answers

    package func teams(page: PageRequest) async throws -> Page<String> { Page(items: [], hasMore: false) }
    package func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> { Page(items: [], hasMore: false) }
    package func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? { nil }
    package func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource? { nil }
    package func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {}
    package func imageTags(idPrefix prefix: String) async throws -> ImageLookup { .none }
    package func statistics() async throws -> RegistryStatistics { RegistryStatistics(teams: 0, artifacts: 0, tags: 0, storage: 0) }
    package func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> { Page(items: [], hasMore: false) }
    package func teamStatistics(team: String) async throws -> TeamStatistics? { nil }
    package func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics> {
        Page(items: [], hasMore: false)
    }
}
