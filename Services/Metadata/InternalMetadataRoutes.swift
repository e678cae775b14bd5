import Contracts
import Hummingbird
import Runtime

/// The metadata service's internal API: every `MetadataAPI` call as `POST` with JSON, for
/// gateways running in other processes (`pierone metadata`).
package enum InternalMetadataRoutes {
    package static func register<Context: RequestContext>(on router: Router<Context>, service: any MetadataAPI) {
        typealias M = InternalMetadata
        func route<Input: Decodable & SendableMetatype, Output: Encodable & SendableMetatype>(
            _ path: String, _ input: Input.Type, _ handle: @escaping @Sendable (Input) async throws -> Output
        ) {
            router.post(RouterPath(path)) { request, _ in
                try InternalJSON.response(try await handle(try await InternalJSON.decode(Input.self, from: request)))
            }
        }
        route(InternalMetadataPaths.blob, M.BlobInRepository.self) {
            M.Maybe(try await service.blob($0.digest, in: $0.repository))
        }
        route(InternalMetadataPaths.linkBlob, M.LinkBlob.self) {
            try await service.linkBlob($0.blob, into: $0.repository)
        }
        route(InternalMetadataPaths.putManifest, ManifestPut.self) {
            try await service.putManifest($0)
            return M.Done()
        }
        route(InternalMetadataPaths.manifest, M.ManifestQuery.self) {
            M.Maybe(try await service.manifest($0.reference, in: $0.repository))
        }
        route(InternalMetadataPaths.tags, M.Listing.self) { listing in
            guard let repository = listing.repository else { throw RegistryError(.nameInvalid) }
            return M.Maybe(try await service.tags(in: repository, page: listing.page))
        }
        route(InternalMetadataPaths.repositories, M.Listing.self) {
            try await service.repositories(page: $0.page)
        }
        route(InternalMetadataPaths.mountableBlob, M.Digests.self) {
            M.Maybe(try await service.mountableBlob($0.digest))
        }
        route(InternalMetadataPaths.deleteTag, M.TagInRepository.self) {
            try await service.deleteTag($0.tag, in: $0.repository)
            return M.Done()
        }
        route(InternalMetadataPaths.deleteManifest, M.BlobInRepository.self) {
            try await service.deleteManifest($0.digest, in: $0.repository)
            return M.Done()
        }
        route(InternalMetadataPaths.unlinkBlob, M.BlobInRepository.self) {
            try await service.unlinkBlob($0.digest, from: $0.repository)
            return M.Done()
        }
        route(InternalMetadataPaths.referrers, M.ReferrersQuery.self) {
            try await service.referrers(of: $0.subject, in: $0.repository, artifactType: $0.artifactType, page: $0.page)
        }
        route(InternalMetadataPaths.teams, M.Listing.self) { try await service.teams(page: $0.page) }
        route(InternalMetadataPaths.artifacts, M.TeamQuery.self) {
            try await service.artifacts(ofTeam: $0.team, page: $0.page)
        }
        route(InternalMetadataPaths.tagDetails, M.Listing.self) { listing in
            guard let repository = listing.repository else { throw RegistryError(.nameInvalid) }
            return M.Maybe(try await service.tagDetails(in: repository, page: listing.page))
        }
        route(InternalMetadataPaths.scmSource, M.TagInRepository.self) {
            M.Maybe(try await service.scmSource(of: $0.tag, in: $0.repository))
        }
        route(InternalMetadataPaths.recordScmSource, M.ScmSourceRecord.self) {
            try await service.recordScmSource($0.source, for: $0.manifest, in: $0.repository)
            return M.Done()
        }
        route(InternalMetadataPaths.imageTags, M.Prefix.self) { try await service.imageTags(idPrefix: $0.prefix) }
        route(InternalMetadataPaths.statistics, M.Done.self) { _ in try await service.statistics() }
        route(InternalMetadataPaths.teamStatistics, M.Listing.self) { try await service.teamStatistics(page: $0.page) }
        route(InternalMetadataPaths.oneTeamStatistics, M.TeamQuery.self) {
            M.Maybe(try await service.teamStatistics(team: $0.team))
        }
    }
}
