import AsyncHTTPClient
import Contracts

/// `MetadataAPI` over the metadata service's internal API (JSON, HTTP/2 when TLS offers it).
package struct RemoteMetadata: MetadataAPI {
    private typealias M = InternalMetadata
    private typealias P = InternalMetadataPaths
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

    package func mountableBlob(_ digest: Digest) async throws -> BlobRecord? {
        let answer: M.Maybe<BlobRecord> = try await self.client.call(P.mountableBlob, M.Digests(digest: digest))
        return answer.value
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
}
