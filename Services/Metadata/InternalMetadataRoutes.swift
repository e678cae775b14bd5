import Contracts
import Hummingbird
import Runtime

/// The metadata service's internal API: every `MetadataAPI` call as `POST` with JSON, for
/// gateways running in other processes (`pierone metadata`).
package enum InternalMetadataRoutes {
    package static func register<Context: RequestContext>(on router: Router<Context>, service: any MetadataAPI) {
        typealias M = InternalMetadata
        typealias C = InternalMetadataCalls
        func route<Input, Output>(
            _ call: InternalCall<Input, Output>, _ handle: @escaping @Sendable (Input) async throws -> Output
        ) {
            router.on(call) { input, _, _ in try await handle(input) }
        }
        route(C.blob) {
            M.Maybe(try await service.blob($0.digest, in: $0.repository))
        }
        route(C.changes) {
            try await service.changes(after: $0)
        }
        route(C.linkBlob) {
            try await service.linkBlob($0.blob, into: $0.repository)
        }
        route(C.putManifest) {
            try await service.putManifest($0)
            return M.Done()
        }
        route(C.manifest) {
            M.Maybe(try await service.manifest($0.reference, in: $0.repository))
        }
        route(C.tags) { listing in
            guard let repository = listing.repository else { throw RegistryError(.nameInvalid) }
            return M.Maybe(try await service.tags(in: repository, page: listing.page))
        }
        route(C.repositories) {
            try await service.repositories(page: $0.page)
        }
        route(C.mountBlob) {
            M.Maybe(try await service.mountBlob($0.digest, into: $0.repository, from: $0.sources))
        }
        route(C.collectGarbage) {
            try await service.collectGarbage(queuedBefore: $0.cutoff, limit: $0.limit)
        }
        route(C.purgeCollected) {
            try await service.purgeCollected($0.locations)
            return M.Done()
        }
        route(C.garbageCandidates) { try await service.garbageCandidates(limit: $0.limit) }
        route(C.explain) { try await service.explain($0.digest) }
        route(C.lease) { M.Flag(try await service.lease($0.name, holder: $0.holder, seconds: $0.seconds)) }
        route(C.unknownLocations) { M.Locations(locations: try await service.unknownLocations($0.locations)) }
        route(C.expireTag) { expiry in
            guard let tag = expiry.tag else { throw RegistryError(.requestInvalid, "a tag expiry names a tag") }
            return M.Flag(try await service.expireTag(
                tag, in: expiry.repository, naming: expiry.digest, reason: expiry.reason,
                includingImmutable: expiry.includingImmutable
            ))
        }
        route(C.expireManifest) { expiry in
            guard let cutoff = expiry.cutoff else { throw RegistryError(.requestInvalid, "a manifest expiry names a cutoff") }
            return M.Flag(try await service.expireManifest(
                expiry.digest, in: expiry.repository, pushedBefore: cutoff, reason: expiry.reason
            ))
        }
        route(C.untaggedManifests) {
            try await service.untaggedManifests(in: $0.repository, pushedBefore: $0.cutoff, page: $0.page)
        }
        route(C.recordPulls) {
            try await service.recordPulls($0.pulls)
            return M.Done()
        }
        route(C.deleteTag) {
            try await service.deleteTag($0.tag, in: $0.repository)
            return M.Done()
        }
        route(C.deleteManifest) {
            try await service.deleteManifest($0.digest, in: $0.repository)
            return M.Done()
        }
        route(C.unlinkBlob) {
            try await service.unlinkBlob($0.digest, from: $0.repository)
            return M.Done()
        }
        route(C.referrers) {
            try await service.referrers(of: $0.subject, in: $0.repository, artifactType: $0.artifactType, page: $0.page)
        }
        route(C.teams) { try await service.teams(page: $0.page) }
        route(C.artifacts) {
            try await service.artifacts(ofTeam: $0.team, page: $0.page)
        }
        route(C.tagDetails) { listing in
            guard let repository = listing.repository else { throw RegistryError(.nameInvalid) }
            return M.Maybe(try await service.tagDetails(in: repository, page: listing.page))
        }
        route(C.scmSource) {
            M.Maybe(try await service.scmSource(of: $0.tag, in: $0.repository))
        }
        route(C.recordScmSource) {
            try await service.recordScmSource($0.source, for: $0.manifest, in: $0.repository)
            return M.Done()
        }
        route(C.imageTags) { try await service.imageTags(idPrefix: $0.prefix) }
        route(C.statistics) { _ in try await service.statistics() }
        route(C.teamStatistics) { try await service.teamStatistics(page: $0.page) }
        route(C.oneTeamStatistics) {
            M.Maybe(try await service.teamStatistics(team: $0.team))
        }
        route(C.artifactStatistics) { try await service.artifactStatistics(ofTeam: $0.team, page: $0.page) }
    }
}
