import Contracts

/// Route templates of the internal services (the `route` label): their paths are fixed, except
/// the upload session id.
package enum InternalRouteTemplates {
    static let metadata: Set<String> = [
        InternalMetadataPaths.blob, InternalMetadataPaths.linkBlob, InternalMetadataPaths.putManifest,
        InternalMetadataPaths.manifest, InternalMetadataPaths.tags, InternalMetadataPaths.repositories,
        InternalMetadataPaths.mountableBlob, InternalMetadataPaths.deleteTag, InternalMetadataPaths.deleteManifest,
        InternalMetadataPaths.unlinkBlob, InternalMetadataPaths.referrers, InternalMetadataPaths.teams,
        InternalMetadataPaths.artifacts, InternalMetadataPaths.tagDetails, InternalMetadataPaths.scmSource,
        InternalMetadataPaths.recordScmSource, InternalMetadataPaths.imageTags, InternalMetadataPaths.statistics,
        InternalMetadataPaths.teamStatistics, InternalMetadataPaths.oneTeamStatistics,
        HealthPaths.live, HealthPaths.ready, "/metrics",
    ]

    package static func metadata(_ path: String) -> String {
        self.metadata.contains(path) ? path : "other"
    }

    package static func blob(_ path: String) -> String {
        switch path {
        case InternalBlobPaths.uploads, InternalBlobPaths.read, InternalBlobPaths.discard, InternalBlobPaths.externalURL,
             HealthPaths.live, HealthPaths.ready, "/metrics":
            return path
        default:
            guard path.hasPrefix(InternalBlobPaths.uploads + "/") else { return "other" }
            return path.hasSuffix("/commit") ? InternalBlobPaths.uploads + "/{id}/commit" : InternalBlobPaths.uploads + "/{id}"
        }
    }
}
