import AsyncHTTPClient
import NIOCore
import Contracts

/// `MetadataAPI` over the metadata service's internal API (JSON, HTTP/2 when TLS offers it).
package struct RemoteMetadata: MetadataAPI {
    private typealias M = InternalMetadata
    private typealias P = InternalMetadataCalls
    let client: InternalClient

    /// Whether the service answers its readiness check.
    package func isReady() async -> Bool { await self.client.isReady() }

    package init(url: String, http: HTTPClient) {
        self.client = InternalClient(base: url.hasSuffix("/") ? String(url.dropLast()) : url, http: http, service: "metadata")
    }

    package func blob(_ digest: Digest, in repository: RepositoryName) async throws -> BlobRecord? {
        let answer: M.Maybe<BlobRecord> = try await self.client.call(P.blob, M.BlobInRepository(digest: digest, repository: repository))
        return answer.value
    }

    @discardableResult
    package func linkBlob(_ blob: BlobRecord, into repository: RepositoryName) async throws -> BlobRecord {
        try await self.client.call(P.linkBlob, M.LinkBlob(blob: blob, repository: repository))
    }

    package func putManifest(_ put: ManifestPut) async throws {
        let _: M.Done = try await self.client.call(P.putManifest, put)
    }

    package func manifest(_ reference: Reference, in repository: RepositoryName) async throws -> ManifestRecord? {
        let answer: M.Maybe<ManifestRecord> = try await self.client.call(
            P.manifest, M.ManifestQuery(reference: reference, repository: repository)
        )
        return answer.value
    }

    package func tags(in repository: RepositoryName, page: PageRequest) async throws -> Page<String>? {
        let answer: M.Maybe<Page<String>> = try await self.client.call(P.tags, M.Listing(repository: repository, page: page))
        return answer.value
    }

    package func repositories(page: PageRequest) async throws -> Page<String> {
        try await self.client.call(P.repositories, M.Listing(repository: nil, page: page))
    }

    package func mountBlob(_ digest: Digest, into repository: RepositoryName, from sources: [RepositoryName]?) async throws
        -> BlobRecord?
    {
        try await self.client.call(P.mountBlob, M.Mount(digest: digest, repository: repository, sources: sources)).value
    }

    package func collectGarbage(queuedBefore cutoff: Int64, limit: Int) async throws -> GarbageSweep {
        try await self.client.call(P.collectGarbage, M.GarbageReview(cutoff: cutoff, limit: limit))
    }

    package func purgeCollected(_ locations: [String]) async throws {
        let _: M.Done = try await self.client.call(P.purgeCollected, M.Locations(locations: locations))
    }

    package func garbageCandidates(limit: Int) async throws -> GarbageCandidates {
        try await self.client.call(P.garbageCandidates, M.GarbageReview(cutoff: 0, limit: limit))
    }

    package func lease(_ name: String, holder: String, seconds: Int) async throws -> Bool {
        try await self.client.call(P.lease, M.Lease(name: name, holder: holder, seconds: seconds)).value
    }

    package func unknownLocations(_ locations: [String]) async throws -> [String] {
        try await self.client.call(P.unknownLocations, M.Locations(locations: locations)).locations
    }

    package func explain(_ digest: Digest) async throws -> GarbageExplanation {
        try await self.client.call(P.explain, M.Digests(digest: digest))
    }

    package func expireTag(
        _ tag: Tag, in repository: RepositoryName, naming digest: Digest, reason: String, includingImmutable: Bool
    ) async throws -> Bool {
        let expiry = M.Expiry(
            repository: repository, digest: digest, tag: tag, cutoff: nil, reason: reason, includingImmutable: includingImmutable
        )
        return try await self.client.call(P.expireTag, expiry).value
    }

    package func expireManifest(_ digest: Digest, in repository: RepositoryName, pushedBefore cutoff: Int64, reason: String)
        async throws -> Bool
    {
        let expiry = M.Expiry(
            repository: repository, digest: digest, tag: nil, cutoff: cutoff, reason: reason, includingImmutable: false
        )
        return try await self.client.call(P.expireManifest, expiry).value
    }

    package func untaggedManifests(in repository: RepositoryName, pushedBefore cutoff: Int64, page: PageRequest)
        async throws -> Page<UntaggedManifest>
    {
        try await self.client.call(P.untaggedManifests, M.UntaggedQuery(repository: repository, cutoff: cutoff, page: page))
    }

    package func recordPulls(_ pulls: [PullRecord]) async throws {
        let _: M.Done = try await self.client.call(P.recordPulls, M.Pulls(pulls: pulls))
    }

    package func deleteTag(_ tag: Tag, in repository: RepositoryName) async throws {
        let _: M.Done = try await self.client.call(P.deleteTag, M.TagInRepository(tag: tag, repository: repository))
    }

    package func deleteManifest(_ digest: Digest, in repository: RepositoryName) async throws {
        let _: M.Done = try await self.client.call(P.deleteManifest, M.BlobInRepository(digest: digest, repository: repository))
    }

    package func unlinkBlob(_ digest: Digest, from repository: RepositoryName) async throws {
        let _: M.Done = try await self.client.call(P.unlinkBlob, M.BlobInRepository(digest: digest, repository: repository))
    }

    package func referrers(
        of subject: Digest, in repository: RepositoryName, artifactType: String?, page: PageRequest
    ) async throws -> Page<Descriptor> {
        try await self.client.call(
            P.referrers, M.ReferrersQuery(subject: subject, repository: repository, artifactType: artifactType, page: page)
        )
    }

    package func changes(after cursors: ChangeCursors) async throws -> ChangeBatch {
        try await self.client.call(P.changes, cursors, timeout: .seconds(2))
    }

    // MARK: The Pier One API

    package func teams(page: PageRequest) async throws -> Page<String> {
        try await self.client.call(P.teams, M.Listing(repository: nil, page: page))
    }

    package func artifacts(ofTeam team: String, page: PageRequest) async throws -> Page<String> {
        try await self.client.call(P.artifacts, M.TeamQuery(team: team, page: page))
    }

    package func tagDetails(in repository: RepositoryName, page: PageRequest) async throws -> Page<TagDetail>? {
        let answer: M.Maybe<Page<TagDetail>> = try await self.client.call(
            P.tagDetails, M.Listing(repository: repository, page: page)
        )
        return answer.value
    }

    package func scmSource(of tag: Tag, in repository: RepositoryName) async throws -> ScmSource? {
        let answer: M.Maybe<ScmSource> = try await self.client.call(P.scmSource, M.TagInRepository(tag: tag, repository: repository))
        return answer.value
    }

    package func recordScmSource(_ source: ScmSource, for manifest: Digest, in repository: RepositoryName) async throws {
        let _: M.Done = try await self.client.call(
            P.recordScmSource, M.ScmSourceRecord(source: source, manifest: manifest, repository: repository)
        )
    }

    package func imageTags(idPrefix prefix: String) async throws -> ImageLookup {
        try await self.client.call(P.imageTags, M.Prefix(prefix: prefix))
    }

    package func statistics() async throws -> RegistryStatistics {
        try await self.client.call(P.statistics, M.Done())
    }

    package func teamStatistics(page: PageRequest) async throws -> Page<TeamStatistics> {
        try await self.client.call(P.teamStatistics, M.Listing(repository: nil, page: page))
    }

    package func teamStatistics(team: String) async throws -> TeamStatistics? {
        let answer: M.Maybe<TeamStatistics> = try await self.client.call(P.oneTeamStatistics, M.TeamQuery(team: team))
        return answer.value
    }

    package func artifactStatistics(ofTeam team: String, page: PageRequest) async throws -> Page<ArtifactStatistics> {
        try await self.client.call(P.artifactStatistics, M.TeamQuery(team: team, page: page))
    }
}
